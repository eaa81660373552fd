"""scripts/train.py as `python scripts/train.py` and as `accelerate launch` with 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from hoi_fixtures import tiny_hoi_dataset
from transformers import AutoModel, AutoProcessor

from modeling_clhoi import CLHOIProcessor
from modeling_clhoi.dataset_schema import hoi_features, save_hub_parquet, write_vocabulary
from modeling_clhoi.evaluation.inference import predict_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def teacher_labels(tmp_path_factory) -> Path:
    """A teacher-labelled dataset folder of the tiny preset's vocabulary (16 train, 6 test images)."""
    vocabulary = CLHOIProcessor.from_preset("tiny").vocabulary
    folder = tmp_path_factory.mktemp("tiny_teacher")
    splits = {"train": tiny_hoi_dataset(16, vocabulary, seed=1), "test": tiny_hoi_dataset(6, vocabulary, seed=2)}
    save_hub_parquet(splits, folder, features=hoi_features(with_teacher=True))
    write_vocabulary(vocabulary, folder)
    return folder


def _train_command(data: Path, output: Path) -> list[str]:
    return [
        str(REPO / "scripts" / "train.py"), "--preset", "tiny", "--teacher_labels", str(data), "--output_dir", str(output),
        "--stage", "both", "--context_num_train_epochs", "1", "--num_train_epochs", "1",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--learning_rate", "1e-3",
        "--report_to", "none", "--save_strategy", "no", "--eval_strategy", "no", "--do_eval", "true",
        "--use_cpu", "true", "--disable_tqdm", "true", "--logging_steps", "1",
    ]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_train_script_saves_a_loadable_model_with_card_and_results(teacher_labels, tmp_path):
    output = tmp_path / "model"
    _run([sys.executable, *_train_command(teacher_labels, output)])
    config = json.loads((output / "config.json").read_text())
    assert config["auto_map"]["AutoModel"].endswith("CLHOIForInteractionDetection")
    assert config["custom_pipelines"]["hoi-detection-remote-code"]["impl"] == "pipeline_clhoi.HOIDetectionPipeline"
    assert (output / "pipeline_clhoi.py").is_file()
    results = json.loads((output / "eval_results.json").read_text())
    assert 0.0 <= results["eval_map"] <= 1.0
    assert (output / "README.md").read_text().strip()
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 8  # 16 images, batch 4: 4 steps per stage
    model = AutoModel.from_pretrained(output)
    processor = AutoProcessor.from_pretrained(output)
    assert processor.vocabulary == model.vocabulary
    test = datasets.load_dataset(str(teacher_labels), split="test")
    predictions = predict_dataset(model, processor, test, show_progress=False)
    assert len(predictions) == len(test) and all(len(p["hoi"]) for p in predictions)
    assert torch.all(model.logit_scale != 0)


def test_train_script_under_accelerate_with_two_cpu_processes(teacher_labels, tmp_path):
    # accelerate 1.x starts several local processes through torch.distributed.run (its "multi_gpu" launcher;
    # `--cpu` alone starts one process unless MPI is configured); `--use_cpu true` makes them gloo CPU workers.
    output = tmp_path / "model"
    _run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
          *_train_command(teacher_labels, output)])
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # 2 processes x batch 4: 2 steps per stage
    logged = [entry for entry in state["log_history"] if "loss" in entry]
    assert [entry["stage"] for entry in logged] == [1, 1, 2, 2]
    assert 0.0 <= json.loads((output / "eval_results.json").read_text())["eval_map"] <= 1.0
    AutoModel.from_pretrained(output)
