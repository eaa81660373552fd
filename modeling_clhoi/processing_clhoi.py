"""Processor of CL-HOI: image processor + text tokenizer + HOI vocabulary, and post-processing."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers.image_processing_base import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .configuration_clhoi import CLHOIConfig
from .image_processing_clhoi import CLHOIImageProcessor
from .tokenization_clhoi import build_word_level_tokenizer
from .vocabulary import HOIVocabulary


class CLHOIProcessor(ProcessorMixin):
    r"""
    Wraps a [`CLHOIImageProcessor`], the text encoder's tokenizer (for teacher descriptions) and the
    [`HOIVocabulary`] (saved in `processor_config.json`) that names the model's HOI classes.

    Args:
        image_processor ([`CLHOIImageProcessor`]): the image processor.
        tokenizer ([`PreTrainedTokenizerBase`]): the tokenizer of the model's text encoder.
        vocabulary ([`HOIVocabulary`], `dict` or `str`, *optional*): the HOI vocabulary (default HICO-DET).
    """

    def __init__(
        self,
        image_processor: CLHOIImageProcessor | None = None,
        tokenizer: Any = None,
        vocabulary: HOIVocabulary | dict | str | None = None,
        **kwargs: Any,
    ):
        super().__init__(image_processor, tokenizer, **kwargs)
        self.vocabulary = HOIVocabulary.from_any(vocabulary)

    def __call__(
        self,
        images: Any = None,
        text: str | list[str] | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Images -> `pixel_values` and `original_sizes` ([B, 2], height and width); text -> padded and truncated
        `input_ids` and `attention_mask`. `kwargs` go to the image processor."""
        if images is None and text is None:
            raise ValueError("Pass `images`, `text` or both.")
        data: dict[str, Any] = {}
        if images is not None:
            data.update(self.image_processor(images, return_tensors=return_tensors, **kwargs))
        if text is not None:
            data.update(self.tokenizer(text, padding=True, truncation=True, return_tensors=return_tensors))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def post_process_interaction_detection(
        self,
        outputs: Any,
        threshold: float = 0.1,
        target_sizes: torch.Tensor | np.ndarray | list[tuple[int, int]] | None = None,
        top_k: int = 100,
    ) -> list[list[dict[str, Any]]]:
        """Per image, the HOI triplets scoring above `threshold`, best first, at most `top_k`.

        Args:
            outputs: a `CLHOIOutput` (or a dict with its keys).
            threshold: minimum `pair_scores` value.
            target_sizes: per image `(height, width)` of the original image, e.g. `inputs["original_sizes"]`.
            top_k: most triplets per image.

        Returns:
            per image a list of `{"score", "hoi", "verb", "object", "verb_id", "object_id", "human_box",
            "object_box"}`, boxes `[x1, y1, x2, y2]` in absolute pixels of the original image.
        """
        pair_scores = outputs["pair_scores"]
        detections = outputs["detections"]
        if target_sizes is None:
            raise ValueError("target_sizes is required: per image (height, width), e.g. inputs['original_sizes'].")
        sizes = torch.as_tensor(np.asarray(target_sizes), dtype=torch.float32).reshape(-1, 2)
        if len(sizes) != len(detections):
            raise ValueError(f"{len(sizes)} target sizes for {len(detections)} images.")
        if pair_scores.shape[-1] != self.vocabulary.num_hois:
            raise ValueError(
                f"The outputs have {pair_scores.shape[-1]} HOI classes, the processor's vocabulary "
                f"{self.vocabulary.num_hois}: use the model's vocabulary."
            )
        hoi_to_object, hoi_to_verb = self.vocabulary.hoi_to_object, self.vocabulary.hoi_to_verb
        pair_scores = pair_scores.detach().float().cpu()
        image_index = outputs["pair_image_index"].cpu()
        pair_indices = outputs["pair_indices"].cpu()
        results = []
        for b, det in enumerate(detections):
            height, width = sizes[b].tolist()
            scale = torch.tensor([width, height, width, height])
            boxes = det["boxes"].detach().float().cpu() * scale
            pairs = (image_index == b).nonzero().squeeze(1)
            scores = pair_scores[pairs].flatten()
            order = scores.argsort(descending=True, stable=True)
            order = order[scores[order] > threshold][:top_k]
            num_hois = pair_scores.shape[-1]
            image_results = []
            for flat in order.tolist():
                pair, hoi = pairs[flat // num_hois], flat % num_hois
                human, obj = pair_indices[pair].tolist()
                image_results.append({
                    "score": float(scores[flat]),
                    "hoi": hoi,
                    "verb": self.vocabulary.verbs[hoi_to_verb[hoi]],
                    "object": self.vocabulary.objects[hoi_to_object[hoi]],
                    "verb_id": int(hoi_to_verb[hoi]),
                    "object_id": int(hoi_to_object[hoi]),
                    "human_box": boxes[human].tolist(),
                    "object_box": boxes[obj].tolist(),
                })
            results.append(image_results)
        return results

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["vocabulary"] = self.vocabulary.to_dict()
        return output

    @classmethod
    def from_preset(cls, name: str) -> CLHOIProcessor:
        """The processor matching `CLHOIConfig.from_preset(name)`: its image size, the built-in word-level
        tokenizer and the preset's vocabulary."""
        config = CLHOIConfig.from_preset(name)
        return cls(
            image_processor=CLHOIImageProcessor.from_preset(name),
            tokenizer=build_word_level_tokenizer(config.text_config.max_position_embeddings),
            vocabulary=config.vocabulary,
        )


__all__ = ["CLHOIProcessor"]
