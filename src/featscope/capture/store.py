"""A resumable, bounded-memory feature store: memory-mapped ``.npy`` files plus a progress record.

Features are written batch by batch into one ``.npy`` file per output name: the file is made
full-size once with :func:`numpy.lib.format.open_memmap` (header + zeros, sparse on most file
systems), then each batch's rows are written at their offset with ``os.pwrite`` rather than
through a mapping, so the writing process holds about one batch of features, whatever N is
(written pages go to the kernel's page cache, which it can drop, and do not count in the
process's memory): 1,000,000 x 2,048 float32 (8 GB) never needs 8 GB of RAM, let alone twice
that. After every complete batch the files are fsync'ed and ``progress.json`` is replaced
atomically (write a temporary file, then ``os.replace``), so after a kill (even ``kill -9``) the
record always describes rows that are on disk; rows written after the last record are simply
written again on resume. The finished features are read back as read-only memory maps.

The record carries a fingerprint of everything the features depend on (model spec, checkpoint
and weight hashes, preprocessing, capture points, sample ids, batch size, precision, memory
format, device type). Resuming with any of them changed is refused with a message naming what
changed, because continuing would silently mix features of two different extractions.

Layout of a store folder::

    progress.json        fingerprint, batches/samples/rows done, outputs, skipped images
    kept.npy             (N,) int64: sample position of each feature row
    feat_<output>.npy    (N, D) float32 per output name (rows beyond ``rows`` are not valid)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featscope._bounded import read_bounded_text
from featscope.errors import CaptureError, OutputError, ParameterError

__all__ = ["PROGRESS_NAME", "FeatureStore", "fingerprint", "read_progress"]

#: The progress record in a store folder.
PROGRESS_NAME = "progress.json"
_FORMAT = 1
_KEPT_NAME = "kept.npy"
#: The feature files a store writes: plain names inside its folder, nothing else is opened.
_STORE_FILE = re.compile(r"feat_\d{2,}_[A-Za-z0-9._-]+\.npy")


def _sha256_text(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()


def _weights_sha256(module: Any) -> str | None:
    """Hash the names, shapes, dtypes and bytes of every parameter and buffer.

    A spec string does not pin the weights (a module passed in memory, a fine-tuned copy), so
    the weights themselves are hashed: about a second per GB, small next to any extraction.
    """
    state = getattr(module, "state_dict", None)
    if state is None:
        return None
    digest = hashlib.sha256()
    for name, tensor in state().items():
        if not isinstance(tensor, torch.Tensor):
            continue
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def fingerprint(
    handle: Any,
    point_names: Iterable[str],
    samples: Any,
    **settings: Any,
) -> dict[str, Any]:
    """Describe everything the extracted features depend on, as JSON-ready values.

    Parameters
    ----------
    handle : ModelHandle
        The model (its spec, checkpoint hash, weights and preprocessing are recorded).
    point_names : iterable of str
        The resolved capture points.
    samples : ImageSamples
        The samples; their number, source and a hash of their ids in order are recorded.
    **settings
        Further settings that change the features (batch size, precision, ...), JSON values.

    Returns
    -------
    dict
        The fingerprint stored in ``progress.json`` and compared on resume.
    """
    preprocess = handle.preprocess
    if dataclasses.is_dataclass(preprocess):
        preprocess = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(preprocess).items()
        }
    else:
        preprocess = repr(preprocess)
    return {
        "model": str(handle.spec),
        "checkpoint_sha256": handle.checkpoint_sha256,
        "weights_sha256": _weights_sha256(handle.module),
        "preprocessing": preprocess,
        "num_prefix_tokens": int(handle.num_prefix_tokens),
        "points": list(point_names),
        "n_samples": len(samples),
        "sample_ids_sha256": _sha256_text(samples.ids),
        **settings,
    }


def read_progress(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the progress record of a store folder, or ``None`` when there is none.

    Parameters
    ----------
    directory : path
        The store folder.

    Returns
    -------
    dict or None
        The parsed ``progress.json``.

    Raises
    ------
    OutputError
        When the record exists but cannot be parsed (not a featscope store).
    """
    path = Path(directory) / PROGRESS_NAME
    if not os.path.lexists(path):
        return None
    text = read_bounded_text(path, f"the progress record {path}", error=OutputError)
    try:
        record = json.loads(text)
        problem = _record_problem(record)
    except RecursionError:
        problem = "nested too deeply"
    except ValueError as exc:
        problem = str(exc)
    if problem:
        raise OutputError(
            f"{path} is not a featscope extraction record ({problem}); pass an empty or new "
            "--cache-dir"
        )
    return record


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _record_problem(record: Any) -> str | None:
    """Return what is wrong with a parsed progress record, or ``None`` when it is whole.

    Every key is checked for presence and type, and every file it names must be a plain name
    featscope gives (``feat_00_<name>.npy``): a crafted record must not make the store read or
    write outside its folder (``"../../x.npy"``).
    """
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if record.get("format") != _FORMAT:
        return f"format {record.get('format')!r}"
    fp = record.get("fingerprint")
    if not isinstance(fp, dict) or not _count(fp.get("n_samples")):
        return "fingerprint.n_samples missing or not a count"
    for key in ("batch_size", "batches_done", "samples_done", "rows"):
        if not _count(record.get(key)):
            return f"{key} missing or not a count"
    if record["batch_size"] < 1 or not record["rows"] <= record["samples_done"] <= fp["n_samples"]:
        return "rows, samples_done and n_samples disagree"
    if not isinstance(record.get("complete"), bool):
        return "complete missing or not true/false"
    skipped = record.get("skipped")
    if not isinstance(skipped, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s) for s in skipped
    ):
        return "skipped missing or not a list of [id, reason]"
    outputs = record.get("outputs")
    if not isinstance(outputs, dict):
        return "outputs missing or not an object"
    files = set()
    for name, info in outputs.items():
        if not isinstance(info, dict) or not _count(info.get("dim")) or info["dim"] < 1:
            return f"outputs[{name!r}] has no dim"
        if not isinstance(info.get("pooling"), str):
            return f"outputs[{name!r}] has no pooling"
        file = info.get("file")
        if not isinstance(file, str) or _STORE_FILE.fullmatch(file) is None or file in files:
            return f"outputs[{name!r}].file {file!r} is not a file name this store writes"
        files.add(file)
    return None


