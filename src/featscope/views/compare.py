"""Several finished embedding runs side by side in one interactive page, linked by sample id.

``featscope.compare(["work_dirs/tsne_a", "work_dirs/tsne_b"])`` reads the run folders that
``featscope tsne`` wrote (coordinates, manifest, thumbnails), keeps the samples present in every
run, and writes one self-contained page with every map side by side: selecting a cluster in one
map shows where the same samples land in the others (another layer, checkpoint or model).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from featscope.analysis.align import common_samples
from featscope.errors import DataError, ParameterError
from featscope.options import Output
from featscope.results import CompareRun, EmbeddingResult
from featscope.sinks import load_run
from featscope.sinks.open import open_run

__all__ = ["CompareRun", "compare", "read_tsne_run"]

logger = logging.getLogger(__name__)

_METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
COMPARE_PAGE_NAME = "compare.html"


def read_tsne_run(
    run_dir: str | os.PathLike[str],
) -> tuple[list[EmbeddingResult], dict[str, str] | None]:
    """Read the maps (and thumbnails) of a finished ``featscope tsne`` run folder.

    A shorthand for :func:`featscope.load_run` with ``view="tsne"``, which reads and checks
    the folder.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A run folder with ``manifest.json`` and one ``coords_<point>.csv`` per map.

    Returns
    -------
    results : list of EmbeddingResult
        One map per capture point, with the parameters, metrics and provenance of the manifest.
    thumbnails : dict of str to str, or None
        Sample id to thumbnail ``data:`` URI for the samples that have one, or ``None`` when the
        run kept no thumbnails (features read from disk, ``--thumbnails 0``, ``--no-html``).

    Raises
    ------
    DataError
        When the folder is missing, is not a finished run (no manifest), was written by another
        view, or its files are missing or malformed.
    """
    run = load_run(run_dir, view="tsne")
    if not run.results:
        raise DataError(
            f"run folder '{run.path}' records no map in its manifest; rerun featscope tsne"
        )
    return [run.embedding(key) for key in run.results], run.thumbnail_uris()


def compare(
    runs: Sequence[str | os.PathLike[str]],
    *,
    points: Sequence[str] | None = None,
    output: Output | None = None,
) -> CompareRun:
    """Write one interactive page with the maps of several ``featscope tsne`` runs, linked by id.

    Parameters
    ----------
    runs : sequence of path
        Finished ``featscope tsne`` run folders (two layers' runs, two checkpoints, two models).
    points : sequence of str, optional
        Show only these capture points of each run (default: every map of every run).
    output : Output, optional
        The run folder ``compare_<timestamp>/`` under ``work_dir`` that holds ``compare.html``
        (``work_dir=None``: nothing is written and ``page`` is None), and ``export``: a copy of
        the page at a path of your choice.

    Returns
    -------
    CompareRun
        The aligned maps, their titles and the page written.

    Raises
    ------
    ParameterError
        When no run is given or no run has one of ``points``.
    DataError
        When a run folder cannot be read, or the runs share no sample id.
    """
    from featscope.render.page import build_page
    from featscope.sinks.export import export_files

    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    if not runs:
        raise ParameterError("`runs` is empty; pass one or more run folders made by featscope tsne")
    output = Output() if output is None else output

    maps: list[EmbeddingResult] = []
    titles: list[str] = []
    thumbs: dict[str, str] = {}
    names = _run_names([Path(r) for r in runs])
    available: list[str] = []
    left_out: list[str] = []
    for run_dir, name in zip(runs, names, strict=True):
        results, run_thumbs = read_tsne_run(run_dir)
        available += [r.point for r in results if r.point not in available]
        if points:
            kept = [r for r in results if r.point in points]
            if results and not kept:
                left_out.append(
                    f"run '{name}' has no map of the points {list(points)} (it has "
                    f"{[r.point for r in results]}); it is left out of the page"
                )
            results = kept
        for r in results:
            maps.append(r)
            titles.append(f"{name} · {r.point} · {_METHOD_NAMES.get(r.method, r.method)}")
        for sample_id, uri in (run_thumbs or {}).items():
            thumbs.setdefault(sample_id, uri)
    if not maps:
        raise ParameterError(
            f"`points` {list(points or [])}: none of the runs has a map of these points; the "
            f"runs have {available}, pass some of those (--vis-stage)"
        )
    for message in left_out:
        # a run silently missing from the page would read as "the runs agree"
        warnings.warn(message, UserWarning, stacklevel=2)
    aligned, n_dropped = common_samples(maps)
    ids = aligned[0].ids
    uris = [thumbs.get(i, "") for i in ids] if thumbs else None
    text = build_page(
        aligned,
        uris,
        map_titles=titles,
        title="featscope · compare " + " · ".join(names),
    )
    with open_run(output, "compare") as run:
        if run is not None:
            run.write_text(COMPARE_PAGE_NAME, text)
            run.add_metadata("runs", [os.fspath(Path(r).resolve()) for r in runs])
            run.add_metadata("n_samples", len(ids))
            run.add_metadata("n_dropped", n_dropped)
    run_dir = None if run is None else run.final_path
    page = None if run_dir is None else run_dir / COMPARE_PAGE_NAME
    if page is not None and output.export is not None:
        [page] = export_files([page], output.export)
    logger.info("wrote %s: %d maps of %d common samples", page, len(aligned), len(ids))
    return CompareRun(
        results=tuple(aligned),
        titles=tuple(titles),
        page=page,
        run_dir=run_dir,
        n_dropped=n_dropped,
    )


# --------------------------------------------------------------------------- internals


def _run_names(paths: list[Path]) -> list[str]:
    """Folder names, made unique (``a/tsne_x`` and ``b/tsne_x`` -> ``a/tsne_x``, ``b/tsne_x``)."""
    names = [p.resolve().name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
