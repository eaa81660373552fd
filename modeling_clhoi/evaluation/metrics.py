"""Flat HICO-DET figures for the Trainer and for logging: one call, a dict of floats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..vocabulary import HOIVocabulary
from .hico_det import hico_det_map


def compute_hoi_metrics(
    predictions: Sequence[Mapping[str, Any]],
    references: Sequence[Mapping[str, Any]],
    *,
    vocabulary: HOIVocabulary | Mapping | str | None = None,
    known_object: bool = True,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """HICO-DET mAP in Default (and Known Object) mode as a flat dict of floats.

    Args:
        predictions, references: per image, as for :func:`~modeling_clhoi.evaluation.hico_det_map`.
        vocabulary: the HOI vocabulary; HICO-DET when ``None``.
        known_object: also compute the Known Object figures (``"ko_*"`` keys).
        iou_threshold: the minimum ``min(IoU_h, IoU_o)`` of a true positive.

    Returns:
        ``{"map", "map_rare", "map_non_rare", "mean_recall", "num_classes_with_gt"}`` and, with
        ``known_object``, ``"ko_map"``, ``"ko_map_rare"``, ``"ko_map_non_rare"``, ``"ko_mean_recall"``.
    """
    vocab = HOIVocabulary.from_any(vocabulary)
    metrics: dict[str, float] = {}
    modes = [("", False)] + ([("ko_", True)] if known_object else [])
    for prefix, mode in modes:
        result = hico_det_map(predictions, references, known_object=mode, vocabulary=vocab, iou_threshold=iou_threshold)
        recall = result["recall"][~np.isnan(result["recall"])]
        metrics[f"{prefix}map"] = result["map"]
        metrics[f"{prefix}map_rare"] = result["map_rare"]
        metrics[f"{prefix}map_non_rare"] = result["map_non_rare"]
        metrics[f"{prefix}mean_recall"] = float(recall.mean()) if recall.size else float("nan")
        if not prefix:
            metrics["num_classes_with_gt"] = float(np.count_nonzero(result["n_gt"]))
    return metrics
