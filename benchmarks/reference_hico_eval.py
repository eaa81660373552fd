"""A plain-loop port of the official HICO-DET evaluation, kept as the reference for the fast one.

Line by line after ho-rcnn's ``eval_one.m`` (ground truth per class and image, Known Object
filter, final recall) and ``VOCevaldet_bboxpair.m`` (stable sort by score, best pair by
``min(IoU_h, IoU_o)`` with the +1 pixel convention and first-max on ties, the taken-pair rule,
11-point AP over MATLAB's ``0:0.1:1``). Pure Python floats (IEEE doubles, like MATLAB's), no numpy
in the arithmetic. Classes without ground truth get NaN and are left out of the means, as in
``modeling_clhoi.evaluation.hico_det_map``; MATLAB has no such class on HICO-DET's test set.

It is deliberately slow and simple: ``benchmarks/bench_evaluator.py`` and
``tests/test_evaluation_hico.py`` check that the library gives the same APs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def matlab_colon(start: float, step: float, stop: float) -> list[float]:
    """MATLAB's ``start:step:stop``: the first half counts up from ``start``, the rest down from ``stop``."""
    n = int(math.floor((stop - start) / step + 1e-10))
    return [start + k * step if k <= n // 2 else stop - (n - k) * step for k in range(n + 1)]


def voc_evaldet_bboxpair(
    det_id: list[int], det_bb: list[list[float]], det_conf: list[float], gt_bbox: list[list[list[float]] | None],
    min_overlap: float,
) -> tuple[list[float], list[float], float]:
    """``[rec, prec, ap] = VOCevaldet_bboxpair(det_id, det_bb, det_conf, gt_bbox, min_overlap)``.

    ``gt_bbox`` has one entry per image (``None`` when the image has no pair of the class);
    ``det_bb`` rows and ground-truth rows are 8 numbers: human box then object box.
    """
    npos = 0
    gt_det: list[list[bool] | None] = [None] * len(gt_bbox)
    for i in range(len(gt_bbox)):
        if gt_bbox[i] is not None:
            gt_det[i] = [False] * len(gt_bbox[i])
            npos += len(gt_bbox[i])

    si = sorted(range(len(det_conf)), key=lambda d: -det_conf[d])  # stable, like MATLAB's sort
    det_id = [det_id[d] for d in si]
    det_bb = [det_bb[d] for d in si]

    nd = len(det_conf)
    tp = [0.0] * nd
    fp = [0.0] * nd
    for d in range(nd):
        i = det_id[d]
        bb_1, bb_2 = det_bb[d][0:4], det_bb[d][4:8]
        ov_max = -math.inf
        j_max = -1
        for j, gt in enumerate(gt_bbox[i] or []):
            ov_1 = _overlap(bb_1, gt[0:4])
            ov_2 = _overlap(bb_2, gt[4:8])
            min_ov = min(ov_1, ov_2)
            if min_ov > ov_max:
                ov_max = min_ov
                j_max = j
        if ov_max >= min_overlap:
            if not gt_det[i][j_max]:
                tp[d] = 1.0
                gt_det[i][j_max] = True
            else:
                fp[d] = 1.0
        else:
            fp[d] = 1.0

    rec, prec = [], []
    tp_sum = fp_sum = 0.0
    for d in range(nd):
        tp_sum += tp[d]
        fp_sum += fp[d]
        rec.append(tp_sum / npos if npos else math.nan)
        prec.append(tp_sum / (fp_sum + tp_sum))

    ap = 0.0
    for t in matlab_colon(0.0, 0.1, 1.0):
        above = [prec[d] for d in range(nd) if rec[d] >= t]
        p = max(above) if above else 0.0
        ap = ap + p / 11
    return rec, prec, ap


def _overlap(bb: Sequence[float], bbgt: Sequence[float]) -> float:
    iw = min(bb[2], bbgt[2]) - max(bb[0], bbgt[0]) + 1
    ih = min(bb[3], bbgt[3]) - max(bb[1], bbgt[1]) + 1
    if iw > 0 and ih > 0:
        ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (bbgt[2] - bbgt[0] + 1) * (bbgt[3] - bbgt[1] + 1) - iw * ih
        return iw * ih / ua
    return 0.0


def _as_list(value: Any) -> Any:
    """Numpy arrays to nested lists, so that the loops below run on Python floats either way."""
    return value.tolist() if hasattr(value, "tolist") else value


def reference_hico_det_map(
    predictions: Sequence[dict[str, Any]],
    references: Sequence[dict[str, Any]],
    num_hois: int,
    hoi_to_object: Sequence[int],
    rare: Sequence[int],
    known_object: bool = False,
    min_overlap: float = 0.5,
) -> dict[str, Any]:
    """``eval_one.m``: AP and recall per class, then the means. Inputs as for ``hico_det_map``."""
    hoi_to_object = [int(o) for o in hoi_to_object]
    predictions = [{key: _as_list(value) for key, value in pred.items()} for pred in predictions]
    references = [{key: _as_list(value) for key, value in ref.items()} for ref in references]
    num_image = len(references)
    # gt_all{hoi, image}: the pairs of each class in each image, as in eval_one.m
    gt_all: list[list[list[list[float]] | None]] = [[None] * num_image for _ in range(num_hois)]
    image_objects: list[set[int]] = []
    for i, ref in enumerate(references):
        hois = [int(h) for h in ref["hoi"]]
        objects = ref.get("object")
        objects = [int(o) for o in objects] if objects is not None else [hoi_to_object[h] for h in hois]
        image_objects.append(set(objects))
        for k, hoi in enumerate(hois):
            row = [float(x) for x in ref["boxes_h"][k]] + [float(x) for x in ref["boxes_o"][k]]
            if gt_all[hoi][i] is None:
                gt_all[hoi][i] = []
            gt_all[hoi][i].append(row)
    # all_boxes{hoi, image}: the detections of each class in each image, rows [h box, o box, score]
    all_boxes: list[list[list[list[float]] | None]] = [[None] * num_image for _ in range(num_hois)]
    for i, pred in enumerate(predictions):
        for k in range(len(pred["hoi"])):
            hoi = int(pred["hoi"][k])
            row = [float(x) for x in pred["boxes_h"][k]] + [float(x) for x in pred["boxes_o"][k]]
            if all_boxes[hoi][i] is None:
                all_boxes[hoi][i] = []
            all_boxes[hoi][i].append(row + [float(pred["scores"][k])])

    ap_all, rec_all, n_gt = [], [], []
    for hoi in range(num_hois):
        det = all_boxes[hoi]
        det_id: list[int] = []
        det_bb: list[list[float]] = []
        det_conf: list[float] = []
        for j in range(len(det)):
            if det[j] is not None:
                for row in det[j]:
                    det_id.append(j)
                    det_bb.append(row[0:8])
                    det_conf.append(row[8])
        gt = gt_all[hoi]
        if known_object:
            iid = {j for j in range(num_image) if hoi_to_object[hoi] in image_objects[j]}
            keep = [d for d in range(len(det_id)) if det_id[d] in iid]
            det_id = [det_id[d] for d in keep]
            det_bb = [det_bb[d] for d in keep]
            det_conf = [det_conf[d] for d in keep]
        rec, _, ap = voc_evaldet_bboxpair(det_id, det_bb, det_conf, gt, min_overlap)
        npos = sum(len(boxes) for boxes in gt if boxes is not None)
        n_gt.append(npos)
        if npos == 0:
            ap_all.append(math.nan)
            rec_all.append(math.nan)
        else:
            ap_all.append(ap)
            rec_all.append(rec[-1] if rec else 0.0)

    rare_set = {int(r) for r in rare}

    def mean(ids: Sequence[int]) -> float:
        values = [ap_all[c] for c in ids if not math.isnan(ap_all[c])]
        return sum(values) / len(values) if values else math.nan

    classes = range(num_hois)
    return {
        "map": mean(list(classes)),
        "map_rare": mean([c for c in classes if c in rare_set]),
        "map_non_rare": mean([c for c in classes if c not in rare_set]),
        "ap": ap_all,
        "recall": rec_all,
        "n_gt": n_gt,
    }
