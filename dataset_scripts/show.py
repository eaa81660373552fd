"""Draw examples of a clhoi dataset into a PNG grid: boxes, and human-object lines labelled by verb.

    python dataset_scripts/show.py DIR --n 8 [--split train] [--output preview.png] [--detections]

Humans are blue, objects red; each annotated pair gets a line between box centres labelled with its
verbs. ``--detections`` draws the (simulated or cached) detections in grey instead of the annotation
only. Verb and object names come from ``DIR/vocabulary.json`` (HICO-DET when there is none).
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from modeling_clhoi.dataset_schema import load_hoi_dataset, read_vocabulary
from modeling_clhoi.vocabulary import HOIVocabulary

HUMAN, OBJECT, LINE, DETECTION = (40, 90, 255), (235, 40, 40), (255, 230, 0), (160, 160, 160)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir")
    parser.add_argument("--n", type=int, default=8, help="how many images")
    parser.add_argument("--split", default="train")
    parser.add_argument("--output", default=None, help="PNG to write (default DIR/preview_{split}.png)")
    parser.add_argument("--detections", action="store_true", help="also draw the detections")
    parser.add_argument("--tile", type=int, default=320, help="side of each grid cell in pixels")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    return args


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def draw_example(example: Mapping[str, Any], vocabulary: HOIVocabulary, size: int = 320,
                 detections: bool = False) -> Image.Image:
    """One example drawn with its annotation (and detections), scaled to fit ``size`` x ``size``."""
    image = example["image"].convert("RGB")
    scale = size / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)

    def scaled(box: Sequence[float]) -> list[float]:
        return [float(v) * scale for v in box]

    if detections:
        dets = example["detections"]
        for box, label, score in zip(dets["boxes"], dets["labels"], dets["scores"]):
            draw.rectangle(scaled(box), outline=DETECTION)
            draw.text(scaled(box)[:2], f"{vocabulary.objects[label]} {score:.2f}", fill=DETECTION)
    ann = example["annotation"]
    verbs: dict[tuple, list[str]] = defaultdict(list)
    for h, o, verb, obj in zip(ann["boxes_h"], ann["boxes_o"], ann["verb"], ann["object"]):
        verbs[(tuple(h), tuple(o), vocabulary.objects[obj])].append(vocabulary.verbs[verb])
    for (h, o, obj), names in verbs.items():
        draw.rectangle(scaled(h), outline=HUMAN, width=2)
        draw.rectangle(scaled(o), outline=OBJECT, width=2)
        a, b = _centre(scaled(h)), _centre(scaled(o))
        draw.line([a, b], fill=LINE, width=2)
        label = ",".join(n for n in names if n != "no_interaction") or "no_interaction"
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        text = f"{label} {obj}"
        draw.rectangle(draw.textbbox(mid, text), fill=(0, 0, 0))
        draw.text(mid, text, fill=(255, 255, 255))
    draw.text((3, size - 12), str(example.get("image_id", "")), fill=(0, 0, 0))
    return canvas


def make_grid(examples: Sequence[Mapping[str, Any]], vocabulary: HOIVocabulary, tile: int = 320,
              detections: bool = False) -> Image.Image:
    """A grid (about square) of drawn examples."""
    cols = max(1, math.ceil(math.sqrt(len(examples))))
    rows = max(1, math.ceil(len(examples) / cols))
    grid = Image.new("RGB", (cols * tile, rows * tile), (255, 255, 255))
    for k, example in enumerate(examples):
        grid.paste(draw_example(example, vocabulary, tile, detections), ((k % cols) * tile, (k // cols) * tile))
    return grid


def main(argv: Sequence[str] | None = None) -> Path:
    args = parse_args(argv)
    dataset = load_hoi_dataset(args.dataset_dir, split=args.split)
    examples = [dataset[i] for i in range(min(args.n, len(dataset)))]
    grid = make_grid(examples, read_vocabulary(args.dataset_dir), args.tile, args.detections)
    output = Path(args.output) if args.output else Path(args.dataset_dir) / f"preview_{args.split}.png"
    grid.save(output)
    print(f"Wrote {len(examples)} examples to {output}")
    return output


if __name__ == "__main__":
    main()
