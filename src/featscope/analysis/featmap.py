"""What the feature-map views compute between the capture and the drawing.

* :class:`FeatmapStyle`: the drawing options of ``featmap`` and ``featmap-diff`` (MMRazor's flag
  names), each declared with its flag and checked when the style is made;
* :func:`feature_map_differences`: ``|F_a - F_b|`` of two models' maps, paired by name;
* :func:`fit_photo`: the part of the photo the model saw, at the drawing size;
* :func:`crop_padding`: a detector's padded margin cut off a map;
* :func:`reduce_for_drawing`: the channel reduction of maps too large to resize whole;
* :func:`prepare_feature_maps`: all of the above for the levels of one image and point, giving
  what :func:`featscope.render.featmap.draw_feature_maps` draws.

numpy in, numpy out; no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.analysis.channels import (
    NAN_POLICIES,
    REDUCTIONS,
    check_finite,
    feature_difference,
    standardize_channels,
)
from featscope.analysis.resize import check_alpha, check_pair, crop_to_aspect, resize_bilinear
from featscope.errors import CaptureError, ParameterError
from featscope.options import option
from featscope.results import CapturedMaps

__all__ = [
    "DEFAULT_MAX_SIZE",
    "REDUCTION_CHOICES",
    "FeatmapStyle",
    "PreparedMap",
    "crop_padding",
    "feature_map_differences",
    "fit_photo",
    "prepare_feature_maps",
    "reduce_for_drawing",
]

#: ``--channel-reduction`` values; ``none`` means no reduction (a top-k grid).
REDUCTION_CHOICES = (*REDUCTIONS, "none")
#: Default longest side of the drawn pictures.
DEFAULT_MAX_SIZE = 1024
#: Feature maps are resized to the picture with all their channels before the reduction (the
#: reference's order). Above this many resized values the reduction is done in blocks of
#: channels, which gives the same pixels without holding C x H x W floats at once.
RESIZE_BUDGET = 1 << 25


def _check_flag(value: Any, name: str, *, optional: bool = False) -> bool | None:
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"`{name}` {value!r} is not True or False")
    return bool(value)


#: Rows or columns of a top-k grid: one tile per channel, and no model has 256 x 256 channels.
MAX_GRID_SIDE = 256


@dataclass(frozen=True)
class FeatmapStyle:
    """How feature maps are drawn (the flags of MMRazor's ``feature_visualization.py``).

    ``overlaid`` and ``shared_scale`` left at ``None`` take the view's default: the built-in
    demo is drawn over its photos and everything else is not; a difference shares one colour
    scale across levels and tiles, plain feature maps do not. Every value is checked when the
    style is made; the message names the option.
    """

    channel_reduction: str | None = option(
        "pixel_wise_max", "--channel-reduction", choices=REDUCTION_CHOICES,
        help="how channels become one map; none: a grid of the --topk strongest channels",
    )  # fmt: skip
    topk: int = option(20, "--topk", type=int, help="channels in the grid (with none)")
    arrangement: tuple[int, int] = option(
        (4, 5), "--arrangement", nargs=2, type=int, metavar=("ROWS", "COLS"),
        help="rows and columns of the --topk grid; at least min(channels, topk) cells",
    )  # fmt: skip
    overlaid: bool | None = option(
        None, "--overlaid", action=argparse.BooleanOptionalAction,
        help="draw over the photo (default: on for the built-in demo, off otherwise)",
    )  # fmt: skip
    use_norm: bool = option(
        False, "--use-norm", action="store_true", help="standardise each channel before drawing"
    )
    resize_shape: tuple[int, int] | None = option(
        None, "--resize-shape", nargs=2, type=int, metavar=("H", "W"),
        help="size of every picture (default: the photo's region)",
    )  # fmt: skip
    alpha: float = option(0.5, "--alpha", type=float, help="heat-map weight in the blend")
    shared_scale: bool | None = option(
        None, "--shared-scale", action=argparse.BooleanOptionalAction,
        help="one colour scale for all levels and tiles of an image and point",
    )  # fmt: skip
    nan_policy: str = option(
        "raise", "--nan-policy", choices=NAN_POLICIES,
        help="NaN/inf in a map: an error, or drawn as the lowest value",
    )  # fmt: skip
    max_size: int | None = option(
        DEFAULT_MAX_SIZE, "--max-size", type=int,
        help="longest side of the pictures; larger photos are scaled down (0: keep)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        reduction = self.channel_reduction
        if isinstance(reduction, str) and reduction.lower() == "none":
            reduction = None
        if reduction is not None and reduction not in REDUCTIONS:
            raise ParameterError(
                f"`channel_reduction` {reduction!r} is not one of "
                f"{', '.join(map(repr, REDUCTIONS))} or None (top-k grid); pick one of those"
            )
        if isinstance(self.topk, bool) or not isinstance(self.topk, (int, np.integer)):
            raise ParameterError(f"`topk` {self.topk!r} is not an integer; pass e.g. topk=20")
        if self.nan_policy not in NAN_POLICIES:
            raise ParameterError(
                f"`nan_policy` {self.nan_policy!r} is not one of "
                f"{', '.join(map(repr, NAN_POLICIES))}; pass 'raise' or 'mask'"
            )
        size = self.max_size
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0
        ):
            raise ParameterError(
                f"`max_size` {size!r} is not an integer >= 0; pass the longest side of the drawn "
                f"images in pixels, e.g. {DEFAULT_MAX_SIZE}, or 0 to keep the photo's own size"
            )
        shape = self.resize_shape
        values = {
            "channel_reduction": reduction,
            "topk": int(self.topk),
            "arrangement": check_pair(self.arrangement, "arrangement", "(4, 5)", MAX_GRID_SIDE),
            "resize_shape": None
            if shape is None
            else check_pair(shape, "resize_shape", "(224, 224)"),
            "alpha": check_alpha(self.alpha),
            "overlaid": _check_flag(self.overlaid, "overlaid", optional=True),
            "use_norm": _check_flag(self.use_norm, "use_norm"),
            "shared_scale": _check_flag(self.shared_scale, "shared_scale", optional=True),
            "max_size": int(size) if size else None,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def grid(self) -> bool:
        """Whether the top-k channels are drawn as a grid (no reduction, ``topk > 0``)."""
        return self.channel_reduction is None and self.topk > 0

    def resolved(self, *, overlaid: bool, shared_scale: bool) -> FeatmapStyle:
        """Return the style with ``overlaid``/``shared_scale`` set where they are ``None``.

        Parameters
        ----------
        overlaid, shared_scale : bool
            The view's defaults.

        Returns
        -------
        FeatmapStyle
        """
        return dataclasses.replace(
            self,
            overlaid=overlaid if self.overlaid is None else self.overlaid,
            shared_scale=shared_scale if self.shared_scale is None else self.shared_scale,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the options, JSON-ready (pairs as lists)."""
        out = dataclasses.asdict(self)
        for key in ("arrangement", "resize_shape"):
            out[key] = None if out[key] is None else list(out[key])
        return out


# --------------------------------------------------------------------------- differences


def feature_map_differences(a: CapturedMaps, b: CapturedMaps) -> CapturedMaps:
    """``|F_a - F_b|`` for every output two models give for one image, paired by name.

    Unlike MMRazor's tool (``zip`` of the two recorders' outputs, by order, shapes only
    broadcast), outputs are paired by name (``neck.p3`` with ``neck.p3``) and must have the same
    shape. Outputs only one model gives are skipped with a warning.

    Parameters
    ----------
    a, b : CapturedMaps
        The maps of model A and model B for the same image and points.

    Returns
    -------
    CapturedMaps
        The differences, in model A's geometry (``region``, ``valid``) and with its provenance.

    Raises
    ------
    CaptureError
        When a pair differs in shape (both shapes are named), or a point has no output name in
        common.
    """
    spec_a, spec_b = a.provenance.model, b.provenance.model
    out: dict[str, dict[str, np.ndarray]] = {}
    for point, maps_a in a.maps.items():
        maps_b = b.maps[point]
        only_a = [n for n in maps_a if n not in maps_b]
        only_b = [n for n in maps_b if n not in maps_a]
        if only_a or only_b:
            warnings.warn(
                f"capture point {point!r}: outputs {only_a or 'none'} exist only in model A "
                f"({spec_a}) and {only_b or 'none'} only in model B ({spec_b}); they are "
                "skipped, the others are paired by name",
                stacklevel=2,
            )
        pairs = {}
        for name in (n for n in maps_a if n in maps_b):
            fa, fb = maps_a[name], maps_b[name]
            if fa.shape != fb.shape:
                raise CaptureError(
                    f"cannot subtract the feature maps at {name!r} of image {a.image_id!r}: "
                    f"model A ({spec_a}) gives (C, H, W) = {tuple(fa.shape)} and model B "
                    f"({spec_b}) gives {tuple(fb.shape)}; the difference needs the same shape: "
                    "pick points with the same channels and resolution (and the same input size)"
                )
            pairs[name] = feature_difference(fa, fb)
        if not pairs:
            raise CaptureError(
                f"capture point {point!r} gives outputs {list(maps_a)} in model A ({spec_a}) "
                f"and {list(maps_b)} in model B ({spec_b}); none has the same name in both, so "
                "there is nothing to subtract: pick points whose outputs match"
            )
        out[point] = pairs
    return CapturedMaps(a.image_id, out, a.region, a.valid, a.provenance)


# --------------------------------------------------------------------------- geometry


def fit_photo(image: Any, region: tuple[int, int, int, int], max_size: int | None) -> np.ndarray:
    """Cut the region the model saw out of a photo and scale it to the drawing size.

    Parameters
    ----------
    image : PIL.Image.Image
        The RGB photo.
    region : (int, int, int, int)
        ``(left, top, right, bottom)`` in the photo's pixels
        (:attr:`featscope.results.CapturedMaps.region`).
    max_size : int or None
        Longest side of the result; a larger region is scaled down (Lanczos), a smaller one
        is kept. ``None``: the region's own size.

    Returns
    -------
    numpy.ndarray
        RGB uint8 ``(H, W, 3)``.
    """
    from PIL import Image

    part = image if tuple(region) == (0, 0, image.width, image.height) else image.crop(region)
    if max_size is not None and max(part.size) > max_size:
        scale = max_size / max(part.size)
        size = (max(1, round(part.width * scale)), max(1, round(part.height * scale)))
        part = part.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(part)


def crop_padding(
    x: np.ndarray, valid: tuple[float, float] | None
) -> tuple[np.ndarray, list[int] | None]:
    """Cut the padded margin off a detector's ``(C, h, w)`` map.

    Parameters
    ----------
    x : numpy.ndarray
        The map of the padded batch.
    valid : (float, float) or None
        The fraction of its height and width that is image
        (:attr:`featscope.results.CapturedMaps.valid`); ``None`` keeps the map.

    Returns
    -------
    map : numpy.ndarray
        The top-left ``(C, vh, vw)`` part, at least one row and column.
    kept : [int, int] or None
        ``[vh, vw]``, or ``None`` when nothing was cut.
    """
    if valid is None:
        return x, None
    fh, fw = x.shape[1:]
    # Python's round (half to even), as MMRazor's crop rule
    vh = min(fh, max(1, round(fh * valid[0])))
    vw = min(fw, max(1, round(fw * valid[1])))
    return x[:, :vh, :vw], [vh, vw]


# --------------------------------------------------------------------------- preparation


@dataclass(frozen=True)
class PreparedMap:
    """One level ready to draw: its values, and how :func:`draw_featmap` must treat them.

    Attributes
    ----------
    values : numpy.ndarray
        Finite float32 ``(C', h, w)``: the map (cropped, standardised), or the result of a
        blockwise reduction (:func:`reduce_for_drawing`).
    reduction : str or None
        The ``channel_reduction`` still to apply when drawing.
    topk : int
        The ``topk`` still to apply when drawing.
    channel_names : numpy.ndarray or None
        Original channel index of each channel of ``values`` when they were picked.
    params : Mapping
        What the manifest records: ``shape`` (raw), ``drawn_shape`` (after the crop) and
        ``padding_cropped_to``.
    """

    values: np.ndarray
    reduction: str | None
    topk: int
    channel_names: np.ndarray | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def reduce_for_drawing(
    x: np.ndarray, target_hw: tuple[int, int], style: FeatmapStyle, *, crop: bool
) -> PreparedMap:
    """Reduce the channels in blocks when resizing all of them at once would take too much memory.

    The reference resizes every channel to the output size before reducing. For large outputs
    the same result is computed a block of channels at a time: the pixel-wise max of the blocks'
    maxima, the sum of their sums, the channel(s) with the largest resized spatial sums. This
    gives the reference's pixels for ``pixel_wise_max``, ``select_max`` and grids; for
    ``squeeze_mean`` the float32 summation order changes (a pixel may move one gray level).

    Parameters
    ----------
    x : numpy.ndarray
        Finite float32 ``(C, h, w)``.
    target_hw : (int, int)
        The size the map is resized to when drawn.
    style : FeatmapStyle
        ``channel_reduction`` and ``topk``.
    crop : bool
        Whether the drawing crops the map to the picture's aspect first (MMRazor's rule).

    Returns
    -------
    PreparedMap
        ``x`` itself when it fits :data:`RESIZE_BUDGET` (or has nothing to reduce), else the
        reduced map (``reduction=None``) or the picked channels.
    """
    c, h, w = x.shape
    plain = PreparedMap(x, style.channel_reduction, style.topk)
    unreduced = style.channel_reduction is None and not style.grid
    if unreduced or c == 1 or c * target_hw[0] * target_hw[1] <= RESIZE_BUDGET:
        return plain
    source, contiguous = x, True
    if crop and (h, w) != tuple(target_hw):
        fh, fw = crop_to_aspect((h, w), target_hw)
        contiguous = (fh, fw) == (h, w)
        source = x[:, :fh, :fw]
    block = max(1, RESIZE_BUDGET // (target_hw[0] * target_hw[1]))
    acc: np.ndarray | None = None
    scores = []
    for start in range(0, c, block):
        part = resize_bilinear(
            source[start : start + block], target_hw, torch_contiguous=contiguous
        )
        if style.channel_reduction == "pixel_wise_max":
            top = part.max(axis=0)
            acc = top if acc is None else np.maximum(acc, top)
        elif style.channel_reduction == "squeeze_mean":
            total = part.sum(axis=0, dtype=np.float64)
            acc = total if acc is None else acc + total
        else:
            scores.append(part.reshape(part.shape[0], -1).sum(axis=1, dtype=np.float64))
    if style.channel_reduction == "pixel_wise_max":
        return PreparedMap(acc[None], None, 0)  # type: ignore[index]
    if style.channel_reduction == "squeeze_mean":
        return PreparedMap((acc / c).astype(np.float32)[None], None, 0)
    order = np.argsort(-np.concatenate(scores), kind="stable")
    if style.channel_reduction == "select_max":
        return PreparedMap(x[order[:1]], "select_max", style.topk)
    picked = order[: style.topk]
    return PreparedMap(x[picked], None, len(picked), picked.astype(np.int64))


def prepare_feature_maps(
    levels: Mapping[str, np.ndarray],
    target_hw: tuple[int, int],
    style: FeatmapStyle,
    *,
    valid: tuple[float, float] | None = None,
) -> dict[str, PreparedMap]:
    """Prepare the levels of one image and point for drawing.

    Per level: the detector's padded margin is cut off (:func:`crop_padding`), non-finite values
    are refused or masked (``style.nan_policy``), each channel is standardised with
    ``style.use_norm`` (MMRazor's ``--use-norm``, here after the padding is gone), and large
    maps are reduced in blocks (:func:`reduce_for_drawing`).

    Parameters
    ----------
    levels : Mapping of str to numpy.ndarray
        Output name -> raw ``(C, h, w)`` map (a point's entry of
        :attr:`featscope.results.CapturedMaps.maps`).
    target_hw : (int, int)
        The picture's ``(height, width)``.
    style : FeatmapStyle
        The drawing options (with ``overlaid`` resolved).
    valid : (float, float), optional
        A detector's valid fraction of each map.

    Returns
    -------
    dict of str to PreparedMap
        In the order of ``levels``.

    Raises
    ------
    ParameterError
        For NaN/inf values with ``nan_policy="raise"`` (the message names the output).
    """
    # MMRazor crops a padded map to the picture's aspect only when it resizes to an overlay
    crop = bool(style.overlaid) and style.resize_shape is None
    prepared = {}
    for name, raw in levels.items():
        x, kept = crop_padding(raw, valid)
        x = check_finite(np.ascontiguousarray(x, dtype=np.float32), style.nan_policy, name=name)
        if style.use_norm:
            x = standardize_channels(x)
        done = reduce_for_drawing(x, target_hw, style, crop=crop)
        params = {
            "shape": list(raw.shape),
            "drawn_shape": list(x.shape),
            "padding_cropped_to": kept,
        }
        prepared[name] = dataclasses.replace(done, params=params)
    return prepared
