"""Writing an embedding run: features, maps, metrics, figures, thumbnails and the page.

The files :func:`featscope.tsne` leaves in its run folder, which :func:`featscope.load_run` and
``featscope compare`` read back: ``feat_<point>.npy`` with ``labels.npy``, ``ids.txt`` and
``class_names.txt``; ``coords_<point>.csv`` (recorded in the manifest); ``metrics.json``; the
figures; ``thumbnails.npy`` with ``thumbnail_rows.npy``; and ``embedding.html``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from featscope.errors import MissingExtraError
from featscope.options import Figures
from featscope.results import EmbeddingResult, FeatureSet
from featscope.sinks.layout import PAGE_NAME, THUMBNAIL_ROWS_NAME, THUMBNAILS_NAME, safe_stem
from featscope.sinks.run import LocalRun

__all__ = ["write_maps", "write_page", "write_thumbnails"]

logger = logging.getLogger(__name__)


def write_maps(
    run: LocalRun,
    feature_sets: Sequence[FeatureSet],
    results: Sequence[EmbeddingResult],
    drawn: Mapping[str, Any],
    figures: Figures,
) -> list[Path]:
    """Write features, coordinates, samples, metrics and figures; return the figure files.

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    feature_sets : sequence of FeatureSet
        The features of each map (``feat_<point>.npy``; the samples with the first).
    results : sequence of EmbeddingResult
        The maps, in the order of ``feature_sets`` (``coords_<point>.csv``, each recorded in
        the manifest; all metrics in ``metrics.json``).
    drawn : Mapping of str to matplotlib.figure.Figure
        The figures by name (:func:`featscope.render.plot_embedding_figures`).
    figures : Figures
        Their formats and resolution.

    Returns
    -------
    list of pathlib.Path
        The figure files, in the order of ``drawn`` and of the formats (what ``--out`` copies).

    Raises
    ------
    ParameterError
        For feature sets of other samples, or a name the run folder does not allow.
    OutputError
        When a file cannot be written.
    """
    for features, result in zip(feature_sets, results, strict=True):
        run.write(features)  # feat_<point>.npy; labels, ids and class names with the first
        run.write(result)  # coords_<point>.csv, recorded in the manifest
    run.write_json("metrics.json", {r.point: dict(r.metrics) for r in results})
    run.add_metadata("maps", [r.point for r in results])  # their order: the manifest sorts keys
    same = {fs.point: list(fs.aliases) for fs in feature_sets if fs.aliases}
    if same:  # names that gave the same features, mapped once under the first
        run.add_metadata("same_points", same)
    written: list[Path] = []
    for name, figure in drawn.items():
        written += run.write_figure(
            figure, safe_stem(name), formats=figures.formats, dpi=figures.dpi
        )
    return written


def write_thumbnails(run: LocalRun, thumbnails: Any, rows: Any) -> list[Path]:
    """Write the thumbnails and the sample rows they show (kept for ``featscope compare``).

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    thumbnails : numpy.ndarray
        ``(M, s, s, 3)`` uint8 (see :func:`featscope.data.thumbnails.sample_thumbnails`).
    rows : numpy.ndarray
        ``(M,)`` rows, into ``ids.txt``, of the samples they show.

    Returns
    -------
    list of pathlib.Path
        ``thumbnails.npy`` and ``thumbnail_rows.npy``.
    """
    return [
        run.write_array(THUMBNAILS_NAME, thumbnails),
        run.write_array(THUMBNAIL_ROWS_NAME, rows),
    ]


def write_page(
    run: LocalRun, results: Sequence[EmbeddingResult], thumbnails: Any = None, rows: Any = None
) -> Path | None:
    """Write ``embedding.html``: the maps side by side, with the thumbnails on hover.

    Without the page's library (bokeh) the page is left out with a warning, as the maps,
    figures and data already written must not be lost for it.

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    results : sequence of EmbeddingResult
        The maps (see :func:`featscope.render.page.build_page`).
    thumbnails, rows : numpy.ndarray, optional
        As for :func:`write_thumbnails`; ``None``: a page without pictures.

    Returns
    -------
    pathlib.Path or None
        The page, or ``None`` when bokeh is not installed.
    """
    from featscope.render.page import build_page

    try:
        text = build_page(list(results), thumbnails, rows)
    except MissingExtraError as exc:
        # stacklevel: the warning points at the caller of the view that asked for the page
        warnings.warn(f"no {PAGE_NAME}: {exc}", UserWarning, stacklevel=3)
        return None
    path = run.write_text(PAGE_NAME, text)
    logger.info("wrote the interactive page %s (%.1f MB)", PAGE_NAME, len(text) / 1e6)
    return path
