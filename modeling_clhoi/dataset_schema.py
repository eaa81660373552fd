"""The one dataset schema of clhoi, and writing it as Parquet in the Hugging Face Hub layout.

Every dataset of the project (the synthetic world, HICO-DET, V-COCO, and any of them after the teacher
pass) has the columns of :func:`hoi_features`:

- ``image`` (:class:`datasets.Image`), ``image_id`` (string), ``width`` and ``height`` (int32);
- ``detections``: ``{"boxes": [[x1, y1, x2, y2], ...], "labels": [...], "scores": [...]}``, boxes in
  absolute pixels, labels the vocabulary's object ids (person included);
- ``annotation``: the instance-level truth ``{"boxes_h", "boxes_o", "hoi", "object", "verb"}``, one row per
  (human, object, verb). It is for evaluation only, never a training signal for distillation;
- after the teacher pass: ``teacher_context`` (string), ``teacher_candidates`` (HOI ids) and
  ``teacher_scores`` (P(yes) per candidate).

:func:`save_hub_parquet` writes splits as ``DIR/data/{split}-00000-of-0000N.parquet`` with a ``README.md``
dataset card whose YAML lists the configs and features, so ``datasets.load_dataset(DIR)`` returns them
(``image`` decoded as PIL) and the folder can be uploaded to the Hub as it is.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from datasets.utils.py_utils import convert_file_size_to_int
from PIL import Image

from .vocabulary import HOIVocabulary

logger = logging.getLogger(__name__)

TEACHER_COLUMNS = ("teacher_context", "teacher_candidates", "teacher_scores")
# The file with the vocabulary of a dataset's ids, written next to ``data/`` by the dataset scripts.
VOCABULARY_FILE = "vocabulary.json"


def _boxes() -> datasets.List:
    return datasets.List(datasets.List(datasets.Value("float32"), length=4))


def hoi_features(with_teacher: bool = False) -> datasets.Features:
    """The :class:`datasets.Features` of the clhoi schema; ``with_teacher`` adds :data:`TEACHER_COLUMNS`."""
    features = {
        "image": datasets.Image(),
        "image_id": datasets.Value("string"),
        "width": datasets.Value("int32"),
        "height": datasets.Value("int32"),
        "detections": {
            "boxes": _boxes(),
            "labels": datasets.List(datasets.Value("int64")),
            "scores": datasets.List(datasets.Value("float32")),
        },
        "annotation": {
            "boxes_h": _boxes(),
            "boxes_o": _boxes(),
            "hoi": datasets.List(datasets.Value("int64")),
            "object": datasets.List(datasets.Value("int64")),
            "verb": datasets.List(datasets.Value("int64")),
        },
    }
    if with_teacher:
        features["teacher_context"] = datasets.Value("string")
        features["teacher_candidates"] = datasets.List(datasets.Value("int64"))
        features["teacher_scores"] = datasets.List(datasets.Value("float32"))
    return datasets.Features(features)


def candidate_hois(detection_labels: Iterable[int], vocabulary: HOIVocabulary) -> list[int]:
    """The candidate HOIs of an image: every HOI whose object category is among its detections (sorted)."""
    return vocabulary.hois_for_objects({int(label) for label in detection_labels})


def empty_annotation() -> dict[str, list]:
    """An ``annotation`` value without any pair."""
    return {"boxes_h": [], "boxes_o": [], "hoi": [], "object": [], "verb": []}


class _SplitWriter:
    """Streams encoded rows of one split into Parquet shards of at most ``max_shard_bytes`` (estimated)."""

    def __init__(self, directory: Path, split: str, features: datasets.Features, max_shard_bytes: int,
                 rows_per_group: int) -> None:
        self.directory, self.split, self.features = directory, split, features
        self.schema = features.arrow_schema
        self.max_shard_bytes, self.rows_per_group = max_shard_bytes, rows_per_group
        self.paths: list[Path] = []
        self.num_rows = 0
        self._rows: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._shard_bytes = 0
        self.num_bytes = 0

    def add_table(self, table: pa.Table) -> None:
        table = table.select(list(self.schema.names)).cast(self.schema)
        if self._writer is not None and self._shard_bytes + table.nbytes > self.max_shard_bytes:
            self._writer.close()
            self._writer = None
        if self._writer is None:
            path = self.directory / f".{self.split}-{len(self.paths):05d}.parquet.tmp"
            self.paths.append(path)
            self._writer = pq.ParquetWriter(path, self.schema)
            self._shard_bytes = 0
        self._writer.write_table(table, row_group_size=self.rows_per_group)
        self._shard_bytes += table.nbytes
        self.num_bytes += table.nbytes
        self.num_rows += table.num_rows

    def add(self, example: Mapping[str, Any]) -> None:
        self._rows.append(self.features.encode_example(dict(example)))
        if len(self._rows) >= self.rows_per_group:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.add_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def close(self) -> list[Path]:
        """Flushes, closes and renames the shards to ``{split}-XXXXX-of-YYYYY.parquet``."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
        if not self.paths:  # an empty split still gets one (empty) shard
            path = self.directory / f".{self.split}-00000.parquet.tmp"
            pq.write_table(self.schema.empty_table(), path)
            self.paths.append(path)
        total = len(self.paths)
        final = []
        for i, path in enumerate(self.paths):
            target = self.directory / f"{self.split}-{i:05d}-of-{total:05d}.parquet"
            os.replace(path, target)
            final.append(target)
        return final


