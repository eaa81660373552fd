"""Input checks shared by the evaluators: per-image fields to flat numpy arrays, or a ValueError.

Every error names the image index and the field, so a bad entry in a 10,000-image list can be found
at once. Nothing is dropped or repaired silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np


def check_same_length(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    """Raise a ValueError unless there is one prediction entry per reference entry."""
    if len(predictions) != len(references):
        raise ValueError(
            f"Got {len(predictions)} prediction entries for {len(references)} reference entries; "
            "there must be exactly one per image (an image without detections takes empty lists)."
        )


def get_field(entry: Any, index: int, key: str, what: str) -> Any:
    """``entry[key]`` of image ``index``, or a ValueError naming both."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{what}[{index}] must be a dict, got {type(entry).__name__}.")
    try:
        return entry[key]
    except KeyError:
        raise ValueError(f"{what}[{index}] is missing the field {key!r}.") from None


def _as_array(value: Any, index: int, key: str, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}[{index}][{key!r}] cannot be read as a numeric array: {err}") from None


def _image_array(value: Any, index: int, key: str, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """One image's field as an array of shape ``[n, *shape]`` (an empty list gives ``n = 0``)."""
    array = _as_array(value, index, key, what)
    if array.size == 0:
        return array.reshape(0, *shape)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what}[{index}][{key!r}] must be numeric, got dtype {array.dtype}.")
    if array.shape[1:] != shape or array.ndim != 1 + len(shape):
        expected = "[n" + "".join(f", {d}" for d in shape) + "]"
        raise ValueError(f"{what}[{index}][{key!r}] must have shape {expected}, got {list(array.shape)}.")
    return array


def _from_lists(parts: list[list[Any]], total: int, shape: tuple[int, ...]) -> np.ndarray:
    """Concatenate per-image Python lists of numbers (``shape == ()``) or of rows (``shape == (k,)``)
    with ``np.fromiter`` over the chained lists, several times faster than ``np.array`` on nested lists.

    Raises TypeError or ValueError (without a useful message) when the lists do not hold numbers or
    rows of ``k`` numbers; the caller then reads the images one by one to name the culprit.
    """
    if shape == ():
        return np.fromiter(chain.from_iterable(parts), np.float64, total)
    rows = list(chain.from_iterable(parts))
    if len(shape) == 1:
        # every row must have k numbers: fromiter with a count would not notice a short row
        # followed by a long one
        if list(map(len, rows)).count(shape[0]) != total:
            raise ValueError("ragged rows")
        return np.fromiter(chain.from_iterable(rows), np.float64, total * shape[0]).reshape(total, *shape)
    array = np.array(rows, dtype=np.float64)
    if array.shape != (total, *shape):
        raise ValueError("wrong shape")
    return array


def _from_arrays(parts: list[np.ndarray], total: int, shape: tuple[int, ...]) -> np.ndarray | None:
    """Concatenate per-image numpy arrays; ``None`` unless the result is a numeric ``[total, *shape]``
    array (the caller then reads the images one by one to name the culprit).

    An empty image may come as a shape ``[0]`` array among ``[n, 4]`` arrays: when the plain
    concatenation fails, the empty parts are reshaped to ``[0, *shape]`` and it is tried once more.
    """
    try:
        array = np.concatenate(parts)
    except ValueError:
        array = None
    if shape and (array is None or array.shape != (total, *shape)):
        try:
            array = np.concatenate([part if part.size else part.reshape(0, *shape) for part in parts])
        except ValueError:
            return None
    if array is None or array.shape != (total, *shape) or array.dtype.kind not in "iuf":
        return None
    return array


def _column(parts: list[Any], lengths: np.ndarray, key: str, what: str, shape: tuple[int, ...]) -> np.ndarray:
    """Concatenate one field over images: ``[sum(lengths), *shape]``.

    All-list and all-array inputs take a bulk path with no per-image Python work. Anything else
    (tensors, mixed types), or parts that fail the bulk path, are read image by image, which also
    finds the image to blame in the error.
    """
    total = int(lengths.sum())
    types = set(map(type, parts))
    if types == {list}:
        try:
            return _from_lists(parts, total, shape)
        except (TypeError, ValueError):
            pass  # the per-image path below raises the precise error
    elif types == {np.ndarray}:
        array = _from_arrays(parts, total, shape)
        if array is not None:
            return array
    arrays = [_image_array(part, index, key, what, shape) for index, part in enumerate(parts)]
    if not arrays:
        return np.zeros((0, *shape))
    return np.concatenate(arrays)


def _sized(value: Any) -> bool:
    try:
        len(value)
    except TypeError:
        return False
    return True


def _optional_column(entries: Sequence[Any], key: str) -> list[Any]:
    """``entry.get(key)`` of every image (``None`` where it is absent or the entry is not a dict)."""
    if set(map(type, entries)) <= {dict}:
        return [entry.get(key) for entry in entries]
    return [entry.get(key) if isinstance(entry, Mapping) else None for entry in entries]


def _lengths(parts: list[Any], key: str, what: str, optional: bool) -> np.ndarray:
    """``len`` of every image's part (``-1`` for an absent optional field), or a ValueError naming the
    first image whose part has no length."""
    try:
        return np.fromiter(map(len, parts), np.int64, len(parts))
    except TypeError:
        pass  # an absent optional field (None), or a part without a length: told apart below
    for index, part in enumerate(parts):
        if not (optional and part is None) and not _sized(part):
            raise ValueError(f"{what}[{index}][{key!r}] must be a list or an array, got {type(part).__name__}.")
    return np.fromiter((-1 if part is None else len(part) for part in parts), np.int64, len(parts))


