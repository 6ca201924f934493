"""The run folder on disk: a hidden ``.partial`` folder, renamed to its final name when done.

A run writes into ``<work_dir>/.<name>.partial/`` and, when everything has been written, is
renamed to ``<work_dir>/<name>/`` in one atomic step (:func:`create_partial`,
:func:`rename_to_final`). So a folder under a final name always holds a finished run, and a run
that was interrupted or failed never leaves one (the reference tool created its output folder
first and left it behind, half written, on every failure).

A process killed outright (``kill -9``, power loss) cannot clean up: its ``.partial`` folder
stays, hidden and without a manifest. The first line of its ``run.log`` (:func:`owner_line`)
names the process and host that wrote it; the next run opened in the same work dir removes the
partial folders whose process on this host is gone, and never one whose process still runs,
runs on another host, or was opened with ``keep_failed`` (:func:`clean_stale_partials`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from featscope.errors import OutputError
from featscope.sinks.layout import LOG_NAME

__all__ = [
    "NO_SPACE",
    "clean_stale_partials",
    "create_partial",
    "folder_error",
    "os_error_in",
    "owner_line",
    "rename_to_final",
]

logger = logging.getLogger(__name__)

#: errno values that mean the disk (or the user's quota) is full.
NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# How many `_1`, `_2`, ... suffixes to try before giving up on a folder name.
_MAX_SUFFIX = 10_000
_PARTIAL_SUFFIX = ".partial"
# First line of run.log: who writes the folder, read back by clean_stale_partials.
_OWNER_LINE = "run folder written by process {pid} on host {host} (keep_failed={keep})"
_OWNER_RE = re.compile(
    r"run folder written by process (\d+) on host (\S+) \(keep_failed=(True|False)\)"
)


def owner_line(keep_failed: bool) -> str:
    """Return the text of ``run.log``'s first line: this process, this host, ``keep_failed``."""
    return _OWNER_LINE.format(pid=os.getpid(), host=socket.gethostname(), keep=bool(keep_failed))


def os_error_in(exc: BaseException) -> OSError | None:
    """Return the first ``OSError`` among ``exc`` and its causes/contexts, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def folder_error(folder: Path, exc: OSError) -> OutputError:
    """Return the error for a run folder (or work dir) that cannot be created or renamed."""
    # "File exists" alone does not say that the --work-dir itself (or a parent) is a file
    blocker = next((p for p in (folder, *folder.parents) if p.is_file()), None)
    if blocker is not None:
        return OutputError(
            f"cannot write to run folder '{folder}': '{blocker}' is a file, not a folder; "
            "choose another --work-dir"
        )
    return OutputError(
        f"cannot write to run folder '{folder}': {exc.strerror or exc}; choose another --work-dir"
    )


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (True when that cannot be told)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) is not a harmless probe on Windows: keep the folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. EPERM: it exists but belongs to another user
    return True


def _stale_owner(folder: Path) -> int | None:
    """Return the process id of a removable partial folder's dead owner, else None."""
    try:
        with (folder / LOG_NAME).open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline(4096)
    except OSError:
        return None  # no log: a run between mkdir and its first line, or not ours
    match = _OWNER_RE.search(first)
    if match is None or match.group(3) == "True":
        return None  # not ours, or kept on purpose (keep_failed, e.g. a training monitor)
    pid, host = int(match.group(1)), match.group(2)
    if host != socket.gethostname() or pid <= 0 or _process_alive(pid):
        return None
    return pid


def clean_stale_partials(work_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove the ``.partial`` folders in ``work_dir`` left by runs whose process is gone.

    The first line of a partial folder's ``run.log`` names the process and host writing it. A
    folder is removed only when that process, on this host, no longer exists (it was killed
    with ``kill -9`` or the machine went down). A folder of a run still in progress, of another
    host (a shared file system), of a run opened with ``keep_failed=True``, or without that
    line is left alone.

    Parameters
    ----------
    work_dir : str or path-like
        The folder holding the run folders.

    Returns
    -------
    list of pathlib.Path
        The folders removed.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(work_dir).iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(_PARTIAL_SUFFIX)):
            continue
        if entry.is_symlink() or not entry.is_dir():
            continue
        pid = _stale_owner(entry)
        if pid is None:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            logger.info("removed %s, left by interrupted process %d", entry, pid)
            removed.append(entry)
    return removed


def _numbered(base: str) -> Iterator[tuple[int, str]]:
    """Yield the folder names to try, with their number: ``base``, ``base_1``, ``base_2``, ..."""
    for i in range(_MAX_SUFFIX):
        yield i, (base if i == 0 else f"{base}_{i}")


def create_partial(work_dir: Path, base: str) -> tuple[Path, str]:
    """Create ``<work_dir>/.<name>.partial/``, ``name`` the first free of ``base``, ``base_1``, ...

    ``work_dir`` is created when missing, and the partial folders of dead processes in it are
    removed first (:func:`clean_stale_partials`).

    Parameters
    ----------
    work_dir : pathlib.Path
        Parent of the run folders.
    base : str
        The wanted folder name (``tsne_20250101_120000``).

    Returns
    -------
    partial : pathlib.Path
        The hidden folder created.
    name : str
        The final name it is reserved for.

    Raises
    ------
    OutputError
        When ``work_dir`` cannot be created or written, or every numbered name is taken.
    """
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_error(work_dir, exc) from exc
    clean_stale_partials(work_dir)
    for _, candidate in _numbered(base):
        partial = work_dir / f".{candidate}{_PARTIAL_SUFFIX}"
        if (work_dir / candidate).exists():
            continue
        try:
            # os.mkdir is atomic: of two runs racing for a name, exactly one gets it.
            os.mkdir(partial)
        except FileExistsError:
            continue
        except OSError as exc:
            raise folder_error(work_dir, exc) from exc
        return partial, candidate
    raise OutputError(
        f"cannot find a free run folder name in '{work_dir}': '{base}' and "
        f"{_MAX_SUFFIX - 1} numbered variants exist; clean up or choose another --work-dir"
    )


def rename_to_final(partial: Path, work_dir: Path, base: str) -> Path:
    """Rename ``partial`` to ``<work_dir>/<base>`` (or the first free ``<base>_<i>``).

    The name was free when the run started, but another process may have finished a run of the
    same name since (it checked before our ``.partial`` existed): never rename onto it.

    Parameters
    ----------
    partial : pathlib.Path
        The finished hidden folder.
    work_dir : pathlib.Path
        Its parent.
    base : str
        The name reserved by :func:`create_partial`.

    Returns
    -------
    pathlib.Path
        The final folder.

    Raises
    ------
    OutputError
        When the rename fails or no free name is left.
    """
    for i, candidate in _numbered(base):
        target = work_dir / candidate
        if target.exists() or (i > 0 and (work_dir / f".{candidate}{_PARTIAL_SUFFIX}").exists()):
            continue
        try:
            os.rename(partial, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            raise folder_error(work_dir, exc) from exc
        return target
    raise OutputError(
        f"cannot find a free run folder name in '{work_dir}' for '{base}'; clean up or "
        "choose another --work-dir"
    )
