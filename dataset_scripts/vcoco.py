"""Convert V-COCO into the clhoi schema (a Hugging Face dataset as Parquet in the Hub layout).

    python dataset_scripts/vcoco.py --annotations vcoco_train.json vcoco_val.json vcoco_test.json \
        --coco_annotations instances_vcoco_all_2014.json --image_root PATH/coco/images \
        --output_dir data/vcoco [--detections DIR]

``--annotations`` are V-COCO's files in s-gupta/v-coco's format: a list with one entry per action,
``{"action_name", "role_name": ["agent", "obj", ...], "image_id": [N], "ann_id": [N], "label": [N],
"role_object_id": [N * len(role_name)]}`` (role-major: entries ``r * N + i`` hold the COCO annotation id of role
``r`` of row ``i``, 0 when the role has no object). Files named ``*train*`` and ``*val*`` go to the
``train`` split (the usual trainval), ``*test*`` to ``test``. ``--coco_annotations`` is the COCO instances file
that holds their images and boxes (``instances_vcoco_all_2014.json``). Images are looked up as
``image_root/file_name``, then under ``image_root/train2014`` or ``image_root/val2014``.

Labels use :meth:`HOIVocabulary.vcoco`: the 24 evaluated role-specific actions (``hold_obj``, ``cut_instr``...)
with HICO-DET's object ids (COCO categories mapped by name). Each positive (agent, role object) makes one
annotation row; roles without an object and actions outside the 24 are left out and counted in the report.
Boxes are absolute ``[x, y, x + w, y + h]`` from COCO's ``[x, y, w, h]``.

Without ``--detections`` (same per-image JSON format as for HICO-DET, named after the image file), every
non-crowd COCO box of the image is a detection with score 1.0. Missing or corrupt images are skipped,
counted and listed in ``output_dir/conversion_report.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
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

# COCO/VOC spellings that differ from HICO-DET's object names beyond spaces vs underscores.
_ALIASES = {"tvmonitor": "tv", "motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
            "diningtable": "dining_table", "pottedplant": "potted_plant"}

CARD = """# V-COCO (clhoi schema)

V-COCO converted by `dataset_scripts/vcoco.py`: the 24 evaluated role-specific actions with HICO-DET's
80 object ids (vocabulary in `vocabulary.json`). `annotation` holds the instance-level truth (evaluation only).
Detections: {detections}. See `conversion_report.json` for skipped images and roles.
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", nargs="+", required=True, help="vcoco_{train,val,test}.json")
    parser.add_argument("--coco_annotations", required=True, help="instances_vcoco_all_2014.json")
    parser.add_argument("--image_root", required=True, help="folder with the COCO 2014 images")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--detections", default=None, help="folder of per-image detection JSON files")
    parser.add_argument("--max_shard_size", default="500MB")
    return parser.parse_args(argv)


def split_of(path: Path) -> str:
    name = path.name.lower()
    if "test" in name:
        return "test"
    if "train" in name or "val" in name:
        return "train"
    raise ValueError(f"Cannot tell the split of {path}: its name contains none of 'train', 'val', 'test'.")


def coco_to_vocabulary(categories: list[dict[str, Any]], vocabulary: HOIVocabulary) -> dict[int, int]:
    """COCO category id -> the vocabulary's object id, matched by name."""
    mapping, unknown = {}, []
    for category in categories:
        name = category["name"].strip().lower()
        name = _ALIASES.get(name.replace(" ", ""), name).replace(" ", "_")
        if name in vocabulary.objects:
            mapping[int(category["id"])] = vocabulary.objects.index(name)
        else:
            unknown.append(category["name"])
    if unknown:
        raise ValueError(f"COCO categories without a HICO-DET object of the same name: {unknown}")
    return mapping


def xyxy(bbox: Sequence[float]) -> list[float]:
    x, y, w, h = (float(v) for v in bbox)
    return [x, y, x + w, y + h]


def vcoco_pairs(actions: list[dict[str, Any]], vocabulary: HOIVocabulary,
                report: dict[str, Any]) -> tuple[dict[int, list[tuple[int, int, int]]], list[int]]:
    """Per image id the positive (agent ann id, object ann id, verb id) triples, and the images in order."""
    pairs: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    images: dict[int, None] = {}
    for action in actions:
        roles = action["role_name"]
        n = len(action["image_id"])
        role_ids = action["role_object_id"]
        if len(role_ids) != n * len(roles) or len(action["label"]) != n or len(action["ann_id"]) != n:
            raise ValueError(f"Action {action['action_name']!r}: inconsistent lengths of its fields")
        for i, image_id in enumerate(action["image_id"]):
            images.setdefault(int(image_id), None)
            if int(action["label"][i]) != 1:
                continue
            for r, role in enumerate(roles[1:], start=1):
                verb = f"{action['action_name']}_{role}"
                if verb not in vocabulary.verbs:
                    report["roles_not_evaluated"] += 1
                    continue
                obj = int(role_ids[r * n + i])
                if obj == 0:
                    report["roles_without_object"] += 1
                    continue
                pairs[int(image_id)].append((int(action["ann_id"][i]), obj, vocabulary.verbs.index(verb)))
    return pairs, list(images)


