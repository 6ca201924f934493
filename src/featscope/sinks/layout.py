"""The names of the files in a run folder, in one place for the writers and the reader.

A finished run folder holds the files its view wrote (figures, ``feat_<point>.npy``,
``coords_<point>.csv``, ...), ``run.log``, ``scalars.jsonl`` when metrics were logged, and
``manifest.json``, written last. The writers (:mod:`featscope.sinks.writers`) and the reader
(:mod:`featscope.sinks.reader`) take every name from here, so the two cannot drift apart.
"""

from __future__ import annotations

import os
from typing import Any

from featscope.errors import ParameterError

__all__ = [
    "CLASS_NAMES_NAME",
    "COORD_COLUMNS",
    "IDS_NAME",
    "LABELS_NAME",
    "LOG_NAME",
    "MANIFEST_NAME",
    "PAGE_NAME",
    "RESERVED",
    "SCALARS_NAME",
    "THUMBNAILS_NAME",
    "THUMBNAIL_ROWS_NAME",
    "check_name",
    "coords_name",
    "features_name",
    "safe_stem",
    "with_suffix",
]

MANIFEST_NAME = "manifest.json"
LOG_NAME = "run.log"
#: Scalars logged with :meth:`LocalRun.log_metrics`: one JSON object per line, ``step`` included.
SCALARS_NAME = "scalars.jsonl"
#: Written by the run itself, never by a view.
RESERVED = frozenset({MANIFEST_NAME, LOG_NAME, SCALARS_NAME})

#: The samples of a run's feature sets: labels, one id and one class name per line.
LABELS_NAME = "labels.npy"
IDS_NAME = "ids.txt"
CLASS_NAMES_NAME = "class_names.txt"
#: ``(M, s, s, 3)`` uint8 thumbnails and the ``(M,)`` sample rows (into ``ids.txt``) they show.
THUMBNAILS_NAME = "thumbnails.npy"
THUMBNAIL_ROWS_NAME = "thumbnail_rows.npy"
#: The interactive page of an embedding run: every map side by side, thumbnails on hover.
PAGE_NAME = "embedding.html"
#: The first columns of a coordinates table; a 3-D map adds ``z``.
COORD_COLUMNS = ("id", "label", "class_name", "x", "y")


def coords_name(key: str) -> str:
    """Return the coordinates file of result ``key``: ``coords_<key>.csv``."""
    return f"coords_{key}.csv"


def features_name(key: str) -> str:
    """Return the feature file of result ``key``: ``feat_<key>.npy``."""
    return f"feat_{key}.npy"


def safe_stem(text: str, empty: str = "output") -> str:
    """Return ``text`` usable in a file name: characters other than ``[A-Za-z0-9._-]`` -> ``_``.

    Capture points keep their dots (``blocks.11``), so the stem still reads as the point.

    Parameters
    ----------
    text : str
        A capture point, tag or image id.
    empty : str, default "output"
        The stem when ``text`` is empty.

    Returns
    -------
    str
        The stem.
    """
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text) or empty


def with_suffix(name: str, suffix: str) -> str:
    """Return ``name`` ending in ``suffix`` (appended when missing)."""
    return name if name.endswith(suffix) else name + suffix


def check_name(name: Any, what: str = "file name") -> str:
    """Return ``name`` if it is a plain file name inside the run folder, else raise.

    Parameters
    ----------
    name : Any
        The name to check.
    what : str, default "file name"
        What the name is, for the message (``"`view`"``, ``"result key"``).

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ParameterError
        For an empty name, a path separator, ``.``/``..`` or a hidden (``.``) name.
    """
    if not isinstance(name, str) or not name:
        raise ParameterError(f"{what} {name!r} must be a non-empty string; pass e.g. 'coords.csv'")
    bad = {"/", "\\", "\0", os.sep, os.altsep or "/"}
    if any(ch in name for ch in bad) or name in {".", ".."}:
        raise ParameterError(
            f"{what} {name!r} contains a path separator or is '.'/'..'; files stay inside the "
            "run folder: pass a plain name such as 'coords.csv'"
        )
    if name.startswith("."):
        raise ParameterError(
            f"{what} {name!r} starts with '.'; hidden names are kept for featscope's temporary "
            "files: pass a name such as 'coords.csv'"
        )
    return name
