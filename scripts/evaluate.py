"""Evaluate a CL-HOI model on a dataset split with the official HICO-DET protocol.

    python scripts/evaluate.py --model DIR --dataset DIR --split test --output_dir eval/

Runs the model on every image with the dataset's cached detections, then writes to ``--output_dir``:

- ``eval_results.json``: mAP Full / Rare / Non-rare and mean recall in Default and Known Object mode,
  plus the run's settings;
- ``per_class_ap.csv``: per HOI class ``hoi, name, rare, n_gt, ap, recall`` (Default mode; empty AP for
  classes without ground truth);
- ``per_class_ap.png``: per-class AP sorted, rare and non-rare classes marked.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from transformers import AutoModel, AutoProcessor

import modeling_clhoi  # noqa: F401  (registers the Auto* classes)
from modeling_clhoi import HOIVocabulary
from modeling_clhoi.dataset_schema import load_hoi_dataset
from modeling_clhoi.evaluation import hico_det_map
from modeling_clhoi.evaluation.inference import predict_dataset, references_from_dataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="folder of a saved model (with its processor)")
    parser.add_argument("--dataset", required=True, help="dataset folder in the clhoi schema")
    parser.add_argument("--split", default="test")
    parser.add_argument("--output_dir", default=None, help="default: <model>/eval_<split>")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.0, help="minimum triplet score kept")
    parser.add_argument("--top_k", type=int, default=100, help="most triplets per image")
    parser.add_argument("--max_images", type=int, default=None, help="evaluate the first N images only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def _number(value: float) -> float | None:
    """JSON has no NaN: None instead."""
    return None if math.isnan(value) else float(value)


def write_per_class_csv(path: Path, result: dict[str, Any], vocabulary: HOIVocabulary) -> None:
    rare = set(vocabulary.rare)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["hoi", "name", "rare", "n_gt", "ap", "recall"])
        for hoi in range(vocabulary.num_hois):
            ap, recall = result["ap"][hoi], result["recall"][hoi]
            writer.writerow([
                hoi, vocabulary.hoi_name(hoi), int(hoi in rare), int(result["n_gt"][hoi]),
                "" if math.isnan(ap) else f"{ap:.6f}", "" if math.isnan(recall) else f"{recall:.6f}",
            ])


def plot_per_class_ap(path: Path, result: dict[str, Any], vocabulary: HOIVocabulary, title: str) -> None:
    """Bars of per-class AP, sorted descending; rare classes in one colour, non-rare in another."""
    ap = np.asarray(result["ap"])
    classes = np.flatnonzero(~np.isnan(ap))
    classes = classes[np.argsort(-ap[classes], kind="stable")]
    is_rare = np.isin(classes, vocabulary.rare)
    fig, ax = plt.subplots(figsize=(12, 4), dpi=100)
    positions = np.arange(len(classes))
    ax.bar(positions[~is_rare], ap[classes[~is_rare]], width=1.0, color="tab:blue", label="non-rare")
    ax.bar(positions[is_rare], ap[classes[is_rare]], width=1.0, color="tab:orange", label="rare")
    ax.axhline(result["map"], color="black", linestyle="--", linewidth=1, label=f"mAP {100 * result['map']:.2f}")
    ax.set_xlim(-0.5, max(len(classes), 1) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel("HOI classes with ground truth, sorted by AP")
    ax.set_ylabel("AP")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    output_dir = Path(args.output_dir or Path(args.model) / f"eval_{args.split}")
    output_dir.mkdir(parents=True, exist_ok=True)

    model = AutoModel.from_pretrained(args.model).to(args.device)
    processor = AutoProcessor.from_pretrained(args.model)
    dataset = load_hoi_dataset(args.dataset, split=args.split)
    if args.max_images is not None:
        dataset = dataset.select(range(min(args.max_images, len(dataset))))
    vocabulary = model.vocabulary
    logger.info("Evaluating %s on %d images of %s/%s", args.model, len(dataset), args.dataset, args.split)

    predictions = predict_dataset(model, processor, dataset, batch_size=args.batch_size, threshold=args.threshold,
                                  top_k=args.top_k)
    references = references_from_dataset(dataset)
    default = hico_det_map(predictions, references, vocabulary=vocabulary)
    known_object = hico_det_map(predictions, references, vocabulary=vocabulary, known_object=True)

    results: dict[str, Any] = {"model": str(args.model), "dataset": str(args.dataset), "split": args.split,
                               "num_images": len(dataset), "num_predictions": int(sum(len(p["hoi"]) for p in predictions)),
                               "num_classes_with_gt": int(np.count_nonzero(default["n_gt"])),
                               "threshold": args.threshold, "top_k": args.top_k}
    for mode, result in (("default", default), ("known_object", known_object)):
        recall = result["recall"][~np.isnan(result["recall"])]
        results[mode] = {
            "map": _number(result["map"]), "map_rare": _number(result["map_rare"]),
            "map_non_rare": _number(result["map_non_rare"]),
            "mean_recall": _number(float(recall.mean())) if recall.size else None,
        }
    with open(output_dir / "eval_results.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    write_per_class_csv(output_dir / "per_class_ap.csv", default, vocabulary)
    plot_per_class_ap(output_dir / "per_class_ap.png", default, vocabulary,
                      title=f"{Path(args.model).name} on {Path(args.dataset).name}/{args.split} (Default)")
    logger.info("Default: mAP %.4f | rare %.4f | non-rare %.4f; results in %s", default["map"], default["map_rare"],
                default["map_non_rare"], output_dir)
    return results


if __name__ == "__main__":
    main()
