"""A fixed colour per class index, shared by every figure and page featscope draws.

The reference tool colours points with ``c=labels, cmap="tab20"``, which normalises the colormap
over the labels *present*: a class changes colour when the class subset changes, and ten classes
get five dark and five light shades of the same hues. featscope instead gives class ``i`` the
``i``-th colour of colorcet's ``glasbey_category10`` palette, whatever else is shown. That palette
starts with the ten tab10 colours (so a 10-class map looks like a familiar matplotlib plot) and
continues with 246 more colours chosen to stay distinguishable from all earlier ones. Beyond 256
classes the palette repeats.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np

from featscope.errors import ParameterError

__all__ = ["class_color", "class_colors", "palette_size"]


@functools.cache
def _palette() -> np.ndarray:
    """Return the ``(256, 4)`` RGBA palette (imported on first use: colorcet is not tiny)."""
    import colorcet

    rgb = np.asarray(colorcet.glasbey_category10, dtype=np.float64)
    rgba = np.concatenate([rgb, np.ones((len(rgb), 1))], axis=1)
    rgba.setflags(write=False)
    return rgba


def palette_size() -> int:
    """Return how many distinct class colours exist before the palette repeats.

    Returns
    -------
    int
        256 (the length of colorcet's ``glasbey_category10``).
    """
    return len(_palette())


def class_color(index: int) -> tuple[float, float, float, float]:
    """Return the RGBA colour of one class index.

    Parameters
    ----------
    index : int
        Class index (``>= 0``). Indices from 256 on reuse the palette from its start.

    Returns
    -------
    tuple of 4 float
        ``(r, g, b, a)`` in ``[0, 1]`` with ``a == 1``.

    Raises
    ------
    ParameterError
        If ``index`` is negative or not an integer.
    """
    try:
        i = operator.index(index)
    except TypeError:
        raise ParameterError(
            f"class index {index!r} is not an integer; pass a class index such as 0, 1, 2"
        ) from None
    if i < 0:
        raise ParameterError(f"class index {i} is negative; class indices start at 0")
    palette = _palette()
    return tuple(float(v) for v in palette[i % len(palette)])  # type: ignore[return-value]


def class_colors(labels: Any) -> np.ndarray:
    """Return one RGBA colour per label, fixed by the class index.

    Parameters
    ----------
    labels : array-like of int
        ``(N,)`` class indices (``>= 0``).

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64 RGBA rows; class ``i`` always gets ``class_color(i)``, whichever other
        classes are present.

    Raises
    ------
    ParameterError
        If ``labels`` is not a 1-D array of non-negative integers.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ParameterError(
            f"labels must be a 1-D array of class indices; got shape {arr.shape}; "
            "pass one integer per sample"
        )
    whole_floats = np.issubdtype(arr.dtype, np.floating) and bool(np.all(arr == np.round(arr)))
    if arr.size and not np.issubdtype(arr.dtype, np.integer) and not whole_floats:
        raise ParameterError(
            f"labels must be integer class indices; got dtype {arr.dtype}; "
            "pass one integer class index per sample"
        )
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ParameterError(
            f"labels contain the negative class index {int(arr.min())}; class indices start at 0"
        )
    palette = _palette()
    return palette[arr % len(palette)].copy()
