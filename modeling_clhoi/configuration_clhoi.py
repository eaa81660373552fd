"""Configuration of CL-HOI: detector, CLIP-style encoders, VLT, ICN, vocabulary and post-processing."""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, CLIPTextConfig, CLIPVisionConfig, DetrConfig, ResNetConfig
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec

from .tokenization_clhoi import SPECIAL_TOKENS, word_list
from .vocabulary import HOIVocabulary

# The built-in word-level tokenizer (see `tokenization_clhoi.py`); any other value of
# `CLHOIConfig.text_tokenizer` is a path or Hub id loaded with `AutoTokenizer`.
WORD_LEVEL_TOKENIZER = "word_level"

# COCO detection label ids as used by DETR checkpoints (91 ids, "N/A" for the unused ones).
_COCO_NAMES = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet",
    72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}
COCO_DETECTION_ID2LABEL = {i: _COCO_NAMES.get(i, "N/A") for i in range(91)}

# Objects of the tiny preset's vocabulary (a HICO-DET subset, ids unchanged).
TINY_PRESET_OBJECTS = ("person", "bicycle", "horse", "sports_ball", "cup")


def _word_level_text_kwargs() -> dict[str, int]:
    """Text-config fields that match the built-in word-level tokenizer ([PAD]=0, [CLS]=2, [SEP]=3)."""
    return {"vocab_size": len(SPECIAL_TOKENS) + len(word_list()), "pad_token_id": 0, "bos_token_id": 2,
            "eos_token_id": 3}


def _preset_kwargs(name: str) -> dict[str, Any]:
    """Keyword arguments of `CLHOIConfig` for a preset; never touches the network."""
    if name == "tiny":
        hico = HOIVocabulary.hico_det()
        vocabulary = hico.subset(
            hico.hois_for_objects(hico.objects.index(o) for o in TINY_PRESET_OBJECTS), name="hico_det_tiny"
        )
        return {
            "vision_config": {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                              "num_hidden_layers": 2, "num_attention_heads": 2, "projection_dim": 32},
            "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                            "num_attention_heads": 2, "max_position_embeddings": 32, "projection_dim": 32,
                            **_word_level_text_kwargs()},
            "hidden_size": 32, "projection_dim": 32, "num_context_queries": 4, "vlt_layers": 1, "vlt_heads": 2,
            "icn_layers": 1, "icn_heads": 2, "roi_size": 2, "vocabulary": vocabulary.to_dict(),
            "human_score_threshold": 0.0, "object_score_threshold": 0.0, "max_humans": 4, "max_objects": 4,
            "freeze_vision_encoder": False,
        }
    if name == "synthetic":
        return {
            "vision_config": {"image_size": 128, "patch_size": 16, "hidden_size": 128, "intermediate_size": 512,
                              "num_hidden_layers": 4, "num_attention_heads": 4, "projection_dim": 128},
            "text_config": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2,
                            "num_attention_heads": 4, "max_position_embeddings": 64, "projection_dim": 128,
                            **_word_level_text_kwargs()},
            "hidden_size": 128, "projection_dim": 128, "num_context_queries": 8, "vlt_layers": 2, "vlt_heads": 4,
            "icn_layers": 2, "icn_heads": 4, "roi_size": 3, "vocabulary": HOIVocabulary.hico_det().to_dict(),
            "human_score_threshold": 0.2, "object_score_threshold": 0.2, "max_humans": 8, "max_objects": 8,
            "freeze_vision_encoder": False,
        }
    if name == "base":
        resnet50 = ResNetConfig(
            embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3], layer_type="bottleneck",
            out_features=["stage4"],
        )
        detector = DetrConfig(backbone_config=resnet50, id2label=dict(COCO_DETECTION_ID2LABEL))
        return {
            "detector_config": detector,
            "vision_config": {"image_size": 224, "patch_size": 16, "hidden_size": 768, "intermediate_size": 3072,
                              "num_hidden_layers": 12, "num_attention_heads": 12, "projection_dim": 512},
            "text_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                            "num_attention_heads": 8, "max_position_embeddings": 77, "projection_dim": 512,
                            # CLIP's shapes; token ids of the built-in word-level tokenizer until real
                            # weights and their tokenizer come with `from_pretrained_components`.
                            **_word_level_text_kwargs(), "vocab_size": 49408},
            "hidden_size": 256, "projection_dim": 512, "num_context_queries": 16, "vlt_layers": 2, "vlt_heads": 8,
            "icn_layers": 2, "icn_heads": 8, "roi_size": 4, "vocabulary": HOIVocabulary.hico_det().to_dict(),
            "freeze_vision_encoder": True,
        }
    raise ValueError(f"Unknown preset {name!r}; expected one of 'tiny', 'synthetic', 'base'.")


