"""CL-HOI: human-object interaction detection distilled from a vision large language model.

An image goes through a CLIP-style vision encoder; the Visual Linguistic Translator (VLT) turns its patch
tokens into context tokens in the text-embedding space; the Interaction Cognition Network (ICN) builds one
token per human-object pair from the boxes' spatial relation, RoI-pooled visual features and the VLT
context, lets the pairs of an image attend to each other and classifies each pair by cosine similarity with
the frozen text embeddings of the HOI prompts. See DESIGN.md ("Data flow").
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModelForObjectDetection,
    AutoTokenizer,
    CLIPModel,
    CLIPTextModel,
    CLIPVisionModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_clhoi import WORD_LEVEL_TOKENIZER, CLHOIConfig
from .tokenization_clhoi import build_word_level_tokenizer
from .vocabulary import HOIVocabulary

Detections = list[dict[str, torch.Tensor]]
SPATIAL_FEATURES = 19
TEXT_CACHE_SIZE = 4  # vocabularies whose prompt embeddings stay cached


@dataclass
class CLHOIOutput(ModelOutput):
    """Output of [`CLHOIForInteractionDetection`].

    Args:
        pair_logits (`[P, num_hois]`): scaled cosine similarity of each pair with each HOI prompt; HOIs whose
            object is not the pair's object category hold `torch.finfo(dtype).min`. P = pairs of all images.
        pair_scores (`[P, num_hois]`): sigmoid(logit) * human_score**l * object_score**l, 0 where masked.
        pair_image_index (`[P]`): image of each pair.
        pair_indices (`[P, 2]`): (human, object) indices into that image's `detections`.
        detections (`list[dict]`): per image the kept detections ("boxes" normalized xyxy, "labels", "scores").
        interaction_logits (`[B, num_hois]`): pair logits pooled per image (max or log-sum-exp).
        interaction_embeds (`[B, projection_dim]`): L2-normalized image-level interaction embedding.
        context_embeds (`[B, num_context_queries, projection_dim]`): VLT tokens in text space.
        context_embedding (`[B, projection_dim]`): L2-normalized mean of the VLT tokens.
        hoi_text_embeds (`[num_hois, projection_dim]`): L2-normalized (cached, frozen) prompt embeddings.
        logit_scale (`[]`): the cosine-similarity scale.
    """

    pair_logits: torch.FloatTensor | None = None
    pair_scores: torch.FloatTensor | None = None
    pair_image_index: torch.LongTensor | None = None
    pair_indices: torch.LongTensor | None = None
    detections: Detections | None = None
    interaction_logits: torch.FloatTensor | None = None
    interaction_embeds: torch.FloatTensor | None = None
    context_embeds: torch.FloatTensor | None = None
    context_embedding: torch.FloatTensor | None = None
    hoi_text_embeds: torch.FloatTensor | None = None
    logit_scale: torch.FloatTensor | None = None


# ---------------------------------------------------------------------------------------------- box utilities
def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of xyxy boxes ``[..., 4]``."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """``[N, M]`` IoU of two sets of xyxy boxes."""
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union.clamp(min=1e-12)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Class-wise greedy non-maximum suppression in pure torch; kept indices, highest score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    same_class = classes[order][:, None] == classes[order][None, :]
    overlaps = ((iou > iou_threshold) & same_class).triu(diagonal=1).cpu()
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def pairwise_spatial_encoding(boxes_h: torch.Tensor, boxes_o: torch.Tensor) -> torch.Tensor:
    """``[P, SPATIAL_FEATURES]`` features of the spatial relation between human and object boxes (normalized xyxy).

    Centres and sizes of both boxes, the object's offset in units of the human's size, log size ratios,
    IoU, the intersection over each box, the centre distance and the union's size.
    """
    eps = 1e-3
    wh_h = (boxes_h[:, 2:] - boxes_h[:, :2]).clamp(min=eps)
    wh_o = (boxes_o[:, 2:] - boxes_o[:, :2]).clamp(min=eps)
    c_h = (boxes_h[:, :2] + boxes_h[:, 2:]) / 2
    c_o = (boxes_o[:, :2] + boxes_o[:, 2:]) / 2
    lt = torch.maximum(boxes_h[:, :2], boxes_o[:, :2])
    rb = torch.minimum(boxes_h[:, 2:], boxes_o[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_h, area_o = wh_h.prod(-1), wh_o.prod(-1)
    iou = inter / (area_h + area_o - inter).clamp(min=eps * eps)
    union_wh = torch.maximum(boxes_h[:, 2:], boxes_o[:, 2:]) - torch.minimum(boxes_h[:, :2], boxes_o[:, :2])
    offset = (c_o - c_h) / wh_h
    return torch.cat(
        [
            c_h, wh_h, c_o, wh_o, offset, torch.log(wh_o / wh_h),
            torch.stack([torch.log(area_o / area_h), iou, inter / area_h, inter / area_o,
                         (c_o - c_h).norm(dim=-1)], dim=-1),
            union_wh,
        ],
        dim=-1,
    )


def roi_pool(feature_map: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of ``size x size`` bilinear samples inside each box (``grid_sample``, no torchvision).

    Args:
        feature_map: ``[B, C, H, W]``.
        boxes: ``[B, M, 4]`` normalized xyxy boxes per image (padding boxes are fine).
    Returns:
        ``[B, M, C]``.
    """
    batch, num_boxes = boxes.shape[:2]
    steps = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    x = boxes[..., 0:1] + steps * (boxes[..., 2:3] - boxes[..., 0:1])  # [B, M, size]
    y = boxes[..., 1:2] + steps * (boxes[..., 3:4] - boxes[..., 1:2])
    grid = torch.stack(torch.broadcast_tensors(x[:, :, None, :], y[:, :, :, None]), dim=-1)  # [B, M, s, s, 2]
    grid = grid.reshape(batch, num_boxes * size, size, 2) * 2 - 1
    sampled = F.grid_sample(feature_map, grid.to(feature_map.dtype), mode="bilinear", align_corners=False)
    return sampled.view(batch, -1, num_boxes, size * size).mean(-1).transpose(1, 2)


