"""Writing one step of :class:`featscope.Monitor`: the epoch's maps, metrics and feature maps.

Every logging epoch adds files to the same run folder, each named with the epoch (``_e0003``),
and logs to the mirrors with the epoch as the step, so that TensorBoard and W&B show one series
per map: the figure (``<method>/<point>``), the quality metrics as scalars
(``<point>/<metric>``), the features and the map for the embedding projector, and the pictures
of the feature maps (``featmap/<image>_<point>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featscope.options import Figures
from featscope.results import FeatureSet, MonitorStep
from featscope.sinks.layout import safe_stem
from featscope.sinks.run import LocalRun
from featscope.sinks.writers import write_coords

__all__ = ["write_monitor_step"]


def write_monitor_step(
    run: LocalRun,
    step: MonitorStep,
    feature_sets: Sequence[FeatureSet],
    figures: Figures,
    *,
    thumbnails: Any = None,
    embeddings: bool = True,
) -> list[Path]:
    """Write and log what one monitored epoch produced, with the epoch as the step.

    Per map: the figure ``<method>_<point>_e<epoch>.<format>`` (tag ``<method>/<point>``), its
    coordinates ``coords_<point>_e<epoch>.csv`` (the columns of a tsne run; not recorded in the
    manifest, where every epoch would crowd it), its metrics as scalars ``<point>/<metric>``
    (sample counts left out) and, with ``embeddings``, the features and the map in the mirrors'
    embedding views. Per feature map: ``featmap_<image>_<point>_e<epoch>.png`` (tag
    ``featmap/<image>_<point>``).

    Parameters
    ----------
    run : LocalRun
        The open run folder; its :attr:`~featscope.sinks.LocalRun.step` is set to the epoch.
    step : MonitorStep
        The epoch, its maps and its feature maps.
    feature_sets : sequence of FeatureSet
        The features of each map, in the order of ``step.results``.
    figures : Figures
        Formats, resolution, legend, annotation and marker size of the map figures.
    thumbnails : numpy.ndarray, optional
        ``(N, s, s, 3)`` thumbnails of the monitored samples, for the projector sprite and the
        W&B table; ``None``: none. They are left out of a map with fewer rows (images that could
        not be read), whose rows they would no longer match.
    embeddings : bool, default True
        Log the features and maps to the embedding views.

    Returns
    -------
    list of pathlib.Path
        The files written: per map its figures and coordinates, then the feature-map pictures.

    Raises
    ------
    ParameterError
        For a name the run folder does not allow.
    OutputError
        When a file cannot be written.
    """
    from featscope.analysis.metrics import COUNT_METRICS
    from featscope.render import plot_embedding, png_bytes

    run.step = step.epoch
    suffix = f"e{step.epoch:04d}"
    written: list[Path] = []
    for features, result in zip(feature_sets, step.results, strict=True):
        stem = safe_stem(result.point)
        ax = plot_embedding(
            result, legend=figures.legend, annotate=figures.annotate,
            point_size=figures.point_size, color_by=figures.color_by,
        )  # fmt: skip
        written += run.write_figure(
            ax.figure, f"{result.method}_{stem}_{suffix}", formats=figures.formats,
            dpi=figures.dpi, tag=f"{result.method}/{result.point}",
        )  # fmt: skip
        written.append(write_coords(run, result, f"{stem}_{suffix}"))
        measured = {k: v for k, v in result.metrics.items() if k not in COUNT_METRICS}
        run.log_metrics(measured, prefix=f"{result.point}/")
        if embeddings:
            # an unreadable image changes the rows: the thumbnails would no longer match them
            matched = thumbnails is not None and len(thumbnails) == len(features)
            run.log_embedding(features, result, thumbnails if matched else None, tag=result.point)
    for fmap in step.featmaps:
        stem = safe_stem(f"{fmap.image_id}_{fmap.name}")
        picture = png_bytes(fmap.drawn)
        written.append(
            run.write_bytes(f"featmap_{stem}_{suffix}.png", picture, tag=f"featmap/{stem}")
        )
    return written
