"""V-COCO agent AP and role AP (scenarios 1 and 2), as s-gupta/v-coco's ``vsrl_eval.py`` computes them.

Layout: V-COCO's own 26 actions (:data:`VCOCO_AGENT_ACTIONS`, agent AP) and their 25 roles
(:data:`VCOCO_ROLES`, role AP; named ``"<action>_<role>"`` like
:data:`modeling_clhoi.vocabulary.VCOCO_ACTIONS`, which lists the 24 of them reported in the
literature: all but ``point_instr``, which has no test instance and so gets NaN AP here).

Reproduced from ``vsrl_eval.py``: float32 boxes and scores; IoU with the +1 pixel convention; for
each detection the ground-truth person of highest IoU (first on ties), detections matched to a
person without V-COCO annotation skipped; per image, detections taken by ``argsort()[::-1]`` of the
score; a person covered once per action/role (later hits are false positives); scenario 1: when the
person has no role object, the predicted role box must be empty (all zeros or all NaN); scenario 2:
then the role box is ignored; AP is the continuous VOC AP (all points, precision envelope), not
11-point; role mAP = ``nanmean`` over roles, agent mAP = ``nansum / 26`` as the official script prints.

Deviations, where the official script would crash: an action/role without ground truth gets NaN AP;
one without detections gets AP 0; a detection in an image without any ground-truth person is a
false positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .validation import check_boxes, check_same_length, flatten_fields

#: V-COCO's actions with their roles besides the agent, in ``vsrl_eval.py``'s order.
VCOCO_ACTION_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hold", ("obj",)), ("stand", ()), ("sit", ("instr",)), ("ride", ("instr",)), ("walk", ()),
    ("look", ("obj",)), ("hit", ("instr", "obj")), ("eat", ("obj", "instr")), ("jump", ("instr",)),
    ("lay", ("instr",)), ("talk_on_phone", ("instr",)), ("carry", ("obj",)), ("throw", ("obj",)),
    ("catch", ("obj",)), ("cut", ("instr", "obj")), ("run", ()), ("work_on_computer", ("instr",)),
    ("ski", ("instr",)), ("surf", ("instr",)), ("skateboard", ("instr",)), ("smile", ()),
    ("drink", ("instr",)), ("kick", ("obj",)), ("point", ("instr",)), ("read", ("obj",)),
    ("snowboard", ("instr",)),
)
#: The 26 actions of agent AP.
VCOCO_AGENT_ACTIONS: list[str] = [action for action, _ in VCOCO_ACTION_ROLES]
#: The 25 (action, role) entries of role AP, named ``"<action>_<role>"``.
VCOCO_ROLES: list[str] = [f"{action}_{role}" for action, roles in VCOCO_ACTION_ROLES for role in roles]
#: The action index of each role.
VCOCO_ROLE_ACTION: np.ndarray = np.array(
    [a for a, (_, roles) in enumerate(VCOCO_ACTION_ROLES) for _ in roles], dtype=np.int64
)

_NUM_ACTIONS = len(VCOCO_AGENT_ACTIONS)
_NUM_ROLES = len(VCOCO_ROLES)


def _overlaps(boxes: np.ndarray, ref_boxes: np.ndarray) -> np.ndarray:
    """``vsrl_eval.get_overlap(boxes, ref_box)`` with broadcasting over leading dimensions, same
    operations in the same order (NaN boxes give NaN, which never passes a threshold)."""
    iw = np.maximum(np.minimum(boxes[..., 2], ref_boxes[..., 2]) - np.maximum(boxes[..., 0], ref_boxes[..., 0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(boxes[..., 3], ref_boxes[..., 3]) - np.maximum(boxes[..., 1], ref_boxes[..., 1]) + 1.0, 0.0)
    inters = iw * ih
    uni = (
        (ref_boxes[..., 2] - ref_boxes[..., 0] + 1.0) * (ref_boxes[..., 3] - ref_boxes[..., 1] + 1.0)
        + (boxes[..., 2] - boxes[..., 0] + 1.0) * (boxes[..., 3] - boxes[..., 1] + 1.0)
        - inters
    )
    with np.errstate(invalid="ignore"):
        return inters / uni


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> float:
    """Continuous VOC AP of ``vsrl_eval.py``: area under the precision envelope, at every recall step."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _first_hits(candidate: np.ndarray, person: np.ndarray) -> np.ndarray:
    """True for the first candidate detection (in the given order) of each person: the "covered" rule."""
    hits = np.zeros(len(candidate), dtype=bool)
    rows = np.flatnonzero(candidate)
    _, first = np.unique(person[rows], return_index=True)
    hits[rows[first]] = True
    return hits