def flatten_fields(
    entries: Sequence[Any],
    what: str,
    fields: Mapping[str, tuple[int, ...]],
    optional: Mapping[str, tuple[tuple[int, ...], float]] | None = None,
) -> dict[str, np.ndarray]:
    """Per-image dicts to flat arrays: one row per entry (detection or ground truth) of every image.

    The happy path has no per-image Python work beyond collecting the fields and their lengths: the
    fields are concatenated in bulk (see :func:`_column`) and checked in bulk; only when a bulk step
    fails are the images walked one by one to find the culprit.

    Args:
        entries: one dict per image.
        what: ``"predictions"`` or ``"references"``, for the error messages.
        fields: required field name -> shape of one row (``()`` for a scalar, ``(4,)`` for a box).
        optional: field name -> (row shape, fill value used for the images that lack it).

    Returns:
        The concatenated fields (numeric dtype as given, not yet checked for NaN or range) and
        ``"image"``: the image index of each row.

    Raises:
        ValueError: a non-dict entry, a missing field, a wrong shape, or fields of one image with
            different lengths; the message names the image index and the field.
    """
    optional = optional or {}
    try:
        columns = {key: list(map(itemgetter(key), entries)) for key in fields}
    except (KeyError, TypeError, IndexError):
        columns = {key: [get_field(entry, i, key, what) for i, entry in enumerate(entries)] for key in fields}
    for key in optional:
        columns[key] = _optional_column(entries, key)
    lengths = {key: _lengths(parts, key, what, key in optional) for key, parts in columns.items()}
    names = list(fields)
    reference = lengths[names[0]]
    for length in lengths.values():
        bad = (length != reference) & (length >= 0)
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            found = {k: int(v[index]) for k, v in lengths.items() if v[index] >= 0}
            raise ValueError(f"{what}[{index}]: fields have different lengths {found}.")
    flat = {}
    for key, shape in fields.items():
        flat[key] = _column(columns[key], reference, key, what, shape)
    for key, (shape, fill) in optional.items():
        parts = columns[key]
        absent = lengths[key] < 0
        if absent.all():
            flat[key] = np.full((int(reference.sum()), *shape), fill)
            continue
        if absent.any():
            parts = [np.full((int(reference[i]), *shape), fill) if part is None else part for i, part in enumerate(parts)]
        flat[key] = _column(parts, reference, key, what, shape)
    flat["image"] = np.repeat(np.arange(len(entries), dtype=np.int64), reference)
    return flat


def check_integer(values: np.ndarray, image_of_row: np.ndarray, key: str, what: str) -> np.ndarray:
    """``values`` as int64, or a ValueError when one is not a whole number."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    bad = ~(np.isfinite(values) & (values == np.round(values)))
    if bad.any():
        raise ValueError(f"{what}[{_first_bad_image(bad, image_of_row)}][{key!r}] must hold integer ids.")
    return values.astype(np.int64)


def _first_bad_image(bad: np.ndarray, image_of_row: np.ndarray) -> int:
    return int(image_of_row[np.flatnonzero(bad)[0]])


def check_boxes(boxes: np.ndarray, image_of_row: np.ndarray, key: str, what: str, allow_nan_rows: bool = False) -> None:
    """Raise on non-finite coordinates or ``x2 < x1`` / ``y2 < y1`` (rows are flattened over images).

    With ``allow_nan_rows`` a row that is entirely NaN is accepted (it means "no box").
    """
    if not allow_nan_rows and np.isfinite(boxes).all():  # the common case: one check for the coordinates
        if not ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
            return
    finite = np.isfinite(boxes)
    absent = np.all(np.isnan(boxes), axis=1) if allow_nan_rows else np.zeros(len(boxes), dtype=bool)
    bad = ~np.all(finite, axis=1) & ~absent
    if bad.any():
        raise ValueError(f"{what}[{_first_bad_image(bad, image_of_row)}][{key!r}] holds NaN or infinite coordinates.")
    with np.errstate(invalid="ignore"):
        bad = ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])) & ~absent
    if bad.any():
        raise ValueError(f"{what}[{_first_bad_image(bad, image_of_row)}][{key!r}] has a box with x2 < x1 or y2 < y1.")


def check_finite(values: np.ndarray, image_of_row: np.ndarray, key: str, what: str) -> None:
    """Raise on NaN or infinite values (rows are flattened over images)."""
    bad = ~np.isfinite(values)
    if bad.ndim > 1:
        bad = bad.reshape(len(bad), -1).any(axis=1)
    if bad.any():
        raise ValueError(f"{what}[{_first_bad_image(bad, image_of_row)}][{key!r}] holds NaN or infinite values.")


def check_ids(ids: np.ndarray, image_of_row: np.ndarray, key: str, what: str, upper: int) -> None:
    """Raise unless every id lies in ``[0, upper)``."""
    bad = (ids < 0) | (ids >= upper)
    if bad.any():
        row = np.flatnonzero(bad)[0]
        raise ValueError(
            f"{what}[{int(image_of_row[row])}][{key!r}] holds id {int(ids[row])}, outside [0, {upper})."
        )