def _dataset_card(features: datasets.Features, splits: Mapping[str, tuple[int, int]], description: str,
                  pretty_name: str | None) -> str:
    metadata: dict[str, Any] = {}
    if pretty_name:
        metadata["pretty_name"] = pretty_name
    metadata["configs"] = [{
        "config_name": "default",
        "data_files": [{"split": split, "path": f"data/{split}-*"} for split in splits],
    }]
    metadata["dataset_info"] = {
        "features": features._to_yaml_list(),
        "splits": [{"name": split, "num_bytes": int(nbytes), "num_examples": int(n)}
                   for split, (n, nbytes) in splits.items()],
    }
    header = yaml.safe_dump(metadata, sort_keys=False)
    return f"---\n{header}---\n\n{description.strip()}\n"


def save_hub_parquet(
    splits: datasets.DatasetDict | Mapping[str, datasets.Dataset | Iterable[Mapping[str, Any]]],
    output_dir: str | os.PathLike,
    features: datasets.Features | None = None,
    max_shard_size: int | str = "500MB",
    description: str = "A dataset in the clhoi schema.",
    pretty_name: str | None = None,
    rows_per_group: int = 100,
) -> dict[str, list[Path]]:
    """Writes splits as Parquet in the Hub layout: ``output_dir/data/{split}-XXXXX-of-YYYYY.parquet``.

    Args:
        splits: a :class:`datasets.DatasetDict`, or a mapping from split name to a :class:`datasets.Dataset`
            or to an iterable of example dicts (streamed: rows are encoded and written as they come, so a
            generator over a large dataset never has to fit in memory).
        output_dir: the dataset folder; it gets ``data/`` and a ``README.md`` dataset card whose YAML
            declares the configs and features. Existing shards of the written splits are replaced.
        features: the features of the rows; required for iterables, defaults to the dataset's own.
        max_shard_size: the largest shard (bytes, or a string such as ``"500MB"``), estimated from the
            Arrow size of the rows.
        description: the body of the dataset card.
        pretty_name: the card's ``pretty_name``.
        rows_per_group: Parquet row-group size (and rows encoded per batch for iterables).

    Returns:
        The shard paths of each split.
    """
    if not splits:
        raise ValueError("save_hub_parquet needs at least one split.")
    output_dir = Path(output_dir)
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    max_bytes = convert_file_size_to_int(max_shard_size)
    if max_bytes <= 0:
        raise ValueError(f"max_shard_size must be positive, got {max_shard_size!r}")
    written: dict[str, list[Path]] = {}
    counts: dict[str, tuple[int, int]] = {}
    card_features = features
    for split, rows in splits.items():
        if not split.replace("_", "").isalnum():
            raise ValueError(f"Split names must be alphanumeric (with '_'), got {split!r}")
        split_features = features
        if isinstance(rows, datasets.Dataset):
            split_features = features or rows.features
        elif split_features is None:
            raise ValueError(f"Split {split!r} is an iterable of examples: pass `features=`.")
        if card_features is None:
            card_features = split_features
        for old in data_dir.glob(f"{split}-*.parquet"):
            old.unlink()
        writer = _SplitWriter(data_dir, split, split_features, max_bytes, rows_per_group)
        if isinstance(rows, datasets.Dataset):
            table = rows.with_format("arrow")
            for start in range(0, len(rows), rows_per_group):
                writer.add_table(table[start:start + rows_per_group])
        else:
            for example in rows:
                writer.add(example)
        written[split] = writer.close()
        counts[split] = (writer.num_rows, writer.num_bytes)
    card = _dataset_card(card_features, counts, description, pretty_name)
    (output_dir / "README.md").write_text(card, encoding="utf-8")
    return written


SHARD_NAME = re.compile(r"^(?P<split>\w+?)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")


def load_hoi_dataset(dataset_dir: str | os.PathLike, split: str | None = None) -> datasets.DatasetDict | datasets.Dataset:
    """The splits of a Hub-layout Parquet folder (``DIR/data/{split}-XXXXX-of-YYYYY.parquet``), by file.

    ``datasets.load_dataset(DIR)`` keys its cache by the folder's name and dataset card only, so two
    folders with the same name and card (or one folder whose shards were rewritten) can return stale
    cached rows. Naming the files keys the cache by their paths and modification times. Folders without
    such shards (e.g. a Hub id) fall back to ``datasets.load_dataset(DIR)``.

    Args:
        dataset_dir: the dataset folder (or a Hub id).
        split: one split to return as a :class:`datasets.Dataset`; all splits when ``None``.
    """
    files: dict[str, list[str]] = {}
    data = Path(dataset_dir) / "data"
    for path in sorted(data.glob("*.parquet")) if data.is_dir() else ():
        match = SHARD_NAME.match(path.name)
        if match:
            files.setdefault(match["split"], []).append(str(path.resolve()))
    if not files:
        return datasets.load_dataset(str(dataset_dir), split=split)
    if split is not None and split not in files:
        raise ValueError(f"{dataset_dir} has no split {split!r}; it has {sorted(files)}.")
    return datasets.load_dataset("parquet", data_files=files, split=split)


