"""Writing feature maps into a run folder: the pictures in every format, the raw map, the entry.

A writer for :class:`~featscope.results.FeatureMap` over :class:`~featscope.sinks.LocalRun`'s
public methods, and the record of the whole run in its manifest, so that the feature-map views
hold no file handling of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from featscope.render.featmap import encode_picture
from featscope.results import FeatureMap, Provenance
from featscope.sinks.run import LocalRun

__all__ = [
    "SHEET_NAME",
    "record_featmap_run",
    "write_featmap_sheet",
    "write_feature_map",
    "write_picture_result",
]

#: File stem of the overview sheet of a feature-map run.
SHEET_NAME = "sheet"


def write_feature_map(
    run: LocalRun, fmap: FeatureMap, formats: Sequence[str] = ("png",), dpi: float = 150
) -> list[Path]:
    """Write one feature map: ``<file>.<format>`` per format, ``<file>.npy``, its manifest entry.

    Parameters
    ----------
    run : LocalRun
        The open run folder; a ``.png`` also goes to its mirrors (TensorBoard, W&B) under the
        tag ``<file>``.
    fmap : FeatureMap
        The map; ``fmap.file`` is the file stem, unique in the run.
    formats : sequence of str, default ("png",)
        Picture formats (``png`` and ``jpg`` pixel-exact; ``pdf``, ``svg`` a page of the
        picture, see :func:`featscope.render.featmap.encode_picture`).
    dpi : float, default 150
        Resolution recorded in the pictures.

    Returns
    -------
    list of pathlib.Path
        The pictures, in the order of ``formats``, then the ``.npy`` of the raw map.

    Raises
    ------
    ParameterError
        When the map has no file stem, or for an unknown format or a taken entry name.
    OutputError
        When a file cannot be written.
    """
    from featscope.errors import ParameterError

    if not fmap.file:
        raise ParameterError(f"feature map {fmap.name!r} of {fmap.image_id!r} has no file stem")
    return write_picture_result(run, fmap, formats, dpi)


def write_picture_result(
    run: LocalRun, result: Any, formats: Sequence[str], dpi: float
) -> list[Path]:
    """Write a drawn map (a feature map, a class activation map) under its file stem.

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    result : FeatureMap or CamMap
        Read for ``file`` (the stem), ``drawn`` (the RGB picture) and ``values`` (the map).
    formats : sequence of str
        Picture formats (see :func:`featscope.render.featmap.encode_picture`).
    dpi : float
        Resolution recorded in the pictures.

    Returns
    -------
    list of pathlib.Path
        ``<file>.<format>`` per format, then ``<file>.npy``; the result's manifest entry is
        recorded under ``<file>``.
    """
    written = [
        run.write_bytes(f"{result.file}.{fmt}", encode_picture(result.drawn, fmt, dpi))
        for fmt in formats
    ]
    written.append(run.write_array(f"{result.file}.npy", result.values))
    run.add_result(result.file, result)
    return written


def write_featmap_sheet(
    run: LocalRun, maps: Sequence[FeatureMap], view: str, formats: Sequence[str], dpi: float
) -> list[Path]:
    """Write ``sheet.<format>``: every image by every point, titled by view and model(s).

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    maps : sequence of FeatureMap
        The maps drawn (nothing is written without any).
    view : str
        ``"featmap"`` or ``"featmap_diff"``.
    formats : sequence of str
        Figure formats.
    dpi : float
        Resolution.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from featscope.render.featmap_sheet import featmap_sheet

    if not maps:
        return []
    first = maps[0]
    models = [first.provenance.model or "model"]
    if first.provenance_b is not None:
        models.append(first.provenance_b.model or "model B")
    what = "feature-map difference" if view == "featmap_diff" else "feature maps"
    figure = featmap_sheet(maps, f"{what} · {' vs '.join(models)}")
    return run.write_figure(figure, SHEET_NAME, formats=formats, dpi=dpi)


def record_featmap_run(
    run: LocalRun,
    view: str,
    options: Mapping[str, Any],
    models: Sequence[Provenance],
    points: Sequence[str],
    source: str,
    images: Sequence[Any],
    skipped: Sequence[tuple[str, str]] = (),
) -> None:
    """Record in the manifest what a feature-map run was asked to draw, beside its maps.

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    view : str
        ``"featmap"`` or ``"featmap_diff"``.
    options : Mapping
        The drawing options (:meth:`featscope.analysis.featmap.FeatmapStyle.to_dict`).
    models : sequence of Provenance
        Each model's spec, checkpoint and its sha256 (recorded as ``spec``, ``checkpoint``,
        ``sha256``).
    points : sequence of str
        The capture points asked for.
    source : str
        Where the images come from.
    images : sequence of PhotoItem
        Every image named (``id`` and file ``stem``), those skipped included.
    skipped : sequence of (str, str)
        ``(image id, reason)`` of the images skipped as unreadable.
    """
    specs = [
        {"spec": m.model, "checkpoint": m.checkpoint, "sha256": m.checkpoint_sha256} for m in models
    ]
    run.add_metadata("skipped", list(skipped))
    run.add_metadata("view", view)
    run.add_metadata("options", dict(options))
    run.add_metadata("models", specs)
    run.add_metadata("points", list(points))
    run.add_metadata("source", source)
    run.add_metadata("images", [{"id": p.id, "stem": p.stem} for p in images])
