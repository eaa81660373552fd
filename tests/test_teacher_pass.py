"""The teacher pass: sharded Parquet output, resumption after a kill, and sharing across processes."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from tiny_vllms import build_tiny_dataset, build_tiny_vllm, tiny_vocabulary, vocabulary_words

from modeling_clhoi.dataset_schema import TEACHER_COLUMNS, candidate_hois, hoi_features, load_hoi_dataset
from modeling_clhoi.synthetic_teacher import SyntheticTeacher
from modeling_clhoi.teacher_pass import (
    STATE_FILE,
    check_state,
    finalize_teacher_pass,
    finished_shards,
    run_teacher_pass,
    shard_path,
    shard_ranges,
)

pytestmark = pytest.mark.usefixtures("one_thread")

REPO = Path(__file__).resolve().parents[1]
VOCABULARY = tiny_vocabulary()
SIZES = {"train": 7, "test": 3}


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny", VOCABULARY, SIZES)


@pytest.fixture(scope="module")
def dataset(dataset_dir) -> datasets.DatasetDict:
    return load_hoi_dataset(dataset_dir)


def _load_dataset(path: Path) -> datasets.DatasetDict:
    """``datasets.load_dataset(path)`` with a cache of its own (its cache key ignores the folder's content)."""
    return datasets.load_dataset(str(path), cache_dir=str(path.parent / f".cache_{path.name}_{time.monotonic_ns()}"))


@pytest.fixture(scope="module")
def teacher() -> SyntheticTeacher:
    return SyntheticTeacher(vocabulary=VOCABULARY, noise=0.3, seed=3)


def _rows(path: Path) -> dict[str, list[dict]]:
    loaded = load_hoi_dataset(path)
    return {split: [{k: v for k, v in row.items() if k != "image"} for row in loaded[split]] for split in loaded}


def _assert_same_labels(a: dict[str, list[dict]], b: dict[str, list[dict]], atol: float = 0.0) -> None:
    assert sorted(a) == sorted(b)
    for split in a:
        assert [r["image_id"] for r in a[split]] == [r["image_id"] for r in b[split]]
        for x, y in zip(a[split], b[split]):
            assert x["teacher_context"] == y["teacher_context"]
            assert x["teacher_candidates"] == y["teacher_candidates"]
            np.testing.assert_allclose(x["teacher_scores"], y["teacher_scores"], atol=atol)


def test_shard_ranges():
    assert shard_ranges(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert shard_ranges(6, 3) == [(0, 3), (3, 6)]
    assert shard_ranges(0, 4) == [(0, 0)]
    with pytest.raises(ValueError, match="shard_size"):
        shard_ranges(5, 0)


def test_pass_labels_every_row_in_order(dataset, teacher, tmp_path):
    written = run_teacher_pass(teacher, dataset, tmp_path, shard_size=3, batch_size=2, progress=False)
    assert sorted(p.name for p in written) == sorted(
        [f"train-0000{i}-of-00003.parquet" for i in range(3)] + ["test-00000-of-00001.parquet"]
    )
    assert finalize_teacher_pass(tmp_path, dataset["train"].features) == ["test", "train"]
    loaded = _load_dataset(tmp_path)
    assert loaded["train"].features == hoi_features(with_teacher=True)
    for split, size in SIZES.items():
        rows = [dataset[split][i] for i in range(size)]
        expected = teacher.label_examples(rows)
        assert loaded[split]["image_id"] == dataset[split]["image_id"]
        assert loaded[split][0]["image"].size == rows[0]["image"].size
        for got, want, row in zip(loaded[split], expected, rows):
            assert got["teacher_candidates"] == candidate_hois(row["detections"]["labels"], VOCABULARY)
            assert got["teacher_context"] == want["teacher_context"]
            np.testing.assert_allclose(got["teacher_scores"], want["teacher_scores"], rtol=1e-6)


def test_processes_share_shards_round_robin(dataset, teacher, tmp_path):
    run_teacher_pass(teacher, dataset, tmp_path / "one", shard_size=2, progress=False)
    finalize_teacher_pass(tmp_path / "one", dataset["train"].features)
    shares = [
        run_teacher_pass(teacher, dataset, tmp_path / "three", shard_size=2, process_index=rank, num_processes=3,
                         progress=False)
        for rank in range(3)
    ]
    names = [sorted(p.name for p in share) for share in shares]
    assert names[0] == ["test-00000-of-00002.parquet", "train-00000-of-00004.parquet", "train-00003-of-00004.parquet"]
    assert names[1] == ["test-00001-of-00002.parquet", "train-00001-of-00004.parquet"]
    assert names[2] == ["train-00002-of-00004.parquet"]
    finalize_teacher_pass(tmp_path / "three", dataset["train"].features)
    _assert_same_labels(_rows(tmp_path / "three"), _rows(tmp_path / "one"))
    with pytest.raises(ValueError, match="process_index 3"):
        run_teacher_pass(teacher, dataset, tmp_path, process_index=3, num_processes=3)


def test_resume_keeps_finished_shards_and_ignores_partial_ones(dataset, teacher, tmp_path):
    out = tmp_path / "out"
    first = run_teacher_pass(teacher, dataset, out, splits=["train"], shard_size=3, process_index=0,
                             num_processes=2, progress=False)
    # Before the split is complete, the card declares only complete splits (none yet, then "test").
    assert finalize_teacher_pass(out, dataset["train"].features) == []
    assert not (out / "README.md").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in first}
    stale = shard_path(out, "train", 1, 3).with_name(".train-00001-of-00003.parquet.tmp-12345")
    stale.write_bytes(b"half a parquet file")  # what a killed run leaves behind
    run_teacher_pass(teacher, dataset, out, splits=["test"], shard_size=3, progress=False)
    assert finalize_teacher_pass(out, dataset["train"].features) == ["test"]
    assert list(_load_dataset(out)) == ["test"]

    second = run_teacher_pass(teacher, dataset, out, shard_size=3, progress=False)
    assert [p.name for p in second] == ["train-00001-of-00003.parquet"]  # nothing labelled twice
    assert {p: p.stat().st_mtime_ns for p in first} == mtimes
    assert not stale.exists()
    assert finalize_teacher_pass(out, dataset["train"].features) == ["test", "train"]
    assert finalize_teacher_pass(out, dataset["train"].features) == ["test", "train"]  # idempotent
    run_teacher_pass(teacher, dataset, tmp_path / "ref", shard_size=3, progress=False)
    finalize_teacher_pass(tmp_path / "ref", dataset["train"].features)
    _assert_same_labels(_rows(out), _rows(tmp_path / "ref"))
    assert run_teacher_pass(teacher, dataset, out, shard_size=3, progress=False) == []

    with pytest.raises(ValueError, match="shards of another layout"):
        run_teacher_pass(teacher, dataset, out, shard_size=2, progress=False)


def test_other_settings_are_refused(tmp_path):
    check_state(tmp_path, {"teacher": "a", "shard_size": 4})
    check_state(tmp_path, {"teacher": "a", "shard_size": 4})
    assert (tmp_path / STATE_FILE).is_file()
    with pytest.raises(ValueError, match="other settings.*teacher"):
        check_state(tmp_path, {"teacher": "b", "shard_size": 4})


def test_killed_run_resumes_to_the_uninterrupted_result(dataset_dir, tmp_path):
    """A real subprocess is SIGKILLed once its first shard exists; the rerun completes the rest."""
    model = build_tiny_vllm("llava", tmp_path / "llava", words=vocabulary_words(VOCABULARY))
    script = _load_script("label_with_teacher")
    common = ["--teacher", str(model), "--dataset", str(dataset_dir), "--shard_size", "1", "--batch_size", "1",
              "--max_new_tokens", "24", "--no_progress"]
    script.main([*common, "--output_dir", str(tmp_path / "reference")])
    total = sum(SIZES.values())

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "label_with_teacher.py"), *common, "--output_dir", str(out)],
        env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not sum(len(s) for s in finished_shards(out).values()):
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no shard was written in time"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    survivors = {p: p.stat().st_mtime_ns for p in (out / "data").glob("*.parquet")}
    assert 1 <= len(survivors) < total
    assert not (out / "README.md").exists()

    script.main([*common, "--output_dir", str(out)])
    assert len(list((out / "data").glob("*.parquet"))) == total
    assert not list((out / "data").glob(".*.tmp-*"))
    assert {p: p.stat().st_mtime_ns for p in survivors} == survivors  # finished shards were kept
    _assert_same_labels(_rows(out), _rows(tmp_path / "reference"), atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_two_processes_match_one(dataset_dir, tmp_path):
    common = ["--teacher", "synthetic", "--dataset", str(dataset_dir), "--shard_size", "2", "--no_progress"]
    _load_script("label_with_teacher").main([*common, "--output_dir", str(tmp_path / "one")])
    # Two CPU processes: accelerate's `--cpu` launcher starts one process unless MPI is set up, so the
    # torchrun launcher (`--multi_gpu`) runs them, and ACCELERATE_USE_CPU makes them CPU (gloo) processes.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port())]
    result = subprocess.run(
        [*launch, str(REPO / "scripts" / "label_with_teacher.py"), *common, "--output_dir", str(tmp_path / "two")],
        env={**_env(), "ACCELERATE_USE_CPU": "true"}, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Both processes labelled a share: 4 train shards + 2 test shards, round robin.
    assert "process 0 wrote 3 shard(s)" in result.stderr and "process 1 wrote 3 shard(s)" in result.stderr
    _assert_same_labels(_rows(tmp_path / "two"), _rows(tmp_path / "one"))
    assert set(_load_dataset(tmp_path / "two")["train"].column_names) >= set(TEACHER_COLUMNS)
