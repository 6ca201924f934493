"""The eval transform: resize, centre crop, convert the channels, scale, normalise.

:class:`Preprocessing` holds the parameters of the transform a model expects (input size, crop
fraction, interpolation, mean, std, number of input channels) and, for each, where it came from
(:attr:`Preprocessing.sources`: the timm data config, the model itself, a user override...).
:meth:`Preprocessing.describe` gives all of it as one JSON-ready dict for the run manifest.

The arithmetic uses PIL and numpy (no torchvision). Images arrive as RGB; a 1-channel model gets
PIL's ``"L"`` conversion of them (ITU-R 601 luma), a 3-channel model the RGB pixels. Any other
channel count cannot be made from a photo and is refused with one line naming both counts.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featscope.errors import ParameterError

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "ASSUMED",
    "FIELDS",
    "GIVEN",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "OVERRIDE",
    "Preprocessing",
    "apply_preprocessing",
    "as_preprocessing",
    "crop_box",
    "image_mode",
    "resize_and_crop",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The fields whose origin :attr:`Preprocessing.sources` records, in :meth:`describe` order.
FIELDS = ("input_size", "crop_pct", "interpolation", "mean", "std", "channels", "channel_order")
#: Origin of a value nobody supplied: the ImageNet eval transform (224 px, crop 0.875, RGB).
ASSUMED = "assumed ImageNet default"
#: Origin of a value passed to ``load_model`` (``--input-size``, ``--mean``, ``--in-chans``...).
OVERRIDE = "user override"
#: Origin of a value of a :class:`Preprocessing` built by hand and given with a handle.
GIVEN = "given with the model"

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
# the PIL mode a photo is converted to for a model of that many input channels
_MODES = {1: "L", 3: "RGB"}
#: The orders a 3-channel model may take its colour channels in (OpenMMLab's ``to_rgb=False``
#: pipelines read files with OpenCV and keep its BGR order).
CHANNEL_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the model's input tensor, and where each setting came from.

    Resize the short side to ``input_size / crop_pct``, centre-crop to ``input_size``, convert
    to ``channels`` channels (grey for 1, RGB for 3), scale to [0, 1], then normalise with
    ``mean`` and ``std`` per channel (the timm / torchvision eval transform).

    Attributes
    ----------
    input_size : tuple of int
        ``(height, width)`` of the model input.
    mean, std : tuple of float
        Per-channel normalisation on the [0, 1] scale, one value per input channel. One value is
        repeated for every channel; three (RGB) values for a model of another channel count are
        averaged (the grey level of a photo is about the mean of its three channels).
    crop_pct : float
        Fraction of the resized image kept by the centre crop (1.0 = no crop margin).
    interpolation : str
        ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.
    channels : int
        Input channels of the model (1: grey, 3: RGB).
    channel_order : {"RGB", "BGR"}
        The order a 3-channel model takes its colour channels in; ``mean`` and ``std`` are in
        that order. ``"BGR"`` for OpenMMLab models whose pipeline keeps OpenCV's order.
    sources : dict of str to str
        ``{field: origin}`` for the fields of :data:`FIELDS`, e.g.
        ``{"mean": "timm data config"}`` (see :attr:`source` for every field). Not compared:
        two transforms that do the same are equal wherever their values came from.
    """

    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    channels: int = 3
    channel_order: str = "RGB"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        channels = self.channels
        if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or channels < 1:
            raise ParameterError(
                f"`in_chans` (the model's input channels) must be a positive integer; got "
                f"{channels!r}; pass e.g. 3 for RGB or 1 for grey"
            )
        object.__setattr__(self, "channels", int(channels))
        if self.channel_order not in CHANNEL_ORDERS:
            raise ParameterError(
                f"`channel_order` must be one of {CHANNEL_ORDERS}; got {self.channel_order!r}"
            )
        object.__setattr__(self, "mean", _per_channel("mean", self.mean, int(channels)))
        object.__setattr__(self, "std", _per_channel("std", self.std, int(channels)))
        if min(self.std) <= 0:
            raise ParameterError(f"`std` must be positive per channel; got {self.std}; pass 0.5")
        sources = dict(self.sources)
        unknown = sorted(set(sources) - set(FIELDS))
        if unknown:
            raise ParameterError(f"`sources` names unknown fields {unknown}; use {FIELDS}")
        # a plain dict in field order: it round-trips through JSON (extraction fingerprints)
        object.__setattr__(self, "sources", {n: str(sources[n]) for n in FIELDS if n in sources})

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """Turn one PIL image into a ``(channels, H, W)`` float32 tensor."""
        return apply_preprocessing(self, image)

    @property
    def source(self) -> dict[str, str]:
        """Where each field came from, ``{field: origin}`` for every field of :data:`FIELDS`."""
        # every zoo but OpenMMLab's file pipelines takes RGB: nobody states it, nobody assumes it
        unstated = {"channel_order": "default (RGB)"}
        return {name: self.sources.get(name, unstated.get(name, GIVEN)) for name in FIELDS}

    def with_sources(self, default: str | None = None, **origins: str) -> Preprocessing:
        """Return a copy recording where its values came from.

        Parameters
        ----------
        default : str, optional
            Origin of every field not named in ``origins`` (and not recorded yet).
        **origins : str
            Origin per field, e.g. ``channels="model (conv1.in_channels)"``; replaces what was
            recorded for that field.

        Returns
        -------
        Preprocessing
            The same transform with the merged :attr:`sources`.
        """
        known = dict(self.sources)
        if default is not None:
            for name in FIELDS:
                known.setdefault(name, default)
        known.update(origins)
        return dataclasses.replace(self, sources=known)

    def describe(self) -> dict[str, Any]:
        """Return the transform in effect as a JSON-ready dict (for logs and manifests).

        Returns
        -------
        dict
            ``input_size`` ``[h, w]``; ``resize`` ``[h, w]``, the size the image is scaled to
            cover (aspect ratio kept) before the centre crop; ``crop`` ``"center"``;
            ``crop_pct``; ``interpolation``; ``mean`` and ``std`` (0-1 scale, one per channel);
            ``channels`` and the PIL ``color`` mode images are converted to (``"L"``,
            ``"RGB"``, or ``None`` when no photo converts to that many channels); and
            ``source``, the origin of each of ``input_size``, ``crop_pct``,
            ``interpolation``, ``mean``, ``std``, ``channels``.
        """
        height, width = self.input_size
        return {
            "input_size": [int(height), int(width)],
            "resize": [
                math.floor(height / self.crop_pct),
                math.floor(width / self.crop_pct),
            ],
            "crop": "center",
            "crop_pct": float(self.crop_pct),
            "interpolation": self.interpolation,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "channels": self.channels,
            "color": _MODES.get(self.channels),
            "channel_order": self.channel_order if self.channels == 3 else None,
            "source": self.source,
        }


