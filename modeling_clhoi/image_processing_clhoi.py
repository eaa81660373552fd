"""Image processor of CL-HOI (transformers' PIL backend): fixed square resize, CLIP normalization."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ChannelDimension, PILImageResampling

from .configuration_clhoi import CLHOIConfig

ImageLike = PIL.Image.Image | np.ndarray | torch.Tensor


def _to_standard_image(image: Any, position: int) -> PIL.Image.Image | np.ndarray:
    """A PIL image unchanged, or an array/tensor as an ``[H, W, 3]`` numpy array.

    Arrays may be HWC or CHW with 1 (grayscale), 3 (RGB) or 4 (RGBA, alpha dropped) channels, or HW.
    """
    if isinstance(image, PIL.Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"Image {position} is empty ({image.width}x{image.height} pixels).")
        return image
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"Image {position} must be a PIL image, numpy array or torch tensor, got {type(image).__name__}.")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"Image {position} must have 2 or 3 dimensions (HW, HWC or CHW), got shape {image.shape}.")
    if image.shape[-1] not in (1, 3, 4) and image.shape[0] in (1, 3, 4):
        image = np.moveaxis(image, 0, -1)
    if image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Image {position} must have 1, 3 or 4 channels, got shape {image.shape}.")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"Image {position} is empty (shape {image.shape}).")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


class CLHOIImageProcessor(PilBackend):
    r"""
    Resizes images to the vision encoder's square input, rescales to [0, 1] and normalizes with CLIP's
    mean/std. Accepts PIL images, numpy arrays and torch tensors (HWC, CHW or HW; RGB, RGBA or grayscale),
    one or a list. Besides `pixel_values`, returns `original_sizes` (`[B, 2]`, height and width) for
    post-processing to absolute pixels. Empty images raise a `ValueError`.
    """

    resample = PILImageResampling.BILINEAR
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"height": 224, "width": 224}
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    model_input_names = ["pixel_values"]

    def preprocess(self, images: ImageLike | list[ImageLike], **kwargs: Any) -> BatchFeature:
        if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) == 0:
            raise ValueError("No images given.")
        images = [_to_standard_image(image, i) for i, image in enumerate(images)]
        original_sizes = [
            (image.height, image.width) if isinstance(image, PIL.Image.Image) else image.shape[:2] for image in images
        ]
        return_tensors = kwargs.pop("return_tensors", None)
        kwargs["input_data_format"] = ChannelDimension.LAST
        pixel_values = super().preprocess(images, return_tensors=return_tensors, **kwargs)["pixel_values"]
        return BatchFeature(
            data={"pixel_values": pixel_values, "original_sizes": np.array(original_sizes, dtype=np.int64)},
            tensor_type=return_tensors,
        )

    @classmethod
    def from_preset(cls, name: str, **kwargs: Any) -> CLHOIImageProcessor:
        """The image processor matching `CLHOIConfig.from_preset(name)` (its input size)."""
        size = CLHOIConfig.from_preset(name).image_size
        return cls(size={"height": size, "width": size}, **kwargs)


__all__ = ["CLHOIImageProcessor"]
