"""predict_dataset and scripts/evaluate.py end to end on the tiny preset and a tiny dataset."""

from __future__ import annotations

import csv
import importlib.util
import json

import datasets
import numpy as np
import pytest
from hoi_fixtures import tiny_hoi_dataset

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor
from modeling_clhoi.dataset_schema import save_hub_parquet
from modeling_clhoi.evaluation import hico_det_map
from modeling_clhoi.evaluation.inference import predict_dataset, references_from_dataset


@pytest.fixture(scope="module")
def tiny_model():
    config = CLHOIConfig.from_preset("tiny")
    return CLHOIForInteractionDetection(config).eval(), CLHOIProcessor.from_preset("tiny")


def test_predict_dataset_gives_metric_format(tiny_model):
    model, processor = tiny_model
    dataset = tiny_hoi_dataset(5, model.vocabulary, mirror=False, empty_last=True)
    predictions = predict_dataset(model, processor, dataset, batch_size=2, top_k=7, show_progress=False)
    assert len(predictions) == 5
    for pred in predictions[:-1]:
        assert pred["boxes_h"].shape == (7, 4) and pred["boxes_o"].shape == (7, 4)
        assert np.all(np.diff(pred["scores"]) <= 0)
        assert pred["boxes_h"].max() <= 64.0 + 1e-3 and pred["boxes_h"].min() >= -1e-3  # absolute pixels
        # every pair's human box is one of the two detected people
        assert all(any(np.allclose(b, h, atol=1e-3) for h in ([2, 2, 22, 44], [40, 4, 60, 46])) for b in pred["boxes_h"])
    assert predictions[-1]["hoi"].shape == (0,)  # no detections, no pairs
    references = references_from_dataset(dataset)
    result = hico_det_map(predictions, references, vocabulary=model.vocabulary)
    assert 0.0 <= result["map"] <= 1.0 + 1e-12
    assert int(np.sum(result["n_gt"])) == 5


def load_script(repo_root):
    spec = importlib.util.spec_from_file_location("evaluate_script", repo_root / "scripts" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_script_writes_json_csv_and_plot(tiny_model, tmp_path, repo_root):
    model, processor = tiny_model
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    dataset = tiny_hoi_dataset(4, model.vocabulary, mirror=False, empty_last=True)
    save_hub_parquet(datasets.DatasetDict({"train": dataset, "test": dataset}), tmp_path / "data")
    script = load_script(repo_root)
    results = script.main([
        "--model", str(tmp_path / "model"), "--dataset", str(tmp_path / "data"), "--split", "test",
        "--output_dir", str(tmp_path / "out"), "--batch_size", "3",
    ])
    saved = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["num_images"] == 4 and set(saved["default"]) == {"map", "map_rare", "map_non_rare", "mean_recall"}
    direct = hico_det_map(
        predict_dataset(model, processor, dataset, show_progress=False), references_from_dataset(dataset),
        vocabulary=model.vocabulary,
    )
    assert saved["default"]["map"] == pytest.approx(direct["map"], abs=1e-9)
    with open(tmp_path / "out" / "per_class_ap.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == model.vocabulary.num_hois
    assert list(rows[0]) == ["hoi", "name", "rare", "n_gt", "ap", "recall"]
    assert sum(int(r["n_gt"]) for r in rows) == 4
    assert sum(r["ap"] != "" for r in rows) == int(np.count_nonzero(direct["n_gt"]))
    png = (tmp_path / "out" / "per_class_ap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