def _describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key.endswith("sha256") or key == "preprocessing":
            parts.append(f"{key} differs")
        else:
            parts.append(f"{key} {a!r} there, {b!r} now")
    return "; ".join(parts)


class FeatureStore:
    """Features of one extraction in memory-mapped ``.npy`` files, resumable batch by batch.

    Parameters
    ----------
    directory : path
        The store folder (created if missing).
    fingerprint : dict
        What the features depend on (see :func:`fingerprint`).
    batch_size : int
        Images per batch; progress is counted in complete batches.
    resume : bool, default False
        Continue an extraction found in ``directory`` (or reuse a finished one). Without it an
        existing record is refused, so that a store is never overwritten by accident.

    Raises
    ------
    ParameterError
        When ``directory`` holds a record and ``resume`` is False, or when its fingerprint
        differs from ``fingerprint``.
    OutputError
        When ``directory`` cannot be created or holds something that is not a store.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        fingerprint: Mapping[str, Any],
        batch_size: int,
        *,
        resume: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.fingerprint = dict(fingerprint)
        self.n_rows = int(self.fingerprint["n_samples"])
        self.batch_size = int(batch_size)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the cache folder {self.directory}: {exc.strerror}; pass a "
                "writable --cache-dir"
            ) from None
        record = read_progress(self.directory)
        # name -> (file descriptor, byte offset of row 0, bytes per row)
        self._files: dict[str, tuple[int, int, int]] = {}
        if record is None:
            self.record = self._new_record()
            return
        done = f"{record['samples_done']} of {record['fingerprint'].get('n_samples')} samples"
        if not resume:
            raise ParameterError(
                f"--cache-dir {self.directory} already holds an extraction ({done} done); pass "
                "--resume to continue or reuse it, or an empty --cache-dir to start over"
            )
        changes = _describe_changes(record["fingerprint"], self.fingerprint)
        if changes:
            raise ParameterError(
                f"cannot resume the extraction in {self.directory}: it was made with other "
                f"inputs ({changes}); pass the same model, data and options as that run, or an "
                "empty --cache-dir to start over"
            )
        self.record = record
        self._open_existing()

    # ------------------------------------------------------------------ state

    def _new_record(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "batch_size": self.batch_size,
            "batches_done": 0,
            "samples_done": 0,
            "rows": 0,
            "outputs": {},
            "skipped": [],
            "complete": False,
        }

    def _open_file(self, key: str, filename: str, create: tuple[int, ...] | None, dtype) -> None:
        path = self.directory / filename
        if create is None and (path.is_symlink() or not path.is_file()):
            # a link could point outside the cache folder: only plain files of the store
            raise ValueError(f"{filename} is missing or not a plain file")
        if create is not None:
            array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=create)
        else:
            array = np.load(path, mmap_mode="r")
        if array.dtype != dtype or array.shape[0] != self.n_rows:
            raise ValueError(f"{filename} has shape {array.shape} and dtype {array.dtype}")
        offset, row_bytes = int(array.offset), int(array.itemsize * np.prod(array.shape[1:]))
        del array  # the mapping is only used to lay out the file
        nofollow = getattr(os, "O_NOFOLLOW", 0)  # never write through a link
        self._files[key] = (os.open(path, os.O_RDWR | nofollow), offset, row_bytes)

    def _open_existing(self) -> None:
        try:
            for name, info in self.record["outputs"].items():
                self._open_file(name, info["file"], None, np.float32)
            if self.record["outputs"]:
                self._open_file(_KEPT_NAME, _KEPT_NAME, None, np.int64)
        except (OSError, ValueError) as exc:
            raise OutputError(
                f"the cache folder {self.directory} is damaged ({exc}); pass an empty "
                "--cache-dir to start over"
            ) from None

    @property
    def samples_done(self) -> int:
        """Samples (read or skipped) covered by complete batches: where extraction goes on."""
        return int(self.record["samples_done"])

    @property
    def batches_done(self) -> int:
        """Complete batches on disk."""
        return int(self.record["batches_done"])

    @property
    def complete(self) -> bool:
        """Whether every sample has been processed."""
        return bool(self.record["complete"])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(sample id, reason)`` of the images skipped so far."""
        return [(str(a), str(b)) for a, b in self.record["skipped"]]

    # ------------------------------------------------------------------ writing

    def _create(self, pooled: Mapping[str, tuple[torch.Tensor, str]]) -> None:
        outputs = {}
        for i, (name, (vectors, rule)) in enumerate(pooled.items()):
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "output"
            filename = f"feat_{i:02d}_{safe}.npy"
            self._open_file(name, filename, (self.n_rows, int(vectors.shape[1])), np.float32)
            outputs[name] = {"file": filename, "dim": int(vectors.shape[1]), "pooling": rule}
        self._open_file(_KEPT_NAME, _KEPT_NAME, (self.n_rows,), np.int64)
        self.record["outputs"] = outputs

    def add(self, pooled: Mapping[str, tuple[torch.Tensor, str]], positions: Any) -> None:
        """Write one batch of pooled vectors (rows follow the record's ``rows``).

        Parameters
        ----------
        pooled : mapping of str to (torch.Tensor, str)
            ``(n, D)`` vectors and the pooling rule per output name.
        positions : array-like of int
            The ``n`` sample positions of the rows.

        Raises
        ------
        CaptureError
            When the outputs or their widths differ from the earlier batches.
        """
        if not self.record["outputs"]:
            self._create(pooled)
        outputs = self.record["outputs"]
        if list(pooled) != list(outputs):
            raise CaptureError(
                f"the captured outputs changed between batches (first {list(outputs)}, now "
                f"{list(pooled)}); pick capture points whose output structure does not depend "
                "on the input"
            )
        start = int(self.record["rows"])
        positions = np.asarray(positions, dtype=np.int64)
        n = len(positions)
        for name, (vectors, rule) in pooled.items():
            info = outputs[name]
            if vectors.shape[1] != info["dim"] or rule != info["pooling"]:
                raise CaptureError(
                    f"output {name!r} gives {vectors.shape[1]} features pooled by {rule!r} in "
                    f"one batch and {info['dim']} by {info['pooling']!r} in another; use a "
                    "fixed input size or a point whose width does not depend on the input"
                )
            self._write_rows(name, start, vectors.float().cpu().numpy())
        self._write_rows(_KEPT_NAME, start, positions)
        self.record["rows"] = start + n

    def _write_rows(self, key: str, start: int, rows: np.ndarray) -> None:
        fd, offset, row_bytes = self._files[key]
        data = memoryview(np.ascontiguousarray(rows)).cast("B")
        position = offset + start * row_bytes
        try:
            while len(data):  # pwrite may write less than asked (signals, large writes)
                written = os.pwrite(fd, data, position)
                data, position = data[written:], position + written
        except OSError as exc:
            raise OutputError(
                f"cannot write features to {self.directory}: {exc.strerror}; free space or "
                "pass another --cache-dir"
            ) from None

    def commit(self, consumed: int, skipped: Iterable[tuple[str, str]] = ()) -> None:
        """Mark one complete batch as done: flush the maps, then replace the record.

        Parameters
        ----------
        consumed : int
            Samples the batch covered (read and skipped).
        skipped : iterable of (str, str)
            ``(sample id, reason)`` of the batch's skipped images.
        """
        for fd, _, _ in self._files.values():
            os.fsync(fd)
        self.record["skipped"].extend([list(s) for s in skipped])
        self.record["batches_done"] += 1
        self.record["samples_done"] += int(consumed)
        self.record["complete"] = self.record["samples_done"] >= self.n_rows
        self._write_record()

    def _write_record(self) -> None:
        path = self.directory / PROGRESS_NAME
        tmp = path.with_name(f".{PROGRESS_NAME}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.record, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic: a reader sees the old record or the new one
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError(
                f"cannot write the progress record {path}: {exc.strerror}; free space or pass "
                "another --cache-dir"
            ) from None

    # ------------------------------------------------------------------ reading

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, str], np.ndarray]:
        """Return ``(features, pooling, kept)`` of the rows written so far.

        The features are read-only memory maps (no copy in RAM); ``kept`` is a small array.
        """
        rows = int(self.record["rows"])
        features = {}
        for name, info in self.record["outputs"].items():
            features[name] = np.load(self.directory / info["file"], mmap_mode="r")[:rows]
        pooling = {name: info["pooling"] for name, info in self.record["outputs"].items()}
        if self.record["outputs"]:
            kept = np.array(np.load(self.directory / _KEPT_NAME, mmap_mode="r")[:rows])
        else:
            kept = np.zeros(0, dtype=np.int64)
        return features, pooling, kept

    def close(self) -> None:
        """Close the files (they stay on disk)."""
        for fd, _, _ in self._files.values():
            os.close(fd)
        self._files.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
