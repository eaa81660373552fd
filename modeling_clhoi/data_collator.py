"""Batches of the clhoi dataset schema (plus the teacher columns) for training and evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .vocabulary import HOIVocabulary


def _normalized_boxes(boxes: Any, width: float, height: float) -> torch.Tensor:
    """``[n, 4]`` absolute xyxy pixels -> ``[n, 4]`` xyxy in ``[0, 1]``."""
    tensor = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return (tensor / scale).clamp(0.0, 1.0)


@dataclass
class CLHOIDataCollator:
    """Collates rows of the dataset schema (``modeling_clhoi.dataset_schema``) into model inputs.

    Returns a dict with:

    - ``image_ids``: the ``image_id`` of each row (its position when the column is missing);
    - ``pixel_values``: ``[B, 3, S, S]`` from the processor;
    - ``original_sizes``: ``[B, 2]`` long, ``(height, width)`` of each image;
    - ``detections``: per image ``{"boxes": [n, 4] xyxy normalized to [0, 1], "labels": [n] long,
      "scores": [n] float}``, the ``detections=`` argument of the model;
    - ``annotations`` (when the rows have ``annotation``): per image ``{"boxes_h", "boxes_o"`` normalized
      ``[m, 4]``, ``"hoi", "object", "verb"`` long ``[m]}``; instance truth, read only by evaluation and by
      the supervised baselines (pairs get their labels by IoU matching against the model's detections,
      :func:`modeling_clhoi.losses.pair_targets_from_annotations`);
    - ``teacher_scores`` / ``candidate_mask`` (when the rows have the teacher columns): ``[B, num_hois]``
      dense soft targets (the teacher's P(yes), 0 elsewhere) and the bool mask of the candidates asked;
    - ``context_input_ids`` / ``context_attention_mask``: the tokenized ``teacher_context`` (stage 1).

    Args:
        processor: a ``CLHOIProcessor`` (its image processor makes ``pixel_values``, its tokenizer the
            context tokens).
        vocabulary: the model's HOI vocabulary; teacher candidate ids must be ids of it. Defaults to the
            processor's.
        max_context_length: token budget of a teacher description.
    """

    processor: Any
    vocabulary: HOIVocabulary | None = None
    max_context_length: int = 64

    def __post_init__(self) -> None:
        if self.vocabulary is None:
            self.vocabulary = getattr(self.processor, "vocabulary", None)
        if self.vocabulary is None:
            raise ValueError("CLHOIDataCollator needs a vocabulary (pass one, or a processor that has one).")
        self.vocabulary = HOIVocabulary.from_any(self.vocabulary)

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not examples:
            raise ValueError("Cannot collate an empty batch.")
        images = [example["image"].convert("RGB") for example in examples]
        batch: dict[str, Any] = {
            "image_ids": [str(example.get("image_id", i)) for i, example in enumerate(examples)],
            "pixel_values": self.processor(images=images, return_tensors="pt")["pixel_values"],
            "original_sizes": torch.tensor([[image.height, image.width] for image in images], dtype=torch.long),
            "detections": [self._detections(example, image.width, image.height)
                           for example, image in zip(examples, images)],
        }
        if all("annotation" in example and example["annotation"] is not None for example in examples):
            batch["annotations"] = [self._annotation(example["annotation"], image.width, image.height)
                                    for example, image in zip(examples, images)]
        if all(example.get("teacher_candidates") is not None for example in examples):
            batch["teacher_scores"], batch["candidate_mask"] = self._teacher_targets(examples)
        if all(example.get("teacher_context") is not None for example in examples):
            tokens = self.processor.tokenizer(
                [example["teacher_context"] for example in examples], padding=True, truncation=True,
                max_length=self.max_context_length, return_tensors="pt",
            )
            batch["context_input_ids"] = tokens["input_ids"]
            batch["context_attention_mask"] = tokens["attention_mask"]
        return batch

    @staticmethod
    def _detections(example: Mapping[str, Any], width: int, height: int) -> dict[str, torch.Tensor]:
        dets = example["detections"]
        return {
            "boxes": _normalized_boxes(dets["boxes"], width, height),
            "labels": torch.as_tensor(np.asarray(dets["labels"], dtype=np.int64)),
            "scores": torch.as_tensor(np.asarray(dets["scores"], dtype=np.float32)),
        }

    @staticmethod
    def _annotation(annotation: Mapping[str, Any], width: int, height: int) -> dict[str, torch.Tensor]:
        out = {
            "boxes_h": _normalized_boxes(annotation["boxes_h"], width, height),
            "boxes_o": _normalized_boxes(annotation["boxes_o"], width, height),
        }
        for key in ("hoi", "object", "verb"):
            out[key] = torch.as_tensor(np.asarray(annotation.get(key, []), dtype=np.int64))
        return out

    def _teacher_targets(self, examples: Sequence[Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        num_hois = self.vocabulary.num_hois
        scores = torch.zeros(len(examples), num_hois)
        mask = torch.zeros(len(examples), num_hois, dtype=torch.bool)
        for row, example in enumerate(examples):
            candidates = torch.as_tensor(np.asarray(example["teacher_candidates"], dtype=np.int64))
            values = torch.as_tensor(np.asarray(example["teacher_scores"], dtype=np.float32))
            if candidates.shape != values.shape:
                raise ValueError(
                    f"Image {example.get('image_id', row)!r}: {candidates.numel()} teacher candidates but "
                    f"{values.numel()} teacher scores."
                )
            if candidates.numel() and (candidates.min() < 0 or candidates.max() >= num_hois):
                raise ValueError(
                    f"Image {example.get('image_id', row)!r}: teacher candidate ids must lie in [0, {num_hois}) "
                    "(the model's vocabulary); was the teacher pass run with another vocabulary?"
                )
            scores[row, candidates] = values.clamp(0.0, 1.0)
            mask[row, candidates] = True
        return scores, mask