def find_image(root: Path, file_name: str) -> Path:
    for folder in (root, root / "train2014", root / "val2014"):
        if (folder / file_name).is_file():
            return folder / file_name
    return root / file_name


def convert_split(action_files: list[Path], coco: dict[str, Any], image_root: Path, detections: Path | None,
                  vocabulary: HOIVocabulary, report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yields the schema rows of the V-COCO files of one split, filling ``report``."""
    category = coco_to_vocabulary(coco["categories"], vocabulary)
    anns = {int(a["id"]): a for a in coco["annotations"]}
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in coco["annotations"]:
        by_image[int(a["image_id"])].append(a)
    infos = {int(im["id"]): im for im in coco["images"]}
    pairs: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    order: list[int] = []
    for path in action_files:
        with open(path, encoding="utf-8") as f:
            file_pairs, file_images = vcoco_pairs(json.load(f), vocabulary, report)
        for image_id in file_images:
            if image_id not in pairs:
                order.append(image_id)
            pairs[image_id].extend(file_pairs.get(image_id, []))
    report["images"] = len(order)
    for image_id in tqdm(order, desc="vcoco"):
        info = infos.get(image_id)
        if info is None:
            report["missing_in_coco"].append(image_id)
            continue
        try:
            image, width, height = read_image_file(find_image(image_root, info["file_name"]))
        except FileNotFoundError:
            report["missing"].append(info["file_name"])
            continue
        except (OSError, ValueError) as error:
            logger.warning("Skipping corrupt image %s", error)
            report["corrupt"].append(info["file_name"])
            continue
        annotation: dict[str, list] = {"boxes_h": [], "boxes_o": [], "hoi": [], "object": [], "verb": []}
        for agent, obj, verb in sorted(set(pairs[image_id])):
            if agent not in anns or obj not in anns:
                report["unknown_annotation_ids"] += 1
                continue
            obj_id = category[int(anns[obj]["category_id"])]
            annotation["boxes_h"].append(xyxy(anns[agent]["bbox"]))
            annotation["boxes_o"].append(xyxy(anns[obj]["bbox"]))
            annotation["hoi"].append(vocabulary.hoi_id(verb, obj_id))
            annotation["object"].append(obj_id)
            annotation["verb"].append(verb)
        if detections is None:
            kept = [a for a in by_image[image_id] if not a.get("iscrowd", 0)]
            dets = {"boxes": [xyxy(a["bbox"]) for a in kept], "labels": [category[int(a["category_id"])] for a in kept],
                    "scores": [1.0] * len(kept)}
        else:
            dets = cached_detections(detections / (Path(info["file_name"]).stem + ".json"), info["file_name"],
                                     report, vocabulary.num_objects)
        report["written"] += 1
        yield {"image": {"bytes": image, "path": None}, "image_id": str(image_id), "width": width,
               "height": height, "detections": dets, "annotation": annotation}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    image_root = Path(args.image_root)
    if not image_root.is_dir():
        raise FileNotFoundError(f"--image_root {image_root} is not a folder")
    detections = detections_folder(args.detections, "the COCO ground-truth boxes")
    files: dict[str, list[Path]] = defaultdict(list)
    for name in args.annotations:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"V-COCO annotation file {path} not found")
        files[split_of(path)].append(path)
    with open(args.coco_annotations, encoding="utf-8") as f:
        coco = json.load(f)
    vocabulary = HOIVocabulary.vcoco()
    report: dict[str, Any] = {"detections": str(detections) if detections else "ground truth", "splits": {}}
    splits = {}
    for split, paths in files.items():
        split_report = {"annotation_files": [str(p) for p in paths], "images": 0, "written": 0, "missing": [],
                        "corrupt": [], "missing_in_coco": [], "missing_detections": [], "roles_without_object": 0,
                        "roles_not_evaluated": 0, "unknown_annotation_ids": 0}
        report["splits"][split] = split_report
        splits[split] = convert_split(paths, coco, image_root, detections, vocabulary, split_report)
    write_converted_dataset(splits, args.output_dir, vocabulary, report, CARD.format(detections=report["detections"]),
                            "V-COCO", args.max_shard_size)
    return report


if __name__ == "__main__":
    main()
