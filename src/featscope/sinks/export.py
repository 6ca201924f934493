"""Copies of a finished run's files at a path the user chose (``--out``), all or nothing.

The run folder is always the first and complete record; an export is a convenience copy of some
of its files (recon's figure, browse's pictures, shape bias's csv) made after the folder is
finished, so an export never holds what the run folder lacks. Each copy goes through a hidden
temporary name and a rename, and a failure removes the copies this call made, so a failed export
leaves nothing that looks finished.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featscope.errors import OutputError

__all__ = ["export_files", "export_from_run", "finished_paths"]

# names that read as one file; a new folder of several copies is not given one of these
_FILE_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".pdf",
        ".svg",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".html",
        ".csv",
        ".tsv",
        ".json",
        ".npy",
        ".npz",
        ".txt",
    ]
)


def finished_paths(run: Any, files: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Return where files written into an open run lie once the run is finished.

    The write methods of :class:`~featscope.sinks.LocalRun` return paths in the hidden
    ``.partial`` folder, which is renamed when the run finishes; the files keep their names.

    Parameters
    ----------
    run : LocalRun
        The finished run.
    files : sequence of path
        Files as the run's write methods returned them.

    Returns
    -------
    list of pathlib.Path
        The same names in :attr:`~featscope.sinks.LocalRun.final_path`, in order.
    """
    return [run.final_path / Path(f).name for f in files]


def export_from_run(
    run: Any, files: Sequence[str | os.PathLike[str]], target: str | os.PathLike[str] | None
) -> list[Path]:
    """Copy files a run wrote from its finished folder to ``target`` (``Output.export``).

    Parameters
    ----------
    run : LocalRun or None
        The finished run; ``None`` (no run folder): nothing is copied.
    files : sequence of path
        Files as the run's write methods returned them (see :func:`finished_paths`), copied in
        this order.
    target : path or None
        As for :func:`export_files`; ``None``: nothing is copied.

    Returns
    -------
    list of pathlib.Path
        The copies; empty without a run or a target.

    Raises
    ------
    OutputError
        As :func:`export_files`.
    """
    if run is None or target is None:
        return []
    return export_files(finished_paths(run, files), target)


def export_files(
    files: Sequence[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Copy ``files`` to ``target``: a file for one file, else a folder.

    Parameters
    ----------
    files : sequence of path
        Finished files (normally inside a finished run folder).
    target : path
        For one file, the copy's path unless it is an existing folder; for several files, a
        folder (created if missing) that receives them under their own names.
    names : sequence of str, optional
        The copies' names in the folder ``target``, one per file (``fig_0.png``,
        ``fig_1.png``); with names, ``target`` is always a folder.

    Returns
    -------
    list of pathlib.Path
        The copies, in the order of ``files``.

    Raises
    ------
    OutputError
        When the target's folder does not exist (single file), the target is a file where a
        folder is needed, or a copy fails; copies already made by this call are removed.
    """
    sources = [Path(f) for f in files]
    target = Path(target)
    if names is not None and len(names) != len(sources):
        raise ValueError(f"{len(names)} names for {len(sources)} files; pass one name per file")
    if len(sources) == 1 and names is None and not target.is_dir():
        if target.parent != Path("") and not target.parent.is_dir():
            raise OutputError(
                f"`--out` {str(target)!r}: folder {str(target.parent)!r} does not exist; create "
                "it or pass another path"
            )
        destinations = [target]
    else:
        if not target.exists() and target.suffix.lower() in _FILE_SUFFIXES:
            # "--out sheet.png" on a run of many pictures made a folder named sheet.png
            raise OutputError(
                f"`--out` {str(target)!r} names a file, but this run exports {len(sources)} "
                f"files; pass a folder (e.g. {str(target.with_suffix(''))!r}); the run folder "
                "itself is complete"
            )
        if target.exists() and not target.is_dir():
            raise OutputError(
                f"`--out` {str(target)!r} is a file, but this run exports {len(sources)} files; "
                "pass a folder"
            )
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"`--out` {str(target)!r} cannot be created: {exc.strerror}") from exc
        destinations = [target / name for name in (names or [s.name for s in sources])]
    written: list[Path] = []
    try:
        for source, destination in zip(sources, destinations, strict=True):
            temp = destination.with_name(f".{destination.name}.partial")
            try:
                shutil.copyfile(source, temp)
                os.replace(temp, destination)
            finally:
                temp.unlink(missing_ok=True)
            written.append(destination)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise OutputError(
            f"`--out` {str(target)!r}: could not write {exc.filename or target}: {exc.strerror}"
        ) from exc
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written
