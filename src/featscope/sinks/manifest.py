"""``manifest.json``: what a finished run holds, written last and checked when read.

Like torchcam's ``save``: artifacts first, manifest last, with a ``schema_version``, sorted keys
and no NaN. A folder without a manifest is an interrupted run, never a result; the reader
(:func:`featscope.sinks.reader.load_run`) refuses it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope._bounded import read_bounded_text
from featscope.analysis.metrics import COUNT_METRICS
from featscope.errors import DataError, ParameterError
from featscope.sinks.layout import MANIFEST_NAME

if TYPE_CHECKING:  # pragma: no cover - typing only
    from featscope.sinks.mirrors import MirrorFanout

__all__ = [
    "SCHEMA_VERSION",
    "ManifestRecords",
    "build_manifest",
    "dumps_json",
    "finite_scalars",
    "jsonable",
    "now",
    "read_manifest",
    "result_entry",
    "sha256",
    "verify_file",
]

#: Version of the manifest's layout; the reader refuses a newer one.
SCHEMA_VERSION = 1
# The manifest's parts the reader relies on, with their JSON types.
_MANIFEST_TYPES = {"view": str, "files": list, "results": dict, "metadata": dict}
#: Entries of a result's metrics that describe it rather than measure it: not charted.


def now() -> str:
    """Return the local time, ISO-8601 to the second, with its UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON types, with NaN and infinities as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_json(obj: Any, name: str) -> str:
    """Return ``obj`` as JSON text: sorted keys, indent 2, NaN as ``null``, a final newline.

    Parameters
    ----------
    obj : Any
        Mappings, sequences, numbers (numpy included), strings, paths.
    name : str
        What is written, for the message (``'metrics.json'``).

    Returns
    -------
    str
        The text.

    Raises
    ------
    ParameterError
        When ``obj`` holds a value JSON cannot represent.
    """
    try:
        return json.dumps(jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"cannot write '{name}' as JSON: {exc}; pass numbers, strings, lists and dicts"
        ) from exc


def sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def finite_scalars(
    values: Mapping[str, Any], prefix: str = "", skip: frozenset[str] = frozenset()
) -> dict[str, float]:
    """Keep the real, finite numbers of ``values`` (bools and NaN dropped), keys prefixed."""
    out = {}
    for key, value in values.items():
        if key in skip:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            continue
        value = float(value)
        if math.isfinite(value):
            out[f"{prefix}{key}"] = value
    return out


def result_entry(result: Any) -> dict[str, Any]:
    """Return a result's manifest entry: what it is, its parameters, metrics and provenance.

    Parameters
    ----------
    result : EmbeddingResult, FeatureSet or any result object
        Read for ``point``, ``method``, ``pooling``, ``n_components``, the number of samples
        (``len(labels)``), ``params``, ``metrics`` and ``provenance``, where present.

    Returns
    -------
    dict
        JSON-ready entry.
    """
    entry: dict[str, Any] = {}
    for attr in ("point", "method", "pooling", "n_components"):
        value = getattr(result, attr, None)
        if value is not None:
            entry[attr] = value
    labels = getattr(result, "labels", None)
    if labels is not None:
        entry["n_samples"] = len(labels)
    for attr in ("params", "metrics"):
        value = getattr(result, attr, None)
        if value is not None:
            entry[attr] = dict(value)
    provenance = getattr(result, "provenance", None)
    if provenance is not None and hasattr(provenance, "to_dict"):
        entry["provenance"] = provenance.to_dict()
    return jsonable(entry)


