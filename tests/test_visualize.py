"""modeling_clhoi.visualize: boxes, a labelled human-object line, readable on any background."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modeling_clhoi.visualize import PALETTE, _contrast, visualize

SIZE = (400, 200)  # width, height; the line label (at the middle) stays clear of both boxes
HUMAN = [20, 20, 80, 120]
OBJECT = [300, 60, 350, 110]
PREDICTIONS = [
    {"score": 0.9, "verb": "ride", "object": "bicycle", "hoi": 87,
     "human_box": {"xmin": 20, "ymin": 20, "xmax": 80, "ymax": 120}, "object_box": OBJECT},
    {"score": 0.4, "verb": "hold", "object": "bicycle", "hoi": 80, "human_box": HUMAN, "object_box": OBJECT},
]


def _changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    """[H, W] True where a pixel differs."""
    return (np.asarray(before.convert("RGB"), dtype=int) != np.asarray(after, dtype=int)).any(-1)


def _ring(box: list[int], inside: int = 1, outside: int = 1) -> np.ndarray:
    """[H, W] mask of the band around a box's outline."""
    x1, y1, x2, y2 = box
    mask = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    mask[y1 - outside:y2 + outside + 1, x1 - outside:x2 + outside + 1] = True
    mask[y1 + inside + 1:y2 - inside, x1 + inside + 1:x2 - inside] = False
    return mask


@pytest.mark.parametrize("background", [(245, 245, 245), (10, 10, 10), (31, 119, 180)])
def test_boxes_are_drawn_on_any_background(background: tuple[int, int, int]) -> None:
    image = Image.new("RGB", SIZE, background)
    drawn = visualize(image, PREDICTIONS, line_width=3, show_box_labels=False)
    changed = _changed(image, drawn)
    assert drawn.size == image.size and drawn.mode == "RGB"
    assert np.asarray(image).tolist() == [[list(background)] * SIZE[0]] * SIZE[1]  # the input is untouched
    contrast = np.abs(np.asarray(drawn, dtype=int) - np.array(background)).max(-1)
    for x1, y1, x2, y2 in (HUMAN, OBJECT):
        # Every cross-section of every side of the outline (1 px either side of the edge) holds a pixel that
        # stands out from the background by a wide margin, even where the box colour is the background's.
        for side in (contrast[y1:y2, x1 - 1:x1 + 2], contrast[y1:y2, x2 - 1:x2 + 2],
                     contrast[y1 - 1:y1 + 2, x1:x2].T, contrast[y2 - 1:y2 + 2, x1:x2].T):
            assert (side.max(1) > 100).all(), f"outline of {[x1, y1, x2, y2]} not visible on {background}"
    # Far from the boxes, the line and its label, nothing changes.
    assert not changed[150:, :].any() and not changed[:, 370:].any() and not changed[:15, :].any()


def test_line_and_label_join_human_and_object() -> None:
    image = Image.new("RGB", SIZE, (128, 128, 128))
    changed = _changed(image, visualize(image, PREDICTIONS, line_width=3, show_box_labels=False))
    # The label sits on the middle of the line between the two box centres.
    middle = ((50 + 325) // 2, (70 + 85) // 2)
    assert changed[middle[1] - 2:middle[1] + 3, middle[0] - 2:middle[0] + 3].all()
    # Inside each box, away from the line and label, the picture is untouched.
    assert not changed[25:45, 25:40].any() and not changed[95:105, 330:345].any()


def test_one_label_box_holds_every_verb_of_a_pair() -> None:
    image = Image.new("RGB", SIZE, (128, 128, 128))
    one = _changed(image, visualize(image, PREDICTIONS[:1], show_box_labels=False, font_size=12))
    both = _changed(image, visualize(image, PREDICTIONS, show_box_labels=False, font_size=12))
    rows_one, rows_both = np.nonzero(one.any(1))[0], np.nonzero(both.any(1))[0]
    # Same boxes; the second verb adds a text line under the first in the same label.
    assert both.sum() > one.sum() and rows_one.min() == rows_both.min()


def test_top_k_threshold_and_empty() -> None:
    image = Image.new("RGB", SIZE, (200, 180, 160))
    other = {"score": 0.2, "verb": "hold", "object": "cup", "hoi": 1,
             "human_box": [160, 130, 220, 190], "object_box": [170, 20, 220, 60]}
    full = _changed(image, visualize(image, [*PREDICTIONS, other]))
    assert full[130:191, 160:221].any()
    for kwargs in ({"top_k": 2}, {"threshold": 0.3}):
        assert not _changed(image, visualize(image, [*PREDICTIONS, other], **kwargs))[150:, 160:].any()
    assert not _changed(image, visualize(image, [])).any()
    with pytest.raises(ValueError, match="top_k"):
        visualize(image, PREDICTIONS, top_k=0)


def test_numpy_input_and_bad_boxes() -> None:
    array = np.full((SIZE[1], SIZE[0], 3), 90, dtype=np.uint8)
    drawn = visualize(array, PREDICTIONS)
    assert isinstance(drawn, Image.Image) and _changed(Image.fromarray(array), drawn)[_ring(HUMAN)].mean() > 0.9
    with pytest.raises(ValueError, match="4 coordinates"):
        visualize(array, [{**PREDICTIONS[0], "object_box": [1, 2, 3]}])


def test_label_text_contrasts_with_its_colour() -> None:
    for color in PALETTE:
        shade = _contrast(color)
        assert max(abs(a - b) for a, b in zip(color, shade)) > 100
