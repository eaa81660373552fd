"""The synthetic world: determinism, schema, HICO-DET validity, and truth that agrees with the drawing."""

import collections

import numpy as np
import pytest

from modeling_clhoi.dataset_schema import hoi_features
from modeling_clhoi.synthetic_world import (
    NO_INTERACTION_GAP,
    SYNTHETIC_HOIS,
    WORLD_OBJECT_IDS,
    generate_example,
    generate_examples,
)
from modeling_clhoi.vocabulary import HOIVocabulary

VOCAB = HOIVocabulary.hico_det()
NUM_SCENES = 120


@pytest.fixture(scope="module")
def scenes():
    return [generate_example(i, seed=7, image_size=256, return_truth=True) for i in range(NUM_SCENES)]


def _near(point, box, tolerance):
    x, y = point
    return box[0] - tolerance <= x <= box[2] + tolerance and box[1] - tolerance <= y <= box[3] + tolerance


def test_deterministic_and_seed_dependent():
    a, b = generate_example(3, seed=1), generate_example(3, seed=1)
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert a["annotation"] == b["annotation"] and a["detections"] == b["detections"]
    c = generate_example(3, seed=2)
    assert not np.array_equal(np.asarray(a["image"]), np.asarray(c["image"]))
    test = generate_example(3, seed=1, split="test")
    assert test["image_id"] != a["image_id"]
    assert not np.array_equal(np.asarray(a["image"]), np.asarray(test["image"]))


def test_parallel_generation_matches_serial():
    serial = list(generate_examples(4, seed=5, image_size=64, num_workers=1, progress=False))
    parallel = list(generate_examples(4, seed=5, image_size=64, num_workers=2, progress=False))
    assert [e["image"]["bytes"] for e in serial] == [e["image"]["bytes"] for e in parallel]
    assert [e["annotation"] for e in serial] == [e["annotation"] for e in parallel]


def test_schema(scenes):
    features = hoi_features()
    for example, _ in scenes[:20]:
        assert set(example) == set(features)
        encoded = features.encode_example(example)
        assert isinstance(encoded["image"]["bytes"], bytes)
        assert example["image"].size == (256, 256) == (example["width"], example["height"])
        ann, det = example["annotation"], example["detections"]
        assert len({len(v) for v in ann.values()}) == 1
        assert len(det["boxes"]) == len(det["labels"]) == len(det["scores"])
        assert det["scores"] == sorted(det["scores"], reverse=True)
        for box in ann["boxes_h"] + ann["boxes_o"] + det["boxes"]:
            assert 0 <= box[0] < box[2] <= 256 and 0 <= box[1] < box[3] <= 256
        assert set(det["labels"]) <= set(WORLD_OBJECT_IDS) | {VOCAB.person_id}


def test_every_hoi_is_a_valid_hico_det_triplet(scenes):
    assert len(SYNTHETIC_HOIS) == len(set(SYNTHETIC_HOIS)) > 40
    seen = collections.Counter()
    for example, _ in scenes:
        ann = example["annotation"]
        for hoi, obj, verb in zip(ann["hoi"], ann["object"], ann["verb"]):
            assert hoi in SYNTHETIC_HOIS
            assert VOCAB.triplets[hoi] == (obj, verb)
            seen[hoi] += 1
    assert len(seen) >= 0.85 * len(SYNTHETIC_HOIS)  # nearly every class shows up in a hundred images


def test_scenes_are_ambiguous_at_image_level(scenes):
    crowded = repeated = 0
    for _, truth in scenes:
        categories = [o["category"] for o in truth.objects]
        crowded += len(truth.people) >= 2 and len(categories) >= 2
        repeated += len(categories) != len(set(categories))
    assert crowded >= 0.3 * NUM_SCENES
    assert repeated >= 0.15 * NUM_SCENES


def test_truth_agrees_with_the_drawing(scenes):
    checked = collections.Counter()
    for _, truth in scenes:
        for pair in truth.interactions:
            person, obj = truth.people[pair["person"]], truth.objects[pair["object"]]
            joints, h, box = person["joints"], person["height"], obj["box"]
            verbs = pair["verbs"]
            if "hold" in verbs:  # a hand touches the object
                assert any(_near(joints[k], box, 0.06 * h) for k in ("hand_near", "hand_far")), pair
                checked["hold"] += 1
            if "ride" in verbs or "sit_on" in verbs:  # hips over the object, person above it
                pelvis = joints["pelvis"]
                assert box[0] <= pelvis[0] <= box[2] and pelvis[1] <= box[3]
                assert (person["box"][1] + person["box"][3]) / 2 < (box[1] + box[3]) / 2
                assert person["box"][1] < box[1]
                checked["ride"] += 1
            if "kick" in verbs:
                assert _near(joints["foot_near"], box, 0.08 * h)
                checked["kick"] += 1
            if "fly" in verbs or "watch" in verbs:  # kite or bird above the head, face turned up to it
                assert box[3] < joints["head"][1] + 0.1 * h
                checked["up"] += 1
            if verbs == ["no_interaction"]:
                p = person["box"]
                gap = np.hypot(max(p[0] - box[2], box[0] - p[2], 0), max(p[1] - box[3], box[1] - p[3], 0))
                assert gap >= NO_INTERACTION_GAP * h
                checked["none"] += 1
    assert min(checked[k] for k in ("hold", "ride", "kick", "up", "none")) >= 3, checked


def test_detections_simulate_a_detector(scenes):
    truth_boxes = detected = false_positives = 0
    for example, truth in scenes:
        boxes = [p["box"] for p in truth.people] + [o["box"] for o in truth.objects]
        truth_boxes += len(boxes)
        for det in example["detections"]["boxes"]:
            ious = [_iou(det, b) for b in boxes]
            if max(ious, default=0) >= 0.5:
                detected += 1
            else:
                false_positives += 1
    assert 0.9 * truth_boxes <= detected <= truth_boxes
    assert 0 < false_positives < 0.2 * truth_boxes


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_example(-1)
    with pytest.raises(ValueError):
        generate_example(0, image_size=8)
