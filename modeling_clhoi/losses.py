"""Distillation losses of CL-HOI.

Stage 1 (context distillation) aligns the VLT's pooled context embedding with the text embedding
of the teacher's description of the image. Stage 2 (interaction distillation) teaches the ICN from
the teacher's image-level interaction scores: an image-level contrastive loss between the student's
interaction embedding and the teacher-weighted HOI text embeddings, plus a multi-label distillation
term between the pair scores pooled per image and the teacher's soft scores. Because an image-level
score is the pooled (max / log-sum-exp) score of the image's pairs, the pairs compete for it: this is
what turns image-level knowledge into instance-level detections.

Every loss is a small function of tensors; its docstring gives the formula. ``s`` below is a
positive logit scale (the inverse temperature): callers pass ``log_scale.exp()`` of a learnable
parameter, clamped as in CLIP (:func:`logit_scale_from_log`).

Supervised baselines (never the default) use :func:`pair_targets_from_annotations` and
:func:`pair_classification_loss` on the same model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .modeling_clhoi import box_iou

MAX_LOGIT_SCALE = 100.0


def logit_scale_from_log(log_scale: torch.Tensor, max_scale: float = MAX_LOGIT_SCALE) -> torch.Tensor:
    """``s = min(exp(log_scale), max_scale)``: a learnable inverse temperature kept finite, as in CLIP."""
    return log_scale.exp().clamp(max=max_scale)


def _check_pairs(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    if a.dim() != 2 or b.dim() != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must both be [B, D] with the same shape; got "
            f"{tuple(a.shape)} and {tuple(b.shape)}."
        )


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the batch between two sets of L2-normalized embeddings.

    With ``z_ij = s * a_i . b_j``::

        L = 1 / (2B) * sum_i [ -log softmax_j(z_ij)[i] - log softmax_j(z_ji)[i] ]

    Row ``i`` of ``a`` and row ``i`` of ``b`` are the positive pair; every other row of the batch is a
    negative. The minimum over unit vectors is reached when each ``a_i`` equals ``b_i`` and the pairs are
    far apart; with ``B == 1`` the loss is 0.

    Args:
        a: ``[B, D]`` L2-normalized embeddings.
        b: ``[B, D]`` L2-normalized embeddings, aligned with ``a``.
        logit_scale: positive scalar ``s`` (inverse temperature).
    """
    _check_pairs(a, b, ("a", "b"))
    logits = logit_scale * a @ b.t()
    targets = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


