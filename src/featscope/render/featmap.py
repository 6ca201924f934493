"""Feature maps as JET heat maps over an image: MMEngine/MMRazor ``draw_featmap`` in numpy.

:func:`draw_featmap` reproduces, pixel for pixel, ``mmengine.visualization.Visualizer
.draw_featmap`` (``crop_to_image=False``) and MMRazor's replacement for it
(``crop_to_image=True``), as described in ``reference/featmap-reference.md``, without torch,
OpenCV or matplotlib. The order of steps is the reference's:

1. the feature map becomes a finite float32 (C, H, W) array;
2. a gray overlay becomes RGB; if its size differs from the feature map's and no
   ``resize_shape`` is given, the feature map is (MMRazor: cropped to the image's aspect, then)
   resized to the image, bilinearly like ``torch.nn.functional.interpolate``;
3. ``resize_shape`` resizes the feature map (and the image, like ``cv2.resize``);
4. channels are reduced, or the top-k channels are picked;
5. each map is min-max scaled to 0-255 (float32, truncated), coloured with OpenCV's JET and
   blended with the image (``alpha`` weights the heat map, rounded half to even);
6. top-k tiles are laid out in a ``rows x cols`` grid, row-major, empty cells white.

Each primitive is public: :func:`resize_image`, :func:`normalize_to_uint8`, :func:`jet_colormap`,
:func:`heatmap_rgb`, :func:`overlay_heatmap`, and :func:`resize_bilinear` and
:func:`crop_to_aspect` (from :mod:`featscope.analysis.resize`, where the memory-bounded channel
reduction of the views uses them too). The feature-map views draw with
:func:`draw_feature_maps` (the levels of one image and point, on one colour scale if asked) and
encode the pictures with :func:`encode_picture`.

Where featscope differs from the reference on purpose (its bugs): numpy arrays and float16,
bfloat16, integer and boolean maps are accepted; ``alpha`` is checked to be a number in [0, 1];
the top-k/arrangement check counts the tiles actually drawn (``min(C, topk)``); NaN/inf raise a
clear error or are masked (``nan_policy``); tile labels are drawn inside their tile with Pillow;
a size mismatch between image and feature map is the normal case and is logged, not warned;
``shared_scale``/``value_range`` can put several maps on one colour scale.

Where the pixels can still differ from the reference (checked on ~10^8 pixels of random cases
against mmengine 0.10.7, MMRazor 1.0.0, torch 2.14 and opencv-python-headless 4.14 on x86-64
AVX2; zero differences outside these):

* nearly constant maps (e.g. a 1x1 map or a 1-pixel MMRazor crop upsampled): float32
  cancellation in the min-max scaling gives the reference values slightly below 0, which its
  uint8 cast wraps to ~236 (dark red); featscope clips them to 0;
* torch run with a single thread on a 3-channel map, or on an AVX-512 build: torch then uses
  another kernel/vector width and its bilinear values differ in the last float32 bit, which
  moves a few pixels by one gray level (see :func:`resize_bilinear`);
* channels whose spatial sums tie (dead ReLU channels) keep channel order here; ``torch.topk``
  leaves ties unspecified. Sums are taken in float64, so channels whose float32 sums are within
  rounding of each other may rank differently;
* an MMRazor crop to 0 rows/columns crashes the reference; featscope keeps at least one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.analysis.channels import (
    REDUCTIONS,
    as_chw,
    check_finite,
    reduce_channels,
    topk_channels,
)
from featscope.analysis.featmap import FeatmapStyle, PreparedMap
from featscope.analysis.resize import check_alpha, check_pair, crop_to_aspect, resize_bilinear
from featscope.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "JET_LUT",
    "crop_to_aspect",
    "draw_featmap",
    "draw_feature_maps",
    "encode_picture",
    "featmap_value_range",
    "heatmap_rgb",
    "jet_colormap",
    "normalize_to_uint8",
    "overlay_heatmap",
    "picture_figure",
    "resize_bilinear",
    "resize_image",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- colour map


def _build_jet_lut() -> np.ndarray:
    """OpenCV's COLORMAP_JET as an RGB (256, 3) uint8 table (reference section 5).

    R: 0 up to 95, 2 + 4*(v-96) for 96-159 (254 at 159), 255 for 160-223, then 252 falling by 4
    to 128 at 255. G: 0 up to 32, 4*(v-32) for 33-95 (252 at 95), 255 for 96-159, 252 falling
    by 4 from 160 to 0 at 223, 0 after. B: 128 + 4*v for 0-31 (252 at 31), 255 for 32-95, 254
    falling by 4 from 96 to 6 at 158, 1 at 159, 0 from 160.
    """
    v = np.arange(256)
    r = np.select(
        [v <= 95, v <= 159, v <= 223], [0, 2 + 4 * (v - 96), 255], default=252 - 4 * (v - 224)
    )
    g = np.select(
        [v <= 32, v <= 95, v <= 159, v <= 223], [0, 4 * (v - 32), 255, 252 - 4 * (v - 160)], 0
    )
    b = np.select(
        [v <= 31, v <= 95, v <= 158, v == 159], [128 + 4 * v, 255, 254 - 4 * (v - 96), 1], 0
    )
    lut = np.stack([r, g, b], axis=1).astype(np.uint8)
    lut.flags.writeable = False
    return lut


#: OpenCV's COLORMAP_JET in RGB order: ``JET_LUT[v]`` is the colour of gray level ``v``.
#: Not matplotlib's ``jet``: the ends are (0, 0, 128) and (128, 0, 0).
JET_LUT = _build_jet_lut()


def jet_colormap(values: np.ndarray) -> np.ndarray:
    """Colour uint8 gray levels with OpenCV's JET, like ``cv2.applyColorMap`` then BGR->RGB.

    Parameters
    ----------
    values : numpy.ndarray
        uint8 array of any shape.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``values.shape + (3,)``, RGB.

    Raises
    ------
    ParameterError
        When ``values`` is not uint8.
    """
    values = np.asarray(values)
    if values.dtype != np.uint8:
        raise ParameterError(
            f"`values` has dtype {values.dtype}; jet_colormap takes uint8 gray levels 0-255: "
            "scale them first with normalize_to_uint8"
        )
    return JET_LUT[values]


# --------------------------------------------------------------------------- scaling


def _check_value_range(value_range: Any) -> tuple[float, float] | None:
    if value_range is None:
        return None
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"`value_range` {value_range!r} is not a pair of numbers (low, high); "
            "pass e.g. value_range=(0.0, 4.5)"
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ParameterError(
            f"`value_range` {value_range!r} must be two finite numbers with low <= high"
        )
    return lo, hi


def normalize_to_uint8(
    values: np.ndarray, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Scale values to 0-255 and truncate to uint8, exactly like the reference.

    The reference calls ``cv2.normalize(x, None, 0, 255, cv2.NORM_MINMAX)`` and then
    ``np.asarray(..., dtype=np.uint8)``. That is, in float32:
    ``scale = float32(255 / (max - min))`` (0 when ``max - min <= DBL_EPSILON``),
    ``shift = -float32(min * scale)``, ``v' = fma(v, scale, shift)``, then truncation (not
    rounding). So the maximum can land on 254.99998 and become 254, as in the reference. The
    minimum and maximum are taken over all elements (all channels of a 3-channel map jointly).

    Parameters
    ----------
    values : numpy.ndarray
        Finite real values of any shape (computed in float32).
    value_range : (float, float), optional
        Scale from this ``(low, high)`` instead of the array's own min and max, so that several
        maps share one colour scale; values outside it are clipped to 0 or 255.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape.

    Raises
    ------
    ParameterError
        For non-finite values or an invalid ``value_range``.
    """
    x = np.asarray(values, dtype=np.float32)
    if x.size == 0:
        return np.zeros(x.shape, np.uint8)
    check_finite(x, "raise", name="values")
    bounds = _check_value_range(value_range)
    lo, hi = (float(x.min()), float(x.max())) if bounds is None else bounds
    # cv2.normalize computes the scale in double, then rounds it and the shift to float.
    scale = np.float32(255.0 * (1.0 / (hi - lo)) if hi - lo > np.finfo(np.float64).eps else 0.0)
    shift = -np.float32(lo * np.float64(scale))
    # OpenCV's convertTo runs v_fma on AVX2; one float64 multiply-add rounded once to float32
    # is the same fused operation (a float32 product is exact in float64).
    scaled = (x.astype(np.float64) * np.float64(scale) + np.float64(shift)).astype(np.float32)
    # Truncation toward zero like numpy's float->uint8 cast; clip only matters for value_range.
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _bgr_to_gray(u8: np.ndarray) -> np.ndarray:
    """OpenCV's 8-bit BGR->gray: channel 0 is blue; 15-bit fixed point, rounded."""
    c = u8.astype(np.int32)
    gray = c[..., 0] * 3735 + c[..., 1] * 19235 + c[..., 2] * 9798 + (1 << 14)
    return (gray >> 15).astype(np.uint8)


