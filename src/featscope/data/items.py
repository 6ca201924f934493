"""One item of a Python data source -> an RGB image or a prepared model input; labels -> indices.

Python sources (torch Datasets and DataLoaders, Hugging Face datasets, arrays, lists) give images
in many forms. The rule, for every source alike:

- a ``PIL.Image.Image`` is an image (turned into RGB as :func:`featscope.data.open_rgb` does);
- a float ``(C, H, W)`` torch tensor (C = 1 or 3), or a float ``(C, H, W)`` numpy array (or
  nested lists) whose last axis is not 1 or 3, is a **prepared** model input: used as it is,
  without the model's preprocessing;
- any other 2-D or 3-D array or tensor is an image: ``(H, W)`` grey, ``(H, W, C)`` or (tensors)
  ``(C, H, W)`` with 1, 3 or 4 channels; uint8 pixels as they are, floats in [0, 1] times 255,
  floats in [0, 255] as they are, 16-bit integers scaled by 255 / 65535.

When a 3-D shape reads both ways (``(3, 32, 3)``), torch tensors are taken as channels-first (the
torch convention) and numpy arrays as channels-last (the PIL convention). Nothing here imports
torch: a tensor is recognised only when torch is already imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from featscope.data.images import pil_to_rgb
from featscope.data.samples import UNLABELLED
from featscope.errors import DataError

__all__ = [
    "NotALabel",
    "as_array",
    "display_image",
    "is_prepared",
    "label_value",
    "labels_from_values",
    "to_image",
    "to_input",
]

_CHANNELS = (1, 3, 4)
_INPUT_CHANNELS = (1, 3)
_FORMS = "a PIL image, an (H, W[, C]) array or a (C, H, W) tensor"


class NotALabel(Exception):
    """Raised by :func:`label_value` for a value that is not a class index or name."""


def _torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def as_array(value: Any) -> np.ndarray | None:
    """Return a tensor, an array or nested lists as a numpy array; anything else as None."""
    if _torch_tensor(value):
        value = value.detach().cpu()
        if value.is_floating_point() and value.dtype.itemsize < 4:  # bf16 has no numpy type
            value = value.float()
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        try:
            return np.asarray(value)
        except ValueError:
            return None
    return None


def _describe(value: Any) -> str:
    array = as_array(value)
    if array is None:
        return type(value).__name__
    kind = "tensor" if _torch_tensor(value) else "array"
    return f"{array.dtype} {kind} of shape {tuple(array.shape)}"


def _layout(shape: tuple[int, ...], channels_first: bool) -> str | None:
    if len(shape) == 2:
        return "hw"
    if len(shape) != 3:
        return None
    first, last = shape[0] in _CHANNELS, shape[-1] in _CHANNELS
    if first and last:
        return "chw" if channels_first else "hwc"
    return "chw" if first else "hwc" if last else None


def is_prepared(value: Any) -> bool:
    """Whether ``value`` is a prepared model input: a float ``(C, H, W)`` array, C = 1 or 3."""
    array = as_array(value)
    if array is None or array.dtype.kind != "f" or array.ndim != 3:
        return False
    # float RGBA images are rare: a numpy (3, H, 4) is an input, a (3, H, 3) an RGB image
    last_is_channels = array.shape[-1] in _INPUT_CHANNELS and not _torch_tensor(value)
    return array.shape[0] in _INPUT_CHANNELS and not last_is_channels


def to_input(value: Any, where: str, shape: tuple[int, ...] | None = None) -> Any:
    """Check that ``value`` is a prepared input (of ``shape`` when given) and return it.

    Parameters
    ----------
    value : Any
        The item's image part.
    where : str
        Names the item in messages (``"item 5 of TensorDataset"``).
    shape : tuple of int, optional
        The shape every item must have (that of the first item).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        A tensor as it is; anything else as a float32 numpy array.

    Raises
    ------
    DataError
        When ``value`` is not a float ``(C, H, W)`` array or has another shape.
    """
    if not is_prepared(value):
        raise DataError(
            f"{where} is a {_describe(value)}, but the data are prepared float (C, H, W) tensors "
            "(the first item is one); give every item in one form"
        )
    if not _torch_tensor(value):
        value = np.asarray(as_array(value), dtype=np.float32)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise DataError(
            f"{where} has shape {tuple(value.shape)}, the first item {tuple(shape)}; prepared "
            "tensors are batched as they are, so resize them all to one shape"
        )
    return value


def to_image(value: Any, where: str) -> Image.Image:
    """Turn an item's image part into an RGB image (see the module docstring for the rules).

    Parameters
    ----------
    value : Any
        A PIL image, an array or a tensor.
    where : str
        Names the item in messages (``"item 5 of TensorDataset"``).

    Returns
    -------
    PIL.Image.Image
        In RGB mode.

    Raises
    ------
    DataError
        When ``value`` is no image: the message names the item and its type or shape.
    """
    if isinstance(value, Image.Image):
        return pil_to_rgb(value, where)
    array = as_array(value)
    layout = None if array is None else _layout(array.shape, _torch_tensor(value))
    if array is None or layout is None:
        raise DataError(f"{where} is a {_describe(value)}, not an image; give {_FORMS}")
    if layout == "chw":
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    pixels = _to_uint8(array, where)
    if pixels.ndim == 2:
        return Image.fromarray(pixels).convert("RGB")
    mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
    return pil_to_rgb(Image.fromarray(np.ascontiguousarray(pixels), mode=mode), where)


def _to_uint8(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return np.round(array * (255.0 / 65535.0)).astype(np.uint8)
    if array.dtype.kind not in "iuf":
        raise DataError(f"{where} is an array of {array.dtype}, not an image; give {_FORMS}")
    values = np.nan_to_num(array.astype(np.float64), nan=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if array.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        values = values * 255.0
    elif not (low >= 0.0 and high <= 255.0):
        raise DataError(
            f"{where} holds values from {low:g} to {high:g}, which are not pixels; give uint8 "
            "images, floats in [0, 1], or (C, H, W) float tensors to use them as model inputs"
        )
    return np.round(values).astype(np.uint8)


def display_image(value: Any) -> Image.Image:
    """Return a picture of a prepared ``(C, H, W)`` input: its values stretched to 0-255.

    Parameters
    ----------
    value : numpy.ndarray or torch.Tensor
        A float ``(C, H, W)`` model input (C = 1 or 3).

    Returns
    -------
    PIL.Image.Image
        RGB; one stretch for all channels, so the colour balance of the input is kept.
    """
    array = np.nan_to_num(np.asarray(as_array(value), dtype=np.float64))
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    pixels = np.round(np.moveaxis(scaled, 0, -1)).astype(np.uint8)
    if pixels.shape[-1] == 1:
        return Image.fromarray(pixels[..., 0]).convert("RGB")
    return Image.fromarray(np.ascontiguousarray(pixels))


def label_value(value: Any) -> int | str | None:
    """Return a label as an int (class index), a str (class name) or None (no label).

    Raises
    ------
    NotALabel
        For anything else (a mask, a box list, a one-hot vector).
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise NotALabel(type(value).__name__)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    array = as_array(value) if not isinstance(value, (list, tuple)) else None
    if array is not None and array.size == 1 and array.dtype.kind in "iuf":
        return label_value(array.reshape(()).item())
    raise NotALabel(_describe(value))


