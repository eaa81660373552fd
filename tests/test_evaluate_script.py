"""predict_dataset and scripts/evaluate.py end to end on the tiny preset and a tiny dataset."""

from __future__ import annotations

import csv
import importlib.util
import json
import random

import datasets
import numpy as np
import pytest
from PIL import Image

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor
from modeling_clhoi.dataset_schema import hoi_features, save_hub_parquet
from modeling_clhoi.evaluation import hico_det_map
from modeling_clhoi.evaluation.inference import predict_dataset, references_from_dataset


def tiny_dataset(num_images: int, vocabulary, seed: int = 0) -> datasets.Dataset:
    """Two people and one object per image, the first person interacting with it; one image empty."""
    rng = random.Random(seed)
    person = vocabulary.person_id
    objects = sorted({o for o, _ in vocabulary.triplets} - {person})
    rows = []
    for i in range(num_images):
        width, height = 64, 48
        obj = rng.choice(objects)
        hoi = rng.choice(vocabulary.hois_for_objects([obj]))
        human_a, human_b, thing = [2.0, 2.0, 22.0, 44.0], [40.0, 4.0, 60.0, 46.0], [14.0, 20.0, 30.0, 36.0]
        empty = i == num_images - 1
        pixels = np.random.RandomState(i).randint(0, 255, (height, width, 3), dtype=np.uint8)
        rows.append({
            "image": Image.fromarray(pixels), "image_id": f"tiny-{i}", "width": width, "height": height,
            "detections": {"boxes": [] if empty else [human_a, human_b, thing],
                           "labels": [] if empty else [person, person, obj],
                           "scores": [] if empty else [0.95, 0.9, 0.85]},
            "annotation": {"boxes_h": [human_a], "boxes_o": [thing], "hoi": [hoi], "object": [obj],
                           "verb": [vocabulary.triplets[hoi][1]]},
        })
    return datasets.Dataset.from_list(rows, features=hoi_features())


@pytest.fixture(scope="module")
def tiny_model():
    config = CLHOIConfig.from_preset("tiny")
    return CLHOIForInteractionDetection(config).eval(), CLHOIProcessor.from_preset("tiny")


def test_predict_dataset_gives_metric_format(tiny_model):
    model, processor = tiny_model
    dataset = tiny_dataset(5, model.vocabulary)
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
    dataset = tiny_dataset(4, model.vocabulary)
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
