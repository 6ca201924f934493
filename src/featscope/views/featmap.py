"""The feature-map views: where in the image a layer responds, and where two models differ.

``featscope.feature_maps(...)`` and ``featscope.feature_map_difference(...)`` are the whole job
in one call; ``featscope featmap`` and ``featscope featmap-diff`` are thin wrappers around them.
They compose public stages: :func:`featscope.models.load_model`, :func:`featscope.capture.capture`,
:func:`featscope.capture.tokens.to_feature_map`, :func:`featscope.render.featmap.draw_featmap`
and :class:`featscope.sinks.LocalRun`.

Geometry: every map is drawn in the geometry of the **original photo**, so that it lines up with
it. A classifier sees a resized, centre-cropped copy of the photo (its :class:`Preprocessing`);
its maps are drawn over the part of the photo that crop covers, at the photo's own resolution
(at most ``max_size`` pixels on the long side). Detectors with their own resize-and-pad
transform (torchvision's ``GeneralizedRCNNTransform``: Faster R-CNN, RetinaNet, FCOS, ...) get
the whole photo; the padded margin of each map is cut off exactly (from the sizes the transform
reports) before the map is stretched over the photo. Where featscope differs from MMRazor's tools
on purpose:

* one file per image, point and level, ``<image>_<point>[.<level>].png``, never overwritten;
* no predictions or boxes are drawn over the maps;
* without ``overlaid`` the map is drawn at the same size as with it (MMRazor draws it at the
  feature map's own size, e.g. 7x7 pixels);
* ``use_norm`` standardises the map after the padded margin of a detector is cut off;
* the difference pairs outputs by name, not by order, and needs equal shapes;
* ``shared_scale`` puts all levels (and grid tiles) of one image and point on one colour scale;
  for differences the scale starts at 0, so that a small difference stays dark.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featscope.data.images import skip_reason
from featscope.errors import CaptureError, DataError, FeatscopeError, ParameterError
from featscope.views._featmap_images import (
    Geometry,
    PhotoItem,
    collect_images,
    is_detector,
    model_input,
    safe_name,
    take_unique,
    unique_stems,  # public: part of this module's API before the split
)
from featscope.views._run import Stopwatch, open_run

__all__ = [
    "DEFAULT_DEMO_MODEL",
    "DEFAULT_DEMO_POINTS",
    "FeatmapRun",
    "FeatureMap",
    "feature_map_difference",
    "feature_maps",
    "unique_stems",
]

logger = logging.getLogger(__name__)

#: The built-in default of ``featscope featmap`` with no arguments.
DEFAULT_DEMO_MODEL = "demo:efficientnet-lite0"
#: Its capture points: edges (stride 4), parts (stride 16) and the object (last stage, stride 32).
DEFAULT_DEMO_POINTS = ("blocks.1", "blocks.3", "blocks.6")
#: Capture point when a model is given without points.
DEFAULT_POINTS = ("backbone",)
#: Default longest side of the drawn images.
DEFAULT_MAX_SIZE = 1024

# Feature maps are resized to the image with all their channels before the reduction (the
# reference's order). Above this many resized values the reduction is done in blocks of
# channels, which gives the same pixels without holding C x H x W floats at once.
_RESIZE_BUDGET = 1 << 25
_TRANSFORM_POINT = "<detector input transform>"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FeatureMap:
    """One drawn feature map: one image, one capture point, one level.

    Attributes
    ----------
    image_id : str
        The image: its path as given, or the name of an in-memory/demo image.
    point : str
        The capture point asked for (``"layer4"``, ``"backbone.fpn"``).
    name : str
        The output drawn: the point, or ``<point>.<level>`` for the elements of tuple and dict
        outputs (FPN levels, multi-stage backbones).
    values : numpy.ndarray
        The raw ``(C, h, w)`` float32 map as captured (tokens laid out on their grid; for a
        difference ``|F_a - F_b|``), before any crop, standardisation or resizing.
    drawn : numpy.ndarray
        The picture written, RGB uint8 ``(H, W, 3)``.
    file : str or None
        File name (without suffix) of the ``.png`` and ``.npy`` in the run folder.
    params : Mapping
        How it was drawn: the shapes, the region of the photo, the colour scale, the crop.
    """

    image_id: str
    point: str
    name: str
    values: np.ndarray
    drawn: np.ndarray
    file: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> str | None:
        """The level of a tuple/dict output (``"0"``, ``"pool"``), or ``None``."""
        return self.name[len(self.point) + 1 :] if self.name != self.point else None


@dataclass(frozen=True)
class FeatmapRun:
    """What one feature-map (or difference) run produced.

    Attributes
    ----------
    maps : tuple of FeatureMap
        One per image, point and level, in image order, then point order, then level order.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` when ``work_dir=None``).
    view : str
        ``"featmap"`` or ``"featmap_diff"``.
    models : tuple of str
        The model spec(s).
    params : Mapping
        The drawing options used.
    timings : dict of str to float
        Seconds spent in each stage (``load``, ``forward``, ``draw``, ``write``).
    skipped : tuple of (str, str)
        ``(image id, reason)`` of unreadable images skipped with ``skip_bad_images=True``.
    """

    maps: tuple[FeatureMap, ...]
    run_dir: Path | None
    view: str = "featmap"
    models: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self) -> Iterator[FeatureMap]:
        return iter(self.maps)

    def __getitem__(self, key: tuple[str, str]) -> FeatureMap:
        """Return the map of ``(image_id, name)``."""
        for item in self.maps:
            if (item.image_id, item.name) == tuple(key):
                return item
        have = ", ".join(f"({m.image_id!r}, {m.name!r})" for m in self.maps[:8])
        raise KeyError(f"no map for {key!r}; this run has e.g. {have}")

    @property
    def raw(self) -> dict[tuple[str, str], np.ndarray]:
        """Raw ``(C, h, w)`` maps by ``(image_id, name)``."""
        return {(m.image_id, m.name): m.values for m in self.maps}

    @property
    def drawn(self) -> dict[tuple[str, str], np.ndarray]:
        """Drawn RGB pictures by ``(image_id, name)``."""
        return {(m.image_id, m.name): m.drawn for m in self.maps}

    @property
    def files(self) -> dict[tuple[str, str], Path]:
        """The ``.png`` files written, by ``(image_id, name)`` (empty without a run folder)."""
        if self.run_dir is None:
            return {}
        return {(m.image_id, m.name): self.run_dir / f"{m.file}.png" for m in self.maps}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    channel_reduction: str | None
    topk: int
    arrangement: tuple[int, int]
    resize_shape: tuple[int, int] | None
    alpha: float
    overlaid: bool
    use_norm: bool
    shared_scale: bool
    nan_policy: str
    max_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel_reduction": self.channel_reduction,
            "topk": self.topk,
            "arrangement": list(self.arrangement),
            "resize_shape": None if self.resize_shape is None else list(self.resize_shape),
            "alpha": self.alpha,
            "overlaid": self.overlaid,
            "use_norm": self.use_norm,
            "shared_scale": self.shared_scale,
            "nan_policy": self.nan_policy,
            "max_size": self.max_size,
        }


def _options(
    *,
    channel_reduction: str | None,
    topk: int,
    arrangement: Sequence[int],
    resize_shape: Sequence[int] | None,
    alpha: float,
    overlaid: bool,
    use_norm: bool,
    shared_scale: bool,
    nan_policy: str,
    max_size: int | None,
) -> _Options:
    """Check every drawing option before a model is loaded or an image read."""
    from featscope.render.featmap import draw_featmap

    if isinstance(channel_reduction, str) and channel_reduction.lower() == "none":
        channel_reduction = None
    # draw_featmap's own checks, on a one-pixel map: one set of rules and messages
    draw_featmap(
        np.zeros((1, 1, 1), np.float32),
        None,
        channel_reduction,
        topk,
        tuple(arrangement) if isinstance(arrangement, list) else arrangement,
        tuple(resize_shape) if isinstance(resize_shape, list) else resize_shape,
        alpha,
        nan_policy=nan_policy,
    )
    for name, value in (("overlaid", overlaid), ("use_norm", use_norm)):
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"`{name}` {value!r} is not True or False")
    if not isinstance(shared_scale, (bool, np.bool_)):
        raise ParameterError(f"`shared_scale` {shared_scale!r} is not True or False")
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 0
    ):
        raise ParameterError(
            f"`max_size` {max_size!r} is not an integer >= 0; pass the longest side of the drawn "
            f"images in pixels, e.g. {DEFAULT_MAX_SIZE}, or 0 to keep the photo's own size"
        )
    return _Options(
        channel_reduction=channel_reduction,
        topk=int(topk),
        arrangement=(int(arrangement[0]), int(arrangement[1])),
        resize_shape=None if resize_shape is None else (int(resize_shape[0]), int(resize_shape[1])),
        alpha=float(alpha),
        overlaid=bool(overlaid),
        use_norm=bool(use_norm),
        shared_scale=bool(shared_scale),
        nan_policy=nan_policy,
        max_size=int(max_size) if max_size else None,
    )


# --------------------------------------------------------------------------- capture


def _levels(handle: Any, points: Sequence[Any], values: Mapping[str, Any]) -> dict:
    """``{point name: {output name: (C, h, w) float32}}`` for one image's captured values."""
    from featscope.capture.pooling import flatten_outputs
    from featscope.capture.tokens import output_is_channels_last, to_feature_map

    out: dict[str, dict[str, np.ndarray]] = {}
    for point in points:
        maps = {}
        for name, tensor in flatten_outputs(point.name, values[point.name]).items():
            if tensor.ndim == 0 or tensor.shape[0] != 1:
                raise CaptureError(
                    f"output {name!r} has shape {tuple(tensor.shape)}, which is not batch-first "
                    "for one image; pick a point (or an element of it) with one row per image"
                )
            fmap = to_feature_map(
                tensor,
                name=name,
                num_prefix_tokens=handle.num_prefix_tokens,
                patch_grid=handle.patch_grid,
                channels_last=output_is_channels_last(handle.module, point.ref.module),
            )
            maps[name] = fmap[0].detach().float().cpu().numpy()
        out[point.name] = maps
    return out


def _capture_points(handle: Any, points: Sequence[str]) -> list[Any]:
    from featscope.capture.points import CapturePoint, resolve_points
    from featscope.models.handle import PointRef

    resolved = resolve_points(handle, list(points))
    if is_detector(handle.module):
        resolved.append(CapturePoint(_TRANSFORM_POINT, PointRef("transform")))
    return resolved


class _Runner:
    """Run one model on one photo at a time and return its maps by point and output name."""

    def __init__(self, handle: Any, points: Sequence[Any], max_size: int | None) -> None:
        self.handle = handle
        self.points = [p for p in points if p.name != _TRANSFORM_POINT]
        self.all_points = list(points)
        self.max_size = max_size
        self.tap: Any = None

    @contextmanager
    def active(self) -> Iterator[_Runner]:
        from featscope.capture.hooks import capture

        with capture(self.handle, self.all_points) as tap:
            self.tap = tap
            try:
                yield self
            finally:
                self.tap = None

    def run(self, image: Any) -> tuple[dict, Geometry]:
        x, geometry = model_input(self.handle, image, self.max_size)
        device, dtype = _device_dtype(self.handle.module)
        try:
            values = self.tap.run(x.to(device=device, dtype=dtype))
        except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
            if isinstance(exc, FeatscopeError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CaptureError(
                f"model {self.handle.spec} failed on the input {tuple(x.shape)} made by its "
                f"preprocessing (input_size {self.handle.preprocess.input_size}): {first}; pass "
                "the input size the model was built for (input_size=... / --input-size)"
            ) from exc
        if geometry.detector:
            image_list = values[_TRANSFORM_POINT][0]
            padded_h, padded_w = image_list.tensors.shape[-2:]
            resized_h, resized_w = image_list.image_sizes[0]
            geometry.valid = (resized_h / padded_h, resized_w / padded_w)
        return _levels(self.handle, self.points, values), geometry


def _device_dtype(module: Any) -> tuple[Any, Any]:
    import torch

    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


# --------------------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Drawable:
    """What draw_featmap gets for one level (channels pre-reduced for large maps)."""

    x: np.ndarray
    reduction: str | None
    topk: int
    channel_names: np.ndarray | None  # original index of each channel of x, when pre-selected


def _drawable(x: np.ndarray, target_hw: tuple[int, int], crop: bool, opts: _Options) -> _Drawable:
    """Reduce the channels in blocks when resizing all of them at once would take too much memory.

    The reference resizes every channel to the output size before reducing. For large outputs
    the same result is computed a block of channels at a time: the pixel-wise max of the blocks'
    maxima, the sum of their sums, the channel(s) with the largest resized spatial sums.
    """
    from featscope.render.featmap import crop_to_aspect, resize_bilinear

    c, h, w = x.shape
    grid = opts.channel_reduction is None and opts.topk > 0
    no_reduction = opts.channel_reduction is None and not grid
    if no_reduction or c == 1 or c * target_hw[0] * target_hw[1] <= _RESIZE_BUDGET:
        return _Drawable(x, opts.channel_reduction, opts.topk, None)
    source, contiguous = x, True
    if crop and (h, w) != target_hw:
        fh, fw = crop_to_aspect((h, w), target_hw)
        contiguous = (fh, fw) == (h, w)
        source = x[:, :fh, :fw]
    block = max(1, _RESIZE_BUDGET // (target_hw[0] * target_hw[1]))
    acc: np.ndarray | None = None
    scores = []
    for start in range(0, c, block):
        resized = resize_bilinear(
            source[start : start + block], target_hw, torch_contiguous=contiguous
        )
        if opts.channel_reduction == "pixel_wise_max":
            part = resized.max(axis=0)
            acc = part if acc is None else np.maximum(acc, part)
        elif opts.channel_reduction == "squeeze_mean":
            part = resized.sum(axis=0, dtype=np.float64)
            acc = part if acc is None else acc + part
        else:
            scores.append(resized.reshape(resized.shape[0], -1).sum(axis=1, dtype=np.float64))
    if opts.channel_reduction == "pixel_wise_max":
        return _Drawable(acc[None], None, 0, None)
    if opts.channel_reduction == "squeeze_mean":
        return _Drawable((acc / c).astype(np.float32)[None], None, 0, None)
    order = np.argsort(-np.concatenate(scores), kind="stable")
    if opts.channel_reduction == "select_max":
        return _Drawable(x[order[:1]], "select_max", opts.topk, None)
    picked = order[: opts.topk]
    return _Drawable(x[picked], None, len(picked), picked.astype(np.int64))


def _draw_group(
    levels: Mapping[str, np.ndarray],
    geometry: Geometry,
    opts: _Options,
    *,
    difference: bool,
) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Draw the levels of one image and point, on one colour scale with ``shared_scale``."""
    from featscope.analysis.channels import check_finite, standardize_channels
    from featscope.render.featmap import draw_featmap, featmap_value_range

    image = geometry.image if opts.overlaid else None
    target = opts.resize_shape or tuple(int(v) for v in geometry.image.shape[:2])
    resize_shape = opts.resize_shape if opts.overlaid else target
    prepared = {}
    for name, raw in levels.items():
        x, kept = geometry.crop(raw)
        x = check_finite(np.ascontiguousarray(x, dtype=np.float32), opts.nan_policy, name=name)
        if opts.use_norm:
            x = standardize_channels(x)
        crop = image is not None and opts.resize_shape is None
        prepared[name] = (_drawable(x, target, crop, opts), kept, x.shape)

    value_range = None
    if opts.shared_scale:
        ranges = [
            featmap_value_range(
                d.x, image, d.reduction, d.topk, opts.arrangement, resize_shape, True
            )
            for d, _, _ in prepared.values()
        ]
        low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
        # a difference is >= 0: anchor its scale at 0 so that a small one stays dark
        value_range = (min(0.0, low) if difference else low, high)

    drawn = {}
    for name, (d, kept, shape) in prepared.items():
        picture = draw_featmap(
            d.x,
            image,
            d.reduction,
            d.topk,
            opts.arrangement,
            resize_shape,
            opts.alpha,
            crop_to_image=True,
            shared_scale=opts.shared_scale,
            value_range=value_range,
            channel_names=d.channel_names,
        )
        drawn[name] = (
            picture,
            {
                "shape": list(levels[name].shape),
                "drawn_shape": list(shape),
                "padding_cropped_to": kept,
                "region": list(geometry.region),
                "value_range": None if value_range is None else list(value_range),
            },
        )
    return drawn


# --------------------------------------------------------------------------- writing


def _png(picture: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


class _Names:
    """File stems ``<image>_<output>``, never the same twice in one run."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, stem: str, name: str) -> str:
        return take_unique(f"{stem}_{safe_name(name)}", self.used)


def _points_list(points: Any, default: Sequence[str]) -> list[str]:
    if points is None:
        return list(default)
    if isinstance(points, str):
        return [points]
    points = list(points)
    return points or list(default)


def _execute(
    *,
    view: str,
    handles: Sequence[Any],
    point_names: Sequence[str],
    images: list[PhotoItem],
    source: str,
    opts: _Options,
    work_dir: str | Path | None,
    backends: Sequence[str] | None,
    skip_bad_images: bool,
    clock: Stopwatch,
) -> FeatmapRun:
    """Capture, (subtract,) draw and write, one image at a time."""
    difference = len(handles) == 2
    runners = [
        _Runner(h, _capture_points(h, point_names), opts.max_size)  # unknown points fail here
        for h in handles
    ]
    names = _Names()
    results: list[FeatureMap] = []
    skipped: list[tuple[str, str]] = []
    with open_run(work_dir, view, backends) as run:
        with runners[0].active(), runners[1].active() if difference else nullcontext():
            for item in images:
                drawn_before = len(results)
                try:
                    picture = item.load()
                except DataError as exc:
                    if not skip_bad_images:
                        raise
                    skipped.append((item.id, skip_reason(exc)))
                    warnings.warn(f"skipped image {item.id!r}: {skipped[-1][1]}", stacklevel=3)
                    continue
                with clock("forward"):
                    outputs = [r.run(picture) for r in runners]
                levels, geometry = outputs[0]
                if difference:
                    levels = _differences(handles, levels, outputs[1][0], item.id)
                for point in point_names:
                    with clock("draw"):
                        drawn = _draw_group(levels[point], geometry, opts, difference=difference)
                    for name, (rgb, params) in drawn.items():
                        stem = names.take(item.stem, name)
                        if run is not None:
                            with clock("write"):
                                run.write_bytes(f"{stem}.png", _png(rgb))
                                run.write_array(f"{stem}.npy", levels[point][name])
                        fmap = FeatureMap(
                            item.id, point, name, levels[point][name], rgb, stem, params
                        )
                        results.append(fmap)
                        if run is not None:
                            run.add_result(stem, fmap)
                logger.info("%s: %d maps drawn", item.id, len(results) - drawn_before)
        if skipped and len(skipped) == len(images):
            raise DataError(
                f"none of the {len(images)} image(s) could be read (first: {skipped[0][0]!r}: "
                f"{skipped[0][1]}); pass image files"
            )
        if run is not None:
            run.add_metadata("skipped", [list(pair) for pair in skipped])
            run.add_metadata("view", view)
            run.add_metadata("options", opts.to_dict())
            run.add_metadata(
                "models",
                [
                    {"spec": h.spec, "checkpoint": h.checkpoint, "sha256": h.checkpoint_sha256}
                    for h in handles
                ],
            )
            run.add_metadata("points", list(point_names))
            run.add_metadata("source", source)
            run.add_metadata("images", [{"id": i.id, "stem": i.stem} for i in images])
    return FeatmapRun(
        maps=tuple(results),
        run_dir=None if run is None else run.final_path,
        view=view,
        models=tuple(h.spec for h in handles),
        params=opts.to_dict(),
        timings=clock.timings,
        skipped=tuple(skipped),
    )


def _differences(
    handles: Sequence[Any], levels_a: dict, levels_b: dict, image_id: str
) -> dict[str, dict[str, np.ndarray]]:
    """``|F_a - F_b|`` per output, paired by name; shapes must agree."""
    out: dict[str, dict[str, np.ndarray]] = {}
    spec_a, spec_b = handles[0].spec, handles[1].spec
    for point, maps_a in levels_a.items():
        maps_b = levels_b[point]
        only_a = [n for n in maps_a if n not in maps_b]
        only_b = [n for n in maps_b if n not in maps_a]
        if only_a or only_b:
            warnings.warn(
                f"capture point {point!r}: outputs {only_a or 'none'} exist only in model A "
                f"({spec_a}) and {only_b or 'none'} only in model B ({spec_b}); they are "
                "skipped, the others are paired by name",
                stacklevel=4,
            )
        pairs = {}
        for name, a in maps_a.items():
            if name not in maps_b:
                continue
            b = maps_b[name]
            if a.shape != b.shape:
                raise CaptureError(
                    f"cannot subtract the feature maps at {name!r} of image {image_id!r}: model "
                    f"A ({spec_a}) gives (C, H, W) = {tuple(a.shape)} and model B ({spec_b}) "
                    f"gives {tuple(b.shape)}; the difference needs the same shape: pick points "
                    "with the same channels and resolution (and the same input size)"
                )
            pairs[name] = np.abs(a - b)
        if not pairs:
            raise CaptureError(
                f"capture point {point!r} gives outputs {list(maps_a)} in model A ({spec_a}) "
                f"and {list(maps_b)} in model B ({spec_b}); none has the same name in both, so "
                "there is nothing to subtract: pick points whose outputs match"
            )
        out[point] = pairs
    return out


# --------------------------------------------------------------------------- public views


def feature_maps(
    model: Any = None,
    images: Any = None,
    points: str | Sequence[str] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    input_size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channel_reduction: str | None = "pixel_wise_max",
    topk: int = 20,
    arrangement: tuple[int, int] = (4, 5),
    resize_shape: tuple[int, int] | None = None,
    alpha: float = 0.5,
    overlaid: bool | None = None,
    use_norm: bool = False,
    shared_scale: bool = False,
    nan_policy: str = "raise",
    max_size: int | None = DEFAULT_MAX_SIZE,
    device: str = "cpu",
    work_dir: str | os.PathLike[str] | None = "work_dirs",
    backends: Sequence[str] | None = None,
    skip_bad_images: bool = False,
) -> FeatmapRun:
    """Draw the feature maps of a model at one or more capture points, one file per map.

    With no ``model`` and no ``images``, runs the built-in default: EfficientNet-Lite0 with its
    ImageNet weights on three ``skimage.data`` photos (coffee, chelsea, astronaut), maps at
    ``blocks.1``, ``blocks.3`` and ``blocks.6`` drawn over the photos.

    Parameters
    ----------
    model : str or torch.nn.Module or callable or ModelHandle, optional
        A model spec (``"timm:convnext_tiny"``, ``"tv:resnet50"``, ``"hf:./vit"``,
        ``"ts:m.pt"``, ``"py:pkg.mod:factory"``, ``"demo:efficientnet-lite0"``), a module, a
        factory or a handle. Default: ``demo:efficientnet-lite0``.
    images : path, sequence, ImageSamples, optional
        Image files and folders (every image below a folder, recursively), PIL images or
        uint8 arrays, ``(id, image)`` pairs, or :class:`ImageSamples`. Default: the demo photos.
    points : str or sequence of str, optional
        Capture points: module paths (``"layer4"``, ``"backbone.fpn"``) or aliases
        (``"backbone"``, ``"neck"``); all come from one forward pass per image. Tuple and dict
        outputs (FPN levels, multi-stage backbones) are drawn per level, ``<point>.<level>``;
        transformer tokens ``(N, L, C)`` are laid out on the patch grid, class and register
        tokens dropped. Default: ``backbone`` (the demo's three stages for the demo).
    checkpoint : path, optional
        State dict to load into the model (``torch.load(weights_only=True)``).
    input_size, mean, std : optional
        Override the model's preprocessing.
    channel_reduction : {"pixel_wise_max", "squeeze_mean", "select_max", "none"} or None
        How channels become one map (see :func:`featscope.render.featmap.draw_featmap`);
        ``None``/``"none"`` with ``topk > 0`` draws a grid of the ``topk`` channels with the
        largest spatial sum.
    topk : int, default 20
        Channels in the grid (with ``channel_reduction=None``).
    arrangement : (int, int), default (4, 5)
        Grid ``(rows, cols)``.
    resize_shape : (int, int), optional
        Output ``(height, width)`` of every map (default: the photo's region, at most
        ``max_size`` on the long side).
    alpha : float, default 0.5
        Weight of the heat map in the blend with the photo, in [0, 1].
    overlaid : bool, optional
        Draw over the photo. Default: on for the built-in default, off otherwise.
    use_norm : bool, default False
        Standardise each channel over space before drawing (MMRazor's ``--use-norm``).
    shared_scale : bool, default False
        One colour scale for all levels and tiles of one image and point.
    nan_policy : {"raise", "mask"}, default "raise"
        NaN/inf in a map: an error, or drawn as the lowest finite value.
    max_size : int or None, default 1024
        Longest side of the drawn pictures; larger photos are scaled down (0 or None: keep).
    device : str, default "cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.
    work_dir : path or None, default "work_dirs"
        Where the run folder ``featmap_<timestamp>/`` is made (the ``.png`` and raw ``.npy``
        of every map and ``manifest.json``); ``None`` writes nothing.
    backends : sequence of str, optional
        Also log to ``"tensorboard"`` and/or ``"wandb"``; the run folder is always written.
    skip_bad_images : bool, default False
        Skip images that cannot be read (with a warning; listed in ``skipped`` and the
        manifest) instead of stopping at the first.

    Returns
    -------
    FeatmapRun
        The raw and drawn maps by ``(image_id, name)``, the run folder and timings.

    Raises
    ------
    featscope.errors.FeatscopeError
        For bad options (before the model is loaded), an unknown point (before any image is
        read), unreadable images, outputs that are not maps; no finished run folder is left.

    Examples
    --------
    >>> import featscope
    >>> run = featscope.feature_maps(work_dir=None)  # doctest: +SKIP
    >>> run["coffee", "blocks.6"].values.shape  # doctest: +SKIP
    (320, 7, 7)
    """
    builtin = model is None and images is None
    opts = _options(
        channel_reduction=channel_reduction,
        topk=topk,
        arrangement=arrangement,
        resize_shape=resize_shape,
        alpha=alpha,
        overlaid=builtin if overlaid is None else overlaid,
        use_norm=use_norm,
        shared_scale=shared_scale,
        nan_policy=nan_policy,
        max_size=max_size,
    )
    from featscope.models import load_model

    clock = Stopwatch()
    with clock("load"):
        handle = load_model(
            DEFAULT_DEMO_MODEL if model is None else model,
            checkpoint=checkpoint,
            input_size=input_size,
            mean=mean,
            std=std,
            device=device,
        )
        names = _points_list(points, DEFAULT_DEMO_POINTS if model is None else DEFAULT_POINTS)
        _capture_points(handle, names)  # unknown points fail before any image is read
        items, source = collect_images(images)
    logger.info("feature maps of %s at %s for %d image(s)", handle.spec, names, len(items))
    return _execute(
        view="featmap",
        handles=[handle],
        point_names=[p.name for p in _capture_points(handle, names) if p.name != _TRANSFORM_POINT],
        images=items,
        source=source,
        opts=opts,
        work_dir=work_dir,
        backends=backends,
        skip_bad_images=skip_bad_images,
        clock=clock,
    )


def feature_map_difference(
    models: Sequence[Any],
    images: Any = None,
    points: str | Sequence[str] | None = None,
    *,
    checkpoints: Sequence[str | os.PathLike[str] | None] | None = None,
    input_size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channel_reduction: str | None = "pixel_wise_max",
    topk: int = 20,
    arrangement: tuple[int, int] = (4, 5),
    resize_shape: tuple[int, int] | None = None,
    alpha: float = 0.5,
    overlaid: bool = False,
    use_norm: bool = False,
    shared_scale: bool = True,
    nan_policy: str = "raise",
    max_size: int | None = DEFAULT_MAX_SIZE,
    device: str = "cpu",
    work_dir: str | os.PathLike[str] | None = "work_dirs",
    backends: Sequence[str] | None = None,
    skip_bad_images: bool = False,
) -> FeatmapRun:
    """Draw where two models' feature maps differ: ``|F_a - F_b|`` per point and level.

    Both models see the same images; outputs are paired by name (``neck.0`` with ``neck.0``),
    not by order, and must have the same shape. The maps are drawn in model A's geometry.

    Parameters
    ----------
    models : (model, model)
        Two models, each anything :func:`feature_maps` accepts as ``model`` (e.g. a teacher and
        a student, or one architecture before and after fine-tuning).
    images : optional
        As in :func:`feature_maps`; default the demo photos.
    points : str or sequence of str, optional
        Capture points, names valid in both models. Default: ``backbone``.
    checkpoints : (path or None, path or None), optional
        A checkpoint for each model.
    shared_scale : bool, default True
        One colour scale, starting at 0, for all levels and tiles of one image and point;
        per-map min-max (False, the reference) hides where the difference is large.
    input_size, mean, std, channel_reduction, topk, arrangement, resize_shape, alpha, overlaid,
    use_norm, nan_policy, max_size, device, work_dir, backends, skip_bad_images
        As in :func:`feature_maps` (``use_norm`` standardises the difference, like MMRazor).
        The run folder is ``featmap_diff_<timestamp>/``.

    Returns
    -------
    FeatmapRun
        ``values`` of each map is the raw difference ``|F_a - F_b|``.

    Raises
    ------
    ParameterError
        When ``models`` is not two models, or for bad options.
    CaptureError
        When a point is missing in a model, or the two outputs of a name differ in shape (the
        message gives both shapes).
    """
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence) or len(models) != 2:
        raise ParameterError(
            f"`models` must be two models (A, B) to compare; got {models!r}; pass e.g. "
            "models=('ts:teacher.pt', 'ts:student.pt')"
        )
    checkpoints = [None, None] if checkpoints is None else list(checkpoints)
    if len(checkpoints) != 2:
        raise ParameterError(
            f"`checkpoints` must give one checkpoint (or None) per model; got {len(checkpoints)}"
        )
    opts = _options(
        channel_reduction=channel_reduction,
        topk=topk,
        arrangement=arrangement,
        resize_shape=resize_shape,
        alpha=alpha,
        overlaid=overlaid,
        use_norm=use_norm,
        shared_scale=shared_scale,
        nan_policy=nan_policy,
        max_size=max_size,
    )
    from featscope.models import load_model

    clock = Stopwatch()
    with clock("load"):
        handles = [
            load_model(m, checkpoint=c, input_size=input_size, mean=mean, std=std, device=device)
            for m, c in zip(models, checkpoints, strict=True)
        ]
        names = _points_list(points, DEFAULT_POINTS)
        resolved = [_capture_points(h, names) for h in handles]
        items, source = collect_images(images)
    logger.info(
        "feature-map difference %s vs %s at %s for %d image(s)",
        handles[0].spec,
        handles[1].spec,
        names,
        len(items),
    )
    return _execute(
        view="featmap_diff",
        handles=handles,
        point_names=[p.name for p in resolved[0] if p.name != _TRANSFORM_POINT],
        images=items,
        source=source,
        opts=opts,
        work_dir=work_dir,
        backends=backends,
        skip_bad_images=skip_bad_images,
        clock=clock,
    )
