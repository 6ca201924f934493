"""Reading finished embedding runs back for ``featscope compare``: maps, run names, thumbnails.

A shorthand over :func:`featscope.load_run` for runs of :func:`featscope.tsne`: one run's maps
and thumbnails (:func:`read_tsne_run`), and those of several runs, each named by its folder,
restricted to some capture points (:func:`read_tsne_runs`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from featscope.errors import DataError, ParameterError
from featscope.results import EmbeddingResult
from featscope.sinks.reader import load_run

__all__ = ["map_titles", "read_tsne_run", "read_tsne_runs", "run_names"]


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
    # the order the maps were made in (recorded since issue 16), not the manifest's sorted keys
    order = [str(p) for p in run.metadata.get("maps") or [] if str(p) in run.results]
    keys = order + [key for key in run.results if key not in order]
    return [run.embedding(key) for key in keys], run.thumbnail_uris()


def map_titles(names: Sequence[str], maps: Sequence[tuple[str, EmbeddingResult]]) -> list[str]:
    """Title each map by model and point (``timm:resnet18 · layer3 · t-SNE``).

    Maps of the same model from several runs (two checkpoints, two selections) add the
    checkpoint's file name, and the run's name when that does not tell them apart either.

    Parameters
    ----------
    names : sequence of str
        The run names (see :func:`run_names`).
    maps : sequence of (str, EmbeddingResult)
        ``(run name, map)``.

    Returns
    -------
    list of str
        One title per map, in order.
    """
    methods = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}

    def model(run: str, r: EmbeddingResult, detail: int) -> str:
        text = r.provenance.model or "features"
        if detail >= 1 and r.provenance.checkpoint:
            text += f" ({Path(r.provenance.checkpoint).name})"
        if detail >= 2:
            text += f" [{run}]"
        return text

    for detail in range(3):
        titles = [
            f"{model(run, r, detail)} · {r.point} · {methods.get(r.method, r.method)}"
            for run, r in maps
        ]
        if len(set(titles)) == len(titles):
            break
    return titles


def run_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Folder names, made unique (``a/tsne_x`` and ``b/tsne_x`` -> ``a/tsne_x``, ``b/tsne_x``).

    Parameters
    ----------
    paths : sequence of path
        Run folders.

    Returns
    -------
    list of str
        Each folder's name, or ``<parent>/<name>`` for all when two names are the same.
    """
    resolved = [Path(p).resolve() for p in paths]
    names = [p.name for p in resolved]
    if len(set(names)) == len(names):
        return names
    return [f"{p.parent.name}/{p.name}" for p in resolved]


def read_tsne_runs(
    runs: Sequence[str | os.PathLike[str]], points: Sequence[str] | None = None
) -> tuple[list[str], list[tuple[str, EmbeddingResult]], dict[str, str]]:
    """Read the maps of several ``featscope tsne`` runs, keeping those of ``points``.

    A run without any of ``points`` is left out with a warning: a run silently missing from a
    comparison would read as "the runs agree".

    Parameters
    ----------
    runs : sequence of path
        Finished ``featscope tsne`` run folders.
    points : sequence of str, optional
        The capture points to keep (default: every map of every run).

    Returns
    -------
    names : list of str
        The name of each run (see :func:`run_names`), in order.
    maps : list of (str, EmbeddingResult)
        ``(run name, map)`` in run order, then in each run's map order.
    thumbnails : dict of str to str
        Sample id to thumbnail ``data:`` URI, from the first run that has one for the id.

    Raises
    ------
    ParameterError
        When no run has a map of ``points`` (the points the runs have are listed).
    DataError
        When a run folder cannot be read (see :func:`read_tsne_run`).
    """
    names = run_names(runs)
    maps: list[tuple[str, EmbeddingResult]] = []
    thumbs: dict[str, str] = {}
    available: list[str] = []
    left_out: list[str] = []
    for run_dir, name in zip(runs, names, strict=True):
        results, run_thumbs = read_tsne_run(run_dir)
        available += [r.point for r in results if r.point not in available]
        if points:
            # in the order the points were given
            kept = sorted(
                (r for r in results if r.point in points), key=lambda r: list(points).index(r.point)
            )
            if results and not kept:
                left_out.append(
                    f"run '{name}' has no map of the points {list(points)} (it has "
                    f"{[r.point for r in results]}); it is left out of the page"
                )
            results = kept
        maps += [(name, r) for r in results]
        for sample_id, uri in (run_thumbs or {}).items():
            thumbs.setdefault(sample_id, uri)
    if not maps:
        raise ParameterError(
            f"`points` {list(points or [])}: none of the runs has a map of these points; the "
            f"runs have {available}, pass some of those (--point)"
        )
    for message in left_out:
        # stacklevel: the warning points at the caller of featscope.compare
        warnings.warn(message, UserWarning, stacklevel=3)
    return names, maps, thumbs