def _ranked(scores: np.ndarray, ignore: np.ndarray) -> np.ndarray:
    """One image's detections in ``argsort()[::-1]`` order of the non-NaN scores (as ``vsrl_eval.py``
    ranks them), without those matched to a person to ignore."""
    valid = np.flatnonzero(~np.isnan(scores))
    order = valid[scores[valid].argsort()[::-1]]
    return order[~ignore[order]]


def _ap_from_lists(scores: list[np.ndarray], tps: list[np.ndarray], npos: np.float32) -> float:
    """The AP of one action or role from the per-image score / TP lists, as ``vsrl_eval.py`` does."""
    if npos == 0:
        return float("nan")
    a_sc = np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32)
    a_tp = np.concatenate(tps).astype(np.float32) if tps else np.zeros(0, np.float32)
    a_fp = (1 - a_tp).astype(np.float32)
    idx = a_sc.argsort()[::-1]
    a_fp = np.cumsum(a_fp[idx])
    a_tp = np.cumsum(a_tp[idx])
    rec = a_tp / float(npos)
    prec = a_tp / np.maximum(a_tp + a_fp, np.finfo(np.float64).eps)
    return voc_ap(rec, prec)


def _flatten(entries: Sequence[Mapping[str, Any]], what: str, fields: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    flat = flatten_fields(entries, what, fields)
    return {key: (value if key == "image" else value.astype(np.float64)) for key, value in flat.items()}


def vcoco_role_ap(
    predictions: Sequence[Mapping[str, Any]],
    references: Sequence[Mapping[str, Any]],
    *,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """V-COCO agent AP and role AP in scenarios 1 and 2 (see the module docstring).

    Args:
        predictions: one dict per image, one row per detected person:

            - ``"boxes_h"``: ``[D, 4]`` person boxes, absolute ``x1, y1, x2, y2``;
            - ``"agent_scores"``: ``[D, 26]`` score of each action of :data:`VCOCO_AGENT_ACTIONS`
              (NaN: not predicted);
            - ``"role_boxes"``: ``[D, 25, 4]`` predicted object box of each role of
              :data:`VCOCO_ROLES` (all zeros or all NaN: no object);
            - ``"role_scores"``: ``[D, 25]`` score of the person doing that action with that object
              (NaN: not predicted).
        references: one dict per image, one row per ground-truth person (every person of the image):

            - ``"boxes_h"``: ``[P, 4]``;
            - ``"actions"``: ``[P, 26]`` 1 (does the action), 0 (does not), -1 (person without V-COCO
              annotation: detections matched to it are skipped);
            - ``"role_boxes"``: ``[P, 25, 4]`` the role object's box; all NaN (or all -1, the
              official marker) when the person has no object for that role.
        iou_threshold: minimum IoU of person and of role object.

    Returns:
        ``"agent_ap"`` (``[26]``), ``"role_ap_scenario_1"``, ``"role_ap_scenario_2"`` (``[25]``)
        float arrays (NaN without ground truth), ``"agent_map"`` (``nansum / 26``),
        ``"role_map_scenario_1"``, ``"role_map_scenario_2"`` (``nanmean``), ``"actions"`` and
        ``"roles"`` (the names).

    Raises:
        ValueError: mismatched lengths, missing fields, wrong shapes, NaN or inverted person boxes,
            inverted role boxes, labels outside {-1, 0, 1}; the message names the image and field.
    """
    check_same_length(predictions, references)
    det = _flatten(predictions, "predictions", {
        "boxes_h": (4,), "agent_scores": (_NUM_ACTIONS,), "role_boxes": (_NUM_ROLES, 4), "role_scores": (_NUM_ROLES,),
    })
    gt = _flatten(references, "references", {"boxes_h": (4,), "actions": (_NUM_ACTIONS,), "role_boxes": (_NUM_ROLES, 4)})
    check_boxes(det["boxes_h"], det["image"], "boxes_h", "predictions")
    check_boxes(gt["boxes_h"], gt["image"], "boxes_h", "references")
    for flat, what in ((det, "predictions"), (gt, "references")):
        rows = flat["role_boxes"].reshape(-1, 4)
        image_of_row = np.repeat(flat["image"], _NUM_ROLES)
        absent = np.all(rows == -1, axis=1) | np.all(rows == 0, axis=1)
        check_boxes(np.where(absent[:, None], np.nan, rows), image_of_row, "role_boxes", what, allow_nan_rows=True)
    bad = ~np.isin(gt["actions"], (-1, 0, 1)).all(axis=1)
    if bad.any():
        raise ValueError(f"references[{int(gt['image'][np.flatnonzero(bad)[0]])}]['actions'] must hold -1, 0 or 1.")
    actions = gt["actions"].astype(np.int64)

    # float32 everywhere, as vsrl_eval.py stores boxes and detections
    det_boxes, gt_boxes = det["boxes_h"].astype(np.float32), gt["boxes_h"].astype(np.float32)
    det_role_boxes, gt_role_boxes = det["role_boxes"].astype(np.float32), gt["role_boxes"].astype(np.float32)
    agent_scores, role_scores = det["agent_scores"].astype(np.float32), det["role_scores"].astype(np.float32)
    gt_no_role = np.all(np.isnan(gt_role_boxes) | (gt_role_boxes == -1), axis=-1)  # [P, 25]
    pred_no_role = np.all(det_role_boxes == 0, axis=-1) | np.all(np.isnan(det_role_boxes), axis=-1)  # [D, 25]
    npos_agent = np.sum(actions == 1, axis=0).astype(np.float32)

    det_bounds = np.searchsorted(det["image"], np.arange(len(references) + 1))
    gt_bounds = np.searchsorted(gt["image"], np.arange(len(references) + 1))
    agent_lists: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(_NUM_ACTIONS)]
    role_lists = {s: [([], []) for _ in range(_NUM_ROLES)] for s in (1, 2)}
    for i in range(len(references)):
        d0, d1, g0, g1 = det_bounds[i], det_bounds[i + 1], gt_bounds[i], gt_bounds[i + 1]
        if d1 == d0:
            continue
        if g1 > g0:
            overlaps = _overlaps(gt_boxes[None, g0:g1], det_boxes[d0:d1, None])  # [D, P]
            jmax = overlaps.argmax(axis=1)
            ovmax = overlaps.max(axis=1)
            ignore = np.any(actions[g0:g1] == -1, axis=1)[jmax]
        else:  # no person in the image: every detection is a false positive
            jmax = np.zeros(d1 - d0, dtype=np.int64)
            ovmax = np.full(d1 - d0, -np.inf, dtype=np.float32)
            ignore = np.zeros(d1 - d0, dtype=bool)
        person = g0 + jmax

        for a in range(_NUM_ACTIONS):
            order = _ranked(agent_scores[d0:d1, a], ignore)
            true = (actions[person[order], a] == 1) if g1 > g0 else np.zeros(len(order), dtype=bool)
            hits = _first_hits(true & (ovmax[order] >= iou_threshold), person[order])
            agent_lists[a][0].append(agent_scores[d0:d1, a][order])
            agent_lists[a][1].append(hits)
        for r in range(_NUM_ROLES):
            a = VCOCO_ROLE_ACTION[r]
            order = _ranked(role_scores[d0:d1, r], ignore)
            if g1 > g0:
                matched = person[order]
                true = actions[matched, a] == 1
                no_gt_role = gt_no_role[matched, r]
                ov_role = _overlaps(gt_role_boxes[matched, r], det_role_boxes[d0:d1][order, r])
            else:
                true = np.zeros(len(order), dtype=bool)
                no_gt_role = np.zeros(len(order), dtype=bool)
                ov_role = np.zeros(len(order), dtype=np.float32)
            person_ok = true & (ovmax[order] >= iou_threshold)
            for scenario in (1, 2):
                if scenario == 1:
                    role_ok = np.where(no_gt_role, pred_no_role[d0:d1][order, r], ov_role >= iou_threshold)
                else:
                    role_ok = np.where(no_gt_role, True, ov_role >= iou_threshold)
                hits = _first_hits(person_ok & role_ok, person[order])
                role_lists[scenario][r][0].append(role_scores[d0:d1, r][order])
                role_lists[scenario][r][1].append(hits)

    agent_ap = np.array([_ap_from_lists(*agent_lists[a], npos_agent[a]) for a in range(_NUM_ACTIONS)], dtype=np.float32)
    result: dict[str, Any] = {
        "agent_ap": agent_ap.astype(np.float64),
        "agent_map": float(np.nansum(agent_ap) / _NUM_ACTIONS),
    }
    for scenario in (1, 2):
        role_ap = np.array(
            [_ap_from_lists(*role_lists[scenario][r], npos_agent[VCOCO_ROLE_ACTION[r]]) for r in range(_NUM_ROLES)],
            dtype=np.float32,
        )
        result[f"role_ap_scenario_{scenario}"] = role_ap.astype(np.float64)
        result[f"role_map_scenario_{scenario}"] = (
            float(np.nanmean(role_ap)) if np.any(~np.isnan(role_ap)) else float("nan")
        )
    result["actions"] = list(VCOCO_AGENT_ACTIONS)
    result["roles"] = list(VCOCO_ROLES)
    return result
