"""Small square thumbnails of samples, for hover pictures, sprites and contact sheets.

A thumbnail set is a plain ``(N, size, size, 3)`` uint8 array, so every consumer (the
interactive page, TensorBoard's projector sprite, a W&B table) can use it without knowing where
the images came from. Images are scaled to fit the square and centred on a background
(letterboxed, nothing cut off) or scaled to cover it and centre-cropped.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from featscope.data.images import open_rgb
from featscope.data.samples import ImageSamples
from featscope.errors import ParameterError

__all__ = [
    "DEFAULT_MAX_THUMBNAILS",
    "DEFAULT_THUMBNAIL_SIZE",
    "check_max_thumbnails",
    "check_thumbnail_side",
    "encode_thumbnails",
    "make_thumbnails",
    "sample_thumbnails",
    "thumbnail_indices",
]

#: How many samples get a thumbnail by default (``--thumbnails``).
DEFAULT_MAX_THUMBNAILS = 20_000
#: Side of a thumbnail in pixels.
DEFAULT_THUMBNAIL_SIZE = 48
_MIN_SIZE, _MAX_SIZE = 8, 256
_FITS = ("letterbox", "crop")
_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}


def thumbnail_indices(n_samples: int, max_count: int | None, seed: int = 0) -> np.ndarray:
    """Choose which samples get a thumbnail when there are more samples than ``max_count``.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    max_count : int or None
        The cap; ``None`` means every sample, ``0`` none.
    seed : int, default=0
        Seed of the choice (a uniform random subset, so every class keeps thumbnails in
        proportion to its size, rather than the first classes getting them all).

    Returns
    -------
    numpy.ndarray
        Sorted int64 positions, ``min(n_samples, max_count)`` of them.

    Raises
    ------
    ParameterError
        If ``max_count`` is negative.
    """
    if max_count is not None and max_count < 0:
        raise ParameterError(
            f"`thumbnails` {max_count} is negative; pass the number of samples that get a "
            "thumbnail (0: none)"
        )
    if max_count is None or max_count >= n_samples:
        return np.arange(n_samples, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_samples, size=int(max_count), replace=False)).astype(np.int64)


def check_max_thumbnails(max_count: Any) -> int | None:
    """Return ``max_count`` if it is a number of samples to give thumbnails, else raise.

    Parameters
    ----------
    max_count : int or None
        ``None``: every sample; ``0``: none.

    Returns
    -------
    int or None
        ``max_count``.

    Raises
    ------
    ParameterError
        For a negative count or anything but an integer or ``None``.
    """
    if max_count is not None and (
        isinstance(max_count, bool) or not isinstance(max_count, (int, np.integer)) or max_count < 0
    ):
        raise ParameterError(
            f"`--thumbnails` (thumbnails=) must be a count >= 0 (0: none; None in Python: all); "
            f"got {max_count!r}"
        )
    return max_count


def check_thumbnail_side(side: Any) -> int:
    """Return ``side`` if it is a thumbnail side in pixels (``0``: no thumbnails), else raise.

    Parameters
    ----------
    side : int
        The side asked for (:class:`featscope.Monitor`'s ``thumbnails``); a side below 8 pixels
        is drawn at 8 (see :func:`make_thumbnails`).

    Returns
    -------
    int
        ``side``.

    Raises
    ------
    ParameterError
        For a bool, a non-integer or a negative side.
    """
    if isinstance(side, bool) or not isinstance(side, int) or side < 0:
        raise ParameterError(
            f"`thumbnails` is the thumbnail side in pixels (0: none); got {side!r}"
        )
    return side


def sample_thumbnails(
    samples: ImageSamples,
    max_count: int | None = None,
    *,
    seed: int = 0,
    size: int = DEFAULT_THUMBNAIL_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Return thumbnails of at most ``max_count`` samples (a seeded subset) and their rows.

    Parameters
    ----------
    samples : ImageSamples
        The samples behind a map, in map row order.
    max_count : int or None, default None
        The cap (see :func:`thumbnail_indices`); ``None``: every sample.
    seed : int, default 0
        Seed of the subset.
    size : int, default 48
        Side of each thumbnail in pixels.

    Returns
    -------
    thumbnails : numpy.ndarray
        ``(K, size, size, 3)`` uint8.
    rows : numpy.ndarray
        ``(K,)`` int64 sorted rows of the samples they show.
    """
    rows = thumbnail_indices(len(samples), check_max_thumbnails(max_count), seed=seed)
    return make_thumbnails(samples, rows, size=size), rows


def make_thumbnails(
    samples: ImageSamples | Sequence[str | os.PathLike[str]] | np.ndarray,
    indices: Sequence[int] | np.ndarray | None = None,
    size: int = DEFAULT_THUMBNAIL_SIZE,
    *,
    fit: str = "letterbox",
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Return square RGB thumbnails of some samples.

    Parameters
    ----------
    samples : ImageSamples, sequence of paths, or numpy.ndarray
        The images: an :class:`~featscope.data.ImageSamples`, image file paths, or an array of
        images ``(N, H, W)`` (grey), ``(N, H, W, 3)`` (RGB) or ``(N, H, W, 4)`` (RGBA, shown on
        ``background``), uint8 or floats in ``[0, 1]``.
    indices : sequence of int, optional
        Which samples, in the order wanted (default: all). See :func:`thumbnail_indices` to cap
        the count.
    size : int, default=48
        Side of each thumbnail in pixels (8-256).
    fit : {"letterbox", "crop"}, default="letterbox"
        ``"letterbox"`` scales the whole image into the square and pads with ``background``;
        ``"crop"`` scales it to cover the square and cuts the centre.
    background : tuple of 3 int, default=(255, 255, 255)
        Colour of the padding.

    Returns
    -------
    numpy.ndarray
        ``(len(indices), size, size, 3)`` uint8.

    Raises
    ------
    ParameterError
        For a size out of range, an unknown ``fit``, an index out of range or an array of the
        wrong shape.
    DataError
        When an image file cannot be read (the file is named).
    """
    if not isinstance(size, (int, np.integer)) or not _MIN_SIZE <= size <= _MAX_SIZE:
        raise ParameterError(
            f"thumbnail `size` {size!r} is out of range; pass an integer from {_MIN_SIZE} to "
            f"{_MAX_SIZE} pixels"
        )
    if fit not in _FITS:
        raise ParameterError(f"thumbnail `fit` must be one of {', '.join(_FITS)}; got {fit!r}")
    load, count = _loader(samples)
    positions = (
        np.arange(count, dtype=np.int64)
        if indices is None
        else np.asarray(indices, dtype=np.int64).reshape(-1)
    )
    if positions.size and (positions.min() < 0 or positions.max() >= count):
        bad = int(positions.max() if positions.max() >= count else positions.min())
        raise ParameterError(
            f"thumbnail index {bad} is out of range for {count} samples; pass indices 0-{count - 1}"
        )
    from featscope.progress import Progress

    out = np.empty((len(positions), size, size, 3), dtype=np.uint8)
    with Progress(len(positions), "thumbnails", "img") as bar:
        for row, i in enumerate(positions):
            out[row] = _square(load(int(i)), int(size), fit, tuple(background))
            bar.update()
    return out


def encode_thumbnails(
    thumbnails: np.ndarray, image_format: str = "webp", quality: int = 80
) -> list[str]:
    """Encode thumbnails as ``data:`` URIs that an HTML ``<img>`` shows without any server.

    Parameters
    ----------
    thumbnails : numpy.ndarray
        ``(N, s, s, 3)`` uint8 (from :func:`make_thumbnails`).
    image_format : {"webp", "jpeg", "png"}, default="webp"
        WebP is about half the size of JPEG at these sizes and every current browser shows it.
    quality : int, default=80
        Lossy quality (WebP, JPEG).

    Returns
    -------
    list of str
        One ``data:image/<format>;base64,...`` string per thumbnail.

    Raises
    ------
    ParameterError
        For an unknown format or an array that is not ``(N, s, s, 3)`` uint8.
    """
    if image_format not in _FORMATS:
        raise ParameterError(
            f"thumbnail format {image_format!r} is not one of {', '.join(_FORMATS)}"
        )
    arr = np.asarray(thumbnails)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ParameterError(
            f"thumbnails must be a (N, s, s, 3) uint8 array; got shape {arr.shape} dtype "
            f"{arr.dtype}; make them with make_thumbnails"
        )
    pil_format = _FORMATS[image_format]
    prefix = f"data:image/{image_format};base64,"
    options: dict[str, Any] = {} if image_format == "png" else {"quality": int(quality)}
    uris = []
    for image in arr:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=pil_format, **options)
        uris.append(prefix + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return uris


# --------------------------------------------------------------------------- internals


def _loader(samples: Any) -> tuple[Any, int]:
    """Return ``(load(i) -> PIL.Image, count)`` for any accepted kind of samples."""
    if isinstance(samples, ImageSamples):
        return samples.load, len(samples)
    if isinstance(samples, np.ndarray):
        arr = samples
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4)):
            raise ParameterError(
                f"image array must be (N, H, W), (N, H, W, 3) or (N, H, W, 4); got shape "
                f"{arr.shape}"
            )
        if arr.dtype != np.uint8:
            arr = np.clip(np.nan_to_num(arr.astype(np.float64)) * 255.0, 0, 255).round()
            arr = arr.astype(np.uint8)
        if arr.ndim == 4 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        return (lambda i: Image.fromarray(arr[i])), len(arr)
    if isinstance(samples, (str, os.PathLike)):
        raise ParameterError(
            "samples must be ImageSamples, a sequence of image paths or an image array; got a "
            "single path: wrap it in a list"
        )
    paths = list(samples)
    return (lambda i: open_rgb(paths[i])), len(paths)


def _square(image: Image.Image, size: int, fit: str, background: tuple) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA"):
        canvas = Image.new("RGBA", image.size, (*background, 255))
        image = Image.alpha_composite(canvas, image.convert("RGBA"))
    image = image.convert("RGB")
    width, height = image.size
    # letterbox: the long side fits the square; crop: the short side covers it
    scale = size / (max(width, height) if fit == "letterbox" else min(width, height))
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    # Small images (8x8 digits, 28x28 Fashion-MNIST) are enlarged with NEAREST: blurring them
    # makes the strokes unreadable. Larger ones are shrunk with a proper low-pass filter.
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    image = image.resize((new_w, new_h), resample=resample, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), background)
    canvas.paste(image, ((size - new_w) // 2, (size - new_h) // 2))
    return np.asarray(canvas, dtype=np.uint8)
