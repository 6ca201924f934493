"""Which patches to hide: seeded random masks on a grid of mask patches.

One generator serves every family. The image is divided into *mask patches* of
``mask_patch_size`` pixels (a multiple of the model's patch size); ``ceil(ratio * count)`` of
them, drawn without replacement, are hidden, and each is spread over the model patches it
covers. With the mask patch equal to the model patch this is MAE's random masking (MAE keeps
``int(L * (1 - ratio))`` patches: the same count); with 32-pixel mask patches on a 4-pixel Swin
grid it is SimMIM's ``MaskGenerator`` (mask patch 32, model patch 4, ratio 0.6).

Image ``i`` of a call draws from ``numpy.random.default_rng([seed, i])``, so its mask depends
only on the seed and its position, never on the batch size.
"""

from __future__ import annotations

import math

import numpy as np

from featscope.errors import ParameterError

__all__ = ["mask_count", "random_masks"]


def mask_count(total: int, ratio: float) -> int:
    """Return how many of ``total`` mask patches are hidden at ``ratio`` (``ceil``, at least 1).

    Parameters
    ----------
    total : int
        Mask patches in an image.
    ratio : float
        Fraction hidden, ``0 < ratio < 1``.

    Returns
    -------
    int
        Between 1 and ``total - 1``.
    """
    # the small tolerance keeps 0.75 * 196 = 147 exact despite binary floating point
    return min(total - 1, max(1, math.ceil(ratio * total - 1e-9)))


def random_masks(
    count: int,
    grid: tuple[int, int],
    ratio: float,
    *,
    unit: int = 1,
    seed: int = 0,
    start: int = 0,
) -> np.ndarray:
    """Draw ``count`` seeded random masks on a patch grid.

    Parameters
    ----------
    count : int
        Number of images.
    grid : (int, int)
        Model patches per column and per row.
    ratio : float
        Fraction of mask patches hidden, ``0 < ratio < 1``.
    unit : int, default 1
        Side of a mask patch in model patches (SimMIM: 32 px / 4 px = 8).
    seed : int, default 0
        Seed; image ``start + k`` uses ``default_rng([seed, start + k])``.
    start : int, default 0
        Position of the first image in the whole run (so batches give the same masks).

    Returns
    -------
    numpy.ndarray
        ``(count, gh, gw)`` bool, True where a model patch is hidden.

    Raises
    ------
    ParameterError
        When the ratio is outside (0, 1), or the grid is not a whole number of mask patches.
    """
    if not 0.0 < float(ratio) < 1.0:
        raise ParameterError(
            f"`mask_ratio` {ratio!r} must be between 0 and 1 (exclusive); pass e.g. 0.75"
        )
    gh, gw = grid
    if unit < 1 or gh % unit or gw % unit:
        raise ParameterError(
            f"a mask patch of {unit}x{unit} model patches does not tile the {gh}x{gw} patch grid; "
            "pick a mask patch size that divides the input size and is a multiple of the model's "
            "patch size"
        )
    mh, mw = gh // unit, gw // unit
    if mh * mw < 2:
        raise ParameterError(
            f"a mask patch of {unit}x{unit} model patches covers the whole {gh}x{gw} patch grid, "
            "so nothing could stay visible; pass a smaller mask patch size"
        )
    hidden = mask_count(mh * mw, ratio)
    out = np.zeros((count, gh, gw), dtype=bool)
    for k in range(count):
        rng = np.random.default_rng([int(seed), start + k])
        flat = np.zeros(mh * mw, dtype=bool)
        flat[rng.permutation(mh * mw)[:hidden]] = True
        coarse = flat.reshape(mh, mw)
        out[k] = coarse.repeat(unit, axis=0).repeat(unit, axis=1)
    return out
