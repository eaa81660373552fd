"""The teacher pass: every image of a dataset labelled by a teacher, resumable and split across processes.

Each split is cut into shards of ``shard_size`` rows, written as
``output_dir/data/{split}-XXXXX-of-YYYYY.parquet`` (the Hub layout) with the dataset's columns plus
:data:`~modeling_clhoi.dataset_schema.TEACHER_COLUMNS`. Process ``k`` of ``n`` labels shards ``k, k+n, ...``
(round robin), so any number of processes label disjoint shards. A shard is written under a temporary
name and renamed when complete, so a killed run leaves only complete shards, which a rerun keeps. When
every shard of a split exists, :func:`finalize_teacher_pass` writes the dataset card that declares the
complete splits, after which ``datasets.load_dataset(output_dir)`` returns them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from tqdm.auto import tqdm

from .dataset_schema import SHARD_NAME, TEACHER_COLUMNS, hoi_features
from .vocabulary import HOIVocabulary

STATE_FILE = "teacher_pass.json"


class Teacher(Protocol):
    """What the teacher pass needs of a teacher (:class:`~modeling_clhoi.teacher.VLLMTeacher`, the synthetic one)."""

    vocabulary: HOIVocabulary

    def label_examples(self, examples: Sequence[dict[str, Any]], candidates: str = "detected") -> list[dict]: ...


def shard_ranges(num_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of the shards of a split (an empty split has one empty shard)."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}.")
    total = max(1, math.ceil(num_rows / shard_size))
    return [(i * shard_size, min((i + 1) * shard_size, num_rows)) for i in range(total)]


def shard_path(output_dir: str | os.PathLike, split: str, index: int, total: int) -> Path:
    return Path(output_dir) / "data" / f"{split}-{index:05d}-of-{total:05d}.parquet"


def finished_shards(output_dir: str | os.PathLike) -> dict[str, dict[int, int]]:
    """The complete shard files under ``output_dir/data``: split -> {shard index: shard count}."""
    found: dict[str, dict[int, int]] = {}
    data = Path(output_dir) / "data"
    for path in data.glob("*.parquet") if data.is_dir() else ():
        match = SHARD_NAME.match(path.name)
        if match:
            found.setdefault(match["split"], {})[int(match["index"])] = int(match["total"])
    return found


def teacher_features(features: datasets.Features) -> datasets.Features:
    """``features`` (a dataset's) with the teacher columns of the clhoi schema, added or replaced."""
    teacher = hoi_features(with_teacher=True)
    merged = {k: v for k, v in features.items() if k not in TEACHER_COLUMNS}
    merged.update({k: teacher[k] for k in TEACHER_COLUMNS})
    return datasets.Features(merged)


def check_state(output_dir: str | os.PathLike, state: dict[str, Any]) -> None:
    """Records the settings of a pass in ``output_dir``; a rerun with other settings is refused.

    Resuming with another teacher, candidate set or shard size would mix incompatible shards.
    """
    path = Path(output_dir) / STATE_FILE
    state = json.loads(json.dumps(state))  # normalized as stored (tuples become lists)
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != state:
            changed = sorted(k for k in set(saved) | set(state) if saved.get(k) != state.get(k))
            raise ValueError(
                f"{output_dir} holds a teacher pass with other settings ({', '.join(changed)}: "
                f"{[saved.get(k) for k in changed]} there, {[state.get(k) for k in changed]} now). "
                "Use another --output_dir or the same settings to resume."
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def run_teacher_pass(
    teacher: Teacher,
    dataset: datasets.DatasetDict,
    output_dir: str | os.PathLike,
    *,
    splits: Iterable[str] | None = None,
    shard_size: int = 256,
    batch_size: int = 8,
    candidates: str = "detected",
    process_index: int = 0,
    num_processes: int = 1,
    progress: bool = True,
) -> list[Path]:
    """Labels this process's missing shards of ``dataset`` and returns the paths it wrote.

    Args:
        teacher: anything with ``label_examples`` (see :class:`Teacher`).
        dataset: the splits to label, in the clhoi schema (e.g. ``datasets.load_dataset(DIR)``).
        output_dir: where the shards go (``output_dir/data``). Finished shards found there are kept.
        splits: the splits to label (default: all of ``dataset``).
        shard_size: rows per shard: the unit of resumption and of work sharing.
        batch_size: rows given to the teacher at once.
        candidates: ``"detected"`` or ``"all"`` (see ``label_examples``).
        process_index, num_processes: this process's rank and the number of processes
            (``Accelerator().process_index`` / ``num_processes``); shard ``i`` belongs to rank ``i % num_processes``.
        progress: show a progress bar (images/s).
    """
    if not 0 <= process_index < num_processes:
        raise ValueError(f"process_index {process_index} is not in [0, {num_processes}).")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if candidates not in ("detected", "all"):
        raise ValueError(f"candidates must be 'detected' or 'all', got {candidates!r}.")
    splits = list(dataset) if splits is None else list(splits)
    missing = [s for s in splits if s not in dataset]
    if missing:
        raise ValueError(f"Splits {missing} are not in the dataset (it has {list(dataset)}).")
    data_dir = Path(output_dir) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    done = finished_shards(output_dir)

    todo: list[tuple[str, int, int, int, int]] = []
    for split in splits:
        ranges = shard_ranges(len(dataset[split]), shard_size)
        totals = set(done.get(split, {}).values())
        if totals - {len(ranges)}:
            raise ValueError(
                f"{data_dir} holds {split} shards of another layout (of {sorted(totals)} shards, not "
                f"{len(ranges)}): rerun with the same --shard_size or another --output_dir."
            )
        for index, (start, stop) in enumerate(ranges):
            if index % num_processes == process_index and index not in done.get(split, {}):
                todo.append((split, index, len(ranges), start, stop))

    written = []
    bar = tqdm(total=sum(stop - start for *_, start, stop in todo), unit="img", disable=not progress,
               desc=f"teacher pass [process {process_index + 1}/{num_processes}]", dynamic_ncols=True)
    with bar:
        for split, index, total, start, stop in todo:
            path = shard_path(output_dir, split, index, total)
            labels = []
            for begin in range(start, stop, batch_size):
                columns = dataset[split][begin:min(begin + batch_size, stop)]
                examples = [dict(zip(columns, values)) for values in zip(*columns.values())]
                labels += teacher.label_examples(examples, candidates=candidates)
                bar.update(len(examples))
            _write_shard(dataset[split], start, stop, labels, path)
            written.append(path)
    return written


def _write_shard(split: datasets.Dataset, start: int, stop: int, labels: list[dict[str, Any]], path: Path) -> None:
    """Writes rows ``[start, stop)`` with their teacher columns, atomically (temporary file, then rename)."""
    features = teacher_features(split.features)
    schema = features.arrow_schema
    table = split.with_format("arrow")[start:stop] if stop > start else schema.empty_table()
    table = table.drop_columns([c for c in TEACHER_COLUMNS if c in table.column_names])
    for column in TEACHER_COLUMNS:
        table = table.append_column(column, pa.array([row[column] for row in labels], type=schema.field(column).type))
    table = table.select(schema.names).cast(schema)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed run; this shard is ours
        stale.unlink()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def finalize_teacher_pass(
    output_dir: str | os.PathLike, features: datasets.Features, description: str | None = None
) -> list[str]:
    """Declares the complete splits of ``output_dir`` in its ``README.md``; returns them.

    Idempotent: run it after every pass (by one process). A split is complete when all its shards exist;
    incomplete splits stay out of the card, so ``load_dataset(output_dir)`` never returns a partial split
    once a card exists.
    """
    complete: dict[str, tuple[int, int]] = {}
    for split, shards in sorted(finished_shards(output_dir).items()):
        total = next(iter(shards.values()))
        if len(shards) == total and set(shards) == set(range(total)):
            files = [pq.ParquetFile(shard_path(output_dir, split, i, total)).metadata for i in range(total)]
            rows = sum(meta.num_rows for meta in files)
            size = sum(meta.row_group(g).total_byte_size for meta in files for g in range(meta.num_row_groups))
            complete[split] = (rows, size)
    if complete:
        metadata = {
            "configs": [{"config_name": "default",
                         "data_files": [{"split": split, "path": f"data/{split}-*"} for split in complete]}],
            "dataset_info": {
                "features": teacher_features(features)._to_yaml_list(),
                "splits": [{"name": split, "num_bytes": size, "num_examples": rows}
                           for split, (rows, size) in complete.items()],
            },
        }
        text = description or "A dataset in the clhoi schema, labelled by a teacher (`scripts/label_with_teacher.py`)."
        readme = Path(output_dir) / "README.md"
        tmp = readme.with_name(f".README.md.tmp-{os.getpid()}")
        tmp.write_text(f"---\n{yaml.safe_dump(metadata, sort_keys=False)}---\n\n{text}\n", encoding="utf-8")
        os.replace(tmp, readme)
    return list(complete)
