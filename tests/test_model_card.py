"""Model cards: Hub metadata, model-index from eval_results.json, and the rendered page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modeling_clhoi import CLHOIConfig
from modeling_clhoi.model_card import (
    DEFAULT_TEMPLATE,
    BenchmarkResult,
    create_model_card,
    read_eval_results,
    save_model_card,
)

TRAINING_ARGS = {
    "teacher_model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct",
    "detector_name_or_path": "facebook/detr-resnet-50",
    "clip_model_name_or_path": "openai/clip-vit-base-patch16",
    "dataset_name": "my-org/hico-det-teacher",
    "learning_rate": 1e-4,
    "num_train_epochs": 3,
    "seed": 42,
    "stage": "both",
    "logging_dir": "runs/x",  # not a card hyperparameter
}


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    CLHOIConfig.from_preset("tiny").save_pretrained(tmp_path)
    return tmp_path


def test_read_eval_results_nested_flat_and_prefixed(tmp_path: Path) -> None:
    nested = {"hico_det": {"map": 0.2512, "map_rare": 0.2, "map_non_rare": 0.27, "ap": [0.1, 0.2]},
              "vcoco": {"scenario_1": 0.5, "scenario_2": 0.55}, "eval_loss": 1.3}
    flat = {"eval_hico_det_map": 0.2512, "eval_hico_det_map_rare": 0.2, "eval_hico_det_map_non_rare": 0.27,
            "test_vcoco_role_ap_scenario_1": 0.5, "vcoco_role_ap_scenario_2": 0.55, "eval_runtime": 12.0}
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(flat))
    expected = [
        BenchmarkResult("HICO-DET", "Default", "Full", pytest.approx(25.12)),
        BenchmarkResult("HICO-DET", "Default", "Rare", pytest.approx(20.0)),
        BenchmarkResult("HICO-DET", "Default", "Non-rare", pytest.approx(27.0)),
        BenchmarkResult("V-COCO", "Scenario 1", "Role AP", pytest.approx(50.0)),
        BenchmarkResult("V-COCO", "Scenario 2", "Role AP", pytest.approx(55.0)),
    ]
    assert read_eval_results(nested) == expected
    assert read_eval_results(path) == expected
    known = read_eval_results({"hico_det": {"map": 0.3, "known_object": {"map": 0.4, "map_rare": 0.35}}})
    assert [(r.setting, r.metric, round(r.value, 6)) for r in known] == [
        ("Default", "Full", 30.0), ("Known Object", "Full", 40.0), ("Known Object", "Rare", 35.0)]
    assert read_eval_results({"map": 25.1}, metrics_in_percent=True)[0].value == 25.1
    with pytest.raises(ValueError, match="metrics_in_percent"):
        read_eval_results({"map": 25.1})


def test_card_metadata_and_model_index(model_dir: Path) -> None:
    (model_dir / "eval_results.json").write_text(json.dumps(
        {"hico_det": {"map": 0.2512, "map_rare": 0.2, "map_non_rare": 0.27}}))
    (model_dir / "training_args.json").write_text(json.dumps(TRAINING_ARGS))
    card = create_model_card(model_dir, repo_id="my-org/clhoi-tiny", tags=["demo"])
    meta = _front_matter(str(card))
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "object-detection"
    assert meta["license"] == "apache-2.0"
    assert {"clhoi", "human-object-interaction", "custom_code", "demo"} <= set(meta["tags"])
    assert meta["base_model"] == ["Qwen/Qwen2-VL-2B-Instruct", "facebook/detr-resnet-50",
                                  "openai/clip-vit-base-patch16"]
    assert meta["datasets"] == ["my-org/hico-det-teacher"]
    (index,) = meta["model-index"]
    assert index["name"] == "clhoi-tiny"
    (result,) = index["results"]  # HICO-DET only: no V-COCO entry without V-COCO numbers
    assert result["dataset"] == {"name": "HICO-DET", "type": "hico_det", "split": "test"}
    assert {m["name"]: m["value"] for m in result["metrics"]} == {
        "mAP Default Full": 25.12, "mAP Default Rare": 20.0, "mAP Default Non-rare": 27.0}
    text = card.text
    assert "# clhoi-tiny" in text and 'pipeline(model="my-org/clhoi-tiny", trust_remote_code=True)' in text
    assert "| HICO-DET | HICO-DET | Default | Rare | 20.00 |" in text and "V-COCO" not in text
    assert "| learning_rate | `0.0001` |" in text and "logging_dir" not in text
    assert "detections=" in text  # the tiny preset holds no detector
    assert "{{" not in text and "{%" not in text


def test_results_on_other_data_name_that_data_set(model_dir: Path) -> None:
    """Numbers computed with the HICO-DET protocol on another data set never pass for HICO-DET results."""
    (model_dir / "eval_results.json").write_text(json.dumps({"eval_map": 0.8563}))
    (model_dir / "training_args.json").write_text(json.dumps({**TRAINING_ARGS, "eval_dataset_name": "Synthetic HOI world"}))
    card = create_model_card(model_dir)
    (result,) = _front_matter(str(card))["model-index"][0]["results"]
    assert result["dataset"]["name"] == "Synthetic HOI world" and result["dataset"]["type"] == "synthetic_hoi_world"
    assert "| Synthetic HOI world | HICO-DET | Default | Full | 85.63 |" in card.text
    (result,) = _front_matter(str(create_model_card(model_dir, eval_dataset_name="HICO-DET")))["model-index"][0]["results"]
    assert result["dataset"]["name"] == "HICO-DET"


def test_card_without_results_and_with_local_base_models(model_dir: Path, tmp_path: Path) -> None:
    local_teacher = tmp_path / "teacher"
    local_teacher.mkdir()
    card = create_model_card(model_dir, base_models={"teacher": str(local_teacher), "CLIP": "openai/clip-vit-base-patch16"},
                             datasets=[str(model_dir)], license="mit")
    meta = _front_matter(str(card))
    assert "model-index" not in meta and "datasets" not in meta
    assert meta["base_model"] == ["openai/clip-vit-base-patch16"] and meta["license"] == "mit"
    assert "No evaluation results" in card.text and f"teacher: `{local_teacher}`" in card.text


def test_save_model_card_writes_readme(model_dir: Path) -> None:
    path = save_model_card(model_dir, repo_id="me/model", eval_results={"vcoco_scenario_1": 0.61})
    assert path == model_dir / "README.md"
    meta = _front_matter(path.read_text())
    metric = meta["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "role_ap" and metric["name"] == "Role AP Scenario 1" and metric["value"] == 61.0


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_model_card(tmp_path)
    CLHOIConfig.from_preset("tiny").save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="eval results"):
        create_model_card(tmp_path, eval_results=tmp_path / "missing.json")
    assert DEFAULT_TEMPLATE.is_file()
