"""Two-stage distillation of CL-HOI with a :class:`transformers.Trainer`.

Stage 1, context distillation: the VLT learns to match the text embedding of the teacher's description
(:func:`~modeling_clhoi.losses.context_distillation_loss`). Stage 2, interaction distillation: the ICN learns
from the teacher's image-level interaction scores (:func:`~modeling_clhoi.losses.interaction_contrastive_loss`
and :func:`~modeling_clhoi.losses.multilabel_distillation_loss`). ``stage="both"`` runs stage 1 then stage 2
as one training run with one optimizer: each stage has its own parameter groups, number of steps and
learning-rate schedule, and the groups of the stage that is not running have a learning rate of 0 and
``requires_grad=False``. Since the stage follows from the global step, checkpoints and
``resume_from_checkpoint`` work across the stage boundary exactly as in any Trainer run.

What each stage trains (our choice, one line each):

- stage 1: the VLT (queries, layers, projection into text space) and the context loss temperature;
- stage 2: the ICN (pair encoders, layers, projection), the model's ``logit_scale`` and the interaction
  loss temperature;
- both stages: the vision encoder, unless ``config.freeze_vision_encoder`` (the synthetic preset learns it
  from scratch; pretrained CLIP towers stay frozen);
- never: the text encoder, its projection and the detector (frozen by the model).

Default loss weights (measured on the synthetic world, ``benchmarks/bench_synthetic.py``): the multi-label
distillation term carries stage 2; the image-level contrastive term is implemented and selectable
(``interaction_contrastive_weight``) but off by default, because it pulls the dominant pair's embedding toward
the mixture of *all* the image's HOIs, which blurs the instance level and lowered mAP in every setting tried.

Supervision of stage 2 (``CLHOITrainingArguments.supervision``): ``"teacher"`` (the method, default),
``"instance"`` (fully supervised upper bound from the instance annotations; pairs get labels by IoU matching)
or ``"image"`` (naive baseline: every pair gets its image's teacher scores). The last two exist for
comparisons only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from torch import nn
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments, get_scheduler
from transformers.trainer_utils import EvalLoopOutput

from .evaluation import hico_det_map
from .evaluation.inference import references_from_dataset, triplets_to_prediction
from .losses import (
    context_distillation_loss,
    interaction_contrastive_loss,
    logit_scale_from_log,
    multilabel_distillation_loss,
    pair_classification_loss,
    pair_targets_from_annotations,
)

STAGES = ("context", "interaction", "both")
SUPERVISIONS = ("teacher", "instance", "image")
LOSS_TERMS = (
    "context_loss", "interaction_contrastive_loss", "multilabel_distillation_loss",
    "pair_classification_loss",
)
TEMPERATURES_NAME = "distillation_temperatures.pt"


@dataclass
class CLHOITrainingArguments(TrainingArguments):
    """:class:`~transformers.TrainingArguments` plus the two stages of CL-HOI.

    With ``stage="both"``, ``context_*`` fields configure stage 1 and the usual fields (``learning_rate``,
    ``num_train_epochs``, ``max_steps``) stage 2. With a single stage, the usual fields configure it.
    Warmup, scheduler type and weight decay apply to each stage separately.
    """

    stage: str = field(default="both", metadata={"help": "Which stages to run.", "choices": list(STAGES)})
    context_num_train_epochs: float = field(
        default=3.0, metadata={"help": "Epochs of stage 1 (context distillation) when stage='both'."}
    )
    context_max_steps: int = field(
        default=-1, metadata={"help": "If > 0: steps of stage 1 when stage='both' (overrides its epochs)."}
    )
    context_learning_rate: float = field(default=5e-4, metadata={"help": "Peak learning rate of stage 1 in 'both'."})
    supervision: str = field(
        default="teacher",
        metadata={"help": "Stage-2 signal: 'teacher' (distillation, the method), 'instance' (supervised upper "
                          "bound from instance labels) or 'image' (naive: every pair gets its image's teacher "
                          "scores).", "choices": list(SUPERVISIONS)},
    )
    interaction_contrastive_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the image-level contrastive interaction loss. 0 by default: on the synthetic "
                          "world it lowers mAP (benchmarks/bench_synthetic.py, ablations 'contrastive_*')."},
    )
    multilabel_distillation_weight: float = field(
        default=1.0, metadata={"help": "Weight of the multi-label distillation loss on the teacher's soft scores."}
    )
    temperature_init: float = field(
        default=0.07, metadata={"help": "Initial temperature of the two learnable InfoNCE temperatures."}
    )
    eval_top_k: int = field(default=100, metadata={"help": "Triplets kept per image for the HICO-DET metric."})
    eval_known_object: bool = field(default=False, metadata={"help": "HICO-DET Known Object mode in evaluation."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep False: the collator needs the dataset schema's columns."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}.")
        if self.supervision not in SUPERVISIONS:
            raise ValueError(f"supervision must be one of {SUPERVISIONS}, got {self.supervision!r}.")
        if self.remove_unused_columns:
            raise ValueError("CLHOIDistillationTrainer needs remove_unused_columns=False (the collator reads the "
                             "dataset schema's columns).")
        if not 0 < self.temperature_init < 1e3:
            raise ValueError(f"temperature_init must be positive, got {self.temperature_init}.")


class DistillationTemperatures(nn.Module):
    """The learnable InfoNCE temperatures of the two contrastive losses, stored as ``log(1 / T)``.

    They belong to the training objective, not to the model, so the trainer owns them: they are optimized
    with their stage, saved in checkpoints (``distillation_temperatures.pt``) and averaged across processes.
    """

    def __init__(self, temperature_init: float = 0.07) -> None:
        super().__init__()
        self.context = nn.Parameter(torch.tensor(math.log(1.0 / temperature_init)))
        self.interaction = nn.Parameter(torch.tensor(math.log(1.0 / temperature_init)))


class _ZeroTemperatureGradients(TrainerCallback):
    """The Trainer zeroes the model's gradients after each optimizer step; this does the same for the
    temperatures, which live outside the model."""

    def __init__(self, temperatures: DistillationTemperatures) -> None:
        self.temperatures = temperatures

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.temperatures.zero_grad(set_to_none=True)


def _stage_schedule(args: TrainingArguments, num_steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier of ``args.lr_scheduler_type`` over ``num_steps`` steps (warmup included)."""
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(
        args.lr_scheduler_type, optimizer=probe, num_warmup_steps=args.get_warmup_steps(num_steps),
        num_training_steps=num_steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        raise ValueError(f"lr_scheduler_type {args.lr_scheduler_type!r} is not supported by the staged schedule.")
    return scheduler.lr_lambdas[0]


class CLHOIDistillationTrainer(Trainer):
    """Trains :class:`~modeling_clhoi.CLHOIForInteractionDetection` by two-stage distillation (see the module
    docstring) and evaluates it with the HICO-DET metric.

    Args:
        model: the CL-HOI model.
        args: :class:`CLHOITrainingArguments`.
        data_collator: a :class:`~modeling_clhoi.data_collator.CLHOIDataCollator`.
        processing_class: the ``CLHOIProcessor`` (post-processing in evaluation; saved with the model).
        kwargs: the other :class:`~transformers.Trainer` arguments (``train_dataset``, ``eval_dataset``,
            ``callbacks``, ...). ``compute_metrics`` is not used: evaluation computes HICO-DET mAP itself.
    """

    def __init__(self, model: nn.Module, args: CLHOITrainingArguments, **kwargs: Any) -> None:
        if not isinstance(args, CLHOITrainingArguments):
            raise ValueError("CLHOIDistillationTrainer needs CLHOITrainingArguments.")
        super().__init__(model=model, args=args, **kwargs)
        self.temperatures = DistillationTemperatures(args.temperature_init).to(args.device)
        self.add_callback(_ZeroTemperatureGradients(self.temperatures))
        self.stage_steps: tuple[int, int] | None = None
        self._active_stage: str | None = None
        self._term_sums = torch.zeros(len(LOSS_TERMS), device=args.device)
        self._term_counts = torch.zeros(len(LOSS_TERMS), device=args.device)

    # ------------------------------------------------------------------ stages
    def _steps_per_epoch(self) -> int:
        if not hasattr(self.train_dataset, "__len__"):
            raise ValueError("Staged training needs a dataset with a length (or max_steps for both stages).")
        args = self.args
        per_step = args.per_device_train_batch_size * args.world_size
        num_batches = len(self.train_dataset) // per_step if args.dataloader_drop_last else math.ceil(
            len(self.train_dataset) / per_step
        )
        return max(math.ceil(num_batches / args.gradient_accumulation_steps), 1)

    def _compute_stage_steps(self) -> tuple[int, int]:
        """(steps of stage 1, steps of stage 2) of this run."""
        args = self.args

        def steps(max_steps: int, epochs: float) -> int:
            return max_steps if max_steps > 0 else math.ceil(epochs * self._steps_per_epoch())

        main = steps(self._main_max_steps, args.num_train_epochs)
        if args.stage == "context":
            return main, 0
        if args.stage == "interaction":
            return 0, main
        return steps(args.context_max_steps, args.context_num_train_epochs), main

    def stage_at(self, step: int) -> str:
        """The stage (``"context"`` or ``"interaction"``) that optimizer step ``step`` belongs to."""
        if self.stage_steps is None:
            raise ValueError("The stage schedule is set when training starts.")
        return "context" if step < self.stage_steps[0] else "interaction"

    def _stage_parameters(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Trainable parameters per group: "context" (stage 1), "interaction" (stage 2), "shared" (both)."""
        model = self.accelerator.unwrap_model(self.model)
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {
            "context": [(f"vlt.{n}", p) for n, p in model.vlt.named_parameters()],
            "interaction": [(f"icn.{n}", p) for n, p in model.icn.named_parameters()]
            + [("logit_scale", model.logit_scale)],
            "shared": [],
        }
        if not model.config.freeze_vision_encoder:
            groups["shared"] = [(f"vision_encoder.{n}", p) for n, p in model.vision_encoder.named_parameters()]
        return groups

    def _apply_stage(self, stage: str) -> None:
        """``requires_grad`` of the stage's parameters on, of the other stage's off."""
        if stage == self._active_stage:
            return
        groups = self._stage_parameters()
        for name, params in groups.items():
            trainable = name == "shared" or name == stage
            for _, param in params:
                param.requires_grad_(trainable)
        self.temperatures.context.requires_grad_(stage == "context")
        self.temperatures.interaction.requires_grad_(stage == "interaction")
        self._active_stage = stage

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """Runs the stage(s) of ``args.stage`` as one Trainer run of ``stage 1 + stage 2`` steps."""
        self._main_max_steps = self.args.max_steps
        self.stage_steps = self._compute_stage_steps()
        if sum(self.stage_steps) == 0:
            raise ValueError("Nothing to train: both stages have 0 steps.")
        self._active_stage = None
        self.args.max_steps = sum(self.stage_steps)
        try:
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            self.args.max_steps = self._main_max_steps

    # ------------------------------------------------------------------ optimizer and schedule
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (``args.optim``) with decay / no-decay groups per stage plus the temperatures; every group
        starts at lr 1.0 and :meth:`create_scheduler` sets its absolute learning rate per step."""
        if self.optimizer is not None:
            return self.optimizer
        decay = set(self.get_decay_parameter_names(self.accelerator.unwrap_model(self.model))) - {"logit_scale"}
        param_groups = []
        for group, named in self._stage_parameters().items():
            for with_decay in (True, False):
                params = [p for n, p in named if (n in decay) == with_decay]
                if params:
                    param_groups.append({"params": params, "weight_decay": self.args.weight_decay if with_decay else 0.0,
                                         "stage": group, "lr": 1.0})
        param_groups.append({"params": [self.temperatures.context], "weight_decay": 0.0, "stage": "context", "lr": 1.0})
        param_groups.append(
            {"params": [self.temperatures.interaction], "weight_decay": 0.0, "stage": "interaction", "lr": 1.0}
        )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
        optimizer_kwargs = {k: v for k, v in optimizer_kwargs.items() if k != "lr"}
        self.optimizer = optimizer_cls(param_groups, lr=1.0, **optimizer_kwargs)
        return self.optimizer

    def _stage_learning_rates(self) -> tuple[float, float]:
        args = self.args
        if args.stage == "both":
            return args.context_learning_rate, args.learning_rate
        return args.learning_rate, args.learning_rate

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """One ``LambdaLR`` whose per-group multiplier is the absolute learning rate of the group's stage:
        stage 1 runs its schedule over ``[0, s1)``, stage 2 over ``[s1, s1 + s2)``, 0 outside."""
        if self.lr_scheduler is not None:
            return self.lr_scheduler
        optimizer = optimizer or self.optimizer
        s1, s2 = self.stage_steps
        lr1, lr2 = self._stage_learning_rates()
        first = _stage_schedule(self.args, s1) if s1 else None
        second = _stage_schedule(self.args, s2) if s2 else None

        def context_lr(step: int) -> float:
            return lr1 * first(step) if step < s1 else 0.0

        def interaction_lr(step: int) -> float:
            return lr2 * second(step - s1) if step >= s1 and second is not None else 0.0

        def shared_lr(step: int) -> float:
            return context_lr(step) if step < s1 else interaction_lr(step)

        by_stage = {"context": context_lr, "interaction": interaction_lr, "shared": shared_lr}
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, [by_stage[group["stage"]] for group in optimizer.param_groups]
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def _get_learning_rate(self) -> float:
        """The learning rate of the group(s) of the stage of the optimizer step just taken (the Trainer asks
        before it increments ``global_step``)."""
        stage = self.stage_at(self.state.global_step)
        for group, lr in zip(self.optimizer.param_groups, self.lr_scheduler.get_last_lr()):
            if group["stage"] == stage:
                return float(lr)
        return 0.0

    # ------------------------------------------------------------------ temperatures in checkpoints
    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        super()._save_optimizer_and_scheduler(output_dir)
        if self.args.should_save:
            torch.save(self.temperatures.state_dict(), os.path.join(output_dir, TEMPERATURES_NAME))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is not None and os.path.isfile(os.path.join(checkpoint, TEMPERATURES_NAME)):
            state = torch.load(os.path.join(checkpoint, TEMPERATURES_NAME), map_location=self.args.device,
                               weights_only=True)
            self.temperatures.load_state_dict(state)
        super()._load_optimizer_and_scheduler(checkpoint)

    # ------------------------------------------------------------------ loss
    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        self._apply_stage(self.stage_at(self.state.global_step))
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.accelerator.num_processes > 1:  # the temperatures live outside DDP: average their gradients
            for param in self.temperatures.parameters():
                if param.grad is not None:
                    param.grad = self.accelerator.reduce(param.grad, reduction="mean")
        return loss

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The loss of the current stage, as a per-batch mean (``num_items_in_batch`` is not needed: every
        term is a mean over its own items). Stage 1 runs the model without detections (the VLT does not
        need pairs)."""
        stage = self.stage_at(self.state.global_step) if self.stage_steps is not None else "interaction"
        if stage == "context":
            terms = self._context_terms(model, inputs)
            outputs = None
        else:
            outputs = model(pixel_values=inputs["pixel_values"], detections=inputs["detections"])
            terms = self._interaction_terms(outputs, inputs)
        loss = sum(terms.values())
        if model.training:
            for name, value in terms.items():
                self._term_sums[LOSS_TERMS.index(name)] += value.detach().float()
                self._term_counts[LOSS_TERMS.index(name)] += 1
        return (loss, outputs) if return_outputs else loss

    def _require(self, inputs: dict[str, Any], keys: tuple[str, ...], why: str) -> None:
        missing = [key for key in keys if key not in inputs]
        if missing:
            raise ValueError(f"{why} needs the batch keys {missing}; the dataset lacks the columns they come from.")

    def _context_terms(self, model: nn.Module, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        self._require(inputs, ("context_input_ids", "context_attention_mask"), "Stage 1 (teacher_context)")
        pixel_values = inputs["pixel_values"]
        no_detections = [{"boxes": pixel_values.new_zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long,
                          device=pixel_values.device), "scores": pixel_values.new_zeros(0)}] * len(pixel_values)
        outputs = model(pixel_values=pixel_values, detections=no_detections)
        described = self.accelerator.unwrap_model(model).get_text_features(
            inputs["context_input_ids"], inputs["context_attention_mask"]
        )
        scale = logit_scale_from_log(self.temperatures.context)
        return {"context_loss": context_distillation_loss(outputs.context_embedding, described, scale)}

    def _interaction_terms(self, outputs: Any, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        args = self.args
        if args.supervision == "instance":
            self._require(inputs, ("annotations",), "supervision='instance'")
            targets = pair_targets_from_annotations(
                outputs.detections, outputs.pair_image_index, outputs.pair_indices, inputs["annotations"],
                num_hois=outputs.pair_logits.shape[1],
            )
            return {"pair_classification_loss": pair_classification_loss(outputs.pair_logits, targets)}
        self._require(inputs, ("teacher_scores", "candidate_mask"), f"supervision={args.supervision!r}")
        teacher = inputs["teacher_scores"]
        if args.supervision == "image":
            targets = teacher[outputs.pair_image_index]
            return {"pair_classification_loss": pair_classification_loss(outputs.pair_logits, targets)}
        terms = {
            "multilabel_distillation_loss": args.multilabel_distillation_weight * multilabel_distillation_loss(
                outputs.interaction_logits, teacher, inputs["candidate_mask"]
            ),
        }
        if args.interaction_contrastive_weight:
            scale = logit_scale_from_log(self.temperatures.interaction)
            terms["interaction_contrastive_loss"] = args.interaction_contrastive_weight * interaction_contrastive_loss(
                outputs.interaction_embeds, teacher, outputs.hoi_text_embeds, scale
            )
        return terms

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean of each loss term since the last log, the stage and the temperatures to training logs."""
        if "loss" in logs and self.stage_steps is not None:
            sums = self.accelerator.reduce(self._term_sums.clone(), reduction="sum")
            counts = self.accelerator.reduce(self._term_counts.clone(), reduction="sum")
            for name, total, count in zip(LOSS_TERMS, sums.tolist(), counts.tolist()):
                if count:
                    logs[name] = total / count
            self._term_sums.zero_()
            self._term_counts.zero_()
            logs["stage"] = 1 if self.stage_at(max(self.state.global_step - 1, 0)) == "context" else 2
            logs["context_temperature"] = float((-self.temperatures.context.detach()).exp())
            logs["interaction_temperature"] = float((-self.temperatures.interaction.detach()).exp())
        super().log(logs, start_time)

    # ------------------------------------------------------------------ evaluation
    def evaluation_loop(
        self,
        dataloader: torch.utils.data.DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        """Predicts every image of ``dataloader`` and computes HICO-DET mAP against the dataset's
        ``annotation`` (pair counts vary per image, so the generic prediction loop does not apply). Under
        several processes each predicts its shard; predictions are gathered and matched to the references
        by ``image_id`` (which also drops the duplicates of even batching)."""
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        processor = self.processing_class
        if processor is None:
            raise ValueError("Evaluation needs the processor: pass processing_class=CLHOIProcessor(...).")
        dataset = dataloader.dataset
        if "image_id" not in dataset.column_names:
            raise ValueError("Evaluation needs the dataset's `image_id` column.")
        image_ids, predictions = [], []
        for inputs in tqdm(dataloader, desc=description, disable=not self.is_local_process_zero()):
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                outputs = model(pixel_values=inputs["pixel_values"], detections=inputs["detections"])
            sizes = [tuple(size) for size in inputs["original_sizes"].tolist()]
            results = processor.post_process_interaction_detection(
                outputs, threshold=0.0, target_sizes=sizes, top_k=self.args.eval_top_k
            )
            image_ids.extend(inputs["image_ids"])
            predictions.extend(triplets_to_prediction(result) for result in results)
        if self.accelerator.num_processes > 1:
            image_ids, predictions = gather_object(image_ids), gather_object(predictions)
        by_id = dict(zip(image_ids, predictions))
        dataset_ids = [str(i) for i in dataset["image_id"]]
        if len(set(dataset_ids)) != len(dataset_ids):
            raise ValueError("Evaluation needs unique `image_id`s.")
        scores = hico_det_map(
            [by_id[i] for i in dataset_ids], references_from_dataset(dataset), vocabulary=model.vocabulary,
            known_object=self.args.eval_known_object,
        )
        metrics = {f"{metric_key_prefix}_{key}": float(scores[key]) for key in ("map", "map_rare", "map_non_rare")}
        metrics[f"{metric_key_prefix}_num_classes"] = int(np.sum(scores["n_gt"] > 0))
        return EvalLoopOutput(predictions=None, label_ids=None, metrics=metrics, num_samples=len(dataset_ids))