# ---------------------------------------------------------------------------------------------- layers
class CLHOIAttention(nn.Module):
    """Multi-head attention with a key padding mask (True = ignore)."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(
        self, query: torch.Tensor, key_value: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            self._heads(self.q_proj(query)), self._heads(self.k_proj(key_value)), self._heads(self.v_proj(key_value)),
            attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(query.shape))


class CLHOILayer(nn.Module):
    """Pre-norm transformer layer: self-attention, optional cross-attention, MLP."""

    def __init__(self, hidden_size: int, num_heads: int, cross_attention: bool, dropout: float = 0.0):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(hidden_size)
        self.self_attn = CLHOIAttention(hidden_size, num_heads, dropout)
        self.cross_attn_norm = nn.LayerNorm(hidden_size) if cross_attention else None
        self.cross_attn = CLHOIAttention(hidden_size, num_heads, dropout) if cross_attention else None
        self.mlp_norm = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, 4 * hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * hidden_size, hidden_size)
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
    ) -> torch.Tensor:
        normed = self.self_attn_norm(hidden_states)
        hidden_states = hidden_states + self.self_attn(normed, normed, padding_mask)
        if self.cross_attn is not None:
            hidden_states = hidden_states + self.cross_attn(self.cross_attn_norm(hidden_states), memory)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class VisualLinguisticTranslator(nn.Module):
    """VLT: learnable queries cross-attend to the patch tokens and come out in the text-embedding space
    ("visual information in linguistic form")."""

    def __init__(self, config: CLHOIConfig):
        super().__init__()
        hidden = config.hidden_size
        self.patch_proj = nn.Linear(config.vision_config.hidden_size, hidden)
        self.patch_norm = nn.LayerNorm(hidden)
        self.queries = nn.Parameter(torch.zeros(config.num_context_queries, hidden))
        self.layers = nn.ModuleList(
            [CLHOILayer(hidden, config.vlt_heads, cross_attention=True, dropout=config.dropout)
             for _ in range(config.vlt_layers)]
        )
        self.norm = nn.LayerNorm(hidden)
        self.text_projection = nn.Linear(hidden, config.projection_dim)

    def forward(self, patch_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``patch_tokens [B, N, Dv]`` -> (context tokens ``[B, Q, hidden]``, in text space ``[B, Q, proj]``)."""
        memory = self.patch_norm(self.patch_proj(patch_tokens))
        hidden_states = self.queries.unsqueeze(0).expand(patch_tokens.shape[0], -1, -1)
        for layer in self.layers:
            hidden_states = layer(hidden_states, memory=memory)
        hidden_states = self.norm(hidden_states)
        return hidden_states, self.text_projection(hidden_states)


