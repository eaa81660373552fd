"""The "hoi-detection" pipeline: inputs, outputs, batching, open vocabulary, remote code and predict.py."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from modeling_clhoi import CLHOIConfig, CLHOIForInteractionDetection, CLHOIProcessor, HOIVocabulary
from modeling_clhoi.pipeline_clhoi import (
    REMOTE_CODE_TASK,
    TASK,
    HOIDetectionPipeline,
    build_vocabulary,
    save_pipeline_code,
)

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 64, 48
# Two persons, a bicycle and a cup (labels by name and by HICO-DET id: 49 is "person").
DETECTIONS = {
    "boxes": [[1, 2, 30, 40], [20, 10, 60, 45], [5, 5, 20, 20], [40, 30, 60, 46]],
    "labels": ["person", "bicycle", 49, "cup"],
    "scores": [0.9, 0.8, 0.7, 0.95],
}
KEYS = {"score", "verb", "object", "hoi", "human_box", "object_box"}


def _image(seed: int = 0, height: int = HEIGHT, width: int = WIDTH) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _box(box: list[float]) -> dict[str, int]:
    return dict(zip(("xmin", "ymin", "xmax", "ymax"), box))


def _assert_same(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert {k: a[k] for k in KEYS - {"score"}} == {k: b[k] for k in KEYS - {"score"}}
        assert math.isclose(a["score"], b["score"], rel_tol=1e-5, abs_tol=1e-7)


@pytest.fixture(scope="module")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: CLHOIForInteractionDetection, tiny_processor: CLHOIProcessor
) -> Path:
    folder = tmp_path_factory.mktemp("tiny_clhoi")
    tiny_model.save_pretrained(folder)
    tiny_processor.save_pretrained(folder)
    save_pipeline_code(folder)
    return folder


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> HOIDetectionPipeline:
    return pipeline(TASK, model=str(model_dir))


def test_registered_task_gives_the_pipeline(detector: HOIDetectionPipeline) -> None:
    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()
    assert isinstance(detector, HOIDetectionPipeline)
    assert detector.task == TASK


def test_output_format_and_order(detector: HOIDetectionPipeline) -> None:
    predictions = detector(_image(), detections=DETECTIONS, threshold=0.0, top_k=1000)
    vocabulary = detector.model.vocabulary
    # 2 humans x 3 other instances, each scored on every HOI of the pair's object category.
    objects = ["bicycle", "person", "cup", "person", "bicycle", "cup"]
    assert len(predictions) == sum(len(vocabulary.hois_for_objects([vocabulary.objects.index(o)])) for o in objects)
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True) and all(0.0 < s <= 1.0 for s in scores)
    humans = {tuple(_box(DETECTIONS["boxes"][i]).items()) for i in (0, 2)}
    for p in predictions:
        assert set(p) == KEYS
        assert tuple(p["human_box"].items()) in humans
        assert (p["verb"], p["object"]) == tuple(vocabulary.hoi_name(p["hoi"]).split(" "))
    assert {p["object"] for p in predictions} == {"bicycle", "person", "cup"}


def test_every_input_type_gives_the_same_result(detector: HOIDetectionPipeline, tmp_path: Path) -> None:
    image = _image()
    path = tmp_path / "image.png"
    image.save(path)
    array = np.asarray(image)
    expected = detector(image, detections=DETECTIONS, threshold=0.0)
    assert expected
    for variant in (str(path), path, array, array.transpose(2, 0, 1).astype(np.float32) / 255.0):
        _assert_same(detector(variant, detections=DETECTIONS, threshold=0.0), expected)
    # A list in gives a list of lists; so do dict items holding their own detections.
    listed = detector([str(path), array], detections=[DETECTIONS, DETECTIONS], threshold=0.0)
    assert len(listed) == 2
    for result in listed:
        _assert_same(result, expected)
    _assert_same(detector([{"image": image, "detections": DETECTIONS}], threshold=0.0)[0], expected)


def test_threshold_and_top_k(detector: HOIDetectionPipeline) -> None:
    everything = detector(_image(), detections=DETECTIONS, threshold=0.0, top_k=1000)
    middle = everything[len(everything) // 2]["score"]
    above = detector(_image(), detections=DETECTIONS, threshold=middle)
    assert above and all(p["score"] > middle for p in above)
    assert len(above) == sum(p["score"] > middle for p in everything)
    _assert_same(detector(_image(), detections=DETECTIONS, threshold=0.0, top_k=3), everything[:3])


def test_image_without_person_gives_empty_list(detector: HOIDetectionPipeline) -> None:
    objects_only = {"boxes": [[1, 2, 30, 40], [20, 10, 60, 45]], "labels": ["bicycle", "cup"], "scores": [0.9, 0.9]}
    assert detector(_image(), detections=objects_only, threshold=0.0) == []
    assert detector(_image(), detections={"boxes": [], "labels": [], "scores": []}, threshold=0.0) == []


def test_missing_detections_names_both_ways(detector: HOIDetectionPipeline) -> None:
    with pytest.raises(ValueError, match="detections=") as error:
        detector(_image())
    assert "detector" in str(error.value)


@pytest.mark.parametrize(
    ("detections", "message"),
    [
        ({"boxes": [[0, 0, 10, 10]], "labels": ["unicorn"], "scores": [1.0]}, "Unknown object label"),
        ({"boxes": [[0, 0, 10, 10]], "labels": ["person", "cup"], "scores": [1.0]}, "1 boxes, 2 labels"),
        ({"labels": ["person"]}, "'boxes'"),
    ],
)
def test_bad_detections(detector: HOIDetectionPipeline, detections: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detector(_image(), detections=detections)


def test_one_detections_dict_per_image(detector: HOIDetectionPipeline) -> None:
    with pytest.raises(ValueError, match="one per image"):
        detector([_image(), _image(1)], detections=[DETECTIONS])


def test_batching_gives_the_same_results(detector: HOIDetectionPipeline) -> None:
    images = [_image(i, height=HEIGHT + 8 * i) for i in range(5)]
    detections = [
        DETECTIONS,
        {"boxes": [[1, 2, 30, 40], [20, 10, 60, 45]], "labels": ["person", "horse"], "scores": [0.9, 0.6]},
        {"boxes": [], "labels": [], "scores": []},
        {"boxes": [[1, 2, 30, 40]], "labels": ["person"]},  # scores default to 1
        {"boxes": [[1, 2, 30, 40], [3, 3, 50, 40], [20, 10, 60, 45]], "labels": ["person", "person", "sports_ball"],
         "scores": [0.5, 0.7, 0.9]},
    ]
    one_by_one = detector(images, detections=detections, threshold=0.0, top_k=50)
    batched = detector(images, detections=detections, threshold=0.0, top_k=50, batch_size=3)
    assert [len(r) for r in one_by_one] == [len(r) for r in batched]
    assert [len(r) > 0 for r in one_by_one] == [True, True, False, False, True]
    for single, batch in zip(one_by_one, batched):
        _assert_same(batch, single)


def test_vocabulary_override_changes_classes_for_one_call(detector: HOIDetectionPipeline) -> None:
    before = detector(_image(), detections=DETECTIONS, threshold=0.0)
    custom = [("ride", "bicycle"), ("hold", "cup"), "hug person"]
    predictions = detector(_image(), detections=DETECTIONS, threshold=0.0, vocabulary=custom)
    assert {(p["verb"], p["object"]) for p in predictions} == {("ride", "bicycle"), ("hold", "cup"), ("hug", "person")}
    assert sorted({p["hoi"] for p in predictions}) == [0, 1, 2]
    # 2 humans x (1 bicycle + 1 cup + 1 other person), one HOI each.
    assert len(predictions) == 6
    # The model's own vocabulary is back for the next call.
    assert detector.model.vocabulary.num_hois == detector.processor.vocabulary.num_hois == 65
    _assert_same(detector(_image(), detections=DETECTIONS, threshold=0.0), before)


def test_build_vocabulary_forms() -> None:
    base = HOIVocabulary.from_dict(CLHOIConfig.from_preset("tiny").vocabulary)
    custom = build_vocabulary([("ride", "bicycle"), ("fly", "dragon", "a person flying a dragon")], base)
    assert custom.num_hois == 2 and custom.hoi_name(1) == "fly dragon"
    assert custom.prompts == ["a photo of a person riding a bicycle", "a person flying a dragon"]
    # Object ids of the base vocabulary are kept, new names are appended.
    assert custom.objects[: base.num_objects] == base.objects and custom.objects[-1] == "dragon"
    assert build_vocabulary(base.to_dict(), base) == base
    with pytest.raises(ValueError, match="verb, object"):
        build_vocabulary([("ride",)], base)


def test_pipeline_save_pretrained_writes_remote_code(detector: HOIDetectionPipeline, tmp_path: Path) -> None:
    detector.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["custom_pipelines"] == {
        REMOTE_CODE_TASK: {"impl": "pipeline_clhoi.HOIDetectionPipeline", "pt": ["AutoModel"], "type": "image"}
    }
    assert config["auto_map"]["AutoModel"] == "modeling_clhoi.CLHOIForInteractionDetection"
    for name in ("pipeline_clhoi.py", "vocabulary.py", "modeling_clhoi.py", "processor_config.json"):
        assert (tmp_path / name).is_file()


_REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys

    class BlockPackage:
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_clhoi" or name.startswith("modeling_clhoi."):
                raise ImportError("the clhoi package is not installed here")
            return None

    sys.meta_path.insert(0, BlockPackage())
    from PIL import Image
    from transformers import pipeline

    model_dir, image_path, detections = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    detector = pipeline(model=model_dir, trust_remote_code=True)
    assert not any(m == "modeling_clhoi" or m.startswith("modeling_clhoi.") for m in sys.modules)
    print(json.dumps({"task": detector.task, "module": type(detector).__module__,
                      "predictions": detector(Image.open(image_path), detections=detections, threshold=0.0)}))
    """
)


