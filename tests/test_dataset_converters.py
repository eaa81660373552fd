"""Dataset scripts: HICO-DET and V-COCO converters (missing and corrupt files), the Hub Parquet layout,
the synthetic dataset script and show.py, on small fixtures in the real formats."""

import importlib.util
import json
from pathlib import Path

import datasets
import pytest
from PIL import Image

from modeling_clhoi.dataset_schema import TEACHER_COLUMNS, hoi_features, read_vocabulary, save_hub_parquet
from modeling_clhoi.vocabulary import HOIVocabulary

SCRIPTS = Path(__file__).resolve().parents[1] / "dataset_scripts"
HICO = HOIVocabulary.hico_det()


def _script(name):
    spec = importlib.util.spec_from_file_location(f"dataset_scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jpeg(path, size=(64, 48), colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG")


def _corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    _jpeg(path)
    path.write_bytes(path.read_bytes()[:60])  # truncated JPEG


def _hico_file(path, filenames, annotations, sizes):
    data = {"annotation": annotations, "filenames": filenames, "size": sizes, "empty": [],
            "objects": HICO.objects, "verbs": HICO.verbs,
            "correspondence": [[i, o, v] for i, (o, v) in enumerate(HICO.triplets)], "rare": HICO.rare,
            "non_rare": []}
    path.write_text(json.dumps(data))


RIDE = {"boxes_h": [[1.0, 2.0, 30.0, 40.0], [1.0, 2.0, 30.0, 40.0]], "boxes_o": [[5.0, 20.0, 50.0, 45.0]] * 2,
        "hoi": [HICO.hoi_id("ride", "bicycle"), HICO.hoi_id("sit_on", "bicycle")], "object": [9, 9],
        "verb": [HICO.verbs.index("ride"), HICO.verbs.index("sit_on")]}
EMPTY = {"boxes_h": [], "boxes_o": [], "hoi": [], "object": [], "verb": []}


@pytest.fixture()
def hico_root(tmp_path):
    root = tmp_path / "hico_20160224_det"
    _jpeg(root / "images/train2015/HICO_train2015_00000001.jpg")
    _corrupt(root / "images/train2015/HICO_train2015_00000003.jpg")
    _jpeg(root / "images/test2015/HICO_test2015_00000001.jpg", size=(40, 30))
    _hico_file(tmp_path / "instances_train2015.json",
               ["HICO_train2015_00000001.jpg", "HICO_train2015_00000002.jpg", "HICO_train2015_00000003.jpg"],
               [RIDE, RIDE, RIDE], [[64, 48]] * 3)
    _hico_file(tmp_path / "instances_test2015.json", ["HICO_test2015_00000001.jpg"], [EMPTY], [[40, 30]])
    return root


def test_hico_det_converter_skips_missing_and_corrupt_images(hico_root, tmp_path):
    out = tmp_path / "out"
    report = _script("hico_det").main([
        "--root", str(hico_root), "--output_dir", str(out),
        "--annotations", str(tmp_path / "instances_train2015.json"), str(tmp_path / "instances_test2015.json")])
    train = report["splits"]["train"]
    assert (train["images"], train["written"]) == (3, 1)
    assert train["missing"] == ["HICO_train2015_00000002.jpg"]
    assert train["corrupt"] == ["HICO_train2015_00000003.jpg"]
    assert report["splits"]["test"]["empty_annotation"] == 1
    assert json.loads((out / "conversion_report.json").read_text()) == report
    dataset = datasets.load_dataset(str(out))
    assert set(dataset) == {"train", "test"} and dataset["train"].features == hoi_features()
    row = dataset["train"][0]
    assert row["image"].size == (64, 48) and (row["width"], row["height"]) == (64, 48)
    assert row["image_id"] == "HICO_train2015_00000001"
    assert row["annotation"]["hoi"] == RIDE["hoi"]
    # ground-truth detections: the one human and the one bicycle box, deduplicated
    assert row["detections"] == {"boxes": [RIDE["boxes_h"][0], RIDE["boxes_o"][0]], "labels": [49, 9],
                                 "scores": [1.0, 1.0]}
    assert dataset["test"][0]["detections"]["boxes"] == []
    assert read_vocabulary(out) == HICO


