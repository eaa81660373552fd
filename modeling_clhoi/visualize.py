"""Draw HOI detections on an image: human and object boxes, and a labelled line between them.

Every stroke is drawn over a wider halo of the contrasting shade (black under light colours,
white under dark ones) and every label sits in a filled box, so the drawing stays readable on
any background, bright or dark, busy or flat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Tableau-10: a qualitative palette whose colours stay distinct from one another.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
BoxLike = Mapping[str, float] | Sequence[float]


def _box(box: BoxLike) -> tuple[float, float, float, float]:
    """``[x1, y1, x2, y2]`` from either a sequence or a ``{"xmin", "ymin", "xmax", "ymax"}`` dict."""
    if isinstance(box, Mapping):
        return float(box["xmin"]), float(box["ymin"]), float(box["xmax"]), float(box["ymax"])
    if len(box) != 4:
        raise ValueError(f"A box needs 4 coordinates [x1, y1, x2, y2], got {list(box)}")
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1, y1, x2, y2


def _grow(box: tuple[float, float, float, float], by: float = 1.0) -> tuple[float, float, float, float]:
    """The box enlarged by ``by`` pixels on every side (PIL draws outlines inwards; halos straddle the edge)."""
    return box[0] - by, box[1] - by, box[2] + by, box[3] + by


def _contrast(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``color`` (WCAG relative luminance)."""
    channels = [c / 255 for c in color]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return (0, 0, 0) if luminance > 0.179 else (255, 255, 255)


def _to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
            array = array.transpose(1, 2, 0)  # channels first -> channels last
        if array.dtype != np.uint8:
            array = np.clip(np.rint(array * 255.0 if array.max() <= 1.0 else array), 0, 255).astype(np.uint8)
        return Image.fromarray(array.squeeze()).convert("RGB")
    raise ValueError(f"`image` must be a PIL image or a numpy array, got {type(image).__name__}")


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_label(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    color: tuple[int, int, int],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    placed: list[tuple[float, float, float, float]],
    anchor_center: bool,
) -> None:
    """A filled label box in ``color`` with text in its contrasting shade, inside the image.

    The box moves down (then up) past labels already in ``placed`` so that no two labels cover
    each other where the image leaves room; its rectangle is appended to ``placed``.
    """
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, spacing=2)
    pad = 2
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    image_width, image_height = draw.im.size
    x, y = xy
    if anchor_center:
        x, y = x - width / 2, y - height / 2
    x = min(max(x, 0), max(image_width - width, 0))
    y = min(max(y, 0), max(image_height - height, 0))
    for step in (1, -1):
        candidate = y
        while 0 <= candidate <= image_height - height:
            rect = (x, candidate, x + width, candidate + height)
            if not any(_overlaps(rect, other) for other in placed):
                y = candidate
                break
            candidate += step * (height + 1)
        else:
            continue
        break
    placed.append((x, y, x + width, y + height))
    shade = _contrast(color)
    draw.rectangle((x, y, x + width, y + height), fill=color, outline=shade)
    draw.multiline_text((x + pad - left, y + pad - top), text, fill=shade, font=font, spacing=2)


def visualize(
    image: Image.Image | np.ndarray,
    predictions: Sequence[Mapping[str, Any]],
    *,
    top_k: int | None = None,
    threshold: float = 0.0,
    line_width: int | None = None,
    font_size: int | None = None,
    show_box_labels: bool = True,
) -> Image.Image:
    """Draw HOI predictions on a copy of ``image``.

    Each person gets one colour from :data:`PALETTE` (all their interactions share it). Human boxes
    are drawn solid, object boxes with a thinner stroke, and a line joins the centres of the two
    boxes of a pair, labelled at its middle with ``"verb object score"`` (one line per verb when a
    pair holds several interactions).

    Args:
        image: a PIL image or an ``[H, W, 3]`` / ``[3, H, W]`` numpy array.
        predictions: per interaction a dict with ``"verb"``, ``"object"``, ``"score"``, ``"human_box"``
            and ``"object_box"``; boxes either ``{"xmin", "ymin", "xmax", "ymax"}`` (the pipeline's
            output) or ``[x1, y1, x2, y2]`` (the processor's post-processing), absolute pixels.
        top_k: draw only the ``top_k`` highest-scoring interactions (all when ``None``).
        threshold: draw only interactions whose score is at least this.
        line_width: stroke width in pixels; defaults to about 0.4% of the image's longer side (at least 2).
        font_size: label text size; defaults to about 2.5% of the image's longer side (at least 10).
        show_box_labels: tag each box with its category ("person", the object's name).

    Returns:
        A new RGB PIL image; ``image`` itself is not modified.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"`top_k` must be a positive integer or None, got {top_k}")
    canvas = _to_pil(image).copy()
    longer = max(canvas.size)
    line_width = line_width or max(2, round(longer * 0.004))
    font = ImageFont.load_default(size=font_size or max(10, round(longer * 0.025)))

    kept = sorted(
        (p for p in predictions if float(p["score"]) >= threshold), key=lambda p: float(p["score"]), reverse=True
    )
    kept = kept[:top_k] if top_k is not None else kept
    if not kept:
        return canvas

    # Group the verbs of one (human, object) pair under a single line; one colour per person.
    pairs: dict[tuple[tuple[float, ...], tuple[float, ...], str], list[str]] = {}
    human_colors: dict[tuple[float, ...], tuple[int, int, int]] = {}
    for p in kept:
        human, obj = _box(p["human_box"]), _box(p["object_box"])
        human_colors.setdefault(human, PALETTE[len(human_colors) % len(PALETTE)])
        pairs.setdefault((human, obj, str(p["object"])), []).append(f"{p['verb']} {p['object']} {float(p['score']):.2f}")

    draw = ImageDraw.Draw(canvas)
    halo = line_width + 2
    labels: list[tuple[tuple[float, float], str, tuple[int, int, int], bool]] = []
    object_width = max(1, line_width - 1)
    # Lines first, boxes over them (a line's halo never cuts a box outline), labels last (nothing crosses text).
    for (human, obj, _), texts in pairs.items():
        color = human_colors[human]
        h_center = ((human[0] + human[2]) / 2, (human[1] + human[3]) / 2)
        o_center = ((obj[0] + obj[2]) / 2, (obj[1] + obj[3]) / 2)
        draw.line((h_center, o_center), fill=_contrast(color), width=halo)
        draw.line((h_center, o_center), fill=color, width=line_width)
        middle = ((h_center[0] + o_center[0]) / 2, (h_center[1] + o_center[1]) / 2)
        labels.append((middle, "\n".join(texts), color, True))
    for (human, obj, object_name) in pairs:
        color = human_colors[human]
        draw.rectangle(_grow(obj), outline=_contrast(color), width=object_width + 2)
        draw.rectangle(obj, outline=color, width=object_width)
        if show_box_labels:
            labels.append(((obj[0], obj[1]), object_name, color, False))
    for human, color in human_colors.items():
        draw.rectangle(_grow(human), outline=_contrast(color), width=halo)
        draw.rectangle(human, outline=color, width=line_width)
        if show_box_labels:
            labels.append(((human[0], human[1]), "person", color, False))
    placed: list[tuple[float, float, float, float]] = []
    for xy, text, color, centered in labels:
        _draw_label(draw, xy, text, color, font, placed, centered)
    return canvas
