"""Several finished embedding runs side by side in one interactive page, linked by sample id.

``featscope.compare(["work_dirs/tsne_a", "work_dirs/tsne_b"])`` reads the run folders that
``featscope tsne`` wrote (coordinates, manifest, thumbnails), keeps the samples present in every
run, and writes one self-contained page with every map side by side: selecting a cluster in one
map shows where the same samples land in the others (another layer, checkpoint or model).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from featscope.analysis.align import align_maps, common_samples
from featscope.errors import ParameterError
from featscope.options import Output
from featscope.results import CompareRun
from featscope.sinks.compare import read_tsne_run
from featscope.sinks.open import open_run

__all__ = ["CompareRun", "compare", "read_tsne_run"]

logger = logging.getLogger(__name__)

COMPARE_PAGE_NAME = "compare.html"


def compare(
    runs: Sequence[str | os.PathLike[str]],
    *,
    points: Sequence[str] | None = None,
    output: Output | None = None,
    align: str = "procrustes",
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
    align : {"procrustes", "none"}, default "procrustes"
        Turn each map onto the one before it (rotation/reflection on the shared samples) so
        that a cluster stays where it was; ``"none"`` keeps each run's own orientation.

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
    from featscope.sinks.compare import map_titles, read_tsne_runs
    from featscope.sinks.export import export_files

    if isinstance(runs, (str, os.PathLike)):
        runs = [runs]
    if not runs:
        raise ParameterError("`runs` is empty; pass one or more run folders made by featscope tsne")
    output = Output() if output is None else output
    names, maps, thumbs = read_tsne_runs(runs, points)
    titles = map_titles(names, maps)  # by model and point, in the order given
    aligned, n_dropped = common_samples([r for _, r in maps])
    aligned = list(align_maps(aligned, align))
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
        page_html=text,
    )