def _per_channel(name: str, values: Any, channels: int) -> tuple[float, ...]:
    """Fit a mean or std to ``channels`` values: repeat one value, average RGB for grey."""
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = (values,)
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        floats = ()
    if floats and len(floats) == channels:
        return floats
    if len(floats) == 1:
        return floats * channels
    if len(floats) == 3:
        # an RGB normalisation (a zoo's default) for a model of other channels: a grey level is
        # about the mean of the three channels, and so is its normalisation
        return (sum(floats) / 3,) * channels
    raise ParameterError(
        f"`{name}` must be one float or one per input channel ({channels}) on the [0, 1] scale; "
        f"got {values!r}; pass one value, or {channels}"
    )


def as_preprocessing(preprocess: Any) -> Preprocessing:
    """Return ``preprocess`` as a :class:`Preprocessing` (converting a look-alike object).

    Parameters
    ----------
    preprocess : object
        A :class:`Preprocessing`, or any object with its attributes (``input_size``, ``mean``,
        ``std``, ``crop_pct``, ``interpolation`` and optionally ``channels``), such as one
        built before ``channels`` existed.

    Returns
    -------
    Preprocessing
        ``preprocess`` itself when it already is one; else a copy whose values are recorded as
        :data:`GIVEN`, except ``channels`` when the object has none (then nothing is recorded
        for it, so that the loader reads it from the model).
    """
    if isinstance(preprocess, Preprocessing):
        return preprocess
    kwargs = {
        name: getattr(preprocess, name)
        for name in ("input_size", "mean", "std", "crop_pct", "interpolation", "channels")
        if hasattr(preprocess, name)
    }
    kwargs["input_size"] = tuple(kwargs["input_size"])
    origins = {name: GIVEN for name in kwargs}
    return Preprocessing(**kwargs).with_sources(**origins)


