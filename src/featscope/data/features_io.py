"""Read features saved to disk (``.npy``/``.npz``) into a :class:`~featscope.results.FeatureSet`.

This is how featscope maps features it did not extract itself: the output of another tool
(OpenMMLab's ``feat_<k>.npy``), a notebook, a different framework.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from featscope.data.sources import (
    _check_covers,
    _is_int,
    _labels_from_strings,
    _read_text,
    read_class_names,
)
from featscope.errors import DataError
from featscope.results import FeatureSet, Provenance

__all__ = ["load_features"]

logger = logging.getLogger(__name__)

LabelsArg = str | os.PathLike[str] | Sequence[Any] | np.ndarray
_MAX_ROWS_LISTED = 5


def load_features(
    path: str | os.PathLike[str],
    *,
    labels: LabelsArg | None = None,
    class_names: str | os.PathLike[str] | Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    point: str | None = None,
) -> FeatureSet:
    """Read an ``(N, D)`` feature matrix, with labels, class names and ids, from disk.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file holding the 2-D feature matrix, or a ``.npz`` file with the keys
        ``features`` (required), ``labels``, ``class_names`` and ``ids`` (optional). Integer,
        boolean and float16/float64 features are converted to float32.
    labels : str, os.PathLike or array-like, optional
        One label per feature row: a ``.npy`` file, a ``.txt`` file (one integer or class name
        per line), a ``.csv`` file (a single column, or a column named ``label``), or an array /
        sequence. Labels are class indices or class names. Overrides the ``labels`` of a
        ``.npz``. Without labels anywhere, every row gets label 0 and class names ``("all",)``.
    class_names : str, os.PathLike or sequence of str, optional
        Class names, index = label, or a text file with one per line. Name labels become the
        positions of their names here (by default: the sorted distinct names). Overrides the
        ``class_names`` of a ``.npz``.
    ids : sequence of str, optional
        One id per row; by default the ``.npz`` ``ids`` or ``"<file stem>:<i>"``.
    point : str, optional
        Capture-point name recorded in the result; by default the file stem.

    Returns
    -------
    FeatureSet
        Float32 features, int64 labels, pooling ``"none"``, provenance source = ``path``.

    Raises
    ------
    DataError
        When a file is missing or unreadable, the features are not 2-D (the message says how to
        pool or reshape them), not numeric, empty, or contain NaN or inf (the first rows are
        named), a ``.npz`` has no ``features`` key (the keys present are listed), the labels or
        ids do not have one entry per row, a label name is not among the class names, or an
        index has no class name.
    """
    path = Path(path)
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a file"
        raise DataError(f"features file '{path}' {what}; check the path")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw_features, stored = _load_array(path, "features"), {}
    elif suffix == ".npz":
        raw_features, stored = _load_npz(path)
    else:
        raise DataError(
            f"features file '{path}' has extension {path.suffix or '(none)'!r}; save the features "
            "as .npy (an (N, D) array) or .npz (keys features, labels, class_names, ids)"
        )
    features = _as_matrix(raw_features, path)
    n = len(features)

    names = _class_names_arg(class_names)
    if labels is not None:
        label_values, where = _labels_arg(labels, n)
    elif "labels" in stored:
        label_values, where = stored["labels"], f"labels in '{path}'"
        if names is None and "class_names" in stored:
            names = tuple(str(x) for x in np.asarray(stored["class_names"]).ravel())
    else:
        label_values, where = None, ""

    if label_values is None:
        if names is not None:
            warnings.warn(
                f"class names were given for '{path}' but no labels; every row gets class 'all'",
                UserWarning,
                stacklevel=2,
            )
        logger.info("%s has no labels: every row gets label 0, class 'all'", path)
        label_array, names = np.zeros(n, dtype=np.int64), ("all",)
    else:
        label_array, names = _to_indices(label_values, n, names, where, path)

    sample_ids = _ids(ids, stored.get("ids"), n, path)
    return FeatureSet(
        features=features,
        labels=label_array,
        class_names=names,
        ids=sample_ids,
        point=point if point is not None else path.stem,
        pooling="none",
        provenance=Provenance(source=str(path)),
    )


def _load_array(path: Path, what: str) -> np.ndarray:
    try:
        with path.open("rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise DataError(f"cannot read {what} file '{path}': {exc.strerror or exc}") from exc
    if magic != b"\x93NUMPY":
        # without this check np.load would try to unpickle any other file
        raise DataError(f"cannot read {what} file '{path}': not a .npy file (save it with np.save)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{what} file '{path}' holds Python objects, which featscope does not unpickle; "
                "save a numeric (or string) array with np.save"
            ) from exc
        raise DataError(f"cannot read {what} file '{path}': not a valid .npy file ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {what} file '{path}': not a valid .npy file ({exc})") from exc


def _load_npz(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not zipfile.is_zipfile(path):
        # without this check np.load would try to unpickle any other file
        raise DataError(
            f"cannot read features file '{path}': not a valid .npz (save it with np.savez)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if "features" not in keys:
                raise DataError(
                    f"features file '{path}' has no 'features' array (keys: "
                    f"{', '.join(keys) or 'none'}); save it with np.savez(path, features=..., "
                    "labels=...)"
                )
            stored = {
                k: archive[k] for k in ("features", "labels", "class_names", "ids") if k in keys
            }
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"features file '{path}' holds Python objects, which featscope does not unpickle; "
                "store class names and ids as string arrays (np.array(names, dtype=str))"
            ) from exc
        raise DataError(f"cannot read features file '{path}': not a valid .npz ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read features file '{path}': not a valid .npz ({exc})") from exc
    return stored.pop("features"), stored


def _as_matrix(array: np.ndarray, path: Path) -> np.ndarray:
    shape = tuple(array.shape)
    if array.ndim != 2:
        if array.ndim == 0:
            fix = "save an (N, D) array, one row per sample"
        elif array.ndim == 1:
            fix = (
                "with one feature per sample use a.reshape(-1, 1); one sample use a.reshape(1, -1)"
            )
        elif array.ndim == 3:
            fix = (
                "for (N, L, C) tokens take the class token a[:, 0] or the token mean "
                "a.mean(axis=1); for other layouts a.reshape(len(a), -1)"
            )
        elif array.ndim == 4:
            fix = (
                "for (N, C, H, W) feature maps global-average-pool them first: "
                "a.mean(axis=(2, 3)); or flatten with a.reshape(len(a), -1)"
            )
        else:
            fix = "pool or flatten it first, e.g. a.reshape(len(a), -1)"
        raise DataError(
            f"features in '{path}' have shape {shape}; expected a 2-D (N, D) array, one row per "
            f"sample: {fix}"
        )
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"features in '{path}' have dtype {array.dtype}; expected numbers (save them as "
            "float32)"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(
            f"features in '{path}' have shape {shape}; expected at least one row and column"
        )
    features = np.ascontiguousarray(array, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size:
        shown = ", ".join(str(i) for i in bad[:_MAX_ROWS_LISTED])
        more = ", ..." if bad.size > _MAX_ROWS_LISTED else ""
        # finite float64 rows that became inf were outside float32's range, not bad data
        overflowed = np.isfinite(array[bad]).all(axis=1).any()
        overflow = " (some float64 values exceed float32's range)" if overflowed else ""
        raise DataError(
            f"features in '{path}' contain NaN or inf in {bad.size} rows ({shown}{more})"
            f"{overflow}; drop or impute them"
        )
    return features


def _class_names_arg(
    class_names: str | os.PathLike[str] | Sequence[str] | None,
) -> tuple[str, ...] | None:
    if class_names is None:
        return None
    if isinstance(class_names, (str, os.PathLike)):
        return read_class_names(class_names)
    names = tuple(str(n) for n in class_names)
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise DataError(f"`class_names` repeats {duplicate!r}; class names must be unique")
    return names


def _labels_arg(labels: LabelsArg, n: int) -> tuple[Any, str]:
    """Read the ``labels`` argument: a file or an array. Text files give (line, text) pairs."""
    if not isinstance(labels, (str, os.PathLike)):
        return np.asarray(labels), "`labels`"
    path = Path(labels)
    where = f"labels file '{path}'"
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if not path.is_file():
            raise DataError(f"{where} does not exist; check the path")
        return _load_array(path, "labels"), where
    if suffix == ".txt":
        lines = list(enumerate(_read_text(path, "labels file").splitlines(), start=1))
        while lines and not lines[-1][1].strip():
            lines.pop()
        for line_no, text in lines:
            if not text.strip():
                raise DataError(
                    f"{where} has a blank line (line {line_no}); write one label per line"
                )
        return [(line_no, text.strip()) for line_no, text in lines], where
    if suffix == ".csv":
        return _labels_csv(path, n, where), where
    raise DataError(
        f"{where} has extension {path.suffix or '(none)'!r}; use .npy, .txt (one label per line) "
        "or .csv (a 'label' column)"
    )


def _labels_csv(path: Path, n: int, where: str) -> list[tuple[int, str]]:
    text = _read_text(path, "labels file")
    lines = [(no, line) for no, line in enumerate(text.splitlines(), start=1) if line.strip()]
    rows = list(zip([no for no, _ in lines], csv.reader([line for _, line in lines]), strict=True))
    if not rows:
        raise DataError(f"{where} is empty; write one label per row")
    header = [cell.strip().lower() for cell in rows[0][1]]
    if len(header) > 1:
        if "label" not in header:
            raise DataError(
                f"{where} has {len(header)} columns but none is named 'label' (header: "
                f"{', '.join(rows[0][1])}); add a 'label' header or keep a single column"
            )
        column = header.index("label")
        body = rows[1:]
    else:
        column = 0
        first = header[0] if header else ""
        # one column: the first row is a title when it says so, or when it is the one extra row
        is_title = first in {"label", "labels"} or (not _is_int(first) and len(rows) == n + 1)
        body = rows[1:] if is_title else rows
    out = []
    for line_no, cells in body:
        if len(cells) <= column or not cells[column].strip():
            raise DataError(f"{where}: line {line_no} has no label")
        out.append((line_no, cells[column].strip()))
    return out


def _to_indices(
    values: Any, n: int, names: tuple[str, ...] | None, where: str, path: Path
) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(values, list):  # (line, text) pairs from a text file
        _check_length(len(values), n, where, path)
        return _labels_from_strings(values, where, names, unit="line")
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{where} have shape {array.shape}; expected one label per row, shape ({n},)"
        )
    _check_length(len(array), n, where, path)
    if array.dtype.kind in "US":
        pairs = [(i, str(v).strip()) for i, v in enumerate(array.tolist())]
        return _labels_from_strings(pairs, where, names, unit="row")
    if array.dtype.kind == "f":
        if not (np.isfinite(array).all() and (array == np.round(array)).all()):
            row = int(np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))[0])
            raise DataError(
                f"{where}: label {array[row]} (row {row}) is not a whole number; labels are class "
                "indices or class names"
            )
    elif array.dtype.kind not in "biu":
        raise DataError(f"{where} have dtype {array.dtype}; expected integers or class names")
    indices = array.astype(np.int64)
    if indices.size and indices.min() < 0:
        row = int(np.argmin(indices))
        raise DataError(
            f"{where}: label {indices[row]} (row {row}) is negative; class indices start at 0"
        )
    if names is None:
        top = int(indices.max()) if indices.size else 0
        return indices, tuple(str(i) for i in range(top + 1))
    _check_covers(indices, names, where)
    return indices, names


def _check_length(count: int, n: int, where: str, path: Path) -> None:
    if count != n:
        raise DataError(
            f"features in '{path}' have {n} rows but {where} have {count} entries; give one "
            "label per feature row"
        )


def _ids(
    given: Sequence[str] | None, stored: np.ndarray | None, n: int, path: Path
) -> tuple[str, ...]:
    if given is not None:
        values, where = [str(v) for v in given], "`ids`"
    elif stored is not None:
        values, where = [str(v) for v in np.asarray(stored).ravel().tolist()], f"ids in '{path}'"
    else:
        return tuple(f"{path.stem}:{i}" for i in range(n))
    if len(values) != n:
        raise DataError(
            f"features in '{path}' have {n} rows but {where} have {len(values)} entries; give "
            "one id per feature row"
        )
    return tuple(values)