def heatmap_rgb(values: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Turn one map into a JET RGB image (the reference's ``convert_overlay_heatmap``).

    Parameters
    ----------
    values : numpy.ndarray
        (H, W), (1, H, W) or (3, H, W) finite values. A 3-channel map is min-max scaled jointly
        and shown, like the reference, as the JET colour of its OpenCV luminance with channel 0
        taken as blue (``0.114*c0 + 0.587*c1 + 0.299*c2``), not as colour.
    value_range : (float, float), optional
        Fixed ``(low, high)`` for the scaling (see :func:`normalize_to_uint8`).

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.

    Raises
    ------
    ParameterError
        For any other shape or non-finite values.
    """
    x = np.asarray(values)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2:
        return jet_colormap(normalize_to_uint8(x, value_range))
    if x.ndim == 3 and x.shape[0] == 3:
        u8 = normalize_to_uint8(np.moveaxis(x, 0, -1), value_range)
        return jet_colormap(_bgr_to_gray(u8))
    raise ParameterError(
        f"`values` has shape {x.shape}; heatmap_rgb takes (H, W), (1, H, W) or (3, H, W)"
    )


# --------------------------------------------------------------------------- blending


def _as_rgb_image(image: Any, name: str = "overlaid_image") -> np.ndarray:
    """Return an RGB uint8 (H, W, 3) array from gray, gray+1, RGB or RGBA uint8 input."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ParameterError(
            f"`{name}` has dtype {arr.dtype}; expected uint8 RGB values 0-255: convert an image "
            "in [0, 1] with (image * 255).round().astype(np.uint8)"
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or 0 in arr.shape:
        raise ParameterError(
            f"`{name}` has shape {arr.shape}; expected an RGB image (H, W, 3), a gray image "
            "(H, W) or (H, W, 1), or RGBA (H, W, 4)"
        )
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    # RGBA: the reference fails inside OpenCV; the alpha channel is simply dropped here.
    return np.ascontiguousarray(arr[..., :3])


def overlay_heatmap(heat_rgb: np.ndarray, image_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heat map over an image: ``round((1 - alpha) * image + alpha * heat)``.

    ``alpha`` weights the **heat map** (as in MMEngine; pytorch-grad-cam and torchcam weight
    the image instead): 0 returns the image, 1 the pure heat map. Like ``cv2.addWeighted`` on
    uint8 the weights are float32, the sum is formed with fused multiply-adds
    ``fma(image, 1 - alpha, float32(heat * alpha))`` and rounded half to even, so 0.5 * 1 +
    0.5 * 2 = 1.5 gives 2 and 0.5 * 3 + 0.5 * 2 = 2.5 gives 2.

    Parameters
    ----------
    heat_rgb : numpy.ndarray
        uint8 (H, W, 3) heat map, e.g. from :func:`heatmap_rgb`.
    image_rgb : numpy.ndarray
        uint8 image of the same height and width: RGB, gray (H, W) / (H, W, 1), or RGBA (the
        alpha channel is dropped).
    alpha : float, optional
        Weight of the heat map, in [0, 1]; default 0.5.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.

    Raises
    ------
    ParameterError
        When ``alpha`` is not a number in [0, 1], an array is not uint8, or the sizes differ.
    """
    a = check_alpha(alpha)
    heat = np.asarray(heat_rgb)
    if heat.dtype != np.uint8 or heat.ndim != 3 or heat.shape[2] != 3:
        raise ParameterError(
            f"`heat_rgb` has dtype {heat.dtype} and shape {heat.shape}; expected uint8 "
            "(H, W, 3), e.g. from heatmap_rgb"
        )
    image = _as_rgb_image(image_rgb, "image_rgb")
    if image.shape != heat.shape:
        raise ParameterError(
            f"`image_rgb` is {image.shape[:2]} but `heat_rgb` is {heat.shape[:2]} (H, W); "
            "resize one to the other first (resize_image, or draw_featmap's resizing)"
        )
    w_image = np.float64(np.float32(1.0 - a))
    w_heat = np.float64(np.float32(a))
    # cv2.addWeighted(img, 1 - a, heat, a, 0): v_fma(img, wa, v_fma(heat, wb, 0)). Products of
    # a uint8 and a float32 are exact in float64, so float64 add + one float32 rounding = fma.
    heat_term = (heat * w_heat).astype(np.float32).astype(np.float64)
    blended = (image * w_image + heat_term).astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- resizing


def _cv_linear_coeffs(n_in: int, n_out: int, clamp: bool) -> tuple[np.ndarray, ...]:
    """OpenCV INTER_LINEAR source indices and 11-bit fixed-point weights along one axis."""
    scale = 1.0 / (n_out / n_in)
    f = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp:  # columns: OpenCV zeroes the weight outside; rows: it only clips the row index
        low, high = s < 0, s >= n_in - 1
        f[low | high] = 0
        s[low] = 0
        s[high] = n_in - 1
    c0 = np.rint((np.float32(1.0) - f) * np.float32(2048)).astype(np.int64)
    c1 = np.rint(f * np.float32(2048)).astype(np.int64)
    return np.clip(s, 0, n_in - 1), np.clip(s + 1, 0, n_in - 1), c0, c1


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image like ``cv2.resize(image, (W, H))`` (INTER_LINEAR) without OpenCV.

    OpenCV's fixed-point path: 11-bit weights, an exact integer horizontal pass, and the SIMD
    vertical pass ``(((b0 * (D0 >> 4)) >> 16) + ((b1 * (D1 >> 4)) >> 16) + 2) >> 2``.
    Checked bit for bit against opencv-python-headless 4.14 (x86-64) on 1, 3 and 4 channels.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 (h, w) or (h, w, C).
    size : (int, int)
        Output ``(H, W)``, height first.

    Returns
    -------
    numpy.ndarray
        uint8 array (H, W) or (H, W, C).
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or 0 in img.shape:
        raise ParameterError(
            f"`image` has dtype {img.dtype} and shape {img.shape}; resize_image takes uint8 "
            "(h, w) or (h, w, C)"
        )
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    h, w, _c = img.shape
    out_h, out_w = check_pair(size, "size", "(224, 224)")
    s0, s1, a0, a1 = _cv_linear_coeffs(w, out_w, clamp=True)
    r0, r1, b0, b1 = _cv_linear_coeffs(h, out_h, clamp=False)
    x = img.astype(np.int64)
    horizontal = x[:, s0] * a0[None, :, None] + x[:, s1] * a1[None, :, None]
    d0 = horizontal[r0] >> 4
    d1 = horizontal[r1] >> 4
    out = (((b0[:, None, None] * d0) >> 16) + ((b1[:, None, None] * d1) >> 16) + 2) >> 2
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


# --------------------------------------------------------------------------- draw_featmap


@dataclass(frozen=True)
class _Prepared:
    maps: list[np.ndarray]  # each (h, w), or (3, h, w) for an unreduced 3-channel map
    channels: np.ndarray | None  # original channel index of each top-k tile
    image: np.ndarray | None  # RGB uint8 at the maps' size
    grid: tuple[int, int] | None  # (rows, cols) in top-k mode
    n_channels: int  # channels of the feature map given


def _prepare(
    featmap: Any,
    overlaid_image: Any,
    channel_reduction: str | None,
    topk: int,
    arrangement: Any,
    resize_shape: Any,
    crop_to_image: bool,
    nan_policy: str,
) -> _Prepared:
    if channel_reduction is not None and channel_reduction not in REDUCTIONS:
        raise ParameterError(
            f"`channel_reduction` {channel_reduction!r} is not one of "
            f"{', '.join(map(repr, REDUCTIONS))} or None (top-k grid); pick one of those"
        )
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)):
        raise ParameterError(f"`topk` {topk!r} is not an integer; pass e.g. topk=20")
    rows, cols = check_pair(arrangement, "arrangement", "(4, 5)", 256)
    size = None if resize_shape is None else check_pair(resize_shape, "resize_shape", "(224, 224)")
    if not isinstance(crop_to_image, (bool, np.bool_)):
        raise ParameterError(f"`crop_to_image` {crop_to_image!r} is not True or False")

    x = as_chw(featmap, nan_policy=nan_policy)
    c = x.shape[0]
    grid_mode = channel_reduction is None and topk > 0
    if grid_mode:
        n_tiles = min(c, int(topk))
        if rows * cols < n_tiles:
            raise ParameterError(
                f"`arrangement` {rows}x{cols} has {rows * cols} cells but {n_tiles} tiles are "
                f"drawn (topk={topk}, {c} channels); pass an arrangement with at least "
                f"{n_tiles} cells or a smaller topk"
            )
    elif channel_reduction is None and c not in (1, 3):
        raise ParameterError(
            f"`featmap` has {c} channels; with channel_reduction=None and topk={topk} it is "
            "drawn as is, which needs 1 or 3 channels: pick a channel_reduction "
            f"({', '.join(REDUCTIONS)}) or set topk > 0 for a grid of channels"
        )

    image = None
    if overlaid_image is not None:
        image = _as_rgb_image(overlaid_image)
        image_hw = image.shape[:2]
        if image_hw != x.shape[1:]:
            logger.debug("featmap %s resized to overlaid image %s", x.shape[1:], image_hw)
            if size is None:
                contiguous = True
                if crop_to_image:
                    fh, fw = crop_to_aspect(x.shape[1:], image_hw)
                    contiguous = (fh, fw) == x.shape[1:]
                    x = x[:, :fh, :fw]
                x = resize_bilinear(x, image_hw, torch_contiguous=contiguous)
    if size is not None:
        x = resize_bilinear(x, size)
        if image is not None:
            image = resize_image(image, size)

    if grid_mode:
        tiles, channels = topk_channels(x, int(topk))
        return _Prepared(list(tiles), channels, image, (rows, cols), c)
    if channel_reduction is None:
        return _Prepared([x[0] if c == 1 else x], None, image, None, c)
    return _Prepared([reduce_channels(x, channel_reduction)], None, image, None, c)


def _shared_range(maps: list[np.ndarray]) -> tuple[float, float]:
    return min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)


def featmap_value_range(
    featmap: Any,
    overlaid_image: Any = None,
    channel_reduction: str | None = "pixel_wise_max",
    topk: int = 20,
    arrangement: tuple[int, int] = (4, 5),
    resize_shape: tuple[int, int] | None = None,
    crop_to_image: bool = True,
    nan_policy: str = "raise",
) -> tuple[float, float]:
    """Return the ``(min, max)`` of the maps :func:`draw_featmap` would colour (all tiles).

    Use it to put several feature maps (levels of an FPN, two models) on one colour scale:
    take the min of the mins and the max of the maxes, and pass that as ``value_range`` to each
    :func:`draw_featmap` call. Arguments as in :func:`draw_featmap`.

    Returns
    -------
    (float, float)
        Smallest and largest value.

    Raises
    ------
    ParameterError
        As :func:`draw_featmap`.
    """
    prep = _prepare(
        featmap,
        overlaid_image,
        channel_reduction,
        topk,
        arrangement,
        resize_shape,
        crop_to_image,
        nan_policy,
    )
    return _shared_range(prep.maps)


def _label_tile(tile: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` at the tile's top-left with Pillow, clipped to the tile."""
    from PIL import Image, ImageDraw, ImageFont

    height = tile.shape[0]
    if height < 12 or tile.shape[1] < 24:
        return tile  # too small to carry a readable label
    size = int(min(14, max(8, height // 8)))
    try:
        font: Any = ImageFont.load_default(size=size)
        stroke = 1
    except (TypeError, ValueError, OSError):  # Pillow without FreeType: bitmap font only
        font, stroke = ImageFont.load_default(), 0
    canvas = Image.fromarray(tile)
    ImageDraw.Draw(canvas).text(
        (2, 1), text, fill=(255, 255, 255), font=font, stroke_width=stroke, stroke_fill=(0, 0, 0)
    )
    return np.asarray(canvas)


def draw_featmap(
    featmap: Any,
    overlaid_image: Any = None,
    channel_reduction: str | None = "pixel_wise_max",
    topk: int = 20,
    arrangement: tuple[int, int] = (4, 5),
    resize_shape: tuple[int, int] | None = None,
    alpha: float = 0.5,
    crop_to_image: bool = True,
    nan_policy: str = "raise",
    shared_scale: bool = False,
    *,
    value_range: tuple[float, float] | None = None,
    tile_labels: bool = True,
    channel_names: Sequence[int] | None = None,
) -> np.ndarray:
    """Draw a (C, H, W) feature map as a JET heat map, optionally over an image.

    With ``crop_to_image=False`` the pixels are those of MMEngine's ``Visualizer.draw_featmap``
    (squeeze_mean, select_max, single maps); with ``crop_to_image=True`` those of MMRazor's
    version, which adds ``pixel_wise_max`` and crops a padded feature map to the image's aspect
    before resizing (see :func:`crop_to_aspect`). In the top-k grid the tiles are the
    reference's; the labels differ (Pillow, drawn inside each tile).

    Parameters
    ----------
    featmap : numpy.ndarray or torch.Tensor
        (C, H, W); (H, W) and (1, C, H, W) are accepted. Any real dtype: float16, bfloat16,
        integers and booleans are computed in float32 (the reference fails on them).
    overlaid_image : numpy.ndarray, optional
        uint8 RGB (H, W, 3), gray (H, W) / (H, W, 1) or RGBA (alpha dropped). When its size
        differs from the feature map's and ``resize_shape`` is None, the feature map is resized
        to it (bilinear on all channels, before the reduction).
    channel_reduction : {"pixel_wise_max", "squeeze_mean", "select_max"} or None, optional
        How channels become one map (see :func:`featscope.analysis.channels.reduce_channels`).
        None: with ``topk > 0`` a grid of the ``topk`` channels with the largest signed spatial
        sum; with ``topk <= 0`` the map is drawn as is (1 or 3 channels).
    topk : int, optional
        Number of channels in the grid (only with ``channel_reduction=None``); more than C
        draws all C.
    arrangement : (int, int), optional
        Grid ``(rows, cols)``; it must have at least ``min(C, topk)`` cells.
    resize_shape : (int, int), optional
        Output ``(height, width)``: the feature map is resized to it (bilinear, like torch) and
        so is the image (like ``cv2.resize``); no crop then.
    alpha : float, optional
        Weight of the **heat map** in the blend with the image, in [0, 1]: 0 shows the image
        only, 1 the heat map only. Default 0.5. Ignored without an image.
    crop_to_image : bool, optional
        MMRazor's crop of a padded feature map to the image's aspect before resizing
        (default True); False gives MMEngine's plain resize.
    nan_policy : {"raise", "mask"}, optional
        ``"raise"`` (default): NaN/inf in the feature map is an error naming how many.
        ``"mask"``: they are replaced by the smallest finite value of the feature map before any
        resizing or reduction, so they draw as low activation (the reference silently drew NaN
        as dark blue and let inf flatten the whole colour scale).
    shared_scale : bool, optional
        Put all tiles of the grid on one colour scale (their joint min and max) instead of one
        scale per tile; no effect for a single map. Default False, like the reference.
    value_range : (float, float), optional
        Fixed ``(low, high)`` colour scale for every map and tile, overriding ``shared_scale``;
        see :func:`featmap_value_range` to share one scale across several calls.
    tile_labels : bool, optional
        Write ``channel: <index>`` at the top-left of each grid tile (default True).
    channel_names : sequence of int, optional
        The index to write for each channel of ``featmap``, one per channel, when ``featmap``
        holds channels picked from a larger map (e.g. their indices there). Default: the
        channel's own index.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB: the image/``resize_shape``/feature-map size, times
        ``(rows, cols)`` in grid mode (empty cells white).

    Raises
    ------
    ParameterError
        For an unknown reduction, a non-integer ``topk``, an arrangement with fewer cells than
        tiles, a 2-channel map with nothing to reduce, ``alpha`` outside [0, 1], a feature map
        of the wrong shape or with NaN/inf (``nan_policy="raise"``), an image that is not uint8
        RGB/gray/RGBA, an invalid ``resize_shape``/``value_range``, or ``channel_names`` whose
        length is not the number of channels.
    """
    a = check_alpha(alpha)
    fixed = _check_value_range(value_range)
    prep = _prepare(
        featmap,
        overlaid_image,
        channel_reduction,
        topk,
        arrangement,
        resize_shape,
        crop_to_image,
        nan_policy,
    )
    if channel_names is not None and len(channel_names) != prep.n_channels:
        raise ParameterError(
            f"`channel_names` has {len(channel_names)} entries but `featmap` has "
            f"{prep.n_channels} channels; give one name per channel"
        )
    if fixed is None and shared_scale and len(prep.maps) > 1:
        fixed = _shared_range(prep.maps)

    def render(values: np.ndarray) -> np.ndarray:
        heat = heatmap_rgb(values, fixed)
        return heat if prep.image is None else overlay_heatmap(heat, prep.image, a)

    if prep.grid is None:
        return render(prep.maps[0])
    rows, cols = prep.grid
    h, w = prep.maps[0].shape
    canvas = np.full((rows * h, cols * w, 3), 255, np.uint8)
    assert prep.channels is not None
    for i, (values, channel) in enumerate(zip(prep.maps, prep.channels, strict=True)):
        tile = render(values)
        if tile_labels:
            name = channel if channel_names is None else channel_names[int(channel)]
            tile = _label_tile(tile, f"channel: {int(name)}")
        r, c = divmod(i, cols)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return canvas


# --------------------------------------------------------------------------- the views' pictures


def draw_feature_maps(
    prepared: Mapping[str, PreparedMap],
    photo: np.ndarray,
    style: FeatmapStyle,
    *,
    difference: bool = False,
) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Draw the levels of one image and point, on one colour scale with ``style.shared_scale``.

    Parameters
    ----------
    prepared : Mapping of str to PreparedMap
        From :func:`featscope.analysis.featmap.prepare_feature_maps`.
    photo : numpy.ndarray
        RGB uint8: the part of the photo the maps cover, at the drawing size
        (:func:`featscope.analysis.featmap.fit_photo`). Its size is the pictures' size (unless
        ``style.resize_shape``); it is drawn under the maps with ``style.overlaid``.
    style : FeatmapStyle
        The drawing options, ``overlaid`` and ``shared_scale`` resolved.
    difference : bool, default False
        The maps are differences (>= 0): a shared scale then starts at 0, so that a small
        difference stays dark.

    Returns
    -------
    dict of str to (numpy.ndarray, dict)
        Per output: the RGB uint8 picture, and the prepared map's ``params`` plus
        ``value_range``, the shared ``[low, high]`` colour scale (``None``: per-map min-max).

    Raises
    ------
    ParameterError
        As :func:`draw_featmap` (e.g. a grid with fewer cells than tiles).
    """
    image = photo if style.overlaid else None
    # without the photo the maps are drawn at its size all the same (MMRazor: the map's size)
    resize_shape = (
        style.resize_shape
        if image is not None
        else (style.resize_shape or tuple(int(v) for v in photo.shape[:2]))
    )
    options = (style.arrangement, resize_shape)
    value_range = None
    if style.shared_scale:
        ranges = [
            featmap_value_range(p.values, image, p.reduction, p.topk, *options, True)
            for p in prepared.values()
        ]
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        value_range = (min(0.0, low) if difference else low, high)
    shown = None if value_range is None else list(value_range)
    return {
        name: (
            draw_featmap(
                p.values,
                image,
                p.reduction,
                p.topk,
                *options,
                style.alpha,
                crop_to_image=True,
                shared_scale=bool(style.shared_scale),
                value_range=value_range,
                channel_names=p.channel_names,
            ),
            {**p.params, "value_range": shown},
        )
        for name, p in prepared.items()
    }


def picture_figure(picture: np.ndarray, dpi: float = 100) -> Figure:
    """Put a picture on a figure of exactly its pixel size at ``dpi`` (no axes, no margin).

    Parameters
    ----------
    picture : numpy.ndarray
        RGB uint8 ``(H, W, 3)``.
    dpi : float, default 100
        Resolution; the figure is ``W / dpi`` by ``H / dpi`` inches.

    Returns
    -------
    matplotlib.figure.Figure
        Not managed by pyplot.
    """
    from matplotlib.figure import Figure

    height, width = picture.shape[:2]
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, frameon=False)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(picture, interpolation="nearest")
    ax.set_axis_off()
    return fig


def encode_picture(picture: np.ndarray, fmt: str = "png", dpi: float = 150) -> bytes:
    """Encode a drawn picture as a file: pixel-exact PNG/JPEG, or a PDF/SVG page.

    Parameters
    ----------
    picture : numpy.ndarray
        RGB uint8 ``(H, W, 3)``.
    fmt : {"png", "jpg", "pdf", "svg"}, default "png"
        The format (``jpeg`` and a leading dot are accepted).
    dpi : float, default 150
        Resolution recorded in PNG/JPEG (the pixels do not change) and the page size of
        PDF/SVG (``W / dpi`` inches wide).

    Returns
    -------
    bytes
        The file's content; PDF/SVG carry no creation date, so equal pictures give equal files.

    Raises
    ------
    ParameterError
        For another format.
    """
    import io

    from PIL import Image

    from featscope.options import check_formats

    (fmt,) = check_formats(fmt)
    buffer = io.BytesIO()
    if fmt in ("png", "jpg"):
        kind = "PNG" if fmt == "png" else "JPEG"
        Image.fromarray(picture).save(buffer, format=kind, dpi=(dpi, dpi))
        return buffer.getvalue()
    import matplotlib

    from featscope.render.figures import _METADATA  # no dates: the same picture, the same file

    with matplotlib.rc_context({"svg.hashsalt": "featscope"}):
        picture_figure(picture, dpi).savefig(buffer, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return buffer.getvalue()
