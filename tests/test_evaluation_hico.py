"""HICO-DET mAP: every quirk of the official protocol on hand-computed cases, bad input, and equality
with the plain-loop port of the MATLAB code on the real test annotations."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling_clhoi import HOIVocabulary
from modeling_clhoi.evaluation import MATLAB_RECALL_THRESHOLDS, hico_det_map

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_evaluator import DEFAULT_ANNOTATIONS, load_references, perturbed_predictions  # noqa: E402
from reference_hico_eval import reference_hico_det_map  # noqa: E402

H = [0.0, 0.0, 99.0, 99.0]  # a 100 x 100 human box (+1 pixel convention)
OB = [200.0, 200.0, 299.0, 299.0]


@pytest.fixture(scope="module")
def vocab() -> HOIVocabulary:
    """3 HOIs: ride bicycle (0), hold bicycle (1), hold cup (2, rare)."""
    return HOIVocabulary.from_lists(
        ["ride", "hold"], ["person", "bicycle", "cup"], [("bicycle", "ride"), ("bicycle", "hold"), ("cup", "hold")],
        rare=[2],
    )


def gt(*pairs):
    return {"boxes_h": [p[0] for p in pairs], "boxes_o": [p[1] for p in pairs], "hoi": [p[2] for p in pairs]}


def det(*rows):
    return {
        "boxes_h": [r[0] for r in rows], "boxes_o": [r[1] for r in rows], "hoi": [r[2] for r in rows],
        "scores": [r[3] for r in rows],
    }


def matlab_ap(precisions):
    """``ap = ap + p/11`` over the 11 thresholds, in order (11 x 1/11 is 1.0000000000000002)."""
    ap = 0.0
    for p in precisions:
        ap = ap + p / 11
    return ap


ONE = matlab_ap([1.0] * 11)


def run(predictions, references, vocab, **kwargs):
    return hico_det_map(predictions, references, vocabulary=vocab, **kwargs)


def test_matlab_thresholds():
    assert MATLAB_RECALL_THRESHOLDS[3] == 0.30000000000000004
    assert MATLAB_RECALL_THRESHOLDS[6] == 0.6 and MATLAB_RECALL_THRESHOLDS[7] == 0.7
    assert np.arange(0, 1.1, 0.1)[6] != 0.6  # why the table is not np.arange
    assert MATLAB_RECALL_THRESHOLDS[0] == 0.0 and MATLAB_RECALL_THRESHOLDS[10] == 1.0


def test_perfect_detection_and_class_without_ground_truth(vocab):
    result = run([det((H, OB, 0, 0.9), (H, OB, 1, 0.3))], [gt((H, OB, 0))], vocab)
    assert result["ap"][0] == ONE == 1.0000000000000002 and result["recall"][0] == 1.0
    assert np.isnan(result["ap"][1]) and np.isnan(result["recall"][1])  # detections but no ground truth
    assert np.isnan(result["ap"][2])
    assert result["map"] == ONE and result["map_non_rare"] == ONE and np.isnan(result["map_rare"])
    assert result["n_gt"].tolist() == [1, 0, 0]


def test_duplicates_are_false_positives(vocab):
    refs = [gt((H, OB, 0)), gt((H, OB, 0))]
    preds = [det((H, OB, 0, 0.9), (H, OB, 0, 0.8)), det((H, OB, 0, 0.7))]
    # tp = [1, 0, 1]; rec = [.5, .5, 1]; prec = [1, .5, 2/3] -> 6 thresholds at p=1, 5 at p=2/3
    result = run(preds, refs, vocab)
    assert result["ap"][0] == matlab_ap([1.0] * 6 + [2 / 3] * 5)
    assert result["recall"][0] == 1.0


def test_taken_best_pair_is_a_false_positive_even_if_another_pair_matches(vocab):
    p2 = [10.0, 0.0, 109.0, 99.0]
    refs = [gt((H, OB, 0), (p2, OB, 0))]
    # the second detection overlaps pair 1 (0.923) more than pair 2 (0.887); pair 1 is taken -> FP
    preds = [det((H, OB, 0, 0.9), ([4.0, 0.0, 103.0, 99.0], OB, 0, 0.8))]
    result = run(preds, refs, vocab)
    assert result["ap"][0] == matlab_ap([1.0] * 6 + [0.0] * 5)
    assert result["recall"][0] == 0.5


def test_equal_overlaps_take_the_first_pair(vocab):
    refs = [gt((H, OB, 0), (H, OB, 0))]  # duplicated annotation, as HICO-DET has
    result = run([det((H, OB, 0, 0.9), (H, OB, 0, 0.8))], refs, vocab)
    assert result["ap"][0] == matlab_ap([1.0] * 6 + [0.0] * 5)  # 2nd detection ties -> pair 1 -> taken


def test_tied_scores_keep_input_order(vocab):
    hit, miss = (H, OB, 0, 0.5), ([400.0, 400.0, 420.0, 420.0], OB, 0, 0.5)
    refs = [gt((H, OB, 0)), gt()]
    assert run([det(hit), det(miss)], refs, vocab)["ap"][0] == ONE  # tp, fp
    refs = [gt(), gt((H, OB, 0))]
    assert run([det(miss), det(hit)], refs, vocab)["ap"][0] == matlab_ap([0.5] * 11)  # fp, tp
    # within one image too
    refs = [gt((H, OB, 0))]
    assert run([det(miss, hit)], refs, vocab)["ap"][0] == matlab_ap([0.5] * 11)
    assert run([det(hit, miss)], refs, vocab)["ap"][0] == ONE


def test_plus_one_iou_right_at_threshold(vocab):
    gt_h = [0.0, 0.0, 9.0, 9.0]  # 10 x 10 with the +1 convention
    refs = [gt((gt_h, OB, 0))]
    at = run([det(([0.0, 0.0, 9.0, 4.0], OB, 0, 0.9))], refs, vocab)  # 50 / 100 = 0.5 exactly (0.44 without +1)
    below = run([det(([0.0, 0.0, 9.0, 3.0], OB, 0, 0.9))], refs, vocab)  # 40 / 100
    assert at["ap"][0] == ONE
    assert below["ap"][0] == 0.0 and below["recall"][0] == 0.0
    touching = run([det(([9.0, 0.0, 18.0, 9.0], OB, 0, 0.9))], refs, vocab, iou_threshold=0.05)  # 1-pixel overlap
    assert touching["ap"][0] == ONE  # iw = 9 - 9 + 1 = 1 > 0: 10 / 190


@pytest.mark.parametrize("found, reached", [(3, 3), (6, 7), (7, 8)])
def test_eleven_point_thresholds_as_matlab(vocab, found, reached):
    """Recall 3/10 misses t = 0.30000000000000004; 6/10 and 7/10 reach t = 0.6 and 0.7."""
    refs = [gt((H, OB, 0)) for _ in range(10)]
    preds = [det((H, OB, 0, 0.9)) if i < found else det() for i in range(10)]
    assert run(preds, refs, vocab)["ap"][0] == matlab_ap([1.0] * reached + [0.0] * (11 - reached))


def test_images_without_predictions_or_ground_truth(vocab):
    refs = [gt((H, OB, 0)), gt(), gt((H, OB, 2))]
    preds = [det(), det((H, OB, 0, 0.4)), det((H, OB, 2, 0.9))]
    result = run(preds, refs, vocab)
    assert result["ap"][0] == 0.0 and result["recall"][0] == 0.0  # only a false positive
    assert result["ap"][2] == ONE
    assert result["map"] == ONE / 2 and result["map_rare"] == ONE and result["map_non_rare"] == 0.0
    empty = run([det(), det()], [gt(), gt()], vocab)
    assert np.isnan(empty["map"]) and np.all(np.isnan(empty["ap"]))


def test_known_object_mode(vocab):
    # image 0 holds a bicycle pair; image 1 only a cup pair, where a "ride bicycle" FP scores highest
    refs = [gt((H, OB, 0)), gt((H, OB, 2))]
    preds = [det((H, OB, 0, 0.5)), det((H, OB, 0, 0.9), (H, OB, 2, 0.9))]
    assert run(preds, refs, vocab)["ap"][0] == matlab_ap([0.5] * 11)  # fp then tp
    assert run(preds, refs, vocab, known_object=True)["ap"][0] == ONE
    # "object" in the references wins over the HOI -> object map (image 1 says it has a bicycle too)
    refs_obj = copy.deepcopy(refs)
    refs_obj[0]["object"], refs_obj[1]["object"] = [1], [1]
    assert run(preds, refs_obj, vocab, known_object=True)["ap"][0] == matlab_ap([0.5] * 11)


def test_rare_argument_and_array_inputs(vocab):
    refs = [gt((H, OB, 0), (H, OB, 1))]
    preds = [det((H, OB, 0, 0.9))]
    result = run(preds, refs, vocab, rare=[1])
    assert result["map_rare"] == 0.0 and result["map_non_rare"] == ONE
    as_numpy = [{k: np.asarray(v) for k, v in preds[0].items()}]
    as_torch = [{k: torch.as_tensor(v) for k, v in preds[0].items()}]
    for other in (as_numpy, as_torch):
        assert run(other, refs, vocab, rare=[1])["map"] == result["map"]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda p, r: p.append(det()), r"2 prediction entries for 1 reference"),
        (lambda p, r: p[0].pop("scores"), r"predictions\[0\] is missing the field 'scores'"),
        (lambda p, r: r[0].pop("boxes_o"), r"references\[0\] is missing the field 'boxes_o'"),
        (lambda p, r: p[0]["scores"].append(0.1), r"predictions\[0\]: fields have different lengths"),
        (lambda p, r: p[0]["boxes_h"].__setitem__(0, [0.0, 0.0, float("nan"), 1.0]), r"predictions\[0\]\['boxes_h'\].*NaN"),
        (lambda p, r: p[0]["scores"].__setitem__(0, float("nan")), r"predictions\[0\]\['scores'\].*NaN"),
        (lambda p, r: p[0]["boxes_o"].__setitem__(0, [5.0, 0.0, 4.0, 1.0]), r"predictions\[0\]\['boxes_o'\].*x2 < x1"),
        (lambda p, r: r[0]["boxes_h"].__setitem__(0, [0.0, 5.0, 4.0, 1.0]), r"references\[0\]\['boxes_h'\].*y2 < y1"),
        (lambda p, r: p[0]["hoi"].__setitem__(0, 3), r"predictions\[0\]\['hoi'\] holds id 3, outside \[0, 3\)"),
        (lambda p, r: r[0]["hoi"].__setitem__(0, -1), r"references\[0\]\['hoi'\] holds id -1"),
        (lambda p, r: p[0]["hoi"].__setitem__(0, 0.5), r"predictions\[0\]\['hoi'\] must hold integer ids"),
        (lambda p, r: p[0]["boxes_h"].__setitem__(0, [0.0, 0.0, 1.0]), r"predictions\[0\]\['boxes_h'\]"),
        (lambda p, r: r[0].__setitem__("object", [7]), r"references\[0\]\['object'\] holds id 7"),
    ],
)
def test_bad_input_names_image_and_field(vocab, mutate, match):
    preds = [det((H, OB, 0, 0.9))]
    refs = [gt((H, OB, 0))]
    mutate(preds, refs)
    with pytest.raises(ValueError, match=match):
        run(preds, refs, vocab)


def test_bad_input_in_a_later_image(vocab):
    preds = [det((H, OB, 0, 0.9)), det((H, OB, 0, 0.9)), det((H, OB, 0, float("inf")))]
    with pytest.raises(ValueError, match=r"predictions\[2\]\['scores'\]"):
        run(preds, [gt((H, OB, 0))] * 3, vocab)
    preds = [det((H, OB, 0, 0.9)), {"boxes_h": np.zeros((1, 3)), "boxes_o": [OB], "hoi": [0], "scores": [0.1]}]
    with pytest.raises(ValueError, match=r"predictions\[1\]\['boxes_h'\] must have shape \[n, 4\]"):
        run(preds, [gt((H, OB, 0))] * 2, vocab)


@pytest.fixture(scope="module")
def hico_subset():
    """A fixed random subset of 1,500 real test images with perturbed predictions."""
    vocabulary = HOIVocabulary.hico_det()
    references, sizes = load_references(DEFAULT_ANNOTATIONS)
    keep = np.sort(np.random.default_rng(0).choice(len(references), 1500, replace=False))
    references = [references[i] for i in keep]
    predictions = perturbed_predictions(references, [sizes[i] for i in keep], vocabulary, seed=1)
    return vocabulary, predictions, references


@pytest.mark.parametrize("known_object", [False, True])
def test_equal_to_loop_port_on_real_annotations(hico_subset, known_object):
    vocabulary, predictions, references = hico_subset
    fast = hico_det_map(predictions, references, known_object=known_object)
    reference = reference_hico_det_map(
        predictions, references, vocabulary.num_hois, vocabulary.hoi_to_object, vocabulary.rare, known_object=known_object
    )
    ref_ap = np.asarray(reference["ap"], dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(fast["ap"]), np.isnan(ref_ap))
    assert np.array_equal(fast["ap"][~np.isnan(ref_ap)], ref_ap[~np.isnan(ref_ap)])  # bit for bit
    np.testing.assert_array_equal(fast["recall"], np.asarray(reference["recall"], dtype=np.float64))
    for key in ("map", "map_rare", "map_non_rare"):
        assert fast[key] == pytest.approx(reference[key], abs=1e-12)
    assert 0.05 < fast["map"] < 0.95  # the perturbations leave a non-trivial problem
