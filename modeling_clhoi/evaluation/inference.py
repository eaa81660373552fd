"""Predictions over a dataset in the metric's format, and the dataset's references in the same format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data_collator import CLHOIDataCollator


def triplets_to_prediction(triplets: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """One image's ``post_process_interaction_detection`` triplets -> ``{"boxes_h", "boxes_o", "hoi", "scores"}``."""
    return {
        "boxes_h": np.asarray([t["human_box"] for t in triplets], dtype=np.float64).reshape(-1, 4),
        "boxes_o": np.asarray([t["object_box"] for t in triplets], dtype=np.float64).reshape(-1, 4),
        "hoi": np.asarray([t["hoi"] for t in triplets], dtype=np.int64),
        "scores": np.asarray([t["score"] for t in triplets], dtype=np.float64),
    }


def references_from_dataset(dataset: Any) -> list[dict[str, np.ndarray]]:
    """The ``annotation`` column (absolute pixels, as stored) as the metric's per-image references."""
    if "annotation" not in dataset.column_names:
        raise ValueError("The dataset has no `annotation` column: it cannot be evaluated.")
    references = []
    for annotation in dataset.select_columns(["annotation"])["annotation"]:
        references.append({
            "boxes_h": np.asarray(annotation["boxes_h"], dtype=np.float64).reshape(-1, 4),
            "boxes_o": np.asarray(annotation["boxes_o"], dtype=np.float64).reshape(-1, 4),
            "hoi": np.asarray(annotation["hoi"], dtype=np.int64),
            "object": np.asarray(annotation["object"], dtype=np.int64),
        })
    return references


@torch.no_grad()
def predict_dataset(
    model: Any,
    processor: Any,
    dataset: Any,
    batch_size: int = 8,
    threshold: float = 0.0,
    top_k: int = 100,
    show_progress: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Runs ``model`` on every image of ``dataset`` with the dataset's cached detections.

    Args:
        model: a ``CLHOIForInteractionDetection`` (put in eval mode here).
        processor: its ``CLHOIProcessor``.
        dataset: a ``datasets.Dataset`` in the clhoi schema (``image``, ``detections`` in absolute pixels,
            normalized here by the data collator).
        batch_size: images per forward pass.
        threshold: minimum triplet score kept (the official protocol ranks all: keep it low).
        top_k: most triplets per image.
        show_progress: a tqdm bar over batches.

    Returns:
        per image, in dataset order, ``{"boxes_h", "boxes_o"`` (``[n, 4]`` absolute xyxy of the original
        image), ``"hoi"``, ``"scores"}``: the predictions of :func:`~modeling_clhoi.evaluation.hico_det_map`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    collator = CLHOIDataCollator(processor, vocabulary=model.vocabulary)
    device = next(model.parameters()).device
    model.eval()
    columns = [c for c in ("image", "image_id", "detections") if c in dataset.column_names]
    rows = dataset.select_columns(columns)
    predictions = []
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc="predict", disable=not show_progress):
        examples = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
        batch = collator(examples)
        detections = [{key: value.to(device) for key, value in det.items()} for det in batch["detections"]]
        outputs = model(pixel_values=batch["pixel_values"].to(device), detections=detections)
        sizes = [tuple(size) for size in batch["original_sizes"].tolist()]
        results = processor.post_process_interaction_detection(
            outputs, threshold=threshold, target_sizes=sizes, top_k=top_k
        )
        predictions.extend(triplets_to_prediction(result) for result in results)
    return predictions