def image_mode(preprocessing: Any, mode: str = "RGB", model: str = "the model") -> str:
    """Return the PIL mode images must be converted to for the model, or say why there is none.

    Parameters
    ----------
    preprocessing : Preprocessing
        The model's preprocessing (its ``channels``; 3 when it has none).
    mode : str, default "RGB"
        The mode of the images, for the message.
    model : str, default "the model"
        The model's name, for the message.

    Returns
    -------
    str
        ``"L"`` for a 1-channel model, ``"RGB"`` for a 3-channel one.

    Raises
    ------
    ParameterError
        For any other channel count (e.g. 4 or 2): no photo converts to it.
    """
    channels = int(getattr(preprocessing, "channels", 3))
    target = _MODES.get(channels)
    if target is None:
        from PIL import Image

        try:
            bands: int | str = Image.getmodebands(mode)
        except (KeyError, ValueError):
            bands = "?"
        raise ParameterError(
            f"{model} takes {channels}-channel inputs but the images are {mode} ({bands} "
            f"channels), and featscope converts images to 1 (grey) or 3 (RGB) channels only; "
            f"pass images as tensors of {channels} channels, or in_chans=1 or 3 (--in-chans) "
            "if the model's input channels were misread"
        )
    return target


def resize_and_crop(image: Image.Image, preprocessing: Preprocessing) -> Image.Image:
    """Resize the short side to ``input_size / crop_pct`` and centre-crop to ``input_size``.

    Parameters
    ----------
    image : PIL.Image.Image
        An image (any mode PIL resizes).
    preprocessing : Preprocessing
        Input size, crop fraction and interpolation.

    Returns
    -------
    PIL.Image.Image
        The cropped image of size ``input_size``, in the mode it came in.
    """
    from PIL import Image

    height, width = preprocessing.input_size
    if preprocessing.interpolation not in _INTERPOLATIONS:
        raise ParameterError(
            f"`interpolation` must be one of {sorted(_INTERPOLATIONS)}; got "
            f"{preprocessing.interpolation!r}"
        )
    resample = Image.Resampling[preprocessing.interpolation.upper()]
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
    """Turn one image into a normalised ``(channels, H, W)`` float32 tensor.

    Parameters
    ----------
    preprocessing : Preprocessing
        The transform's parameters (an object without ``channels`` means 3).
    image : PIL.Image.Image
        An image; it is converted to grey (``"L"``) for a 1-channel model and to RGB for a
        3-channel one.

    Returns
    -------
    torch.Tensor
        ``(channels, H, W)`` float32 tensor, ``(pixel / 255 - mean) / std``, laid out in
        memory as the image is (height, width, channels): the channels-last layout a batch
        for a convolutional network needs, without copying it twice (``.contiguous()``
        gives the usual layout).

    Raises
    ------
    ParameterError
        When the model takes a channel count no image converts to (see :func:`image_mode`).
    """
    import numpy as np
    import torch

    mode = image_mode(preprocessing, image.mode)
    if image.mode != mode:
        image = image.convert(mode)
    pixels = np.asarray(resize_and_crop(image, preprocessing), dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    elif getattr(preprocessing, "channel_order", "RGB") == "BGR":
        pixels = pixels[:, :, ::-1]
    channels = pixels.shape[2]
    # torch converts and normalises in one fast pass; the same arithmetic in numpy float32
    # took ~6 ms per 224 px image, more than the resize, and showed in extraction time.
    mean = _channel_tensor(preprocessing.mean, channels, torch).mul_(255.0)
    inv_std = _channel_tensor(preprocessing.std, channels, torch).mul_(255.0).reciprocal_()
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(torch.float32)
    return tensor.sub_(mean).mul_(inv_std)


def _channel_tensor(values: Sequence[float], channels: int, torch: Any) -> torch.Tensor:
    return torch.tensor(_per_channel("mean/std", values, channels), dtype=torch.float32).view(
        channels, 1, 1
    )
