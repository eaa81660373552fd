"""Detect human-object interactions in images; write them as JSON and draw them as PNGs.

    python scripts/predict.py photo1.jpg photo2.png --model path/or/hub-id --output_dir out/ \
        [--detections detections.json] [--threshold 0.1] [--top_k 100] [--vocabulary vocab.json]

Writes ``out/predictions.json`` (``{image: [prediction, ...]}``, each prediction as the ``hoi-detection``
pipeline gives it) and one ``out/<image name>.png`` per image with the interactions drawn.

``--detections`` is needed for models without a detector: a JSON file holding either a list with one
``{"boxes": [[x1, y1, x2, y2], ...], "labels": [...], "scores": [...]}`` per image (same order as the
images), or a dict from image path (as given on the command line) or file name to that dict. Boxes are
absolute pixels; labels are object names or vocabulary ids.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import pipeline
from transformers.image_utils import load_image

from modeling_clhoi.pipeline_clhoi import TASK  # importing it registers the "hoi-detection" pipeline
from modeling_clhoi.visualize import visualize


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="image paths or http(s) URLs")
    parser.add_argument("--model", required=True, help="a saved CL-HOI model folder or Hub repo id")
    parser.add_argument("--output_dir", required=True, help="where predictions.json and the drawings go")
    parser.add_argument("--detections", default=None, help="JSON file of detections (see the module docstring)")
    parser.add_argument("--threshold", type=float, default=0.1, help="minimum interaction score")
    parser.add_argument("--top_k", type=int, default=100, help="most interactions per image")
    parser.add_argument("--vocabulary", default=None,
                        help="HOI vocabulary JSON (HOIVocabulary.save_json) for open-vocabulary use")
    parser.add_argument("--draw_top_k", type=int, default=20, help="most interactions drawn per image")
    parser.add_argument("--batch_size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--device", default=None, help='e.g. "cpu" or "cuda:0"; default: the first GPU if any')
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="run the model folder's own code (for Hub models, without this package's version)")
    return parser.parse_args(argv)


def read_detections(path: str | Path, images: Sequence[str]) -> list[dict[str, Any]]:
    """The detections of each image from a JSON list (image order) or dict (image path or file name -> dict)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, list):
        if len(data) != len(images):
            raise ValueError(f"{path} holds {len(data)} detection entries for {len(images)} images.")
        return data
    if isinstance(data, dict):
        missing = [image for image in images if image not in data and Path(image).name not in data]
        if missing:
            raise ValueError(f"{path} has no detections for {missing}")
        return [data[image] if image in data else data[Path(image).name] for image in images]
    raise ValueError(f"{path} must hold a list or a dict of detections, got {type(data).__name__}")


def output_names(images: Sequence[str]) -> list[str]:
    """A distinct PNG file name per image, from its file name (``photo.jpg`` -> ``photo.png``)."""
    names, seen = [], set()
    for i, image in enumerate(images):
        stem = Path(image.split("?")[0]).stem or f"image_{i}"
        name = f"{stem}.png" if stem not in seen else f"{stem}_{i}.png"
        seen.add(stem)
        names.append(name)
    return names


def main(argv: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    detections = read_detections(args.detections, args.images) if args.detections else None

    detector = pipeline(TASK if not args.trust_remote_code else None, model=args.model,
                        device=args.device, trust_remote_code=args.trust_remote_code)
    call_kwargs: dict[str, Any] = {"threshold": args.threshold, "top_k": args.top_k, "batch_size": args.batch_size}
    if args.vocabulary:
        call_kwargs["vocabulary"] = args.vocabulary
    images = [load_image(image) for image in tqdm(args.images, desc="Loading images")]
    predictions = detector(images, detections=detections, **call_kwargs)

    results = {}
    for name, image, image_predictions, png in tqdm(
        list(zip(args.images, images, predictions, output_names(args.images))), desc="Drawing"
    ):
        visualize(image, image_predictions, top_k=args.draw_top_k).save(output_dir / png)
        results[name] = image_predictions
    with open(output_dir / "predictions.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    print(f"{sum(len(p) for p in results.values())} interactions in {len(results)} images -> {output_dir}")
    return results


if __name__ == "__main__":
    main()