def test_hico_det_converter_reads_cached_detections(hico_root, tmp_path):
    detections = tmp_path / "detections" / "train2015"
    detections.mkdir(parents=True)
    cached = {"boxes": [[0, 0, 10, 10]], "labels": [49], "scores": [0.7]}
    (detections / "HICO_train2015_00000001.json").write_text(json.dumps(cached))
    out = tmp_path / "out"
    report = _script("hico_det").main([
        "--root", str(hico_root), "--output_dir", str(out), "--detections", str(tmp_path / "detections"),
        "--annotations", str(tmp_path / "instances_train2015.json")])
    row = datasets.load_dataset(str(out), split="train")[0]
    assert row["detections"]["labels"] == [49] and row["detections"]["scores"] == pytest.approx([0.7])
    assert report["splits"]["train"]["missing_detections"] == []


def test_hico_det_converter_rejects_bad_arguments(hico_root, tmp_path):
    bad = tmp_path / "instances_other.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="split"):
        _script("hico_det").main(["--root", str(hico_root), "--output_dir", str(tmp_path / "o"),
                                  "--annotations", str(bad)])


def _vcoco_fixture(tmp_path):
    images = tmp_path / "coco/images"
    _jpeg(images / "train2014/COCO_train2014_000000000001.jpg", size=(80, 60))
    _corrupt(images / "train2014/COCO_train2014_000000000002.jpg")
    _jpeg(images / "val2014/COCO_val2014_000000000010.jpg", size=(50, 50))
    coco = {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 80, "height": 60},
                   {"id": 2, "file_name": "COCO_train2014_000000000002.jpg", "width": 80, "height": 60},
                   {"id": 3, "file_name": "COCO_train2014_000000000003.jpg", "width": 80, "height": 60},
                   {"id": 10, "file_name": "COCO_val2014_000000000010.jpg", "width": 50, "height": 50}],
        "annotations": [
            {"id": 101, "image_id": 1, "category_id": 1, "bbox": [1, 2, 20, 30], "iscrowd": 0},
            {"id": 102, "image_id": 1, "category_id": 48, "bbox": [30, 10, 5, 5], "iscrowd": 0},
            {"id": 103, "image_id": 1, "category_id": 61, "bbox": [40, 40, 10, 8], "iscrowd": 0},
            {"id": 104, "image_id": 1, "category_id": 1, "bbox": [0, 0, 80, 60], "iscrowd": 1},
            {"id": 201, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 1001, "image_id": 10, "category_id": 1, "bbox": [5, 5, 20, 40], "iscrowd": 0},
            {"id": 1002, "image_id": 10, "category_id": 37, "bbox": [20, 30, 6, 6], "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 37, "name": "sports ball"}, {"id": 48, "name": "fork"},
                       {"id": 61, "name": "cake"}],
    }
    (tmp_path / "instances_vcoco_all_2014.json").write_text(json.dumps(coco))

    def action(name, roles, rows):  # rows: (image, agent, label, role object ids...)
        n = len(rows)
        role_ids = [row[1] if r == 0 else row[2 + r] for r in range(len(roles)) for row in rows]
        assert len(role_ids) == n * len(roles)
        return {"action_name": name, "role_name": roles, "image_id": [r[0] for r in rows],
                "ann_id": [r[1] for r in rows], "label": [r[2] for r in rows], "role_object_id": role_ids}

    train = [
        action("eat", ["agent", "obj", "instr"], [(1, 101, 1, 103, 102), (2, 201, 0, 0, 0), (3, 301, 0, 0, 0)]),
        action("walk", ["agent"], [(1, 101, 1)]),
        action("cut", ["agent", "instr", "obj"], [(1, 101, 1, 0, 103)]),
    ]
    test = [action("kick", ["agent", "obj"], [(10, 1001, 1, 1002)])]
    (tmp_path / "vcoco_train.json").write_text(json.dumps(train))
    (tmp_path / "vcoco_test.json").write_text(json.dumps(test))
    return images


