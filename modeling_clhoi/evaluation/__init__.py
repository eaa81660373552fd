"""HOI detection metrics: HICO-DET mAP (official protocol), V-COCO role AP, and Trainer helpers."""

from .hico_det import MATLAB_RECALL_THRESHOLDS, hico_det_map
from .metrics import compute_hoi_metrics
from .vcoco import VCOCO_AGENT_ACTIONS, VCOCO_ROLES, vcoco_role_ap

__all__ = [
    "MATLAB_RECALL_THRESHOLDS",
    "VCOCO_AGENT_ACTIONS",
    "VCOCO_ROLES",
    "compute_hoi_metrics",
    "hico_det_map",
    "vcoco_role_ap",
]