def context_distillation_loss(
    context_embedding: torch.Tensor, description_embeds: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Stage 1: the VLT's pooled context embedding ``c_i`` against the text embedding ``t_i`` of the
    teacher's description of image ``i``, by symmetric InfoNCE over the batch::

        L_ctx = 1 / (2B) * sum_i [ -log softmax_j(s c_i . t_j)[i] - log softmax_j(s t_i . c_j)[i] ]

    Args:
        context_embedding: ``[B, D]`` L2-normalized (``CLHOIOutput.context_embedding``).
        description_embeds: ``[B, D]`` L2-normalized text embeddings of the descriptions (frozen encoder).
        logit_scale: learnable positive scalar ``s``.
    """
    _check_pairs(context_embedding, description_embeds, ("context_embedding", "description_embeds"))
    return symmetric_info_nce(context_embedding, description_embeds, logit_scale)


def teacher_interaction_targets(
    teacher_scores: torch.Tensor, hoi_text_embeds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's image-level interaction embedding: the HOI prompt embeddings weighted by the
    teacher's P(yes)::

        u_i = normalize( sum_h p_ih * e_h )

    Args:
        teacher_scores: ``[B, H]`` teacher P(yes), 0 for non-candidates.
        hoi_text_embeds: ``[H, D]`` L2-normalized HOI prompt embeddings.

    Returns:
        ``(u, valid)``: ``u`` ``[B, D]`` (zero rows where the teacher gives no mass) and ``valid`` ``[B]``
        bool, True where ``sum_h p_ih > 0``.
    """
    if teacher_scores.dim() != 2 or hoi_text_embeds.dim() != 2 or teacher_scores.shape[1] != hoi_text_embeds.shape[0]:
        raise ValueError(
            f"teacher_scores must be [B, H] and hoi_text_embeds [H, D]; got {tuple(teacher_scores.shape)} and "
            f"{tuple(hoi_text_embeds.shape)}."
        )
    weighted = teacher_scores.to(hoi_text_embeds.dtype) @ hoi_text_embeds
    valid = teacher_scores.sum(dim=1) > 0
    return F.normalize(weighted, dim=-1), valid


def interaction_contrastive_loss(
    interaction_embeds: torch.Tensor,
    teacher_scores: torch.Tensor,
    hoi_text_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """Stage 2, contrastive term: the student's image-level interaction embedding ``v_i`` against the
    teacher-weighted HOI text embedding ``u_i`` (:func:`teacher_interaction_targets`), symmetric InfoNCE
    over the images of the batch that the teacher gives any mass::

        L_con = 1 / (2B') * sum_i [ -log softmax_j(s v_i . u_j)[i] - log softmax_j(s u_i . v_j)[i] ]

    Args:
        interaction_embeds: ``[B, D]`` L2-normalized (``CLHOIOutput.interaction_embeds``).
        teacher_scores: ``[B, H]`` dense teacher P(yes), 0 outside the candidates.
        hoi_text_embeds: ``[H, D]`` L2-normalized HOI prompt embeddings (constant).
        logit_scale: learnable positive scalar ``s``.

    Returns:
        A scalar; 0 (still attached to the graph) when fewer than two images carry teacher mass.
    """
    targets, valid = teacher_interaction_targets(teacher_scores, hoi_text_embeds)
    _check_pairs(interaction_embeds, targets, ("interaction_embeds", "teacher targets"))
    if int(valid.sum()) < 2:
        return interaction_embeds.sum() * 0.0
    return symmetric_info_nce(interaction_embeds[valid], targets[valid].detach(), logit_scale)


def multilabel_distillation_loss(
    interaction_logits: torch.Tensor, teacher_scores: torch.Tensor, candidate_mask: torch.Tensor
) -> torch.Tensor:
    """Stage 2, multi-label term: binary cross-entropy between the student's pooled image-level
    probability ``q_ih = sigmoid(z_ih)`` and the teacher's ``p_ih = P(yes)``, over the candidate HOIs ``C``
    that the student can score (at least one pair of the HOI's object)::

        L_ml = -1/|C| * sum_{(i,h) in C} [ p_ih log q_ih + (1 - p_ih) log(1 - q_ih) ]

    Its minimum over ``z`` is at ``q = p`` (the teacher's entropy; 0 for hard 0/1 targets).

    Args:
        interaction_logits: ``[B, H]`` pooled pair logits (``CLHOIOutput.interaction_logits``); entries
            at ``finfo.min`` (no pair can hold that HOI) are left out.
        teacher_scores: ``[B, H]`` teacher P(yes) in ``[0, 1]``.
        candidate_mask: ``[B, H]`` bool, True for the HOIs the teacher was asked about.
    """
    if not (interaction_logits.shape == teacher_scores.shape == candidate_mask.shape):
        raise ValueError(
            "interaction_logits, teacher_scores and candidate_mask must share one [B, H] shape; got "
            f"{tuple(interaction_logits.shape)}, {tuple(teacher_scores.shape)}, {tuple(candidate_mask.shape)}."
        )
    scorable = candidate_mask.bool() & (interaction_logits > torch.finfo(interaction_logits.dtype).min / 2)
    if not scorable.any():
        return interaction_logits.masked_fill(~scorable, 0.0).sum() * 0.0
    return F.binary_cross_entropy_with_logits(
        interaction_logits[scorable], teacher_scores[scorable].to(interaction_logits.dtype)
    )


def pair_targets_from_annotations(
    detections: Sequence[dict[str, torch.Tensor]],
    pair_image_index: torch.Tensor,
    pair_indices: torch.Tensor,
    annotations: Sequence[dict[str, torch.Tensor]],
    num_hois: int,
    iou_threshold: float = 0.5,
) -> torch.Tensor:
    """Instance labels of the model's pairs (supervised upper bound only): pair ``(h, o)`` of image ``i``
    is positive for HOI ``k`` when an annotated instance of HOI ``k`` has
    ``min(IoU(box_h, gt_h), IoU(box_o, gt_o)) >= iou_threshold``.

    Args:
        detections: per image the model's kept detections (``CLHOIOutput.detections``, normalized boxes).
        pair_image_index: ``[P]`` image of each pair.
        pair_indices: ``[P, 2]`` (human, object) indices into that image's detections.
        annotations: per image ``{"boxes_h": [n, 4], "boxes_o": [n, 4], "hoi": [n]}`` in the same
            normalized coordinates.
        num_hois: ``H``.
        iou_threshold: the matching threshold of the HICO-DET protocol.

    Returns:
        ``[P, H]`` float 0/1 targets.
    """
    targets = torch.zeros(pair_indices.shape[0], num_hois, device=pair_indices.device)
    for image, (dets, ann) in enumerate(zip(detections, annotations)):
        rows = (pair_image_index == image).nonzero(as_tuple=True)[0]
        if rows.numel() == 0 or ann["hoi"].numel() == 0:
            continue
        boxes = dets["boxes"].to(targets.device)
        iou_h = box_iou(boxes[pair_indices[rows, 0]], ann["boxes_h"].to(boxes))
        iou_o = box_iou(boxes[pair_indices[rows, 1]], ann["boxes_o"].to(boxes))
        match = torch.minimum(iou_h, iou_o) >= iou_threshold  # [pairs, instances]
        hit_rows, hit_instances = match.nonzero(as_tuple=True)
        targets[rows[hit_rows], ann["hoi"].to(targets.device).long()[hit_instances]] = 1.0
    return targets


def pair_classification_loss(pair_logits: torch.Tensor, pair_targets: torch.Tensor) -> torch.Tensor:
    """Per-pair binary cross-entropy over the HOIs each pair can hold (entries not masked to
    ``finfo.min``), used by the supervised baselines::

        L_pair = -1/|V| * sum_{(p,h) in V} [ y_ph log sigmoid(z_ph) + (1 - y_ph) log(1 - sigmoid(z_ph)) ]

    Args:
        pair_logits: ``[P, H]`` (``CLHOIOutput.pair_logits``).
        pair_targets: ``[P, H]`` targets in ``[0, 1]``.
    """
    if pair_logits.shape != pair_targets.shape:
        raise ValueError(
            f"pair_logits {tuple(pair_logits.shape)} and pair_targets {tuple(pair_targets.shape)} differ in shape."
        )
    valid = pair_logits > torch.finfo(pair_logits.dtype).min / 2
    if not valid.any():
        return pair_logits.masked_fill(~valid, 0.0).sum() * 0.0
    return F.binary_cross_entropy_with_logits(pair_logits[valid], pair_targets[valid].to(pair_logits.dtype))
