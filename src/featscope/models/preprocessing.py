"""The eval transform: resize, centre crop, scale, normalise (PIL + numpy, no torchvision)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from featscope.errors import ParameterError

if TYPE_CHECKING:
    import torch

    from featscope.models.handle import Preprocessing

__all__ = ["apply_preprocessing", "crop_box", "resize_and_crop"]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def resize_and_crop(image: Image.Image, preprocessing: Preprocessing) -> Image.Image:
    """Resize the short side to ``input_size / crop_pct`` and centre-crop to ``input_size``.

    Parameters
    ----------
    image : PIL.Image.Image
        An RGB image.
    preprocessing : Preprocessing
        Input size, crop fraction and interpolation.

    Returns
    -------
    PIL.Image.Image
        The cropped RGB image of size ``input_size``.
    """
    height, width = preprocessing.input_size
    resample = _RESAMPLE.get(preprocessing.interpolation)
    if resample is None:
        raise ParameterError(
            f"`interpolation` must be one of {sorted(_RESAMPLE)}; got "
            f"{preprocessing.interpolation!r}"
        )
    if not 0 < preprocessing.crop_pct <= 1:
        raise ParameterError(f"`crop_pct` must be in (0, 1]; got {preprocessing.crop_pct}")
    _, new_size, (left, top) = _resize_crop_geometry(image.size, preprocessing)
    if new_size != image.size:
        image = image.resize(new_size, resample)
    return image.crop((left, top, left + width, top + height))


def _resize_crop_geometry(
    size: tuple[int, int], preprocessing: Preprocessing
) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """Return the scale, resized ``(width, height)`` and crop corner of :func:`resize_and_crop`."""
    height, width = preprocessing.input_size
    # timm's eval transform: the scale is set by the short side, so the aspect ratio is kept
    scale_h = math.floor(height / preprocessing.crop_pct)
    scale_w = math.floor(width / preprocessing.crop_pct)
    w, h = size
    ratio = max(scale_h / h, scale_w / w)
    new_w, new_h = max(width, round(w * ratio)), max(height, round(h * ratio))
    return ratio, (new_w, new_h), ((new_w - width) // 2, (new_h - height) // 2)


def crop_box(
    size: tuple[int, int], preprocessing: Preprocessing
) -> tuple[float, float, float, float]:
    """Return the region of the original image that :func:`resize_and_crop` keeps.

    Its inverse: resize the short side to ``input_size / crop_pct``, centre-crop ``input_size``,
    mapped back to the original pixels.

    Parameters
    ----------
    size : (int, int)
        ``(width, height)`` of the original image (PIL order).
    preprocessing : Preprocessing
        The model's preprocessing.

    Returns
    -------
    (float, float, float, float)
        ``(left, top, right, bottom)`` in original pixels.
    """
    height, width = preprocessing.input_size
    ratio, (new_w, new_h), (left, top) = _resize_crop_geometry(size, preprocessing)
    w, h = size
    # the crop's corner through the actual (rounded) resize, its size through the common scale,
    # so that the region keeps the model input's aspect ratio
    x0, y0 = left * w / new_w, top * h / new_h
    return (x0, y0, x0 + width / ratio, y0 + height / ratio)


def apply_preprocessing(preprocessing: Preprocessing, image: Image.Image) -> torch.Tensor:
    """Turn one RGB image into a normalised ``(3, H, W)`` float32 tensor.

    Parameters
    ----------
    preprocessing : Preprocessing
        The transform's parameters.
    image : PIL.Image.Image
        An RGB image.

    Returns
    -------
    torch.Tensor
        ``(3, H, W)`` float32 tensor, ``(pixel / 255 - mean) / std``.
    """
    import torch

    pixels = np.asarray(resize_and_crop(image, preprocessing), dtype=np.uint8)
    # torch converts and normalises in one fast pass; the same arithmetic in numpy float32
    # took ~6 ms per 224 px image, more than the resize, and showed in extraction time.
    mean = torch.tensor(preprocessing.mean, dtype=torch.float32).mul_(255.0).view(3, 1, 1)
    inv_std = torch.tensor(preprocessing.std, dtype=torch.float32).mul_(255.0).reciprocal_()
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(torch.float32)
    return tensor.sub_(mean).mul_(inv_std.view(3, 1, 1)).contiguous()