def labels_from_values(
    values: Sequence[Any] | np.ndarray,
    where: str,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Turn one label per item into class indices and class names.

    Parameters
    ----------
    values : sequence or numpy.ndarray
        Integer class indices, class names (str), or None for no label.
    where : str
        Names the source in messages.
    class_names : sequence of str, optional
        The source's own class names (``classes``, ``ClassLabel.names``).

    Returns
    -------
    labels : numpy.ndarray
        int64 class indices; all :data:`~featscope.data.samples.UNLABELLED` when every value is
        None or -1 (unlabelled data).
    class_names : tuple of str
        ``class_names`` when given; else the sorted names, or ``"0"`` .. ``str(max)``; empty when
        unlabelled.

    Raises
    ------
    DataError
        When labels mix kinds or miss on some items, an index is negative or out of range of
        ``class_names`` (the item is named), or a name is not one of ``class_names``.
    """
    from featscope.data.sources import MAX_CLASS_INDEX, _labels_from_strings, _too_large

    array = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if array.dtype == object:
        present = [v is not None for v in array]
        if not any(present):
            return np.full(len(array), UNLABELLED, dtype=np.int64), ()
        if not all(present):
            missing, given = present.index(False), present.index(True)
            raise DataError(
                f"{where}: item {missing} has no label while item {given} has one; label every "
                "item or none"
            )
    if array.dtype.kind in "US" or (
        array.dtype == object and any(isinstance(v, str) for v in array)
    ):
        raw = [(i, str(v)) for i, v in enumerate(array)]
        return _labels_from_strings(raw, where, class_names, unit="item")
    try:
        labels = array.astype(np.int64)
    except (TypeError, ValueError):
        kinds = sorted({type(v).__name__ for v in array})
        raise DataError(
            f"{where}: labels mix {', '.join(kinds)}; use class indices or class names"
        ) from None
    if labels.size and bool(np.all(labels == UNLABELLED)):
        return labels, ()
    names = tuple(str(n) for n in class_names) if class_names is not None else None
    if labels.size and labels.min() < 0:
        at = int(np.argmin(labels))
        raise DataError(
            f"{where}: label {labels[at]} of item {at} is negative; class indices start at 0 "
            "(-1 on every item means unlabelled)"
        )
    top = int(labels.max()) if labels.size else 0
    if names is not None:
        if labels.size and top >= len(names):
            at = int(np.argmax(labels))
            raise DataError(
                f"{where}: label {top} of item {at} is out of range: the source names "
                f"{len(names)} classes (0-{len(names) - 1}); fix the labels or the class names"
            )
        return labels, names
    if top >= MAX_CLASS_INDEX:
        raise _too_large(top, f"item {int(np.argmax(labels))}", where)
    return labels, tuple(str(i) for i in range(top + 1))
