"""Train CL-HOI by two-stage distillation from a teacher's image-level labels.

One process:
    python scripts/train.py --preset synthetic --teacher_labels data/synthetic_teacher \\
        --output_dir outputs/clhoi-synthetic --stage both --context_num_train_epochs 2 --num_train_epochs 6
Several processes, the same arguments (GPUs; or CPU workers: ``--multi_gpu`` is accelerate's launcher of
local processes, ``--use_cpu true`` makes them gloo CPU workers):
    accelerate launch --num_processes 2 scripts/train.py ...
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py ... --use_cpu true

``--teacher_labels`` is the output of ``scripts/label_with_teacher.py`` (the dataset plus the teacher
columns); ``--dataset`` (optional) is the dataset evaluated on (its ``--eval_split``; default: the same
folder). Every ``TrainingArguments`` flag applies, plus those of ``CLHOITrainingArguments`` (``--stage``,
``--context_learning_rate``, ``--supervision``, ...). The output folder gets the model and processor (loadable
with ``AutoModel`` / ``AutoProcessor``, ``auto_map`` included), ``eval_results.json``, ``training_args.json``
and a model card (``README.md``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import transformers
from transformers import AutoModel, AutoProcessor, HfArgumentParser, set_seed

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor, HOIVocabulary
from modeling_clhoi.data_collator import CLHOIDataCollator
from modeling_clhoi.dataset_schema import (
    TEACHER_COLUMNS,
    VOCABULARY_FILE,
    load_hoi_dataset,
    read_pretty_name,
    read_vocabulary,
)
from modeling_clhoi.model_card import TRAINING_ARGS_NAME, save_model_card
from modeling_clhoi.pipeline_clhoi import save_pipeline_code
from modeling_clhoi.trainer import CLHOIDistillationTrainer, CLHOITrainingArguments

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Which model to train."""

    preset: str = field(default="synthetic", metadata={"help": "A fresh model from CLHOIConfig.from_preset.",
                                                       "choices": ["tiny", "synthetic", "base"]})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Start from a saved CL-HOI folder instead of a preset."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": 'JSON object of CLHOIConfig fields for a preset, e.g. \'{"pooling": "lse"}\'.'},
    )


@dataclass
class DataArguments:
    """Which data to train and evaluate on."""

    teacher_labels: str | None = field(
        default=None, metadata={"help": "Dataset folder with the teacher columns (scripts/label_with_teacher.py)."}
    )
    dataset: str | None = field(
        default=None,
        metadata={"help": "Dataset folder to evaluate on (and to train on when --teacher_labels is not given, "
                          "e.g. with --supervision instance)."},
    )
    train_split: str = field(default="train")
    eval_split: str = field(default="test")
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N evaluation images."})
    max_context_length: int = field(default=64, metadata={"help": "Token budget of a teacher description."})


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, CLHOITrainingArguments]:
    parser = HfArgumentParser((ModelArguments, DataArguments, CLHOITrainingArguments))
    if argv is None and len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        return parser.parse_json_file(os.path.abspath(sys.argv[1]))
    return parser.parse_args_into_dataclasses(args=argv)


def load_splits(data_args: DataArguments, training_args: CLHOITrainingArguments):
    """(train split, eval split or None, the folder whose vocabulary.json names the HOI ids)."""
    train_dir = data_args.teacher_labels or data_args.dataset
    if train_dir is None:
        raise ValueError("Pass --teacher_labels (teacher-labelled dataset) and/or --dataset.")
    eval_dir = data_args.dataset or train_dir
    train = load_hoi_dataset(train_dir, split=data_args.train_split)
    needs_teacher = training_args.stage != "interaction" or training_args.supervision != "instance"
    missing = [c for c in TEACHER_COLUMNS if c not in train.column_names]
    if needs_teacher and missing:
        raise ValueError(
            f"{train_dir} has no teacher columns {missing}: run scripts/label_with_teacher.py and pass its output "
            "as --teacher_labels (only --stage interaction --supervision instance trains without a teacher)."
        )
    if data_args.max_train_samples is not None:
        train = train.select(range(min(data_args.max_train_samples, len(train))))
    evaluation = None
    if training_args.eval_strategy != "no" or training_args.do_eval or data_args.dataset is not None:
        evaluation = load_hoi_dataset(eval_dir, split=data_args.eval_split)
        if data_args.max_eval_samples is not None:
            evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    return train, evaluation, train_dir


def build_model(model_args: ModelArguments, vocabulary: HOIVocabulary):
    """The model and processor, both using ``vocabulary`` (the dataset's HOI ids)."""
    if model_args.model_name_or_path:
        model = AutoModel.from_pretrained(model_args.model_name_or_path)
        processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
        if model.vocabulary != vocabulary:
            model.set_vocabulary(vocabulary)
        processor.vocabulary = vocabulary
        return model, processor
    overrides: dict[str, Any] = json.loads(model_args.config_overrides) if model_args.config_overrides else {}
    config = CLHOIConfig.from_preset(model_args.preset, **{"vocabulary": vocabulary.to_dict(), **overrides})
    processor = CLHOIProcessor.from_preset(model_args.preset)
    processor.vocabulary = vocabulary
    return CLHOIForInteractionDetection(config), processor


def main(argv: list[str] | None = None) -> dict[str, float]:
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
                        if training_args.should_log else logging.WARNING)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    set_seed(training_args.seed)

    train, evaluation, train_dir = load_splits(data_args, training_args)
    vocabulary = read_vocabulary(train_dir)
    if not os.path.isfile(os.path.join(train_dir, VOCABULARY_FILE)):
        logger.warning("%s has no %s: assuming HICO-DET HOI ids.", train_dir, VOCABULARY_FILE)
    model, processor = build_model(model_args, vocabulary)
    trainer = CLHOIDistillationTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=evaluation, processing_class=processor,
        data_collator=CLHOIDataCollator(processor, vocabulary, max_context_length=data_args.max_context_length),
    )
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()
    trainer.save_state()
    trainer.save_metrics("train", result.metrics)
    metrics: dict[str, float] = {}
    if evaluation is not None:
        metrics = trainer.evaluate()
        trainer.save_metrics("eval", metrics)
    if trainer.is_world_process_zero():
        card_args = {**training_args.to_dict(), **asdict(model_args), **asdict(data_args),
                     "dataset": data_args.teacher_labels or data_args.dataset,
                     "eval_dataset_name": read_pretty_name(data_args.dataset or train_dir)}
        with open(os.path.join(training_args.output_dir, TRAINING_ARGS_NAME), "w", encoding="utf-8") as f:
            json.dump(card_args, f, indent=1, default=str)
        save_model_card(training_args.output_dir)
        save_pipeline_code(training_args.output_dir)  # pipeline(model=output_dir, trust_remote_code=True)
    return metrics


if __name__ == "__main__":
    main()
