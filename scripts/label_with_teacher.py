"""Step 0 of training: label a dataset with the teacher (description + P(yes) per candidate HOI).

One process:
    python scripts/label_with_teacher.py --teacher Qwen/Qwen2-VL-2B-Instruct --dataset data/hico_det \\
        --output_dir data/hico_det_teacher
Several processes, each labelling its share of the shards (round robin), on GPUs:
    accelerate launch --multi_gpu --num_processes 8 scripts/label_with_teacher.py --teacher ... --dataset ... \\
        --output_dir ...
or on CPU cores (accelerate's `--cpu` launcher starts a single process unless MPI is set up):
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 scripts/label_with_teacher.py ...
The synthetic world's simulated teacher (no model):
    python scripts/label_with_teacher.py --teacher synthetic --dataset data/synthetic --output_dir data/synthetic_teacher

Killed at any point and rerun with the same arguments, it resumes: finished shards are kept, the rest
is labelled. When every shard of a split exists, ``datasets.load_dataset(output_dir)`` returns it.
"""

from __future__ import annotations

import argparse
import logging

from accelerate import Accelerator
from accelerate.utils import set_seed

from modeling_clhoi.dataset_schema import load_hoi_dataset, read_vocabulary, write_vocabulary
from modeling_clhoi.teacher_pass import (
    check_state,
    finalize_teacher_pass,
    run_teacher_pass,
)
from modeling_clhoi.vocabulary import HOIVocabulary

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True,
                        help="An image-text-to-text model (Hub id or folder), or 'synthetic' for the synthetic world's teacher.")
    parser.add_argument("--adapter", default=None, help="A PEFT LoRA adapter (folder or Hub id) merged into the teacher.")
    parser.add_argument("--dataset", required=True, help="A dataset folder in the clhoi schema (datasets.load_dataset).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--split", nargs="+", default=None, help="Splits to label (default: all).")
    parser.add_argument("--candidates", choices=("detected", "all"), default="detected",
                        help="'detected': HOIs whose object is among an image's detections; 'all': every HOI.")
    parser.add_argument("--batch_size", type=int, default=8, help="Images given to the teacher at once.")
    parser.add_argument("--shard_size", type=int, default=256, help="Images per output shard (the unit of resumption).")
    parser.add_argument("--vocabulary", default=None,
                        help="HOI vocabulary (preset name or JSON); default: the dataset's vocabulary.json.")
    parser.add_argument("--max_new_tokens", type=int, default=64, help="Length of the teacher's descriptions.")
    parser.add_argument("--dtype", default=None, help="Teacher weights dtype, e.g. bfloat16 (default: the checkpoint's).")
    parser.add_argument("--seed", type=int, default=0, help="Seed (the synthetic teacher's noise).")
    parser.add_argument("--synthetic_noise", type=float, default=0.1, help="Error rate of the synthetic teacher.")
    parser.add_argument("--no_progress", action="store_true", help="No progress bar.")
    return parser.parse_args(argv)


def build_teacher(args: argparse.Namespace, vocabulary: HOIVocabulary, device):
    if args.teacher == "synthetic":
        if args.adapter:
            raise ValueError("--adapter applies to VLLM teachers, not to the synthetic teacher.")
        from modeling_clhoi.synthetic_teacher import SyntheticTeacher

        return SyntheticTeacher(vocabulary=vocabulary, noise=args.synthetic_noise, seed=args.seed)
    from modeling_clhoi.teacher import VLLMTeacher

    return VLLMTeacher.from_pretrained(
        args.teacher, adapter=args.adapter, vocabulary=vocabulary, device=device, dtype=args.dtype,
        max_new_tokens=args.max_new_tokens, max_batch_size=max(32, args.batch_size),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    accelerator = Accelerator()
    set_seed(args.seed)
    dataset = load_hoi_dataset(args.dataset)
    vocabulary = HOIVocabulary.from_any(args.vocabulary) if args.vocabulary else read_vocabulary(args.dataset)
    state = {
        "teacher": args.teacher, "adapter": args.adapter, "candidates": args.candidates,
        "shard_size": args.shard_size, "max_new_tokens": args.max_new_tokens, "seed": args.seed,
        "synthetic_noise": args.synthetic_noise if args.teacher == "synthetic" else None,
        "vocabulary": vocabulary.name, "num_hois": vocabulary.num_hois,
    }
    if accelerator.is_main_process:
        check_state(args.output_dir, state)
        write_vocabulary(vocabulary, args.output_dir)
    accelerator.wait_for_everyone()
    check_state(args.output_dir, state)

    teacher = build_teacher(args, vocabulary, accelerator.device)
    written = run_teacher_pass(
        teacher, dataset, args.output_dir, splits=args.split, shard_size=args.shard_size,
        batch_size=args.batch_size, candidates=args.candidates, process_index=accelerator.process_index,
        num_processes=accelerator.num_processes, progress=not args.no_progress,
    )
    logger.info("process %d wrote %d shard(s)", accelerator.process_index, len(written))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        split = args.split[0] if args.split else next(iter(dataset))
        complete = finalize_teacher_pass(args.output_dir, dataset[split].features)
        logger.info("complete splits in %s: %s", args.output_dir, complete or "none yet")
    accelerator.end_training()


if __name__ == "__main__":
    main()