def detections_folder(value: str | os.PathLike | None, fallback: str) -> Path | None:
    """A converter's ``--detections`` folder, checked; ``None`` (and a log line saying ``fallback``) without it."""
    if not value:
        logger.info("No --detections given: using %s as detections (score 1.0).", fallback)
        return None
    folder = Path(value)
    if not folder.is_dir():
        raise FileNotFoundError(f"--detections {folder} is not a folder")
    return folder


def write_converted_dataset(
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    output_dir: str | os.PathLike,
    vocabulary: HOIVocabulary,
    report: dict[str, Any],
    description: str,
    pretty_name: str,
    max_shard_size: int | str = "500MB",
) -> None:
    """The last step of a converter: the Parquet splits, ``vocabulary.json`` and ``conversion_report.json``
    (filled in while the split iterables ran), and one log line per split."""
    save_hub_parquet(splits, output_dir, features=hoi_features(), max_shard_size=max_shard_size,
                     description=description, pretty_name=pretty_name)
    write_vocabulary(vocabulary, output_dir)
    write_report(report, Path(output_dir) / "conversion_report.json")
    for split, r in report["splits"].items():
        logger.info("%s: %d of %d images written; %d missing, %d corrupt (see conversion_report.json)", split,
                    r["written"], r["images"], len(r["missing"]), len(r["corrupt"]))


def write_vocabulary(vocabulary: HOIVocabulary, output_dir: str | os.PathLike) -> Path:
    """Saves the vocabulary whose ids a dataset uses as ``output_dir/vocabulary.json``."""
    path = Path(output_dir) / VOCABULARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    vocabulary.save_json(path)
    return path


def read_vocabulary(dataset_dir: str | os.PathLike) -> HOIVocabulary:
    """The vocabulary of a dataset folder (``vocabulary.json``), HICO-DET's when the folder has none."""
    path = Path(dataset_dir) / VOCABULARY_FILE
    return HOIVocabulary.from_json(path) if path.is_file() else HOIVocabulary.hico_det()


def read_pretty_name(dataset_dir: str | os.PathLike) -> str | None:
    """The ``pretty_name`` of a dataset folder's card (``README.md`` YAML header), if it has one."""
    card = Path(dataset_dir) / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        return None
    header = yaml.safe_load(text[4:text.index("\n---", 4)]) or {}
    name = header.get("pretty_name") if isinstance(header, dict) else None
    return str(name) if name else None


def write_report(report: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Writes a JSON conversion report."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


def read_image_file(path: str | os.PathLike) -> tuple[bytes, int, int]:
    """The bytes, width and height of an image file, fully decoded once to check it.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it cannot be decoded (corrupt or truncated).
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
    except Exception as error:  # PIL raises many types for bad files
        raise ValueError(f"{path}: not a readable image ({error})") from error
    return data, width, height


def cached_detections(
    path: str | os.PathLike | None, image_name: str, report: dict[str, Any], num_objects: int
) -> dict[str, list]:
    """A converter's detections of one image from its cached file (see :func:`read_detections_file`), or
    none when ``path`` is missing; the image is then listed in ``report["missing_detections"]``."""
    if path is None or not Path(path).is_file():
        report["missing_detections"].append(image_name)
        return {"boxes": [], "labels": [], "scores": []}
    return read_detections_file(path, num_objects)


def read_detections_file(path: str | os.PathLike, num_objects: int) -> dict[str, list]:
    """Cached detections of one image, in UPT's per-image JSON format.

    The file holds ``{"boxes": [[x1, y1, x2, y2], ...], "labels": [...], "scores": [...]}``: absolute pixel
    boxes, labels as the vocabulary's object ids (HICO-DET's 80 classes, person = 49), scores in [0, 1].
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    missing = {"boxes", "labels", "scores"} - set(data)
    if missing:
        raise ValueError(f"{path}: detections need 'boxes', 'labels' and 'scores'; missing {sorted(missing)}")
    boxes, labels, scores = data["boxes"], data["labels"], data["scores"]
    if not len(boxes) == len(labels) == len(scores):
        raise ValueError(f"{path}: {len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores")
    if any(len(b) != 4 for b in boxes):
        raise ValueError(f"{path}: every box needs 4 coordinates")
    if any(not 0 <= int(label) < num_objects for label in labels):
        raise ValueError(f"{path}: labels must be object ids in [0, {num_objects})")
    return {"boxes": [[float(v) for v in b] for b in boxes], "labels": [int(label) for label in labels],
            "scores": [float(s) for s in scores]}