@strict
class CLHOIConfig(PreTrainedConfig):
    r"""
    Configuration of [`CLHOIForInteractionDetection`].

    Args:
        detector_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of any transformers object-detection model (DETR family in real use), run frozen inside the
            model when `forward` gets no `detections`. `None`: detections must be passed to `forward`.
        vision_config (`dict` or `CLIPVisionConfig`, *optional*):
            The CLIP-style vision encoder that gives the patch tokens.
        text_config (`dict` or `CLIPTextConfig`, *optional*):
            The frozen CLIP-style text encoder that embeds the HOI prompts and teacher descriptions.
        hidden_size (`int`, defaults to 256): width of the VLT and ICN transformer layers.
        projection_dim (`int`, defaults to 512): dimension of the text-embedding space (the output of the
            text encoder's projection) into which the VLT and ICN project.
        num_context_queries (`int`, defaults to 8): learnable VLT queries, i.e. context tokens per image.
        vlt_layers (`int`, defaults to 2): cross-attention layers of the Visual Linguistic Translator.
        vlt_heads (`int`, defaults to 8): attention heads of the VLT.
        icn_layers (`int`, defaults to 2): transformer layers of the Interaction Cognition Network.
        icn_heads (`int`, defaults to 8): attention heads of the ICN.
        roi_size (`int`, defaults to 4): bilinear samples per side when RoI-pooling patch tokens in a box.
        use_spatial_relation (`bool`, defaults to `True`): pair tokens include the encoding of the two boxes.
        use_visual_relation (`bool`, defaults to `True`): pair tokens include RoI features of human, object and
            their union (plus detector instance features when the model ran its detector).
        use_context_relation (`bool`, defaults to `True`): ICN layers cross-attend to the VLT context tokens.
        vocabulary (`dict`, *optional*): an `HOIVocabulary.to_dict()`; defaults to HICO-DET.
        text_tokenizer (`str`, *optional*, defaults to `"word_level"`): tokenizer of the text encoder:
            `"word_level"` (built-in, see `tokenization_clhoi.py`), a path or Hub id, or `None` for the
            checkpoint folder itself.
        human_score_threshold (`float`, defaults to 0.2): minimum detection score of a kept human.
        object_score_threshold (`float`, defaults to 0.2): minimum detection score of a kept object.
        nms_threshold (`float`, defaults to 0.5): IoU of class-wise non-maximum suppression.
        max_humans (`int`, defaults to 15): most humans kept per image (highest scores first).
        max_objects (`int`, defaults to 15): most non-human objects kept per image.
        score_power (`float`, defaults to 2.8): the exponent `l` in sigmoid(logit) * s_h^l * s_o^l.
        pooling (`str`, defaults to `"max"`): pair-to-image pooling of logits, `"max"` or `"lse"`.
        logit_scale_init (`float`, defaults to 2.6592): initial log of the cosine-similarity scale (CLIP's).
        freeze_vision_encoder (`bool`, defaults to `True`): keep the vision encoder's weights fixed.
        detector_label_map (`dict`, *optional*): detector label id -> vocabulary object id. Defaults to matching
            the detector's `id2label` names with the vocabulary's objects (case, spaces and dashes ignored).
        dropout (`float`, defaults to 0.0): dropout in VLT/ICN layers.
        initializer_range (`float`, defaults to 0.02): std of the normal initialization of new weights.
    """

    model_type = "clhoi"
    sub_configs_defaults = {
        "detector_config": SubConfigSpec(config_class=AutoConfig, model_type="detr", optional=True),
        "vision_config": CLIPVisionConfig,
        "text_config": CLIPTextConfig,
    }

    detector_config: dict | PreTrainedConfig | None = None
    vision_config: dict | CLIPVisionConfig | None = None
    text_config: dict | CLIPTextConfig | None = None
    hidden_size: int = 256
    projection_dim: int = 512
    num_context_queries: int = 8
    vlt_layers: int = 2
    vlt_heads: int = 8
    icn_layers: int = 2
    icn_heads: int = 8
    roi_size: int = 4
    use_spatial_relation: bool = True
    use_visual_relation: bool = True
    use_context_relation: bool = True
    vocabulary: dict | None = None
    text_tokenizer: str | None = WORD_LEVEL_TOKENIZER
    human_score_threshold: float = 0.2
    object_score_threshold: float = 0.2
    nms_threshold: float = 0.5
    max_humans: int = 15
    max_objects: int = 15
    score_power: float = 2.8
    pooling: str = "max"
    logit_scale_init: float = 2.6592
    freeze_vision_encoder: bool = True
    detector_label_map: dict | None = None
    dropout: float = 0.0
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any) -> None:
        if self.vocabulary is None:
            self.vocabulary = HOIVocabulary.hico_det().to_dict()
        if self.detector_label_map is not None:
            # JSON turns int keys into strings.
            self.detector_label_map = {int(k): int(v) for k, v in self.detector_label_map.items()}
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Part of `@strict`-powered validation: consistent sizes and switches."""
        for heads, name in ((self.vlt_heads, "vlt_heads"), (self.icn_heads, "icn_heads")):
            if self.hidden_size % heads:
                raise ValueError(f"hidden_size ({self.hidden_size}) is not a multiple of {name} ({heads}).")
        if self.pooling not in ("max", "lse"):
            raise ValueError(f"pooling must be 'max' or 'lse', got {self.pooling!r}.")
        if not (self.use_spatial_relation or self.use_visual_relation):
            raise ValueError("The ICN needs use_spatial_relation or use_visual_relation: pair tokens would be equal.")
        for value, name in ((self.human_score_threshold, "human_score_threshold"),
                            (self.object_score_threshold, "object_score_threshold"),
                            (self.nms_threshold, "nms_threshold")):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}.")
        if self.max_humans < 1 or self.max_objects < 0:
            raise ValueError("max_humans must be >= 1 and max_objects >= 0.")
        if self.roi_size < 1 or self.num_context_queries < 1:
            raise ValueError("roi_size and num_context_queries must be >= 1.")

    @property
    def image_size(self) -> int:
        """Square input resolution of the vision encoder."""
        size = self.vision_config.image_size
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    def get_vocabulary(self) -> HOIVocabulary:
        """The HOI vocabulary stored in this config."""
        return HOIVocabulary.from_dict(self.vocabulary)

    @classmethod
    def from_preset(cls, name: str, **kwargs: Any) -> CLHOIConfig:
        """A preset config; ``kwargs`` override its fields.

        - ``"tiny"``: a few thousand parameters for tests (HICO-DET subset of 5 objects, no detector).
        - ``"synthetic"``: the embedded default trained on the synthetic world (128 px, no detector:
          detections come from the data set; full HICO-DET vocabulary).
        - ``"base"``: COCO DETR-ResNet-50 + CLIP ViT-B/16 shapes, random weights (for real use, load
          weights with `CLHOIForInteractionDetection.from_pretrained_components`).
        """
        values = _preset_kwargs(name)
        values.update(kwargs)
        return cls(**values)


__all__ = ["CLHOIConfig", "COCO_DETECTION_ID2LABEL", "WORD_LEVEL_TOKENIZER"]