def build_manifest(
    folder: Path,
    *,
    view: str,
    created: str | None,
    results: Mapping[str, Any],
    metadata: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the manifest of ``folder``: every file with its size and SHA-256, and the records.

    Hidden files (temporary files left by an interrupted write) are removed, not listed: they
    are no part of the results.

    Parameters
    ----------
    folder : pathlib.Path
        The run folder, everything but the manifest written.
    view : str
        The view's name.
    created : str or None
        ISO time the run started.
    results : Mapping
        Result entries by key (see :func:`result_entry`).
    metadata : Mapping
        JSON-ready values by key (the run's options, backends).

    Returns
    -------
    dict
        The manifest, ready for :func:`dumps_json`.
    """
    from featscope import __version__

    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            path.unlink(missing_ok=True)
            continue
        files.append({"path": rel, "bytes": path.stat().st_size, "sha256": sha256(path)})
    return {
        "schema_version": SCHEMA_VERSION,
        "view": view,
        "created": created,
        "finished": now(),
        "featscope_version": __version__,
        "files": files,
        "results": dict(results),
        "metadata": dict(metadata),
    }


def read_manifest(folder: Path, made_by: str) -> dict[str, Any]:
    """Return ``<folder>/manifest.json``, checked to be a manifest this featscope reads.

    Parameters
    ----------
    folder : pathlib.Path
        A run folder.
    made_by : str
        What should have made it, for the messages (``"featscope tsne"``).

    Returns
    -------
    dict
        The manifest: ``schema_version`` (int, not newer than :data:`SCHEMA_VERSION`),
        ``view`` (str), ``files`` (list of objects with a ``path``), ``results`` (object of
        objects) and ``metadata`` (object).

    Raises
    ------
    DataError
        One line naming the file and the fix: no manifest (an unfinished run), unreadable or
        not JSON, a newer schema, or a part missing or of the wrong type.
    """
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise DataError(
            f"'{folder}' has no {MANIFEST_NAME}, so it is not a finished featscope run (an "
            f"interrupted run leaves none); pass a folder made by {made_by}"
        )
    damaged = "the run folder is damaged: rerun the view that wrote it"
    # bounded and nesting-guarded: compare reads run folders from anywhere
    text = read_bounded_text(path, f"'{path}'")
    try:
        manifest = json.loads(text)
    except RecursionError:
        raise DataError(f"'{path}' is nested too deeply to be a manifest; {damaged}") from None
    except ValueError as exc:
        raise DataError(f"cannot read '{path}': {exc}; {damaged}") from exc
    if not isinstance(manifest, dict):
        raise DataError(
            f"'{path}' is not a JSON object; the run folder is damaged: rerun the view that "
            "wrote it"
        )
    version = manifest.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise DataError(
            f"'{path}' has schema_version {version}, newer than this featscope reads "
            f"({SCHEMA_VERSION}); upgrade featscope to read it"
        )
    wrong = [
        f"{key} ({kind.__name__})"
        for key, kind in (("schema_version", int), *_MANIFEST_TYPES.items())
        if not isinstance(manifest.get(key), kind)
    ]
    files = manifest.get("files")
    if isinstance(files, list):
        if not all(isinstance(f, dict) and _safe_relative(f.get("path")) for f in files):
            wrong.append("files[].path (str, relative, inside the folder)")
        elif not all(_digest_entry(f) for f in files):
            wrong.append("files[].bytes (int >= 0), files[].sha256 (64 hex digits)")
    results = manifest.get("results")
    if isinstance(results, dict) and not all(isinstance(e, dict) for e in results.values()):
        wrong.append("results.* (object)")
    if wrong:
        raise DataError(
            f"'{path}' is malformed: missing or wrong {', '.join(wrong)}; the run folder is "
            "damaged: rerun the view that wrote it"
        )
    return manifest


def _safe_relative(path: Any) -> bool:
    """Whether a listed path stays inside its run folder (no ``..``, not absolute, no NUL)."""
    if not isinstance(path, str) or not path or "\0" in path or "\\" in path:
        return False
    parts = path.split("/")
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _digest_entry(entry: Mapping[str, Any]) -> bool:
    size, digest = entry.get("bytes"), entry.get("sha256")
    return (
        isinstance(size, int)
        and not isinstance(size, bool)
        and size >= 0
        and isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
    )


def verify_file(folder: Path, entry: Mapping[str, Any]) -> Path:
    """Return the listed file's path once its size and SHA-256 match the manifest's.

    Parameters
    ----------
    folder : pathlib.Path
        The run folder.
    entry : Mapping
        The file's manifest entry (``path``, ``bytes``, ``sha256``; checked by
        :func:`read_manifest`).

    Raises
    ------
    DataError
        When the file is missing, not a regular file, or differs from what the manifest records
        (edited, truncated or swapped after the run finished).
    """
    path = folder / entry["path"]
    damaged = "the run folder was changed after it finished: rerun the view that wrote it"
    try:
        info = path.lstat()
    except OSError:
        raise DataError(
            f"'{path}' is missing; the run folder is incomplete: rerun the view"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"'{path}' is not a regular file (a link, device or FIFO); {damaged}")
    if info.st_size != entry["bytes"]:
        raise DataError(
            f"'{path}' has {info.st_size:,} bytes but the manifest records {entry['bytes']:,}; "
            f"{damaged}"
        )
    if sha256(path) != entry["sha256"]:
        raise DataError(f"'{path}' does not match the SHA-256 in its manifest; {damaged}")
    return path


class ManifestRecords:
    """The manifest-content methods of :class:`~featscope.sinks.run.LocalRun` (a base class).

    The run provides the records (``_results``, ``_metadata``), its state (``_state``), its
    mirrors (``_fanout``, which chart a result's metrics) and the current step (``_step``).
    """

    _results: dict[str, dict[str, Any]]
    _metadata: dict[str, Any]
    _state: str
    _fanout: MirrorFanout

    if TYPE_CHECKING:  # provided by LocalRun; declared here for the type checker only

        def _step(self, step: int | None = None) -> int: ...

    def add_result(self, key: str, result: Any) -> None:
        """Record a result's provenance, parameters and metrics in the manifest.

        Parameters
        ----------
        key : str
            Unique name of the result in this run (e.g. the capture point).
        result : EmbeddingResult, FeatureSet or any result object
            Read for ``provenance``, ``params``, ``metrics``, ``point``, ``method``, ``pooling``,
            ``n_components`` and the number of samples, where present.

        Raises
        ------
        ParameterError
            If ``key`` is empty or already recorded.
        """
        self._check_key(key)
        self._results[key] = result_entry(result)
        metrics = getattr(result, "metrics", None)
        if self._fanout and isinstance(metrics, Mapping):
            scalars = finite_scalars(metrics, f"{key}/", skip=COUNT_METRICS)
            if scalars:
                self._fanout.call("log_scalars", scalars, self._step())

    def add_metadata(self, key: str, value: Any) -> None:
        """Record a JSON-ready value under ``metadata`` in the manifest (e.g. the run's options).

        Parameters
        ----------
        key : str
            Name of the entry; a later call with the same key replaces it.
        value : Any
            Anything :meth:`write_json` accepts.

        Raises
        ------
        ParameterError
            If ``value`` cannot be represented as JSON.
        """
        converted = jsonable(value)
        dumps_json(converted, f"manifest metadata {key!r}")
        self._metadata[str(key)] = converted
        if self._fanout and self._state == "open":
            self._fanout.call("log_config", {str(key): converted})

    def _check_key(self, key: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ParameterError(f"result key {key!r} must be a non-empty string, e.g. 'neck'")
        if key in self._results:
            raise ParameterError(
                f"result key {key!r} is already recorded in this run; give each result its own "
                "key (e.g. the capture point)"
            )
