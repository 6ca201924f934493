"""Bounded reads of small structured files: configs, manifests, cache records, JSON.

Every file featscope parses whole (a TOML config, ``manifest.json``, a resume record) is checked
to be a regular file of bounded size *before* it is read: ``/dev/zero`` or a FIFO named as a
config would otherwise be read forever (or block), and a crafted multi-gigabyte file would be
read into memory. Parsers are then guarded against nesting: ``json`` and ``tomllib`` recurse
per level and a document nested 100,000 deep ends in a ``RecursionError`` traceback.

Written by hand: these are a stat call and two ``except`` clauses around the standard library.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from featscope.errors import DataError, FeatscopeError

__all__ = ["MAX_TEXT_BYTES", "loads_json", "read_bounded_text"]

#: Configs, manifests and records are kilobytes; 64 MiB is far above any real one.
MAX_TEXT_BYTES = 64 << 20


def read_bounded_text(
    path: str | os.PathLike[str],
    what: str,
    *,
    limit: int = MAX_TEXT_BYTES,
    error: type[FeatscopeError] = DataError,
) -> str:
    """Return a regular file's UTF-8 text, refusing devices, FIFOs and files over ``limit``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What it is, for messages (``"--config 'run.toml'"``).
    limit : int, optional
        Most bytes read.
    error : type, optional
        The error raised (``ParameterError`` for a config).

    Raises
    ------
    FeatscopeError
        ``error``: missing, not a regular file, larger than ``limit``, unreadable or not UTF-8.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}; check the path") from exc
    if stat.S_ISDIR(info.st_mode):
        raise error(f"cannot read {what}: Is a directory; pass a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"{what} is not a regular file (a device, FIFO or socket), which would be read "
            "without end; pass a file"
        )
    if info.st_size > limit:
        raise error(
            f"{what} is {info.st_size:,} bytes, more than the {limit:,} such a file can "
            "reasonably hold; pass the right file"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}; check the path") from exc
    if len(data) > limit:  # grew while we looked
        raise error(f"{what} is more than {limit:,} bytes; pass the right file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from exc


def loads_json(text: str, what: str, fix: str) -> Any:
    """Parse JSON text, turning bad syntax and excessive nesting into one :class:`DataError`.

    Parameters
    ----------
    text : str
        The document.
    what : str
        Where it comes from, for the message.
    fix : str
        What to do about it.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise DataError(f"{what} is nested too deeply to be a featscope file; {fix}") from None
    except ValueError as exc:
        raise DataError(f"{what} is not valid JSON ({exc}); {fix}") from exc
