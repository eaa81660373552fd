"""Convert HICO-DET into the clhoi schema (a Hugging Face dataset as Parquet in the Hub layout).

    python dataset_scripts/hico_det.py --root PATH/hico_20160224_det \
        --annotations instances_train2015.json instances_test2015.json \
        --output_dir data/hico_det [--detections DIR]

``--annotations`` are the per-image annotation files of UPT / pocket (keys ``annotation``, ``filenames``,
``size``, ``objects``, ``verbs``, ``correspondence``, ...); the split of each file is read from its name
("train" or "test"); a relative path is looked up as given, then under ``--root``. Images are read from
``root/images/train2015`` and ``root/images/test2015``. Boxes are kept as in the annotation files.

``--detections DIR`` holds cached detections, one JSON per image named after it (``HICO_test2015_00000001.json``)
directly in DIR or in ``DIR/train2015`` / ``DIR/test2015``, in UPT's format ``{"boxes": [[x1, y1, x2, y2], ...],
"labels": [...], "scores": [...]}`` (absolute pixels; labels are HICO-DET object ids, person = 49). Without it,
the ground-truth boxes serve as detections (each distinct human and object box once, score 1.0).

Every image is checked: missing or corrupt files are skipped, counted and listed in
``output_dir/conversion_report.json``; the conversion never stops half-way because of one file.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from modeling_clhoi.dataset_schema import (
    cached_detections,
    detections_folder,
    read_image_file,
    write_converted_dataset,
)
from modeling_clhoi.vocabulary import HOIVocabulary

logger = logging.getLogger(__name__)

CARD = """# HICO-DET (clhoi schema)

HICO-DET converted by `dataset_scripts/hico_det.py`: 600 HOI classes (117 verbs x 80 objects) with the
official ids. `annotation` holds the instance-level truth (evaluation only). Detections: {detections}.
See `conversion_report.json` for skipped images.
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the hico_20160224_det folder (with images/)")
    parser.add_argument("--annotations", nargs="+", required=True, help="instances_{train,test}2015.json")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--detections", default=None, help="folder of per-image detection JSON files")
    parser.add_argument("--max_shard_size", default="500MB")
    return parser.parse_args(argv)


def split_of(path: Path) -> str:
    """``train`` or ``test``, from an annotation file's name."""
    name = path.name.lower()
    for split in ("train", "test"):
        if split in name:
            return split
    raise ValueError(f"Cannot tell the split of {path}: its name contains neither 'train' nor 'test'.")


def resolve(path: str, root: Path) -> Path:
    candidate = Path(path)
    if candidate.is_file() or candidate.is_absolute():
        return candidate
    return root / candidate


def ground_truth_detections(annotation: dict[str, list], person_id: int) -> dict[str, list]:
    """Each distinct human box and (object box, category) of an annotation once, with score 1.0."""
    boxes, labels = [], []
    seen = set()
    for box in annotation["boxes_h"]:
        key = (person_id, *map(float, box))
        if key not in seen:
            seen.add(key)
            boxes.append([float(v) for v in box])
            labels.append(person_id)
    for box, obj in zip(annotation["boxes_o"], annotation["object"]):
        key = (int(obj), *map(float, box))
        if key not in seen:
            seen.add(key)
            boxes.append([float(v) for v in box])
            labels.append(int(obj))
    return {"boxes": boxes, "labels": labels, "scores": [1.0] * len(boxes)}


def find_detections(directory: Path, filename: str, split: str) -> Path | None:
    stem = Path(filename).stem + ".json"
    for candidate in (directory / stem, directory / f"{split}2015" / stem):
        if candidate.is_file():
            return candidate
    return None


def convert_split(data: dict[str, Any], split: str, root: Path, detections: Path | None,
                  vocabulary: HOIVocabulary, report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yields the schema rows of one annotation file, filling ``report`` with what was skipped."""
    image_dir = root / "images" / f"{split}2015"
    for i, (filename, annotation) in enumerate(tqdm(list(zip(data["filenames"], data["annotation"])),
                                                    desc=f"hico_det {split}")):
        path = image_dir / filename
        try:
            image, width, height = read_image_file(path)
        except FileNotFoundError:
            report["missing"].append(filename)
            continue
        except (OSError, ValueError) as error:
            logger.warning("Skipping corrupt image %s", error)
            report["corrupt"].append(filename)
            continue
        size = data.get("size")
        if size is not None and list(size[i]) != [width, height]:
            report["size_mismatch"].append(filename)
        annotation = {key: list(annotation.get(key, [])) for key in ("boxes_h", "boxes_o", "hoi", "object", "verb")}
        if not annotation["hoi"]:
            report["empty_annotation"] += 1
        if detections is None:
            dets = ground_truth_detections(annotation, vocabulary.person_id)
        else:
            dets = cached_detections(find_detections(detections, filename, split), filename, report,
                                     vocabulary.num_objects)
        report["written"] += 1
        yield {"image": {"bytes": image, "path": None}, "image_id": Path(filename).stem, "width": width,
               "height": height, "detections": dets, "annotation": annotation}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = Path(args.root)
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a folder")
    detections = detections_folder(args.detections, "the ground-truth boxes")
    vocabulary = HOIVocabulary.hico_det()
    files: dict[str, Path] = {}
    for name in args.annotations:
        path = resolve(name, root)
        split = split_of(path)
        if split in files:
            raise ValueError(f"Two annotation files for split {split!r}: {files[split]} and {path}")
        if not path.is_file():
            raise FileNotFoundError(f"Annotation file {path} not found")
        files[split] = path
    report: dict[str, Any] = {"detections": str(detections) if detections else "ground truth", "splits": {}}
    splits = {}
    for split, path in files.items():
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if len(data["filenames"]) != len(data["annotation"]):
            raise ValueError(f"{path}: {len(data['filenames'])} filenames but {len(data['annotation'])} annotations")
        split_report = {"annotation_file": str(path), "images": len(data["filenames"]), "written": 0,
                        "missing": [], "corrupt": [], "size_mismatch": [], "empty_annotation": 0,
                        "missing_detections": []}
        report["splits"][split] = split_report
        splits[split] = convert_split(data, split, root, detections, vocabulary, split_report)
    write_converted_dataset(splits, args.output_dir, vocabulary, report, CARD.format(detections=report["detections"]),
                            "HICO-DET", args.max_shard_size)
    return report


if __name__ == "__main__":
    main()