def test_trust_remote_code_without_the_package(detector: HOIDetectionPipeline, model_dir: Path, tmp_path: Path) -> None:
    image_path = tmp_path / "image.png"
    _image().save(image_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", _REMOTE_SCRIPT, str(model_dir), str(image_path), json.dumps(DETECTIONS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["task"] == REMOTE_CODE_TASK
    assert result["module"].startswith("transformers_modules.") and result["module"].endswith("pipeline_clhoi")
    _assert_same(result["predictions"], detector(_image(), detections=DETECTIONS, threshold=0.0))


def test_predict_script_writes_json_and_drawings(model_dir: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("predict_script", ROOT / "scripts" / "predict.py")
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    paths = []
    for i, name in enumerate(("first.jpg", "second.png")):
        paths.append(tmp_path / name)
        _image(i).save(paths[-1])
    detections_file = tmp_path / "detections.json"
    detections_file.write_text(json.dumps({"first.jpg": DETECTIONS, str(paths[1]): {"boxes": [], "labels": []}}))
    out = tmp_path / "out"
    results = predict.main([str(p) for p in paths] + ["--model", str(model_dir), "--output_dir", str(out),
                                                       "--detections", str(detections_file), "--threshold", "0",
                                                       "--top_k", "5"])
    assert sorted(os.listdir(out)) == ["first.png", "predictions.json", "second.png"]
    written = json.loads((out / "predictions.json").read_text())
    assert written == results and len(written[str(paths[0])]) == 5 and written[str(paths[1])] == []
    drawn, original = np.asarray(Image.open(out / "first.png")), np.asarray(Image.open(paths[0]).convert("RGB"))
    assert drawn.shape == original.shape and (drawn != original).any()
    assert (np.asarray(Image.open(out / "second.png")) == np.asarray(Image.open(paths[1]))).all()
