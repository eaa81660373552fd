"""HICO-DET mAP, exactly as the official MATLAB protocol computes it, vectorized with numpy.

The official code is ho-rcnn's ``eval_one.m`` with ``VOCevaldet_bboxpair.m``. Per HOI class:

1. the detections of all images are sorted by score, descending, with a *stable* sort (MATLAB's
   ``sort``), so tied scores keep their input order (image order, then order within the image);
2. each detection takes the ground-truth pair of its image and class with the highest
   ``min(IoU_human, IoU_object)``; on equal overlaps the first pair wins (MATLAB updates on ``>``);
   IoU uses the +1 pixel convention (a box is ``x2 - x1 + 1`` wide);
3. it is a true positive when that overlap is ``>= 0.5`` and that pair is not yet taken, else a false
   positive, *also* when the best pair is taken and another pair would have matched;
4. AP is 11-point interpolated at MATLAB's ``0:0.1:1`` (see :data:`MATLAB_RECALL_THRESHOLDS`):
   ``ap = ap + p / 11`` in that order, ``p`` the highest precision at recall ``>= t`` or 0;
5. recall of a class is its final recall (0 without detections).

Known Object mode keeps, for each class, only the detections in images whose annotation holds an
object of that class's category.

Vectorization: since a detection's best pair does not depend on which pairs are taken, the greedy
loop reduces to "the first qualifying detection, in sorted order, of each ground-truth pair is the
true positive", which numpy computes in bulk. Every float is computed with the same operations in
the same order as the MATLAB code, so APs match a plain loop port bit for bit
(``benchmarks/reference_hico_eval.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..vocabulary import HOIVocabulary
from .validation import check_boxes, check_finite, check_ids, check_integer, check_same_length, flatten_fields


def _matlab_colon_thresholds() -> np.ndarray:
    """MATLAB's ``0:0.1:1``: the first half counts up from 0, the second half down from 1."""
    n = 10
    return np.array([k * 0.1 if k <= n // 2 else 1.0 - (n - k) * 0.1 for k in range(n + 1)], dtype=np.float64)


#: The 11 recall thresholds of the official protocol, bit-identical to MATLAB's ``0:0.1:1``
#: (``t[3] = 0.30000000000000004``; ``t[6] = 0.6`` and ``t[7] = 0.7``, unlike ``np.arange``).
MATLAB_RECALL_THRESHOLDS = _matlab_colon_thresholds()


_NO_OBJECT = np.iinfo(np.int64).min


def _flatten(entries: Sequence[Mapping[str, Any]], what: str, with_scores: bool, num_hois: int) -> dict[str, np.ndarray]:
    """Per-image dicts to validated flat arrays plus ``image`` (the image index of each row).

    References get ``object`` (:data:`_NO_OBJECT` where an image gives none: it is then derived from the HOI).
    """
    fields = {"boxes_h": (4,), "boxes_o": (4,), "hoi": ()}
    if with_scores:
        fields["scores"] = ()
    optional = None if with_scores else {"object": ((), _NO_OBJECT)}
    flat = flatten_fields(entries, what, fields, optional)
    for key in ("boxes_h", "boxes_o"):
        flat[key] = flat[key].astype(np.float64, copy=False)
        check_boxes(flat[key], flat["image"], key, what)
    flat["hoi"] = check_integer(flat["hoi"], flat["image"], "hoi", what)
    check_ids(flat["hoi"], flat["image"], "hoi", what, num_hois)
    if with_scores:
        flat["scores"] = flat["scores"].astype(np.float64, copy=False)
        check_finite(flat["scores"], flat["image"], "scores", what)
    else:
        flat["object"] = check_integer(flat["object"], flat["image"], "object", what)
    return flat


def _iou_plus_one(det: np.ndarray, det_area: np.ndarray, gt: np.ndarray, gt_area: np.ndarray) -> np.ndarray:
    """IoU of the box pairs ``(det[:, i], gt[:, i])`` (coordinate-major ``[4, n]`` arrays, areas with
    the +1 pixel convention), 0 without intersection.

    Same operations, in the same order, as ``VOCevaldet_bboxpair.m``:
    ``iw = min(x2) - max(x1) + 1``, ``ua = area_det + area_gt - iw * ih``, ``ov = iw * ih / ua``.
    """
    iw = np.minimum(det[2], gt[2])
    iw -= np.maximum(det[0], gt[0])
    iw += 1
    ih = np.minimum(det[3], gt[3])
    ih -= np.maximum(det[1], gt[1])
    ih += 1
    inter = iw * ih
    union = det_area + gt_area
    union -= inter
    hit = (iw > 0) & (ih > 0)
    return np.divide(inter, union, out=np.zeros_like(inter), where=hit)


def _area_plus_one(boxes: np.ndarray) -> np.ndarray:
    """``(x2 - x1 + 1) * (y2 - y1 + 1)`` of coordinate-major ``[4, n]`` boxes."""
    return (boxes[2] - boxes[0] + 1) * (boxes[3] - boxes[1] + 1)


#: Pairs per block in :func:`_pair_overlaps`: small enough that the temporaries stay in cache.
_PAIR_BLOCK = 1 << 14


def _pair_overlaps(det_boxes: np.ndarray, det_of_pair: np.ndarray, gt_boxes: np.ndarray, gt_of_pair: np.ndarray) -> np.ndarray:
    """IoU of the box pairs ``(det_boxes[det_of_pair[i]], gt_boxes[gt_of_pair[i]])`` (``[n, 4]`` boxes).

    Computed in blocks of :data:`_PAIR_BLOCK` pairs; each value is the same as in one pass.
    """
    det = np.ascontiguousarray(det_boxes.T)  # coordinate-major: each coordinate is one contiguous row
    gt = np.ascontiguousarray(gt_boxes.T)
    det_area, gt_area = _area_plus_one(det), _area_plus_one(gt)
    overlap = np.empty(len(det_of_pair))
    for lo in range(0, len(overlap), _PAIR_BLOCK):
        d, g = det_of_pair[lo:lo + _PAIR_BLOCK], gt_of_pair[lo:lo + _PAIR_BLOCK]
        overlap[lo:lo + _PAIR_BLOCK] = _iou_plus_one(
            np.take(det, d, axis=1), np.take(det_area, d), np.take(gt, g, axis=1), np.take(gt_area, g)
        )
    return overlap


def _best_pairs(
    det_key: np.ndarray,
    det_h: np.ndarray,
    det_o: np.ndarray,
    gt_key: np.ndarray,
    gt_h: np.ndarray,
    gt_o: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """For each detection, the ground-truth pair it matches, or -1: among the pairs with the same
    (image, class) key, the first with the highest ``min(IoU_h, IoU_o)``, when that is ``>= threshold``.

    ``gt_key`` must be sorted (stably, so pairs keep their annotation order within a key); boxes are
    ``[n, 4]``. The result of a detection does not depend on the others, so any detection order
    works; image order (the input order) makes the look-ups in ``gt_key`` cache-friendly.

    A pair below the threshold can neither match nor beat a pair that does, so the pairs with
    ``IoU_h < threshold`` are dropped before the object IoU is computed.
    """
    start = np.searchsorted(gt_key, det_key, side="left")
    count = np.searchsorted(gt_key, det_key, side="right") - start
    best_gt = np.full(len(det_key), -1, dtype=np.int64)
    # every (detection, ground truth) pair with the same key, grouped by detection, in annotation order
    det_of_pair = np.repeat(np.arange(len(det_key)), count)
    gt_of_pair = np.arange(len(det_of_pair)) + np.repeat(start - (np.cumsum(count) - count), count)
    overlap_h = _pair_overlaps(det_h, det_of_pair, gt_h, gt_of_pair)
    kept = np.flatnonzero(overlap_h >= threshold)
    det_of_pair, gt_of_pair = det_of_pair[kept], gt_of_pair[kept]
    overlap = np.minimum(overlap_h[kept], _pair_overlaps(det_o, det_of_pair, gt_o, gt_of_pair))
    kept = np.flatnonzero(overlap >= threshold)
    if not kept.size:
        return best_gt
    det_of_pair, gt_of_pair, overlap = det_of_pair[kept], gt_of_pair[kept], overlap[kept]
    segment = np.flatnonzero(np.diff(det_of_pair, prepend=-1))  # first pair of each detection
    best = np.maximum.reduceat(overlap, segment)
    # the first pair of each detection reaching its maximum (MATLAB updates on ">")
    reaches = overlap == np.repeat(best, np.diff(segment, append=len(overlap)))
    position = np.where(reaches, np.arange(len(overlap)), len(overlap))
    best_gt[det_of_pair[segment]] = gt_of_pair[np.minimum.reduceat(position, segment)]
    return best_gt


def _class_then_score_order(hoi: np.ndarray, scores: np.ndarray, num_hois: int) -> np.ndarray:
    """The stable order by class, then score descending (``np.lexsort((-scores, hoi))``), so tied
    scores keep their input order. Two stable argsorts; the second, on small integers, is a radix sort."""
    by_score = np.argsort(-scores, kind="stable")
    small = np.int16 if num_hois <= np.iinfo(np.int16).max else np.int64
    return by_score[np.argsort(hoi[by_score].astype(small), kind="stable")]


def _eleven_point_ap(
    prec: np.ndarray, rec: np.ndarray, det_hoi: np.ndarray, class_start: np.ndarray, class_end: np.ndarray
) -> np.ndarray:
    """11-point AP per class from the precision/recall of the detections sorted by class, then score.

    Recall is non-decreasing within a class, so ``rec >= t`` is a suffix of the class segment
    ``[class_start, class_end)`` and ``max(prec(rec >= t))`` a suffix maximum (0 when it is empty).
    """
    num_classes = len(class_start)
    first = np.empty((num_classes, len(MATLAB_RECALL_THRESHOLDS)), dtype=np.int64)
    for k, t in enumerate(MATLAB_RECALL_THRESHOLDS):
        first[:, k] = class_start + np.bincount(det_hoi[rec < t], minlength=num_classes)
    end = np.broadcast_to(class_end[:, None], first.shape)
    padded = np.append(prec, 0.0)  # so that an index equal to len(prec) is valid for reduceat
    suffix_max = np.maximum.reduceat(padded, np.stack([first, end], axis=-1).reshape(-1))[::2].reshape(first.shape)
    p = np.where(first < end, suffix_max, 0.0)
    ap = np.zeros(num_classes, dtype=np.float64)
    for k in range(len(MATLAB_RECALL_THRESHOLDS)):  # ap = ap + p/11, in MATLAB's order
        ap = ap + p[:, k] / 11
    return ap


def hico_det_map(
    predictions: Sequence[Mapping[str, Any]],
    references: Sequence[Mapping[str, Any]],
    *,
    rare: Sequence[int] | None = None,
    known_object: bool = False,
    vocabulary: HOIVocabulary | Mapping | str | None = None,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """HICO-DET mean average precision under the official protocol (see the module docstring).

    Args:
        predictions: one dict per image with ``"boxes_h"`` and ``"boxes_o"`` (``[n, 4]`` absolute
            ``x1, y1, x2, y2``), ``"hoi"`` (``[n]`` HOI ids) and ``"scores"`` (``[n]``): one row per
            detected triplet. Lists, numpy arrays or tensors. An image without detections has empty fields.
        references: one dict per image, aligned with ``predictions``: ``"boxes_h"``, ``"boxes_o"``,
            ``"hoi"`` per ground-truth pair, and optionally ``"object"`` (object category per pair,
            used by Known Object mode; derived from the vocabulary's HOI -> object map when absent).
            Boxes must use the same pixel convention as the predictions.
        rare: HOI ids of the rare classes; defaults to ``vocabulary.rare`` (HICO-DET: 138 classes).
        known_object: Known Object mode: for each class, only detections in images whose annotation
            holds an object of that class's category count.
        vocabulary: the HOI vocabulary (object, name or JSON path); HICO-DET when ``None``. Fixes the
            number of classes, the rare set and each HOI's object.
        iou_threshold: the minimum ``min(IoU_h, IoU_o)`` of a true positive.

    Returns:
        ``{"map", "map_rare", "map_non_rare"}`` (floats; means over the classes with ground truth,
        NaN when there is none), ``"ap"`` and ``"recall"`` (``[num_hois]`` float arrays, NaN for a
        class without ground truth) and ``"n_gt"`` (``[num_hois]`` ground-truth pairs per class).

    Raises:
        ValueError: when the lists differ in length, a field is missing or has the wrong shape,
            fields of one image differ in length, a box or score is NaN/infinite, a box has
            ``x2 < x1`` or ``y2 < y1``, or an id is out of range. The message names the image
            index and the field.
    """
    vocab = HOIVocabulary.from_any(vocabulary)
    num_hois = vocab.num_hois
    check_same_length(predictions, references)
    det = _flatten(predictions, "predictions", with_scores=True, num_hois=num_hois)
    gt = _flatten(references, "references", with_scores=False, num_hois=num_hois)
    hoi_to_object = vocab.hoi_to_object
    given = gt["object"] != _NO_OBJECT
    check_ids(gt["object"][given], gt["image"][given], "object", "references", vocab.num_objects)
    gt_object = np.where(given, gt["object"], hoi_to_object[gt["hoi"]])
    rare_ids = np.asarray(vocab.rare if rare is None else list(rare), dtype=np.int64)
    if rare_ids.size and (rare_ids.min() < 0 or rare_ids.max() >= num_hois):
        raise ValueError(f"Rare HOI ids must lie in [0, {num_hois}).")

    if known_object:
        image_has_object = np.zeros((len(references), vocab.num_objects), dtype=bool)
        image_has_object[gt["image"], gt_object] = True
        keep = image_has_object[det["image"], hoi_to_object[det["hoi"]]]
        det = {key: value[keep] for key, value in det.items()}

    n_gt = np.bincount(gt["hoi"], minlength=num_hois)
    gt_key = gt["image"] * num_hois + gt["hoi"]
    gt_order = np.argsort(gt_key, kind="stable")
    best_gt = _best_pairs(
        det["image"] * num_hois + det["hoi"], det["boxes_h"], det["boxes_o"],
        gt_key[gt_order], gt["boxes_h"][gt_order], gt["boxes_o"][gt_order], iou_threshold,
    )
    # Sort detections by class, then score descending; stable, so ties keep input order.
    order = _class_then_score_order(det["hoi"], det["scores"], num_hois)
    det_hoi, best_gt = det["hoi"][order], best_gt[order]
    # A pair is taken by the first detection (in sorted order) that matches it; later ones are FP.
    matched = np.flatnonzero(best_gt >= 0)
    taken_by = np.full(len(gt_key), len(det_hoi))  # per ground-truth pair: the first detection matching it
    np.minimum.at(taken_by, best_gt[matched], matched)
    tp = np.zeros(len(det_hoi), dtype=np.float64)
    tp[taken_by[taken_by < len(det_hoi)]] = 1.0

    class_start = np.searchsorted(det_hoi, np.arange(num_hois), side="left")
    class_end = np.searchsorted(det_hoi, np.arange(num_hois), side="right")
    tp_cum = np.concatenate([[0.0], np.cumsum(tp)])
    tp_c = tp_cum[1:] - tp_cum[class_start[det_hoi]]  # per-class cumulative TP (exact integers)
    rank = (np.arange(len(det_hoi)) - class_start[det_hoi] + 1).astype(np.float64)
    fp_c = rank - tp_c
    npos = n_gt.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = tp_c / npos[det_hoi]
        prec = tp_c / (fp_c + tp_c)
        ap = _eleven_point_ap(prec, rec, det_hoi, class_start, class_end)
        recall = np.where(class_end > class_start, (tp_cum[class_end] - tp_cum[class_start]) / npos, 0.0)
    no_gt = n_gt == 0
    ap[no_gt] = np.nan
    recall[no_gt] = np.nan

    is_rare = np.zeros(num_hois, dtype=bool)
    is_rare[rare_ids] = True
    return {
        "map": _nanmean(ap),
        "map_rare": _nanmean(ap[is_rare]),
        "map_non_rare": _nanmean(ap[~is_rare]),
        "ap": ap,
        "recall": recall,
        "n_gt": n_gt,
    }


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN when there is none (without numpy's warning)."""
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
