"""Read saved features (``.npy``/``.npz``/``.csv``) into a :class:`~featscope.results.FeatureSet`.

This is how featscope maps features it did not extract itself: the output of another tool
(OpenMMLab's ``feat_<k>.npy``), a notebook, a different framework.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from featscope.data.sources import (
    MAX_CLASS_INDEX,
    _check_covers,
    _csv_rows,
    _is_int,
    _labels_from_strings,
    _read_text,
    _too_large,
    read_class_names,
)
from featscope.errors import DataError
from featscope.results import FeatureSet, Provenance

__all__ = ["load_features"]

logger = logging.getLogger(__name__)

LabelsArg = str | os.PathLike[str] | Sequence[Any] | np.ndarray
_MAX_ROWS_LISTED = 5
_NPZ_KEYS = ("features", "labels", "class_names", "ids")


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
        ``features`` (required), ``labels``, ``class_names`` and ``ids`` (optional), or a
        ``.csv``/``.tsv`` table, one row per sample: numbers only, or a header row whose columns
        are features except one named ``label`` (the labels) and one named ``id`` or ``path``
        (the ids). Integer, boolean and float16/float64 features are converted to float32;
        pickled objects are never loaded.
    labels : str, os.PathLike or array-like, optional
        One label per feature row: a ``.npy`` file, a ``.txt`` file (one integer or class name
        per line), a ``.csv`` file (a single column, or a column named ``label``), or an array /
        sequence. Labels are class indices or class names. Overrides the ``labels`` of a
        ``.npz``. Without labels anywhere the features are unlabelled: every row gets label -1
        and there are no class names (metrics that need labels are left out, maps are coloured
        by cluster), as for unlabelled images.
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
        When a file is missing or unreadable, its header declares more data than it holds or
        than half the machine's memory, the features are not 2-D (the message says how to
        pool or reshape them), not numeric (a csv cell is named by line and column), empty, or
        contain NaN or inf (the first rows are named), a ``.npz`` has no ``features`` key (the
        keys present are listed), the labels or
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
    elif suffix in (".csv", ".tsv"):
        raw_features, stored = _load_table(path)
    else:
        raise DataError(
            f"features file '{path}' has extension {path.suffix or '(none)'!r}; save the features "
            "as .npy (an (N, D) array), .npz (keys features, labels, class_names, ids) or .csv "
            "(one row of numbers per sample)"
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
                f"class names were given for '{path}' but no labels; the rows stay unlabelled",
                UserWarning,
                stacklevel=2,
            )
        logger.info("%s has no labels: the %d rows are unlabelled", path, n)
        label_array, names = np.full(n, -1, dtype=np.int64), ()
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
        with path.open("rb") as handle:
            _check_declared_size(handle, path.stat().st_size, f"{what} file '{path}'")
        return np.load(path, allow_pickle=False)
    except DataError:
        raise
    except MemoryError as exc:
        raise DataError(f"{what} file '{path}' does not fit in memory ({_one_line(exc)})") from exc
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"{what} file '{path}' holds Python objects, which featscope does not unpickle; "
                "save a numeric (or string) array with np.save"
            ) from exc
        raise DataError(
            f"cannot read {what} file '{path}': not a valid .npy file ({_one_line(exc)})"
        ) from exc
    except (OSError, EOFError, SyntaxError) as exc:
        # SyntaxError: numpy parses the header with ast.literal_eval (a NUL byte in it)
        raise DataError(
            f"cannot read {what} file '{path}': not a valid .npy file ({_one_line(exc)})"
        ) from exc


def _load_npz(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not zipfile.is_zipfile(path):
        # without this check np.load would try to unpickle any other file
        raise DataError(
            f"cannot read features file '{path}': not a valid .npz (save it with np.savez)"
        )
    try:
        with zipfile.ZipFile(path) as members:
            for info in members.infolist():
                if info.filename.removesuffix(".npy") in _NPZ_KEYS:
                    with members.open(info) as member:
                        where = f"array '{info.filename}' of features file '{path}'"
                        _check_declared_size(member, info.file_size, where)
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if "features" not in keys:
                raise DataError(
                    f"features file '{path}' has no 'features' array (keys: "
                    f"{', '.join(keys) or 'none'}); save it with np.savez(path, features=..., "
                    "labels=...)"
                )
            stored = {k: archive[k] for k in _NPZ_KEYS if k in keys}
    except DataError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(
                f"features file '{path}' holds Python objects, which featscope does not unpickle; "
                "store class names and ids as string arrays (np.array(names, dtype=str))"
            ) from exc
        raise DataError(
            f"cannot read features file '{path}': not a valid .npz ({_one_line(exc)})"
        ) from exc
    except MemoryError as exc:
        raise DataError(
            f"features file '{path}' does not fit in memory ({_one_line(exc)})"
        ) from exc
    except (
        OSError,
        EOFError,
        SyntaxError,
        zipfile.BadZipFile,
        zlib.error,
        RuntimeError,
        NotImplementedError,
    ) as exc:
        # zlib.error: a damaged compressed member; RuntimeError: an encrypted member;
        # NotImplementedError: an unknown compression method
        raise DataError(
            f"cannot read features file '{path}': not a valid .npz ({_one_line(exc)})"
        ) from exc
    return stored.pop("features"), stored


def _load_table(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a csv/tsv of numbers, with optional ``label`` and ``id``/``path`` header columns."""
    where = f"features file '{path}'"
    text = _read_text(path, "features file")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise DataError(f"{where} is empty; write one row of numbers per sample")
    tab = path.suffix.lower() == ".tsv" or "\t" in lines[0][1]
    rows = _csv_rows(lines, "\t" if tab else ",", where)
    first_no, first = rows[0]
    names = [cell.strip().lower() for cell in first]
    has_header = not all(_is_number(cell) for cell in first)
    label_col = id_col = None
    if has_header:
        label_col = names.index("label") if "label" in names else None
        id_col = next((names.index(k) for k in ("id", "path") if k in names), None)
        rows = rows[1:]
        if not rows:
            raise DataError(f"{where} has a header (line {first_no}) but no rows of numbers")
    columns = [c for c in range(len(first)) if c not in (label_col, id_col)]
    values = np.empty((len(rows), len(columns)), dtype=np.float64)
    labels, ids = [], []
    for k, (line_no, cells) in enumerate(rows):
        if len(cells) != len(first):
            raise DataError(
                f"line {line_no} of {where} has {len(cells)} values but line {first_no} has "
                f"{len(first)}; give every row the same columns"
            )
        try:
            values[k] = [float(cells[c]) for c in columns]
        except ValueError:
            column = next(c for c in columns if not _is_number(cells[c]))
            name = f" ({first[column].strip()!r})" if has_header else ""
            raise DataError(
                f"line {line_no}, column {column + 1}{name} of {where} is "
                f"{_short(cells[column])}, not a number; feature cells must be numbers (name a "
                "column of labels 'label' and one of ids 'id' in a header row)"
            ) from None
        if label_col is not None:
            labels.append((line_no, cells[label_col].strip()))
        if id_col is not None:
            ids.append(cells[id_col].strip())
    stored: dict[str, Any] = {}
    if label_col is not None:
        stored["labels"] = labels
    if id_col is not None:
        stored["ids"] = np.asarray(ids, dtype=str)
    return values, stored


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _short(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _check_declared_size(stream: BinaryIO, size: int, where: str) -> None:
    """Refuse an array whose header promises more data than the file holds or memory fits.

    ``np.load`` allocates the whole array its header declares before reading it, so a 100-byte
    file claiming shape ``(10**12, 10)`` would fail with ``MemoryError`` (or, below the machine's
    limit, make the operating system kill the process); a zip bomb inflates the same way.
    """
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception as exc:  # numpy's header parser raises ValueError,
        # SyntaxError, tokenize.TokenError, EOFError... on damaged headers; np.load parses the
        # same header, so once this passes it cannot fail there
        if isinstance(exc, (OSError, zlib.error, zipfile.BadZipFile)):
            raise  # the file (or zip member) itself cannot be read: the callers say so
        if "Header info length" in str(exc):
            reason = "its header is longer than numpy reads safely"
        else:
            reason = f"not a valid .npy header ({_one_line(exc)})"
        raise DataError(
            f"cannot read {where}: {reason} (a damaged or crafted file); save it again with numpy"
        ) from exc
    if dtype.hasobject:
        return  # refused by np.load(allow_pickle=False) with its own message
    declared = math.prod(shape) * dtype.itemsize
    shown = f"shape {tuple(shape)} of {dtype}"
    present = size - stream.tell()
    if declared > present:
        raise DataError(
            f"{where} is truncated: its header declares {shown} ({_bytes(declared)}) but only "
            f"{_bytes(max(present, 0))} follow; save the array again"
        )
    memory = _physical_memory()
    if memory is not None and declared > memory // 2:
        raise DataError(
            f"{where} holds {shown} ({_bytes(declared)}), more than half of this machine's "
            f"memory ({_bytes(memory)}); save fewer rows (a sample) or reduce the dimension"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on this platform (Windows)
        return None


def _bytes(count: float) -> str:
    if count < 1024:
        return f"{count:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            break
    return f"{count:.1f} {unit}"


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
    with np.errstate(over="ignore"):  # values beyond float32 become inf: reported just below
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
    rows = _csv_rows(lines, ",", where)
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
    if array.size and array.dtype.kind != "b" and array.max() >= MAX_CLASS_INDEX:
        # checked before the cast: a float 1e300 or a uint64 2**63 would wrap to nonsense
        row = int(np.argmax(array))
        raise _too_large(array[row], f"row {row}", where)
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
