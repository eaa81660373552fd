"""Benchmark: the library's HICO-DET evaluator against the plain-loop port of the official protocol.

On the real test annotations (9,658 images), with predictions drawn from the ground truth and
perturbed (jittered boxes, dropped pairs, duplicates, wrong classes, false positives, tied scores),
both evaluators run in one process, in Default and Known Object mode, on the same inputs given two
ways: per-image Python lists (as read from JSON) and per-image numpy arrays (as a model or a dataset
in numpy format gives them). The script asserts that every per-class AP and recall is identical
(to 1e-12) and prints both timings and the speed ratio.

    python benchmarks/bench_evaluator.py [--annotations PATH] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

# the reference port lives beside this file; the checkout goes first, as in tests/conftest.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_hico_eval import reference_hico_det_map  # noqa: E402

from modeling_clhoi import HOIVocabulary  # noqa: E402
from modeling_clhoi.evaluation import hico_det_map  # noqa: E402

DEFAULT_ANNOTATIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hico_det" / "instances_test2015.json"


def load_references(path: str | Path) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """The per-image annotations and image sizes ``(width, height)`` of a HICO-DET instances file."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data["annotation"], [tuple(size) for size in data["size"]]


def _jitter(box: np.ndarray, rng: np.random.Generator, scale: float) -> list[float]:
    w, h = box[2] - box[0] + 1, box[3] - box[1] + 1
    moved = box + rng.normal(0.0, scale, 4) * np.array([w, h, w, h])
    if rng.random() < 0.5:  # whole pixels make exact overlap ties and IoUs right at thresholds likelier
        moved = np.round(moved)
    x1, x2 = sorted((moved[0], moved[2]))
    y1, y2 = sorted((moved[1], moved[3]))
    return [float(x1), float(y1), float(x2), float(y2)]


def _random_box(rng: np.random.Generator, width: int, height: int) -> list[float]:
    x = np.sort(rng.uniform(0, width, 2))
    y = np.sort(rng.uniform(0, height, 2))
    return [float(x[0]), float(y[0]), float(x[1]), float(y[1])]


def _add(image: dict[str, list], h: list[float], o: list[float], hoi: int, score: float) -> None:
    image["boxes_h"].append(h)
    image["boxes_o"].append(o)
    image["hoi"].append(int(hoi))
    image["scores"].append(score)


def perturbed_predictions(
    references: list[dict[str, Any]],
    sizes: list[tuple[int, int]],
    vocabulary: HOIVocabulary,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Predictions made from the ground truth with every kind of error the protocol must handle.

    Per ground-truth pair: dropped (15%), else 1-3 jittered detections, some with the wrong class
    (of the same object, or any); 10% exact duplicates; scores on a 0.01 grid, so many tie. Per image:
    0-4 false positives at random places; 3% of images get no predictions at all.
    """
    rng = np.random.default_rng(seed)
    hois_of_object = [np.flatnonzero(vocabulary.hoi_to_object == o) for o in range(vocabulary.num_objects)]
    predictions = []
    for ref, (width, height) in zip(references, sizes):
        image: dict[str, list] = {"boxes_h": [], "boxes_o": [], "hoi": [], "scores": []}
        add = partial(_add, image)
        if rng.random() < 0.03:
            predictions.append({"boxes_h": [], "boxes_o": [], "hoi": [], "scores": []})
            continue
        for k, hoi in enumerate(ref["hoi"]):
            if rng.random() < 0.15:
                continue
            gt_h, gt_o = np.asarray(ref["boxes_h"][k], float), np.asarray(ref["boxes_o"][k], float)
            for _ in range(rng.integers(1, 4)):
                label = int(hoi)
                draw = rng.random()
                if draw < 0.1:
                    label = int(rng.choice(hois_of_object[vocabulary.hoi_to_object[hoi]]))
                elif draw < 0.15:
                    label = int(rng.integers(vocabulary.num_hois))
                add(_jitter(gt_h, rng, 0.08), _jitter(gt_o, rng, 0.08), label, round(float(rng.random()), 2))
                if rng.random() < 0.1:  # exact duplicate, same score
                    add(list(image["boxes_h"][-1]), list(image["boxes_o"][-1]), image["hoi"][-1], image["scores"][-1])
        for _ in range(rng.integers(0, 5)):
            add(_random_box(rng, width, height), _random_box(rng, width, height),
                int(rng.integers(vocabulary.num_hois)), round(float(rng.random()), 2))
        predictions.append(image)
    return predictions


def assert_same(fast: dict[str, Any], reference: dict[str, Any], atol: float = 1e-12) -> float:
    """Raise unless APs, recalls and means agree within ``atol``; return the largest AP difference."""
    ap, ref_ap = np.asarray(fast["ap"]), np.asarray(reference["ap"], dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(ap), np.isnan(ref_ap))
    np.testing.assert_allclose(ap, ref_ap, rtol=0, atol=atol)
    np.testing.assert_allclose(fast["recall"], np.asarray(reference["recall"], dtype=np.float64), rtol=0, atol=atol)
    for key in ("map", "map_rare", "map_non_rare"):
        assert abs(fast[key] - reference[key]) <= atol, (key, fast[key], reference[key])
    return float(np.nanmax(np.abs(ap - ref_ap)))


PREDICTION_FIELDS = {"boxes_h": (-1, 4), "boxes_o": (-1, 4), "hoi": (-1,), "scores": (-1,)}
REFERENCE_FIELDS = {"boxes_h": (-1, 4), "boxes_o": (-1, 4), "hoi": (-1,), "object": (-1,)}


def _to_numpy(entry: dict[str, Any], fields: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """One image's fields as numpy arrays (ids int64, the rest float64), as a model or a dataset
    in numpy format gives them."""
    return {
        key: np.asarray(entry[key], dtype=np.int64 if key in ("hoi", "object") else np.float64).reshape(shape)
        for key, shape in fields.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", default=str(DEFAULT_ANNOTATIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the library evaluator (best time kept)")
    args = parser.parse_args()

    vocabulary = HOIVocabulary.hico_det()
    references, sizes = load_references(args.annotations)
    predictions = perturbed_predictions(references, sizes, vocabulary, seed=args.seed)
    n_pred = sum(len(p["hoi"]) for p in predictions)
    n_gt = sum(len(r["hoi"]) for r in references)
    print(f"{len(references)} images, {n_gt} ground-truth pairs, {n_pred} predictions")

    inputs = {
        "lists": (predictions, references),
        "numpy": ([_to_numpy(p, PREDICTION_FIELDS) for p in predictions], [_to_numpy(r, REFERENCE_FIELDS) for r in references]),
    }
    for known_object in (False, True):
        mode = "known object" if known_object else "default"
        for flavor, (preds, refs) in inputs.items():
            start = time.perf_counter()
            reference = reference_hico_det_map(
                preds, refs, vocabulary.num_hois, vocabulary.hoi_to_object, vocabulary.rare, known_object=known_object
            )
            ref_time = time.perf_counter() - start
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fast = hico_det_map(preds, refs, known_object=known_object, vocabulary=vocabulary)
                times.append(time.perf_counter() - start)
            max_diff = assert_same(fast, reference)
            print(
                f"[{mode}, per-image {flavor}] mAP {fast['map']:.6f} rare {fast['map_rare']:.6f} "
                f"non-rare {fast['map_non_rare']:.6f} | max |AP diff| {max_diff:.1e} | reference loop {ref_time:.3f} s, "
                f"library {min(times):.3f} s (best of {args.repeats}) | speed-up {ref_time / min(times):.1f}x"
            )


if __name__ == "__main__":
    main()
