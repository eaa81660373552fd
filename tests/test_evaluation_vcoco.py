"""V-COCO agent and role AP (vsrl_eval.py semantics) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from modeling_clhoi.evaluation import VCOCO_AGENT_ACTIONS, VCOCO_ROLES, vcoco_role_ap
from modeling_clhoi.evaluation.vcoco import voc_ap
from modeling_clhoi.vocabulary import VCOCO_ACTIONS

A, R = len(VCOCO_AGENT_ACTIONS), len(VCOCO_ROLES)
HOLD, HOLD_OBJ = VCOCO_AGENT_ACTIONS.index("hold"), VCOCO_ROLES.index("hold_obj")
P0, P1, P2 = [0.0, 0.0, 99.0, 99.0], [300.0, 0.0, 399.0, 99.0], [600.0, 0.0, 699.0, 99.0]
B = [100.0, 100.0, 149.0, 149.0]  # P0's cup
X = [500.0, 500.0, 549.0, 549.0]


def reference(persons):
    """persons: list of (box, hold label, hold_obj role box or None)."""
    actions = np.zeros((len(persons), A))
    role_boxes = np.full((len(persons), R, 4), np.nan)
    for i, (_, hold, role) in enumerate(persons):
        actions[i, :] = -1 if hold == -1 else 0
        actions[i, HOLD] = hold
        if role is not None:
            role_boxes[i, HOLD_OBJ] = role
    return {"boxes_h": [p[0] for p in persons], "actions": actions, "role_boxes": role_boxes}


def prediction(dets):
    """dets: list of (person box, hold score, hold_obj role box)."""
    agent_scores = np.full((len(dets), A), np.nan)
    role_scores = np.full((len(dets), R), np.nan)
    role_boxes = np.zeros((len(dets), R, 4))
    for i, (_, score, role) in enumerate(dets):
        agent_scores[i, HOLD] = score
        role_scores[i, HOLD_OBJ] = score
        role_boxes[i, HOLD_OBJ] = role
    return {"boxes_h": [d[0] for d in dets], "agent_scores": agent_scores, "role_boxes": role_boxes,
            "role_scores": role_scores}


def test_layout_matches_the_vocabulary():
    assert len(VCOCO_AGENT_ACTIONS) == 26 and len(VCOCO_ROLES) == 25
    assert [r for r in VCOCO_ROLES if r != "point_instr"] == VCOCO_ACTIONS


def test_voc_ap_is_continuous():
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc_ap(np.zeros(0), np.zeros(0)) == 0.0


def test_agent_and_role_ap_scenarios():
    refs = [reference([(P0, 1, B), (P1, 1, None), (P2, -1, None)])]
    preds = [prediction([
        (P0, 0.9, B),  # TP everywhere
        (P1, 0.8, X),  # P1 has no object: scenario 1 FP (a box was predicted), scenario 2 TP
        (P2, 0.95, B),  # matches an unannotated person: skipped
        (P1, 0.7, [0.0] * 4),  # empty role box: scenario 1 TP; scenario 2 FP (P1 already covered)
    ])]
    result = vcoco_role_ap(preds, refs)
    assert result["agent_ap"][HOLD] == pytest.approx(1.0)
    assert result["role_ap_scenario_1"][HOLD_OBJ] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-6)
    assert result["role_ap_scenario_2"][HOLD_OBJ] == pytest.approx(1.0)
    others = [a for a in range(A) if a != HOLD]
    assert np.all(np.isnan(result["agent_ap"][others]))  # no ground truth
    assert result["agent_map"] == pytest.approx(1.0 / 26)  # nansum / 26, as vsrl_eval.py prints it
    assert result["role_map_scenario_1"] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-6)
    assert result["roles"] == VCOCO_ROLES and result["actions"] == VCOCO_AGENT_ACTIONS


def test_ranking_wrong_person_and_wrong_role_box():
    refs = [reference([(P0, 1, B), (P1, 0, None)])]
    # a higher-scored detection on a person who does not hold: FP then TP -> AP 0.5
    preds = [prediction([(P1, 0.9, B), (P0, 0.5, B)])]
    assert vcoco_role_ap(preds, refs)["agent_ap"][HOLD] == pytest.approx(0.5)
    # right person, role box elsewhere: agent TP, role FP in both scenarios
    result = vcoco_role_ap([prediction([(P0, 0.9, X)])], refs)
    assert result["agent_ap"][HOLD] == pytest.approx(1.0)
    assert result["role_ap_scenario_1"][HOLD_OBJ] == 0.0 and result["role_ap_scenario_2"][HOLD_OBJ] == 0.0
    # person box below the IoU threshold
    result = vcoco_role_ap([prediction([([0.0, 0.0, 99.0, 40.0], 0.9, B)])], refs)
    assert result["agent_ap"][HOLD] == 0.0


def test_empty_images():
    refs = [reference([(P0, 1, B)]), {"boxes_h": [], "actions": [], "role_boxes": []}]
    preds = [prediction([]), prediction([(P0, 0.9, B)])]  # the only detection is in an image without people
    result = vcoco_role_ap(preds, refs)
    assert result["agent_ap"][HOLD] == 0.0 and result["role_ap_scenario_2"][HOLD_OBJ] == 0.0


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda p, r: p.append(prediction([])), "2 prediction entries for 1 reference"),
        (lambda p, r: p[0].pop("role_scores"), r"predictions\[0\] is missing the field 'role_scores'"),
        (lambda p, r: p[0].__setitem__("boxes_h", [[0.0, 0.0, np.nan, 9.0]]), r"predictions\[0\]\['boxes_h'\].*NaN"),
        (lambda p, r: r[0]["actions"].__setitem__((0, 0), 2), r"references\[0\]\['actions'\] must hold -1, 0 or 1"),
        (lambda p, r: r[0].__setitem__("role_boxes", np.zeros((1, 3, 4))), r"references\[0\]\['role_boxes'\] must have shape"),
        (lambda p, r: p[0]["role_boxes"].__setitem__((0, 0), [5.0, 0.0, 1.0, 9.0]), r"predictions\[0\]\['role_boxes'\].*x2 < x1"),
    ],
)
def test_bad_input(mutate, match):
    preds, refs = [prediction([(P0, 0.9, B)])], [reference([(P0, 1, B)])]
    mutate(preds, refs)
    with pytest.raises(ValueError, match=match):
        vcoco_role_ap(preds, refs)
