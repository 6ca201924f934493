"""The feature-map views: where in the image a layer responds, and where two models differ.

One photo at a time: load (models, data.photos) -> capture (capture.maps, by the model's
capture-point contract) -> analyse (analysis.featmap: differences, the photo's region, the
prepared maps) -> render (render.featmap) -> write (sinks.featmap into the run folder).
docs/featmap.md lists where featscope differs from MMRazor's tools on purpose.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any

from featscope.analysis.featmap import FeatmapStyle
from featscope.data.photos import reject_model
from featscope.errors import ParameterError
from featscope.options import Extraction, Figures, Output, Preprocess
from featscope.results import FeatmapRun, FeatureMap
from featscope.sinks.open import open_run
from featscope.views._run import Stopwatch

__all__ = [
    "DEFAULT_DEMO_MODEL",
    "DEFAULT_DEMO_POINTS",
    "FeatmapRun",
    "FeatmapStyle",
    "FeatureMap",
    "feature_map_difference",
    "feature_maps",
]

logger = logging.getLogger(__name__)

#: The built-in default of ``featscope featmap`` with no arguments.
DEFAULT_DEMO_MODEL = "demo:efficientnet-lite0"
#: Its capture points: edges (stride 4), parts (stride 16) and the object (last stage, stride 32).
DEFAULT_DEMO_POINTS = ("blocks.1", "blocks.3", "blocks.6")
#: Capture point when a model is given without points.
DEFAULT_POINTS = ("backbone",)
# the calls a model passed as `data` is pointed to (data comes first since option groups)
_USAGE = "feature_maps(data, model=...) / feature_map_difference(data, models=(a, b))"


def feature_maps(
    data: Any = None,
    model: Any = None,
    points: str | Sequence[str] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    preprocess: Preprocess | None = None,
    style: FeatmapStyle | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
) -> FeatmapRun:
    """Draw the feature maps of a model at one or more capture points, one file per map.

    With no ``data`` and no ``model``: EfficientNet-Lite0 with its ImageNet weights on three
    ``skimage.data`` photos, maps at ``blocks.1``, ``blocks.3`` and ``blocks.6`` over the photos.

    Parameters
    ----------
    data : path, sequence, ImageSamples, optional
        Image files and folders, PIL images, uint8 arrays, ``(id, image)`` pairs or
        :class:`~featscope.data.ImageSamples` (see :func:`~featscope.data.photos.collect_photos`).
        Default: the demo photos.
    model : str, torch.nn.Module, callable or ModelHandle, optional
        A spec (``"timm:convnext_tiny"``, ``"tv:resnet50"``, ``"hf:./vit"``, ``"ts:m.pt"``,
        ``"py:pkg.mod:factory"``), a module, a factory or a handle. Default: the demo model.
    points : str or sequence of str, optional
        Module paths or aliases, all from one forward pass per image; tuple/dict outputs are
        drawn per level (``<point>.<level>``), tokens on their grid. Default: ``backbone``.
    checkpoint : path, optional
        State dict to load into the model (``torch.load(weights_only=True)``).
    preprocess : Preprocess, optional
        Overrides of the model's input size, mean and std.
    style : FeatmapStyle, optional
        The drawing options (``overlaid`` defaults to on for the built-in demo only).
    extraction : Extraction, optional
        Its ``device`` and ``skip_bad_images``.
    figures : Figures, optional
        Its ``formats`` of the pictures, their ``dpi``, and ``show``.
    output : Output, optional
        The run folder ``featmap_<timestamp>/`` under ``work_dir`` (``None``: nothing written),
        ``backends``, and ``export`` (a copy of the pictures).

    Returns
    -------
    FeatmapRun
        The raw and drawn maps by ``(image_id, name)``, the run folder and timings.

    Raises
    ------
    featscope.errors.FeatscopeError
        For an unknown point or a model failing on its input size (before any image is read),
        unreadable images, outputs that are not maps; no finished run folder is left then.
    """
    reject_model(data, _USAGE)
    builtin = data is None and model is None  # the demo is drawn over its photos
    style = (style or FeatmapStyle()).resolved(overlaid=builtin, shared_scale=False)
    names = _names(points, DEFAULT_DEMO_POINTS if model is None else DEFAULT_POINTS)
    model = DEFAULT_DEMO_MODEL if model is None else model
    groups = (preprocess, style, extraction, figures, output)
    return _run("featmap", [model], [checkpoint], names, data, *groups)


def feature_map_difference(
    data: Any = None,
    models: Sequence[Any] | None = None,
    points: str | Sequence[str] | None = None,
    *,
    checkpoints: Sequence[str | os.PathLike[str] | None] | None = None,
    preprocess: Preprocess | None = None,
    style: FeatmapStyle | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
) -> FeatmapRun:
    """Draw where two models' feature maps differ: ``|F_a - F_b|`` per point and level.

    Both models see the same images; outputs are paired by name, not by order, and must have
    the same shape; the maps are drawn in model A's geometry. ``style.shared_scale`` defaults
    to on (one scale per image and point, from 0); ``style.use_norm`` standardises the
    difference, like MMRazor. The run folder is ``featmap_diff_<timestamp>/``.

    Parameters
    ----------
    models : (model, model)
        Two models, each anything :func:`feature_maps` takes as ``model``.
    checkpoints : (path or None, path or None), optional
        A checkpoint for each model.
    data, points, preprocess, style, extraction, figures, output
        As in :func:`feature_maps` (``points`` must be valid in both models).

    Returns
    -------
    FeatmapRun
        ``values`` of each map is the raw difference ``|F_a - F_b|``.

    Raises
    ------
    ParameterError
        When ``models`` is not two models, or ``checkpoints`` not one per model.
    CaptureError
        When a point is missing in a model, or the two outputs of a name differ in shape.
    """
    reject_model(data, _USAGE)
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
    style = (style or FeatmapStyle()).resolved(overlaid=False, shared_scale=True)
    groups = (preprocess, style, extraction, figures, output)
    return _run(
        "featmap_diff", list(models), checkpoints, _names(points, DEFAULT_POINTS), data, *groups
    )


def _names(points: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    return [points] if isinstance(points, str) else list(points or ()) or list(default)


def _run(
    view: str,
    models: list[Any],
    checkpoints: list[Any],
    names: list[str],
    data: Any,
    *groups: Any,
) -> FeatmapRun:
    """Load, then capture, (subtract,) prepare, draw and write one photo at a time."""
    from featscope.analysis.featmap import feature_map_differences, fit_photo, prepare_feature_maps
    from featscope.capture.maps import capture_maps, map_points
    from featscope.data.photos import collect_photos, read_photos, safe_name, take_unique
    from featscope.models import load_model
    from featscope.render.featmap import draw_feature_maps
    from featscope.sinks.featmap import record_featmap_run, write_featmap_sheet, write_feature_map

    preprocess, style, extraction, figures, output = groups
    extraction = extraction or Extraction()
    figures, output = figures or Figures(), output or Output()
    clock, maps, skipped, used = Stopwatch(), [], [], set()
    with clock("load"):
        kwargs = {"device": extraction.device, **(preprocess or Preprocess()).to_dict()}
        handles = [
            load_model(m, checkpoint=c, **kwargs) for m, c in zip(models, checkpoints, strict=True)
        ]
        points = [map_points(h, names) for h in handles]  # before any image is read
        photos, source = collect_photos(data)
    origins = [h.provenance(source) for h in handles]
    stages = list(zip(handles, points, origins, strict=True))
    logger.info("%s of %s at %s: %d image(s)", view, [o.model for o in origins], names, len(photos))
    with open_run(output, view) as run:
        reading = read_photos(photos, skip_bad_images=extraction.skip_bad_images, skipped=skipped)
        for photo, image in reading:
            given = photo.model_input()
            with clock("forward"):
                found = [
                    capture_maps(h, image, p, image_id=photo.id, provenance=o, prepared=given)
                    for h, p, o in stages
                ]
            found = found[0] if len(found) == 1 else feature_map_differences(*found)
            shown = fit_photo(image, found.region, style.max_size)
            for point, levels in found.maps.items():
                with clock("draw"):
                    size = style.resize_shape or shown.shape[:2]
                    prepared = prepare_feature_maps(levels, size, style, valid=found.valid)
                    drawn = draw_feature_maps(prepared, shown, style, difference=len(stages) == 2)
                for name, (picture, params) in drawn.items():
                    stem = take_unique(f"{photo.stem}_{safe_name(name)}", used)
                    params = {**style.to_dict(), **params, "region": list(found.region)}
                    item = (photo.id, point, name, levels[name], picture, stem, params)
                    maps.append(FeatureMap(*item, *origins))
                    if run is not None:
                        with clock("write"):
                            write_feature_map(run, maps[-1], figures.formats, figures.dpi)
        if run is not None:
            write_featmap_sheet(run, maps, view, figures.formats, figures.dpi)
            record_featmap_run(run, view, style.to_dict(), origins, names, source, photos, skipped)
    specs = tuple(o.model for o in origins)
    done = FeatmapRun(tuple(maps), run and run.final_path, view, specs, style.to_dict())
    done = dataclasses.replace(done, timings=clock.timings, skipped=tuple(skipped))
    return _finish(done, figures, output)


def _finish(done: FeatmapRun, figures: Figures, output: Output) -> FeatmapRun:
    """Export copies of the finished pictures (``--out``) and show them (``--show``)."""
    from featscope.render import show
    from featscope.render.featmap import picture_figure
    from featscope.sinks.export import export_files

    if output.export is not None and done.run_dir is not None:
        files = [done.run_dir / f"{m.file}.{fmt}" for m in done for fmt in figures.formats]
        done = dataclasses.replace(done, exported=tuple(export_files(files, output.export)))
    for item in done if figures.show else ():
        show(picture_figure(item.drawn, figures.dpi))
    return done
