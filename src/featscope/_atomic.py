"""Write a file so that it is either complete or absent, never torn."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a hidden temporary file in the same folder.

    A full disk or a killed process leaves at most the hidden ``.<name>.partial`` file (removed
    on error), never a half-written ``path`` that a later reader could take for a result.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    text : str
        The content, written as UTF-8.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        When the temporary file cannot be written or renamed (callers turn it into an
        :class:`~featscope.errors.OutputError` that names their option).
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.partial")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