def test_vcoco_converter(tmp_path):
    images = _vcoco_fixture(tmp_path)
    out = tmp_path / "out"
    report = _script("vcoco").main([
        "--annotations", str(tmp_path / "vcoco_train.json"), str(tmp_path / "vcoco_test.json"),
        "--coco_annotations", str(tmp_path / "instances_vcoco_all_2014.json"), "--image_root", str(images),
        "--output_dir", str(out)])
    train = report["splits"]["train"]
    assert (train["images"], train["written"]) == (3, 1)
    assert train["corrupt"] == ["COCO_train2014_000000000002.jpg"]
    assert train["missing"] == ["COCO_train2014_000000000003.jpg"]
    assert train["roles_without_object"] == 1  # cut's instrument
    vocab = HOIVocabulary.vcoco()
    assert read_vocabulary(out) == vocab
    dataset = datasets.load_dataset(str(out))
    row = dataset["train"][0]
    ann = row["annotation"]
    expected = sorted([("cut_obj", "cake"), ("eat_instr", "fork"), ("eat_obj", "cake")])
    assert sorted((vocab.verbs[v], vocab.objects[o]) for v, o in zip(ann["verb"], ann["object"])) == expected
    assert all(vocab.triplets[h] == (o, v) for h, o, v in zip(ann["hoi"], ann["object"], ann["verb"]))
    assert ann["boxes_h"][0] == [1.0, 2.0, 21.0, 32.0]
    # detections: every non-crowd COCO box of the image, COCO categories mapped to HICO-DET ids by name
    assert sorted(row["detections"]["labels"]) == sorted([49, HICO.objects.index("fork"), HICO.objects.index("cake")])
    test_row = dataset["test"][0]
    assert test_row["annotation"]["hoi"] == [vocab.hoi_id("kick_obj", "sports_ball")]


def test_save_hub_parquet_shards_and_round_trip(tmp_path):
    rows = []
    for i in range(12):
        image = Image.new("RGB", (32, 32), (i * 20, 0, 0))
        rows.append({"image": image, "image_id": str(i), "width": 32, "height": 32,
                     "detections": {"boxes": [[0, 0, 4, 4]], "labels": [49], "scores": [0.5]},
                     "annotation": {"boxes_h": [], "boxes_o": [], "hoi": [], "object": [], "verb": []},
                     "teacher_context": "a person", "teacher_candidates": [1, 2], "teacher_scores": [0.9, 0.1]})
    features = hoi_features(with_teacher=True)
    dataset = datasets.Dataset.from_list(rows, features=features)
    shards = save_hub_parquet(datasets.DatasetDict({"train": dataset, "test": dataset.select(range(2))}),
                              tmp_path / "ds", max_shard_size=800, rows_per_group=2)
    assert len(shards["train"]) > 1
    assert [p.name for p in shards["test"]] == ["test-00000-of-00001.parquet"]
    assert shards["train"][-1].name == f"train-{len(shards['train']) - 1:05d}-of-{len(shards['train']):05d}.parquet"
    loaded = datasets.load_dataset(str(tmp_path / "ds"))
    assert loaded["train"].features == features and loaded["train"].num_rows == 12
    assert loaded["train"][5]["image"].getpixel((0, 0)) == (100, 0, 0)
    assert loaded["train"][5]["teacher_scores"] == pytest.approx([0.9, 0.1])
    assert set(TEACHER_COLUMNS) <= set(loaded["test"].column_names)
    with pytest.raises(ValueError, match="features"):
        save_hub_parquet({"train": iter(rows)}, tmp_path / "other")


def test_synthetic_script_and_show(tmp_path):
    out = tmp_path / "synthetic"
    _script("synthetic_hoi").main(["--output_dir", str(out), "--num_train", "6", "--num_test", "3",
                                   "--image_size", "96", "--num_workers", "1", "--teacher_noise", "0"])
    dataset = datasets.load_dataset(str(out))
    assert (dataset["train"].num_rows, dataset["test"].num_rows) == (6, 3)
    row = dataset["train"][2]
    assert row["image"].size == (96, 96) and row["teacher_context"]
    positive = {c for c, s in zip(row["teacher_candidates"], row["teacher_scores"]) if s > 0.5}
    assert positive == set(row["annotation"]["hoi"]) & set(row["teacher_candidates"])
    png = _script("show").main([str(out), "--n", "4", "--split", "test", "--output", str(tmp_path / "grid.png")])
    assert Image.open(png).size == (640, 640)


def test_cached_detections_lists_a_missing_file(tmp_path):
    from modeling_clhoi.dataset_schema import cached_detections

    report = {"missing_detections": []}
    path = tmp_path / "a.json"
    assert cached_detections(path, "a.jpg", report, 80) == {"boxes": [], "labels": [], "scores": []}
    assert report["missing_detections"] == ["a.jpg"]
    path.write_text(json.dumps({"boxes": [[1, 2, 3, 4]], "labels": [49], "scores": [0.5]}))
    assert cached_detections(path, "a.jpg", report, 80)["labels"] == [49]
    assert report["missing_detections"] == ["a.jpg"]
