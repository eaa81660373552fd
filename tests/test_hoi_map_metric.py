"""The `evaluate` metric module: loads offline from its folder or file, accumulates batches, and
gives the figures of hico_det_map."""

from __future__ import annotations

from pathlib import Path

import evaluate
import numpy as np
import pytest

from modeling_clhoi import HOIVocabulary
from modeling_clhoi.evaluation import hico_det_map

METRIC_DIR = Path(__file__).resolve().parents[1] / "modeling_clhoi" / "evaluation" / "hoi_map"


def jittered(boxes: np.ndarray, rng: np.random.Generator) -> list[list[float]]:
    """Boxes moved by a few pixels, kept valid (x1 <= x2, y1 <= y2)."""
    moved = boxes + rng.normal(0, 5, boxes.shape)
    x = np.sort(moved[:, [0, 2]], axis=1)
    y = np.sort(moved[:, [1, 3]], axis=1)
    return np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1).tolist()


def random_images(vocab: HOIVocabulary, n: int, seed: int):
    """Images with 0-3 ground-truth pairs and 0-4 detections near them (or anywhere when there is none)."""
    rng = np.random.default_rng(seed)
    preds, refs = [], []
    for _ in range(n):
        m = int(rng.integers(0, 4))
        corner = rng.uniform(0, 200, (m, 2, 2))
        h = np.concatenate([corner[:, 0], corner[:, 0] + rng.uniform(20, 80, (m, 2))], axis=1)
        o = np.concatenate([corner[:, 1], corner[:, 1] + rng.uniform(20, 80, (m, 2))], axis=1)
        hoi = rng.integers(0, vocab.num_hois, m)
        refs.append({"boxes_h": h.tolist(), "boxes_o": o.tolist(), "hoi": hoi.tolist(),
                     "object": vocab.hoi_to_object[hoi].tolist()})
        k = int(rng.integers(0, 5))
        if m:
            pick = rng.integers(0, m, k)
            boxes_h, boxes_o, labels = h[pick], o[pick], hoi[pick]
        else:
            boxes_h, boxes_o = np.tile([50.0, 50.0, 100.0, 100.0], (k, 1)), np.tile([0.0, 0.0, 40.0, 40.0], (k, 1))
            labels = rng.integers(0, vocab.num_hois, k)
        preds.append({"boxes_h": jittered(boxes_h, rng), "boxes_o": jittered(boxes_o, rng), "hoi": labels.tolist(),
                      "scores": rng.uniform(0, 1, k).round(1).tolist()})
    return preds, refs


@pytest.fixture(scope="module")
def vocab():
    return HOIVocabulary.from_lists(
        ["ride", "hold", "look_at"], ["person", "bicycle", "cup"],
        [("bicycle", "ride"), ("bicycle", "hold"), ("cup", "hold"), ("cup", "look_at")], rare=[3],
    )


@pytest.mark.parametrize("path", [METRIC_DIR, METRIC_DIR / "hoi_map.py"])
@pytest.mark.parametrize("known_object", [False, True])
def test_metric_accumulates_and_matches_hico_det_map(vocab, path, known_object):
    preds, refs = random_images(vocab, 40, seed=3)
    metric = evaluate.load(str(path))
    for start in range(0, 40, 16):
        metric.add_batch(predictions=preds[start:start + 16], references=refs[start:start + 16])
    result = metric.compute(known_object=known_object, vocabulary=vocab.to_dict())
    expected = hico_det_map(preds, refs, known_object=known_object, vocabulary=vocab)
    assert result["map"] == expected["map"] and result["map_rare"] == expected["map_rare"]
    np.testing.assert_array_equal(np.array(result["ap"], dtype=float), expected["ap"])
    assert 0.0 < result["map"] < 1.0


def test_empty_object_lists_are_derived(vocab):
    preds, refs = random_images(vocab, 10, seed=5)
    without = [{**ref, "object": []} for ref in refs]
    metric = evaluate.load(str(METRIC_DIR))
    result = metric.compute(predictions=preds, references=without, known_object=True, vocabulary=vocab.to_dict())
    assert result["map"] == hico_det_map(preds, refs, known_object=True, vocabulary=vocab)["map"]
