"""HICO-DET mAP (official protocol) as a Hugging Face ``evaluate`` metric.

    import evaluate
    metric = evaluate.load("modeling_clhoi/evaluation/hoi_map")  # or the path of this file
    for batch in batches:
        metric.add_batch(predictions=batch_predictions, references=batch_references)
    metric.compute(known_object=False)  # vocabulary=... for a non-HICO-DET vocabulary

Features (one example = one image; nested structs of sequences, which Arrow stores as is):

- ``predictions``: ``{"boxes_h": [[4 x float64]], "boxes_o": [[4 x float64]], "hoi": [int64], "scores": [float64]}``
- ``references``: ``{"boxes_h": [[4 x float64]], "boxes_o": [[4 x float64]], "hoi": [int64], "object": [int64]}``
  (``object`` may be an empty list: it is then derived from the vocabulary's HOI -> object map).

float64 keeps scores and boxes exact, so the figures equal ``hico_det_map`` on the same inputs.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

from modeling_clhoi.evaluation.hico_det import hico_det_map

_DESCRIPTION = """HICO-DET mean average precision of human-object interaction detection, computed exactly as
the official MATLAB protocol (ho-rcnn eval_one.m / VOCevaldet_bboxpair.m): per HOI class, detections
sorted by score (stable), each matched to the ground-truth pair of highest min(IoU_human, IoU_object)
(+1 pixel IoU), true positive at >= 0.5 unless that pair is taken, 11-point AP; Default and Known
Object modes; Full / Rare / Non-rare means."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per image {"boxes_h", "boxes_o" ([n, 4] absolute xyxy), "hoi" ([n]), "scores" ([n])}.
    references: per image {"boxes_h", "boxes_o", "hoi", "object" (may be empty)}.
    known_object: Known Object mode (default False).
    vocabulary: HOIVocabulary, its dict, a preset name or a JSON path (default HICO-DET).
    rare: rare HOI ids (default: the vocabulary's).
    iou_threshold: default 0.5.
Returns:
    map, map_rare, map_non_rare (floats), ap and recall (lists over HOI classes; NaN without ground truth).
"""

_CITATION = """@inproceedings{chao:wacv2018,
  author = {Yu-Wei Chao and Yunfan Liu and Xieyang Liu and Huayi Zeng and Jia Deng},
  title = {Learning to Detect Human-Object Interactions},
  booktitle = {WACV},
  year = {2018},
}"""

_BOXES = datasets.Sequence(datasets.Sequence(datasets.Value("float64"), length=4))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HoiMap(evaluate.Metric):
    """HICO-DET mAP; ``add_batch`` accumulates images, ``compute`` evaluates them all."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": {
                    "boxes_h": _BOXES, "boxes_o": _BOXES,
                    "hoi": datasets.Sequence(datasets.Value("int64")),
                    "scores": datasets.Sequence(datasets.Value("float64")),
                },
                "references": {
                    "boxes_h": _BOXES, "boxes_o": _BOXES,
                    "hoi": datasets.Sequence(datasets.Value("int64")),
                    "object": datasets.Sequence(datasets.Value("int64")),
                },
            }),
        )

    def _compute(
        self,
        predictions: list[dict[str, Any]],
        references: list[dict[str, Any]],
        known_object: bool = False,
        vocabulary: Any = None,
        rare: list[int] | None = None,
        iou_threshold: float = 0.5,
    ) -> dict[str, Any]:
        references = [
            {key: value for key, value in ref.items() if not (key == "object" and len(value) != len(ref["hoi"]))}
            for ref in references
        ]
        result = hico_det_map(
            predictions, references, rare=rare, known_object=known_object, vocabulary=vocabulary,
            iou_threshold=iou_threshold,
        )
        return {
            "map": result["map"],
            "map_rare": result["map_rare"],
            "map_non_rare": result["map_non_rare"],
            "ap": np.asarray(result["ap"]).tolist(),
            "recall": np.asarray(result["recall"]).tolist(),
        }
