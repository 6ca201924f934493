"""Read a finished run folder back: the one reader of what :class:`LocalRun` writes.

``load_run(path)`` checks the manifest (present, a JSON object of a schema this featscope
reads), then reads what the writers of :mod:`featscope.sinks.writers` left: the maps
(``coords_<key>.csv`` with the manifest's parameters, metrics and provenance), the samples
(``ids.txt``, ``labels.npy``, ``class_names.txt``) and the thumbnails. Every other file the
manifest lists is one call away (:meth:`RunRecord.read_array`, ``read_json``, ...). Anything
missing or malformed is a :class:`~featscope.errors.DataError` naming the file.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from featscope._bounded import loads_json
from featscope.data.samples import UNLABELLED
from featscope.data.sources import MAX_CLASS_INDEX
from featscope.data.textlines import decode_lines
from featscope.errors import DataError
from featscope.results import EmbeddingResult, Provenance
from featscope.sinks.layout import (
    CLASS_NAMES_NAME,
    COORD_COLUMNS,
    IDS_NAME,
    LABELS_NAME,
    THUMBNAIL_ROWS_NAME,
    THUMBNAILS_NAME,
    coords_name,
)
from featscope.sinks.manifest import read_manifest, verify_file

__all__ = ["RunRecord", "load_run"]


@dataclass(frozen=True)
class RunRecord:
    """A finished run folder, as :func:`load_run` read it.

    Attributes
    ----------
    path : pathlib.Path
        The run folder.
    manifest : Mapping
        ``manifest.json``, read-only (JSON objects as mappings, arrays as tuples).
    embeddings : Mapping of str to EmbeddingResult
        The maps by result key (the capture point), in manifest order, with their parameters,
        metrics (``null`` ones left out) and provenance.
    ids : tuple of str or None
        ``ids.txt``: one id per sample of the run's feature sets.
    labels : numpy.ndarray or None
        ``labels.npy``: ``(N,)`` int64, read-only.
    class_names : tuple of str or None
        ``class_names.txt``.
    thumbnails : numpy.ndarray or None
        ``(M, s, s, 3)`` uint8 thumbnails, read-only, of the samples at ``thumbnail_rows``.
    thumbnail_rows : numpy.ndarray or None
        ``(M,)`` positions into :attr:`ids`.
    """

    path: Path
    manifest: Mapping[str, Any]
    embeddings: Mapping[str, EmbeddingResult]
    ids: tuple[str, ...] | None = None
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    thumbnails: np.ndarray | None = None
    thumbnail_rows: np.ndarray | None = None

    @property
    def view(self) -> str:
        """The view that wrote the run (``"tsne"``, ``"featmap"``, ``"monitor"``)."""
        return self.manifest["view"]

    @property
    def results(self) -> Mapping[str, Mapping[str, Any]]:
        """Every recorded result's manifest entry by key (maps, feature maps, shape bias...)."""
        return self.manifest["results"]

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The run's recorded options and backends."""
        return self.manifest["metadata"]

    @property
    def files(self) -> tuple[str, ...]:
        """The files of the run (relative paths, manifest order), ``manifest.json`` aside."""
        return tuple(entry["path"] for entry in self.manifest["files"])

    def embedding(self, key: str) -> EmbeddingResult:
        """Return the map recorded under ``key``.

        Raises
        ------
        DataError
            When the run records no result ``key``, or its coordinates file is missing.
        """
        if key in self.embeddings:
            return self.embeddings[key]
        if key in self.results:
            raise DataError(
                f"'{self.path / coords_name(key)}' is missing; the run folder is incomplete: "
                f"rerun featscope {self.view}"
            )
        raise DataError(f"run '{self.path}' records no result {key!r}; it has {list(self.results)}")

    def file(self, name: str) -> Path:
        """Return the path of a file of the run, checked against the manifest's SHA-256.

        Raises
        ------
        DataError
            When the manifest does not list ``name``, the file is gone, or it differs from
            what the manifest records.
        """
        for entry in self.manifest["files"]:
            if entry["path"] == name:
                return verify_file(self.path, entry)
        raise DataError(
            f"'{name}' is not a file of run '{self.path}'; its manifest lists {list(self.files)}"
        )

    def read_array(self, name: str) -> np.ndarray:
        """Return a ``.npy`` file of the run (no pickles), read-only."""
        return _read_array(self.file(name))

    def read_text(self, name: str) -> str:
        """Return a text file of the run (UTF-8)."""
        return _read_text(self.file(name))

    def read_json(self, name: str) -> Any:
        """Return a JSON file of the run, parsed."""
        return loads_json(
            self.read_text(name), f"'{self.path / name}'", "the run folder is damaged"
        )

    def read_csv(self, name: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
        """Return a CSV file of the run as ``(header, rows)`` of strings."""
        # csv reads quoted line breaks inside a cell (a file name may hold one): no splitlines
        rows = tuple(tuple(r) for r in csv.reader(io.StringIO(self.read_text(name), newline="")))
        return (rows[0], rows[1:]) if rows else ((), ())

    def thumbnail_uris(self) -> dict[str, str] | None:
        """Return sample id -> thumbnail ``data:`` URI, or ``None`` when the run kept none."""
        from featscope.data.thumbnails import encode_thumbnails

        if self.thumbnails is None or self.thumbnail_rows is None or not self.ids:
            return None
        uris = encode_thumbnails(self.thumbnails)
        ids = self.ids
        return {ids[int(r)]: uri for r, uri in zip(self.thumbnail_rows.tolist(), uris, strict=True)}

    # the notebook side (featscope.sinks.loaded): a loaded run reads like a fresh one

    def as_run(self) -> Any:
        """Return the run as the view returned it (a ``tsne`` run: a :class:`TsneRun`)."""
        from featscope.sinks.loaded import record_as_run

        return record_as_run(self)

    def to_dataframe(self) -> Any:
        """Return every map's rows as one table, the result key in column ``point``."""
        return self._maps_run("to_dataframe()").to_dataframe()

    def metrics_dataframe(self) -> Any:
        """Return one row of quality metrics per map."""
        return self._maps_run("metrics_dataframe()").metrics_dataframe()

    def _maps_run(self, what: str) -> Any:
        from featscope.results import TsneRun
        from featscope.sinks.loaded import AS_RUN_VIEWS

        if not self.embeddings and self.view not in AS_RUN_VIEWS:
            # a cam or recon folder has no maps: an empty table would pass for "no rows"
            raise DataError(
                f"run '{self.path}' was written by featscope {self.view} and holds no maps; "
                f"{what} reads {', '.join(AS_RUN_VIEWS)} runs: read its files with "
                "record.read_csv / read_json / read_array"
            )
        return TsneRun(tuple(self.embeddings.values()), (), self.path)

    def __repr__(self) -> str:
        from featscope.sinks.loaded import record_repr

        return record_repr(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from featscope.sinks.loaded import record_mimebundle

        return record_mimebundle(self)


def load_run(path: str | os.PathLike[str], view: str | None = None) -> RunRecord:
    """Read a finished run folder: its manifest, maps, samples and thumbnails.

    Parameters
    ----------
    path : str or os.PathLike
        A run folder written by a featscope view (``work_dirs/tsne_20250101_120000``).
    view : str, optional
        The view the run must come from (``"tsne"``); another one is refused.

    Returns
    -------
    RunRecord
        The run, frozen.

    Raises
    ------
    DataError
        When the folder is missing, is not a finished run (no manifest: an interrupted run
        leaves none), holds a manifest this featscope cannot read, comes from another view
        than ``view``, or a file it lists is missing or malformed.

    Examples
    --------
    >>> run = featscope.load_run("work_dirs/tsne_20250101_120000")  # doctest: +SKIP
    >>> run.embedding("pre_logits").metrics["knn_accuracy_map"]  # doctest: +SKIP
    0.93
    """
    folder = Path(path)
    made_by = f"featscope {view}" if view else "a featscope view"
    if folder.exists() and not folder.is_dir():
        raise DataError(f"'{folder}' is a file, not a run folder; pass a folder made by {made_by}")
    if not folder.is_dir():
        raise DataError(f"run folder '{folder}' does not exist; pass a folder made by {made_by}")
    raw = read_manifest(folder, made_by)
    if view is not None and raw["view"] != view:
        raise DataError(
            f"'{folder}' holds a {raw['view']!r} run, not a {view!r} run; pass a folder made by "
            f"{made_by}"
        )
    listed = {entry["path"]: entry for entry in raw["files"]}

    def listed_path(name: str) -> Path | None:
        # every file read is first checked against the manifest's size and SHA-256: compare
        # reads run folders from anywhere, and an edited file must not pass as the run's
        return verify_file(folder, listed[name]) if name in listed else None

    ids = _read_lines(listed_path(IDS_NAME))
    class_names = _read_lines(listed_path(CLASS_NAMES_NAME))
    labels = _read_array(listed_path(LABELS_NAME))
    if labels is not None:
        _check_labels(labels, folder / LABELS_NAME, class_names)
    if labels is not None and ids is not None and len(labels) != len(ids):
        raise DataError(
            f"'{folder / LABELS_NAME}' has {len(labels)} labels but {IDS_NAME} {len(ids)} ids; "
            "the run folder is damaged"
        )
    thumbs, rows = (
        _read_array(listed_path(THUMBNAILS_NAME)),
        _read_array(listed_path(THUMBNAIL_ROWS_NAME)),
    )
    if thumbs is None or rows is None or not ids:
        thumbs = rows = None
    elif (
        thumbs.dtype != np.uint8
        or thumbs.ndim != 4
        or len(thumbs) != len(rows)
        or not np.issubdtype(rows.dtype, np.integer)
        or (rows.size and (int(rows.min()) < 0 or int(rows.max()) >= len(ids)))
    ):
        raise DataError(
            f"the thumbnails of '{folder}' do not match its {IDS_NAME}; the folder is damaged"
        )
    embeddings = {}
    for key, entry in raw["results"].items():
        csv_path = listed_path(coords_name(key))
        if csv_path is not None:
            embeddings[key] = _embedding(csv_path, key, entry, class_names, raw["view"])
    return RunRecord(
        path=folder,
        manifest=_frozen(raw),
        embeddings=MappingProxyType(embeddings),
        ids=ids,
        labels=labels,
        class_names=class_names,
        thumbnails=thumbs,
        thumbnail_rows=rows,
    )


# --------------------------------------------------------------------------- internals


def _frozen(value: Any) -> Any:
    """Return JSON data read-only: objects as mapping proxies, arrays as tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _damaged(path: Path, exc: Exception) -> DataError:
    return DataError(
        f"cannot read '{path}': {exc}; the run folder is damaged: rerun the view that wrote it"
    )


def _read_text(path: Path) -> str:
    try:
        # newline="": a "\r" inside a quoted csv cell is kept, not turned into "\n"
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, ValueError) as exc:
        raise _damaged(path, exc) from exc


def _read_lines(path: Path | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    return decode_lines(_read_text(path), f"'{path}'")


def _check_labels(labels: np.ndarray, path: Path, class_names: tuple[str, ...] | None) -> None:
    """Refuse labels that are not whole numbers from -1 (unlabelled) to the last class."""
    damaged = "the run folder is damaged: rerun the view that wrote it"
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"'{path}' holds {labels.dtype} of shape {labels.shape}, not one integer label per "
            f"sample; {damaged}"
        )
    if labels.size and int(labels.min()) < UNLABELLED:
        raise DataError(f"'{path}' holds the negative label {int(labels.min())}; {damaged}")
    top = len(class_names) if class_names is not None else MAX_CLASS_INDEX
    if labels.size and int(labels.max()) >= top:
        raise DataError(
            f"'{path}' holds label {int(labels.max())}, but the run has {top} class names; "
            f"{damaged}"
        )


def _read_array(path: Path | None) -> Any:
    """Return the ``.npy`` at ``path`` read-only (``None`` for no path)."""
    if path is None:
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _damaged(path, exc) from exc
    array.flags.writeable = False
    return array


def _embedding(
    path: Path,
    key: str,
    entry: Mapping[str, Any],
    class_names: tuple[str, ...] | None,
    view: str,
) -> EmbeddingResult:
    _check_entry(path.parent / "manifest.json", key, entry)
    ids, labels, names_in_csv, coords, fields = _read_coords(path)
    if class_names is not None and labels.size and int(labels.max()) >= len(class_names):
        raise DataError(
            f"'{path}' holds label {int(labels.max())}, but the run has {len(class_names)} "
            "class names; the run folder is damaged: rerun the view that wrote it"
        )
    return EmbeddingResult(
        coords=coords,
        labels=labels,
        class_names=class_names or _names_from_csv(labels, names_in_csv),
        ids=ids,
        point=str(entry.get("point", key)),
        method=str(entry.get("method", view)),
        params=entry.get("params") or {},
        metrics={k: v for k, v in (entry.get("metrics") or {}).items() if v is not None},
        pooling=str(entry.get("pooling", "none")),
        provenance=_provenance(entry.get("provenance") or {}),
        fields=fields,
    )


def _read_coords(
    path: Path,
) -> tuple[tuple[str, ...], np.ndarray, list[str], np.ndarray, dict[str, np.ndarray]]:
    if not path.is_file():
        raise DataError(f"'{path}' is missing; the run folder is incomplete: rerun the view")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or tuple(header[:5]) != COORD_COLUMNS:
            raise DataError(
                f"'{path}' does not start with the columns {','.join(COORD_COLUMNS)}; it was "
                "not written by featscope"
            )
        # the coordinates are x, y (and z); the columns after them are per-sample fields
        n_axes = 3 if len(header) > 5 and header[5] == "z" else 2
        extra = header[3 + n_axes :]
        ids, labels, names, coords = [], [], [], []
        columns: list[list[str]] = [[] for _ in extra]
        for line_no, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise DataError(
                    f"line {line_no} of '{path}' has {len(cells)} values, its header "
                    f"{len(header)}; the run folder is damaged"
                )
            try:
                label = int(cells[1])
                values = [float(v) for v in cells[3 : 3 + n_axes]]
            except ValueError as exc:
                raise DataError(f"line {line_no} of '{path}' is malformed ({exc})") from exc
            if not UNLABELLED <= label < MAX_CLASS_INDEX:
                raise DataError(
                    f"line {line_no} of '{path}' has label {label}; labels run from -1 "
                    "(unlabelled) to the last class: the run folder is damaged"
                )
            if not all(math.isfinite(v) for v in values):
                raise DataError(
                    f"line {line_no} of '{path}' has a NaN or infinite coordinate; the run "
                    "folder is damaged: rerun the view that wrote it"
                )
            ids.append(cells[0])
            labels.append(label)
            names.append(cells[2])
            coords.append(values)
            for column, value in zip(columns, cells[3 + n_axes :], strict=True):
                column.append(value)
    fields = {name: _field(name, values) for name, values in zip(extra, columns, strict=True)}
    return tuple(ids), np.asarray(labels, dtype=np.int64), names, np.asarray(coords), fields


_FIELD_TYPES = {"prediction": np.int64, "cluster": np.int64, "confidence": np.float32}


def _field(name: str, values: list[str]) -> np.ndarray:
    """Read a csv column back as the field it was: reserved ones by name, metadata by content."""
    if name == "correct":
        return np.asarray([v == "true" for v in values], dtype=bool)
    for kind in [_FIELD_TYPES[name]] if name in _FIELD_TYPES else [np.int64, np.float64]:
        try:
            return np.asarray([kind(v) for v in values], dtype=kind)
        except ValueError:
            continue
    return np.asarray(values, dtype=str)


def _names_from_csv(labels: np.ndarray, names: list[str]) -> tuple[str, ...]:
    top = int(labels.max()) + 1 if labels.size else 0
    out = [str(i) for i in range(top)]
    for label, name in zip(labels.tolist(), names, strict=True):
        if label >= 0:  # -1: unlabelled, no class name
            out[label] = name
    return tuple(out)


def _check_entry(path: Path, key: str, entry: Mapping[str, Any]) -> None:
    """Refuse a map's manifest entry whose parts have the wrong JSON types."""
    wrong = [
        f"{name} ({kind})"
        for name, kind, ok in (
            ("point", "str", isinstance(entry.get("point", ""), str)),
            ("method", "str", isinstance(entry.get("method", ""), str)),
            ("pooling", "str", isinstance(entry.get("pooling", ""), str)),
            ("params", "object", isinstance(entry.get("params") or {}, dict)),
            ("metrics", "object", isinstance(entry.get("metrics") or {}, dict)),
            ("provenance", "object", isinstance(entry.get("provenance") or {}, dict)),
        )
        if not ok
    ]
    if wrong:
        raise DataError(
            f"'{path}' is malformed: result {key!r} has a wrong {', '.join(wrong)}; the run "
            "folder is damaged: rerun the view that wrote it"
        )


def _provenance(data: Mapping[str, Any]) -> Provenance:
    known = {f.name for f in fields(Provenance)}
    try:
        return Provenance(**{k: v for k, v in data.items() if k in known and v is not None})
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"a result's provenance in the manifest is malformed ({exc}); the run folder is "
            "damaged: rerun the view that wrote it"
        ) from exc