class InteractionCognitionNetwork(nn.Module):
    """ICN: one token per human-object pair from (a) the spatial relation of the boxes, (b) RoI features of
    human, object and union (+ detector instance features), (c) cross-attention to the VLT context; transformer
    layers across the pairs of each image; projection into the text-embedding space."""

    def __init__(self, config: CLHOIConfig, detector_hidden_size: int | None = None):
        super().__init__()
        hidden = config.hidden_size
        self.roi_size = config.roi_size
        self.spatial_encoder = (
            nn.Sequential(nn.Linear(SPATIAL_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            if config.use_spatial_relation else None
        )
        if config.use_visual_relation:
            self.visual_proj = nn.Linear(config.vision_config.hidden_size, hidden)
            self.visual_fuse = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.detector_feature_proj = nn.Linear(detector_hidden_size, hidden) if detector_hidden_size else None
        else:
            self.visual_proj = self.visual_fuse = self.detector_feature_proj = None
        self.context_proj = nn.Linear(hidden, hidden) if config.use_context_relation else None
        self.input_norm = nn.LayerNorm(hidden)
        self.layers = nn.ModuleList(
            [CLHOILayer(hidden, config.icn_heads, cross_attention=config.use_context_relation, dropout=config.dropout)
             for _ in range(config.icn_layers)]
        )
        self.norm = nn.LayerNorm(hidden)
        self.text_projection = nn.Linear(hidden, config.projection_dim)

    def _visual_tokens(
        self,
        feature_map: torch.Tensor,
        instance_boxes: torch.Tensor,
        instance_features: torch.Tensor | None,
        pair_boxes: tuple[torch.Tensor, torch.Tensor],
        index: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """``[P, hidden]`` fused RoI features of human, object and union boxes."""
        boxes_h, boxes_o = pair_boxes
        union = torch.cat([torch.minimum(boxes_h[:, :2], boxes_o[:, :2]),
                           torch.maximum(boxes_h[:, 2:], boxes_o[:, 2:])], dim=-1)
        batch, max_instances = instance_boxes.shape[:2]
        padded_union = instance_boxes.new_zeros(batch, index["max_pairs"], 4)
        padded_union[index["image"], index["position"]] = union
        pooled = roi_pool(feature_map, torch.cat([instance_boxes, padded_union], dim=1), self.roi_size)
        pooled = self.visual_proj(pooled)
        instances = pooled[:, :max_instances]
        if instance_features is not None and self.detector_feature_proj is not None:
            instances = instances + self.detector_feature_proj(instance_features)
        human = instances[index["image"], index["human"]]
        obj = instances[index["image"], index["object"]]
        union_features = pooled[:, max_instances:][index["image"], index["position"]]
        return self.visual_fuse(torch.cat([human, obj, union_features], dim=-1))

    def forward(
        self,
        feature_map: torch.Tensor,
        context_tokens: torch.Tensor,
        instance_boxes: torch.Tensor,
        instance_features: torch.Tensor | None,
        index: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Pair embeddings ``[P, projection_dim]`` (not normalized).

        Args:
            feature_map: ``[B, Dv, h, w]`` patch tokens as a map.
            context_tokens: ``[B, Q, hidden]`` VLT tokens.
            instance_boxes: ``[B, N, 4]`` kept boxes per image, zero-padded.
            instance_features: ``[B, N, Dd]`` detector features of the kept boxes or None.
            index: "image", "human", "object", "position" (``[P]`` each) and "max_pairs" (int).
        """
        image, position = index["image"], index["position"]
        boxes_h = instance_boxes[image, index["human"]]
        boxes_o = instance_boxes[image, index["object"]]
        tokens = 0
        if self.spatial_encoder is not None:
            tokens = tokens + self.spatial_encoder(pairwise_spatial_encoding(boxes_h, boxes_o))
        if self.visual_proj is not None:
            tokens = tokens + self._visual_tokens(feature_map, instance_boxes, instance_features, (boxes_h, boxes_o), index)
        tokens = self.input_norm(tokens)

        batch = feature_map.shape[0]
        padded = tokens.new_zeros(batch, index["max_pairs"], tokens.shape[-1])
        padded[image, position] = tokens
        padding_mask = torch.ones(batch, index["max_pairs"], dtype=torch.bool, device=tokens.device)
        padding_mask[image, position] = False
        # Images without pairs attend to one padding slot (discarded) so attention never sees an empty row.
        padding_mask[:, 0] &= ~padding_mask.all(dim=1)
        memory = self.context_proj(context_tokens) if self.context_proj is not None else None
        for layer in self.layers:
            padded = layer(padded, padding_mask, memory)
        return self.text_projection(self.norm(padded[image, position]))


# ---------------------------------------------------------------------------------------------- model
class CLHOIPreTrainedModel(PreTrainedModel):
    config_class = CLHOIConfig
    config: CLHOIConfig
    base_model_prefix = "clhoi"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["CLHOILayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, VisualLinguisticTranslator):
            init.normal_(module.queries, mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, CLHOIForInteractionDetection):
            init.constant_(module.logit_scale, self.config.logit_scale_init)


class CLHOIForInteractionDetection(CLHOIPreTrainedModel):
    """CL-HOI: detector (optional, frozen) + CLIP-style vision encoder + VLT + ICN, classifying human-object
    pairs against frozen text embeddings of the vocabulary's HOI prompts."""

    def __init__(self, config: CLHOIConfig):
        super().__init__(config)
        self.detector = (
            AutoModelForObjectDetection.from_config(config.detector_config) if config.detector_config is not None else None
        )
        self.vision_encoder = CLIPVisionModel(config.vision_config)
        self.text_encoder = CLIPTextModel(config.text_config)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.vlt = VisualLinguisticTranslator(config)
        detector_hidden = None
        if config.detector_config is not None:
            detector_hidden = getattr(config.detector_config, "d_model", None) or getattr(
                config.detector_config, "hidden_size", None
            )
        self.icn = InteractionCognitionNetwork(config, detector_hidden)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))

        for frozen in (self.detector, self.text_encoder, self.text_projection):
            if frozen is not None:
                frozen.requires_grad_(False)
        if config.freeze_vision_encoder:
            self.vision_encoder.requires_grad_(False)
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._text_cache: dict[tuple, torch.Tensor] = {}
        self._vocabulary_cache: tuple[int, HOIVocabulary] | None = None
        self.post_init()

    # ------------------------------------------------------------------ vocabulary and text side
    @property
    def vocabulary(self) -> HOIVocabulary:
        """The model's HOI vocabulary (from its config)."""
        key = id(self.config.vocabulary)
        if self._vocabulary_cache is None or self._vocabulary_cache[0] != key:
            self._vocabulary_cache = (key, self.config.get_vocabulary())
        return self._vocabulary_cache[1]

    def get_tokenizer(self) -> PreTrainedTokenizerBase:
        """The text encoder's tokenizer: set explicitly, built-in word level, a path/Hub id, or the checkpoint."""
        if self._tokenizer is None:
            source = self.config.text_tokenizer
            if source == WORD_LEVEL_TOKENIZER:
                self._tokenizer = build_word_level_tokenizer(self.config.text_config.max_position_embeddings)
            else:
                source = source if source is not None else self.name_or_path
                if not source:
                    raise ValueError("config.text_tokenizer is None and the model was not loaded from a folder.")
                self._tokenizer = AutoTokenizer.from_pretrained(source)
        return self._tokenizer

    def set_vocabulary(
        self, vocabulary: HOIVocabulary | dict | str, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        """Use another HOI vocabulary (open vocabulary: no retraining) and recompute the prompt embeddings."""
        if tokenizer is not None:
            self._tokenizer = tokenizer
            self._text_cache.clear()
        self.config.vocabulary = HOIVocabulary.from_any(vocabulary).to_dict()
        self.get_hoi_text_embeds()

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, projection_dim]`` L2-normalized embeddings of tokenized texts (frozen text encoder)."""
        with torch.no_grad():
            pooled = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).pooler_output
            return F.normalize(self.text_projection(pooled), dim=-1)

    def get_hoi_text_embeds(self) -> torch.Tensor:
        """``[num_hois, projection_dim]`` L2-normalized prompt embeddings, computed once per vocabulary (the last
        few vocabularies stay cached, so switching back and forth is free)."""
        prompts = tuple(self.vocabulary.prompts)
        weight = self.text_projection.weight
        key = (prompts, weight.device, weight.dtype)
        if key not in self._text_cache:
            if len(self._text_cache) >= TEXT_CACHE_SIZE:
                self._text_cache.pop(next(iter(self._text_cache)))
            tokenizer = self.get_tokenizer()
            embeds = []
            for start in range(0, len(prompts), 256):
                batch = tokenizer(list(prompts[start:start + 256]), padding=True, truncation=True, return_tensors="pt")
                embeds.append(self.get_text_features(batch["input_ids"].to(weight.device),
                                                     batch["attention_mask"].to(weight.device)))
            self._text_cache[key] = torch.cat(embeds)
        return self._text_cache[key]

    def load_state_dict(self, *args: Any, **kwargs: Any):
        # New text-encoder weights make cached prompt embeddings stale.
        self._text_cache.clear()
        return super().load_state_dict(*args, **kwargs)

    def train(self, mode: bool = True) -> CLHOIForInteractionDetection:
        """Train mode for the student; the frozen detector and text encoder always stay in eval mode."""
        super().train(mode)
        for frozen in (self.detector, self.text_encoder):
            if frozen is not None:
                frozen.eval()
        return self

    # ------------------------------------------------------------------ detections
    def _detector_label_to_object(self, device: torch.device) -> torch.Tensor:
        """``[num_detector_labels]`` vocabulary object id of each detector label (-1: not in the vocabulary)."""
        det_config = self.config.detector_config
        num_labels = len(det_config.id2label)
        mapping = torch.full((num_labels,), -1, dtype=torch.long)
        if self.config.detector_label_map is not None:
            for det_id, obj_id in self.config.detector_label_map.items():
                mapping[int(det_id)] = int(obj_id)
        else:
            def norm(name: str) -> str:
                return name.lower().replace(" ", "_").replace("-", "_")

            objects = {norm(o): i for i, o in enumerate(self.vocabulary.objects)}
            for det_id, name in det_config.id2label.items():
                mapping[int(det_id)] = objects.get(norm(str(name)), -1)
        return mapping.to(device)

    def _run_detector(self, pixel_values: torch.Tensor) -> tuple[Detections, list[torch.Tensor] | None]:
        """Run the frozen detector; detections in vocabulary object ids plus per-query features."""
        with torch.no_grad():
            out = self.detector(pixel_values=pixel_values)
        logits = out.logits
        num_labels = len(self.config.detector_config.id2label)
        # DETR-style heads have a trailing "no object" class and softmax; others use sigmoid.
        probs = logits.softmax(-1)[..., :-1] if logits.shape[-1] == num_labels + 1 else logits.sigmoid()
        scores, det_labels = probs.max(-1)
        cx, cy, w, h = out.pred_boxes.unbind(-1)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1).clamp(0, 1)
        labels = self._detector_label_to_object(logits.device)[det_labels]
        features = getattr(out, "last_hidden_state", None)
        proj = self.icn.detector_feature_proj
        if features is not None and (features.shape[:2] != logits.shape[:2] or proj is None
                                     or features.shape[-1] != proj.in_features):
            features = None
        detections, instance_features = [], []
        for i in range(len(logits)):
            valid = labels[i] >= 0
            detections.append({"boxes": boxes[i][valid], "labels": labels[i][valid], "scores": scores[i][valid]})
            if features is not None:
                instance_features.append(features[i][valid])
        return detections, (instance_features if features is not None else None)

    def _check_detections(self, detections: Any, batch_size: int, device: torch.device) -> Detections:
        if not isinstance(detections, (list, tuple)) or len(detections) != batch_size:
            raise ValueError(f"detections must be a list of {batch_size} dicts (one per image), got {type(detections)}.")
        checked = []
        num_objects = self.vocabulary.num_objects
        for i, det in enumerate(detections):
            if not isinstance(det, Mapping) or not {"boxes", "labels", "scores"} <= set(det):
                raise ValueError(f"detections[{i}] must be a dict with 'boxes', 'labels' and 'scores'.")
            boxes = torch.as_tensor(det["boxes"], dtype=torch.float32, device=device).reshape(-1, 4)
            labels = torch.as_tensor(det["labels"], dtype=torch.long, device=device).reshape(-1)
            scores = torch.as_tensor(det["scores"], dtype=torch.float32, device=device).reshape(-1)
            if not len(boxes) == len(labels) == len(scores):
                raise ValueError(f"detections[{i}]: {len(boxes)} boxes, {len(labels)} labels, {len(scores)} scores.")
            if len(boxes) and (boxes.min() < -1e-4 or boxes.max() > 1 + 1e-4 or not torch.isfinite(boxes).all()):
                raise ValueError(f"detections[{i}]['boxes'] must be normalized xyxy in [0, 1].")
            if len(labels) and (labels.min() < 0 or labels.max() >= num_objects):
                raise ValueError(f"detections[{i}]['labels'] must be vocabulary object ids in [0, {num_objects}).")
            checked.append({"boxes": boxes.clamp(0, 1), "labels": labels, "scores": scores})
        return checked

    def _filter(self, det: dict[str, torch.Tensor]) -> torch.Tensor:
        """Indices of kept detections: score thresholds, class-wise NMS, top humans then top objects."""
        config, person = self.config, self.vocabulary.person_id
        is_human = det["labels"] == person
        threshold = torch.where(is_human, config.human_score_threshold, config.object_score_threshold)
        candidates = (det["scores"] >= threshold).nonzero().squeeze(1)
        kept = candidates[batched_nms(det["boxes"][candidates], det["scores"][candidates],
                                      det["labels"][candidates], config.nms_threshold)]
        humans = kept[is_human[kept]][: config.max_humans]
        objects = kept[~is_human[kept]][: config.max_objects]
        return torch.cat([humans, objects])

    def _pair_index(self, kept: Detections, device: torch.device) -> dict[str, Any]:
        """Every kept human with every other kept instance of its image, as flat index tensors."""
        person = self.vocabulary.person_id
        images, humans, objects, positions = [], [], [], []
        for i, det in enumerate(kept):
            n = len(det["labels"])
            num_humans = int((det["labels"] == person).sum())
            h, o = torch.meshgrid(torch.arange(num_humans, device=device), torch.arange(n, device=device), indexing="ij")
            valid = h != o
            h, o = h[valid], o[valid]
            images.append(torch.full_like(h, i))
            humans.append(h)
            objects.append(o)
            positions.append(torch.arange(len(h), device=device))
        index = {key: torch.cat(values) for key, values in
                 (("image", images), ("human", humans), ("object", objects), ("position", positions))}
        index["max_pairs"] = max((len(p) for p in positions), default=0)
        return index

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        pixel_values: torch.Tensor,
        detections: Detections | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> CLHOIOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, image_size, image_size)`):
                Images from [`CLHOIImageProcessor`].
            detections (`list[dict]`, *optional*):
                Per image `{"boxes": [n, 4] normalized xyxy in [0, 1], "labels": [n] vocabulary object ids,
                "scores": [n]}`. Without it the model runs its detector (`config.detector_config`).
            return_dict (`bool`, *optional*): return a [`CLHOIOutput`] (default) or a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if pixel_values is None or pixel_values.dim() != 4:
            raise ValueError("pixel_values must be a [batch, 3, height, width] tensor.")
        size = self.config.image_size
        if tuple(pixel_values.shape[1:]) != (self.config.vision_config.num_channels, size, size):
            raise ValueError(
                f"pixel_values must have shape [batch, {self.config.vision_config.num_channels}, {size}, {size}] "
                f"(use CLHOIImageProcessor), got {list(pixel_values.shape)}."
            )
        batch, device = pixel_values.shape[0], pixel_values.device
        instance_features = None
        if detections is not None:
            raw = self._check_detections(detections, batch, device)
        elif self.detector is not None:
            raw, instance_features = self._run_detector(pixel_values)
        else:
            raise ValueError(
                "No detections: pass `detections=` (per image boxes/labels/scores) or build the model with a "
                "detector (`detector_config`, e.g. CLHOIForInteractionDetection.from_pretrained_components(detector=...))."
            )

        keep = [self._filter(det) for det in raw]
        kept = [{k: v[idx] for k, v in det.items()} for det, idx in zip(raw, keep)]
        if instance_features is not None:
            instance_features = [f[idx] for f, idx in zip(instance_features, keep)]

        # Vision encoder -> patch tokens and VLT context.
        vision = self.vision_encoder(pixel_values=pixel_values)
        patch_tokens = self.vision_encoder.post_layernorm(vision.last_hidden_state[:, 1:])
        side = int(math.isqrt(patch_tokens.shape[1]))
        feature_map = patch_tokens.transpose(1, 2).reshape(batch, -1, side, side)
        context_tokens, context_embeds = self.vlt(patch_tokens)
        context_embedding = F.normalize(context_embeds.mean(1), dim=-1)

        text_embeds = self.get_hoi_text_embeds().to(context_embeds.dtype)
        logit_scale = self.logit_scale.exp().clamp(max=100)
        index = self._pair_index(kept, device)
        num_pairs = len(index["image"])
        dtype_min = torch.finfo(context_embeds.dtype).min
        if num_pairs:
            max_instances = max(len(d["labels"]) for d in kept)
            instance_boxes = context_embeds.new_zeros(batch, max_instances, 4)
            padded_features = None
            if instance_features is not None:
                padded_features = context_embeds.new_zeros(batch, max_instances, instance_features[0].shape[-1])
            for i, det in enumerate(kept):
                instance_boxes[i, : len(det["boxes"])] = det["boxes"]
                if padded_features is not None:
                    padded_features[i, : len(det["boxes"])] = instance_features[i]
            pair_embeds = F.normalize(self.icn(feature_map, context_tokens, instance_boxes, padded_features, index), dim=-1)
            pair_logits = logit_scale * pair_embeds @ text_embeds.T
        else:
            pair_embeds = context_embeds.new_zeros(0, context_embeds.shape[-1])
            pair_logits = context_embeds.new_zeros(0, len(text_embeds))

        # Mask HOIs whose object is not the pair's object; weight by detection confidence.
        image, human, obj = index["image"], index["human"], index["object"]
        labels = torch.cat([d["labels"] for d in kept])
        scores = torch.cat([d["scores"] for d in kept])
        offsets = torch.tensor([0] + [len(d["labels"]) for d in kept], device=device).cumsum(0)[:-1]
        object_labels, human_scores, object_scores = labels[offsets[image] + obj], scores[offsets[image] + human], \
            scores[offsets[image] + obj]
        hoi_mask = torch.as_tensor(self.vocabulary.object_hoi_mask, device=device)[object_labels]
        pair_logits = pair_logits.masked_fill(~hoi_mask, dtype_min)
        confidence = (human_scores * object_scores).pow(self.config.score_power).to(pair_logits.dtype)
        pair_scores = torch.where(hoi_mask, pair_logits.sigmoid() * confidence[:, None], 0.0)

        interaction_logits = self._pool(pair_logits, image, batch)
        interaction_embeds = self._interaction_embeds(pair_logits, pair_embeds, image, batch, context_embedding)

        output = CLHOIOutput(
            pair_logits=pair_logits,
            pair_scores=pair_scores,
            pair_image_index=image,
            pair_indices=torch.stack([human, obj], dim=-1),
            detections=kept,
            interaction_logits=interaction_logits,
            interaction_embeds=interaction_embeds,
            context_embeds=context_embeds,
            context_embedding=context_embedding,
            hoi_text_embeds=text_embeds,
            logit_scale=logit_scale,
        )
        return output if return_dict else output.to_tuple()

    def _pool(self, pair_logits: torch.Tensor, image: torch.Tensor, batch: int) -> torch.Tensor:
        """Image-level logits ``[B, num_hois]``: max or log-sum-exp over each image's pairs."""
        dtype_min = torch.finfo(pair_logits.dtype).min
        scatter_index = image[:, None].expand_as(pair_logits)
        maximum = pair_logits.new_full((batch, pair_logits.shape[1]), dtype_min).scatter_reduce(
            0, scatter_index, pair_logits, reduce="amax", include_self=True
        )
        if self.config.pooling == "max":
            return maximum
        summed = pair_logits.new_zeros(maximum.shape).index_add(0, image, (pair_logits - maximum.detach()[image]).exp())
        lse = maximum.detach() + summed.clamp(min=1e-30).log()
        return torch.where(maximum > dtype_min, lse, dtype_min)

    @staticmethod
    def _interaction_embeds(
        pair_logits: torch.Tensor,
        pair_embeds: torch.Tensor,
        image: torch.Tensor,
        batch: int,
        fallback: torch.Tensor,
    ) -> torch.Tensor:
        """Image-level interaction embedding: pair embeddings weighted by a softmax (per image) of each pair's
        best HOI logit, so interacting pairs dominate. Our choice: images without pairs fall back to the
        context embedding."""
        if len(image) == 0:
            return fallback
        best = pair_logits.max(-1).values
        image_max = best.new_full((batch,), torch.finfo(best.dtype).min).scatter_reduce(
            0, image, best, reduce="amax", include_self=True
        )
        weights = (best - image_max[image]).exp()
        norm = weights.new_zeros(batch).index_add(0, image, weights)
        pooled = pair_embeds.new_zeros(batch, pair_embeds.shape[-1]).index_add(
            0, image, pair_embeds * (weights / norm[image])[:, None]
        )
        has_pairs = torch.zeros(batch, dtype=torch.bool, device=image.device)
        has_pairs[image] = True
        return F.normalize(torch.where(has_pairs[:, None], pooled, fallback), dim=-1)

    # ------------------------------------------------------------------ saving and assembling
    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> CLHOIForInteractionDetection:
        """`PreTrainedModel.from_pretrained`, with CPU weights copied to aligned memory (see below)."""
        model = super().from_pretrained(*args, **kwargs)
        # Weights memory-mapped from safetensors sit at 8-byte aligned addresses, which changes the summation
        # order of CPU BLAS kernels; aligned copies make a loaded model reproduce the saved one bit for bit.
        with torch.no_grad():
            for param in model.parameters():
                if param.device.type == "cpu" and param.data_ptr() % 64:
                    param.data = param.data.clone()
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """Save weights (safetensors), config and code; a non-built-in tokenizer is saved beside them."""
        source = self.config.text_tokenizer
        if source == WORD_LEVEL_TOKENIZER:
            return super().save_pretrained(save_directory, *args, **kwargs)
        os.makedirs(save_directory, exist_ok=True)
        self.get_tokenizer().save_pretrained(save_directory)
        self.config.text_tokenizer = None  # the checkpoint folder itself
        try:
            return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.config.text_tokenizer = source

    @classmethod
    def from_pretrained_components(
        cls,
        detector: str | os.PathLike | PreTrainedModel | None = None,
        clip: str | os.PathLike | CLIPModel | None = None,
        vocabulary: HOIVocabulary | dict | str | None = None,
        tokenizer: str | os.PathLike | PreTrainedTokenizerBase | None = None,
        **config_kwargs: Any,
    ) -> CLHOIForInteractionDetection:
        """Assemble CL-HOI from pretrained parts: any object detector and a CLIP model (paths or Hub ids).

        Args:
            detector: an `AutoModelForObjectDetection` checkpoint (or model); None: pass detections to forward.
            clip: a `CLIPModel` checkpoint (or model) for the vision and text towers and the text projection.
            vocabulary: HOI vocabulary (default HICO-DET).
            tokenizer: the text tokenizer; defaults to the one in the `clip` folder.
            config_kwargs: other `CLHOIConfig` fields (VLT/ICN sizes, thresholds, ...).
        """
        if clip is None:
            raise ValueError("from_pretrained_components needs `clip` (a CLIPModel path, Hub id or model).")
        clip_model = clip if isinstance(clip, PreTrainedModel) else CLIPModel.from_pretrained(clip)
        detector_model = None
        if detector is not None:
            detector_model = (
                detector if isinstance(detector, PreTrainedModel) else AutoModelForObjectDetection.from_pretrained(detector)
            )
        tokenizer = tokenizer if tokenizer is not None else clip_model.name_or_path
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            try:
                tokenizer = AutoTokenizer.from_pretrained(tokenizer)
            except (OSError, ValueError, TypeError) as error:
                raise ValueError(f"No tokenizer found at {tokenizer!r}; pass `tokenizer=`.") from error
        config_kwargs.setdefault("projection_dim", clip_model.config.projection_dim)
        config = CLHOIConfig(
            detector_config=detector_model.config if detector_model is not None else None,
            vision_config=copy.deepcopy(clip_model.config.vision_config),
            text_config=copy.deepcopy(clip_model.config.text_config),
            vocabulary=HOIVocabulary.from_any(vocabulary).to_dict(),
            text_tokenizer=tokenizer.name_or_path or None,
            **config_kwargs,
        )
        model = cls(config)
        model.vision_encoder.load_state_dict(clip_model.vision_model.state_dict())
        model.text_encoder.load_state_dict(clip_model.text_model.state_dict())
        model.text_projection.load_state_dict(clip_model.text_projection.state_dict())
        if detector_model is not None:
            model.detector.load_state_dict(detector_model.state_dict())
        model._tokenizer = tokenizer
        model._text_cache.clear()
        return model


__all__ = [
    "CLHOIForInteractionDetection",
    "CLHOIOutput",
    "CLHOIPreTrainedModel",
    "InteractionCognitionNetwork",
    "VisualLinguisticTranslator",
]
