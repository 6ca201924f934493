"""The local run folder: the only way featscope writes results to disk.

A run writes into a hidden ``<work_dir>/.<name>.partial/`` folder and, when everything has been
written, adds ``manifest.json`` last and renames the folder to ``<work_dir>/<name>/`` in one
atomic step. So a folder under a final name always holds a finished run, and a run that was
interrupted or failed never leaves one (the reference tool created its output folder first and
left it behind, half written, on every failure). This follows torchcam's ``save``: refuse to
overwrite, artifacts first, manifest last (``schema_version``, sorted keys, no NaN), roll back on
failure.

A process killed outright (``kill -9``, power loss) cannot roll back: its ``.partial`` folder
stays, hidden and without a manifest. The first line of its ``run.log`` names the process and
host that wrote it; the next run opened in the same work dir removes the partial folders whose
process on this host is gone, and never one whose process still runs, runs on another host, or
was opened with ``keep_failed`` (see :func:`clean_stale_partials`).

A run can also be *mirrored* to other backends (TensorBoard, Weights & Biases): pass
:class:`Mirror` objects as ``mirrors``. Every figure and ``.png`` written to the folder is then
also logged there as an image, every result's metrics and every :meth:`LocalRun.log_metrics` call
as scalars, and :meth:`LocalRun.log_embedding` as an embedding projector entry. The folder stays
the record: a mirror that fails is reported with a warning, dropped, and the run goes on.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from featscope.errors import OutputError, ParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from featscope.results import EmbeddingResult, FeatureSet

__all__ = [
    "MANIFEST_NAME",
    "SCALARS_NAME",
    "SCHEMA_VERSION",
    "LocalRun",
    "Mirror",
    "clean_stale_partials",
    "escape_field",
    "png_to_rgb",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
LOG_NAME = "run.log"
#: Scalars logged with :meth:`LocalRun.log_metrics`: one JSON object per line, ``step`` included.
SCALARS_NAME = "scalars.jsonl"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RESERVED = frozenset({MANIFEST_NAME, LOG_NAME, SCALARS_NAME})
# errno values that mean the disk (or the user's quota) is full.
_NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# How many `_1`, `_2`, ... suffixes to try before giving up on a folder name.
_MAX_SUFFIX = 10_000
_PARTIAL_SUFFIX = ".partial"
# First line of run.log: who writes the folder, read back by clean_stale_partials.
_OWNER_LINE = "run folder written by process {pid} on host {host} (keep_failed={keep})"
_OWNER_RE = re.compile(
    r"run folder written by process (\d+) on host (\S+) \(keep_failed=(True|False)\)"
)


def _os_error_in(exc: BaseException) -> OSError | None:
    """Return the first ``OSError`` among ``exc`` and its causes/contexts, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


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


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _check_name(name: Any, what: str = "file name") -> str:
    """Return ``name`` if it is a plain file name inside the run folder, else raise."""
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


def _with_suffix(name: str, suffix: str) -> str:
    return name if name.endswith(suffix) else name + suffix


def _numbered(base: str) -> Iterator[tuple[int, str]]:
    """Yield the folder names to try, with their number: ``base``, ``base_1``, ``base_2``, ..."""
    for i in range(_MAX_SUFFIX):
        yield i, (base if i == 0 else f"{base}_{i}")


def _jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON types, with NaN and infinities as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _figure_rgb(fig: Figure, dpi: float) -> np.ndarray:
    """Render a figure to an RGB array through PNG (what the ``png`` file would hold)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return png_to_rgb(buffer.getvalue())


def _full_thumbnails(
    thumbnails: Any, indices: Any, n: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return ``(N, s, s, 3)`` thumbnails and which rows are real (None: all), or raise."""
    if thumbnails is None:
        if indices is not None:
            raise ParameterError("`thumbnail_indices` was given without `thumbnails`; pass both")
        return None, None
    thumbnails = np.asarray(thumbnails)
    count = n if indices is None else len(indices)
    if (
        thumbnails.dtype != np.uint8
        or thumbnails.ndim != 4
        or thumbnails.shape[-1] != 3
        or thumbnails.shape[0] != count
    ):
        raise ParameterError(
            f"`thumbnails` must be a ({count}, size, size, 3) uint8 array, one per "
            f"{'sample' if indices is None else 'thumbnail index'}; got {thumbnails.dtype} "
            f"{thumbnails.shape}; make them with featscope.data.thumbnails.make_thumbnails"
        )
    if indices is None:
        return thumbnails, None
    positions = np.asarray(indices)
    if positions.size and (
        not np.issubdtype(positions.dtype, np.integer)
        or positions.min() < 0
        or positions.max() >= n
    ):
        raise ParameterError(
            f"`thumbnail_indices` must be sample positions in 0..{n - 1}; got values from "
            f"{positions.min()} to {positions.max()}"
        )
    full = np.zeros((n, *thumbnails.shape[1:]), dtype=np.uint8)
    full[positions] = thumbnails
    present = np.zeros(n, dtype=bool)
    present[positions] = True
    return full, present


def _as_rgb(image: Any, tag: str) -> np.ndarray:
    """Return ``image`` as ``(H, W, 3)`` uint8, or raise naming the tag."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] in (3, 4):
        return np.ascontiguousarray(arr[:, :, :3])
    raise ParameterError(
        f"image {tag!r} must be a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4); got "
        f"{arr.dtype} {arr.shape}; convert with (x * 255).clip(0, 255).astype('uint8')"
    )


class Mirror:
    """A backend that receives a copy of what a :class:`LocalRun` logs (base class).

    Subclasses (:class:`featscope.sinks.tensorboard.TensorBoardMirror`,
    :class:`featscope.sinks.wandb.WandbMirror`) override the ``log_*`` methods they support; the
    defaults do nothing. The run calls :meth:`start` when it opens, then the ``log_*`` methods,
    then :meth:`close` once. Any exception a mirror raises is turned by the run into a warning,
    and the mirror is dropped for the rest of the run.

    Attributes
    ----------
    name : str
        The backend name (``"tensorboard"``, ``"wandb"``).
    """

    name = "mirror"

    def start(self, run: LocalRun) -> None:
        """Begin logging for ``run`` (its :attr:`LocalRun.run_name` and ``view`` are set).

        Parameters
        ----------
        run : LocalRun
            The open run.
        """

    def location(self) -> dict[str, Any]:
        """Return where this mirror writes, recorded in the manifest under ``backends``.

        Returns
        -------
        dict
            JSON-ready description (a folder, a run id).
        """
        return {}

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log an RGB ``(H, W, 3)`` uint8 image under ``tag``.

        Parameters
        ----------
        tag : str
            Image name; the same tag at later steps makes a series.
        image : numpy.ndarray
            ``(H, W, 3)`` uint8 RGB.
        step : int
            Step (epoch) of the value.
        """

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Log scalar values.

        Parameters
        ----------
        scalars : Mapping of str to float
            Finite values by tag (``"pre_logits/knn_accuracy_map"``).
        step : int
            Step (epoch) of the values.
        """

    def log_embedding(
        self,
        tag: str,
        features: FeatureSet | None,
        result: EmbeddingResult | None,
        thumbnails: np.ndarray | None,
        step: int,
        present: np.ndarray | None = None,
    ) -> None:
        """Log feature vectors and/or their map with labels, class names, ids and thumbnails.

        Parameters
        ----------
        tag : str
            Name of the embedding (usually the capture point).
        features : FeatureSet or None
            The feature vectors.
        result : EmbeddingResult or None
            Their 2-D/3-D map.
        thumbnails : numpy.ndarray or None
            ``(N, s, s, 3)`` uint8, one per sample, or ``None``.
        step : int
            Step (epoch).
        present : numpy.ndarray or None
            ``(N,)`` bool: which rows of ``thumbnails`` are real images (black tiles stand in for
            the others); ``None``: all.
        """

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record run parameters (the manifest's ``metadata`` entries).

        Parameters
        ----------
        config : Mapping
            JSON-ready values by key.
        """

    def close(self, success: bool) -> None:
        """Flush and close; called once, at the end of the run.

        Parameters
        ----------
        success : bool
            Whether the run finished (False when it failed).
        """


def escape_field(value: Any) -> str:
    r"""Return ``value`` as one field of a tab-separated line: ``\``, tab, newline escaped.

    Backslashes are doubled and tabs, newlines and carriage returns written as ``\t``, ``\n``
    and ``\r``, so a class name or file name can neither split a field nor a row and the
    original text can be recovered.

    Parameters
    ----------
    value : Any
        Converted with ``str``.

    Returns
    -------
    str
        The escaped text.
    """
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def png_to_rgb(data: bytes) -> np.ndarray:
    """Decode PNG bytes into an ``(H, W, 3)`` uint8 RGB array (alpha composited on white).

    Parameters
    ----------
    data : bytes
        A PNG file's content.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))


#: Entries of a result's metrics that describe it rather than measure it: not charted.
COUNT_KEYS = frozenset({"n_samples", "n_classes", "k"})


def _finite_scalars(
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


class LocalRun:
    """One run folder, written atomically with a manifest last.

    Use it as a context manager. Inside the ``with`` block files go into a hidden
    ``<work_dir>/.<name>.partial/`` folder (:attr:`path`); on normal exit :meth:`finish` writes
    ``manifest.json`` and renames the folder to ``<work_dir>/<name>/`` (:attr:`final_path`). On an
    exception the partial folder is deleted (kept, still hidden and without a manifest, when
    ``keep_failed=True``) and the exception propagates.

    ``<name>`` is ``<view>_<YYYYmmdd_HHMMSS>`` in local time (the reference tool's layout), or
    ``name`` when given; ``_1``, ``_2``, ... is appended when a run folder of that name already
    exists or is being written, so a run never overwrites another.

    While the run is open, a ``logging.FileHandler`` on the ``"featscope"`` logger records
    messages of level ``log_level`` and above in ``run.log``.

    Parameters
    ----------
    work_dir : str or path-like
        Parent folder of the run folders; created if missing.
    view : str
        Name of the view (``"tsne"``, ``"featmap"``); the start of the folder name.
    name : str, optional
        Folder name to use instead of ``<view>_<timestamp>``.
    keep_failed : bool, default False
        Keep the ``.partial`` folder of a failed run for inspection.
    log_level : int, default logging.INFO
        Lowest level written to ``run.log``. While the run is open the ``"featscope"`` logger's
        level is lowered to it if needed (and restored afterwards).
    mirrors : sequence of Mirror, optional
        Backends that receive a copy of the figures, images, metrics and embeddings (see
        :func:`featscope.views._run.open_run`, which builds them from backend names).

    Attributes
    ----------
    step : int or None
        Step (epoch) given to the mirrors with every image and scalar; ``None`` logs at step 0.

    Raises
    ------
    ParameterError
        If ``view`` or ``name`` is not a plain folder name.

    Examples
    --------
    >>> with LocalRun("work_dirs", "tsne") as run:  # doctest: +SKIP
    ...     run.write_array("feat_pre_logits", features.features)
    ...     run.write_embedding(result, "pre_logits")
    ...     run.write_figure(plot_embedding(result).figure, "tsne_pre_logits")
    >>> run.final_path  # doctest: +SKIP
    PosixPath('work_dirs/tsne_20250101_120000')
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        view: str,
        *,
        name: str | None = None,
        keep_failed: bool = False,
        log_level: int = logging.INFO,
        mirrors: Sequence[Mirror] = (),
    ) -> None:
        self.work_dir = Path(work_dir)
        self.view = _check_name(view, "`view`")
        self.name = None if name is None else _check_name(name, "run folder `name`")
        self.keep_failed = bool(keep_failed)
        self.log_level = log_level
        self._partial: Path | None = None
        self._final: Path | None = None
        self._final_name: str | None = None
        self._state = "new"  # new -> open -> finished | failed
        self._created: str | None = None
        self._results: dict[str, dict[str, Any]] = {}
        self._metadata: dict[str, Any] = {}
        self._handler: logging.Handler | None = None
        self._logger_level: int | None = None
        self._mirrors: list[Mirror] = list(mirrors)
        self._scalar_rows: list[dict[str, Any]] = []
        self.step: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalRun:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if self._state == "open":
                self.finish()
            return
        if self._state == "open":
            self.abort(exc)

    def open(self) -> LocalRun:
        """Create the hidden partial folder and start ``run.log``.

        Returns
        -------
        LocalRun
            ``self``.

        Raises
        ------
        OutputError
            If ``work_dir`` cannot be created or written to.
        RuntimeError
            If the run was already opened.
        """
        if self._state != "new":
            raise RuntimeError(f"this LocalRun is already {self._state}; make a new LocalRun")
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._folder_error(self.work_dir, exc) from exc
        clean_stale_partials(self.work_dir)
        base = self.name or f"{self.view}_{time.strftime('%Y%m%d_%H%M%S')}"
        for _, candidate in _numbered(base):
            partial = self.work_dir / f".{candidate}{_PARTIAL_SUFFIX}"
            if (self.work_dir / candidate).exists():
                continue
            try:
                # os.mkdir is atomic: of two runs racing for a name, exactly one gets it.
                os.mkdir(partial)
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._folder_error(self.work_dir, exc) from exc
            self._partial, self._final_name = partial, candidate
            break
        else:
            raise OutputError(
                f"cannot find a free run folder name in '{self.work_dir}': '{base}' and "
                f"{_MAX_SUFFIX - 1} numbered variants exist; clean up or choose another --work-dir"
            )
        self._created = _now()
        self._state = "open"
        try:
            self._start_log()
            logger.info("run folder %s (written as %s)", self._final_name, partial)
            self._start_mirrors()
        except BaseException as exc:
            # also Ctrl-C/SIGTERM: the with-block has not started, so __exit__ would not clean up
            self.abort(exc)
            raise
        return self

    def finish(self) -> Path:
        """Write ``manifest.json`` last and rename the folder to its final name.

        Called by ``__exit__`` when the ``with`` block ends without an exception.

        Returns
        -------
        pathlib.Path
            The final folder (:attr:`final_path`).

        Raises
        ------
        OutputError
            If the manifest cannot be written or the folder cannot be renamed; the partial
            folder is removed then.
        """
        self._require_open()
        try:
            self._close_mirrors(success=True)
            if self._scalar_rows:
                lines = "".join(
                    json.dumps(_jsonable(row), sort_keys=True, allow_nan=False) + "\n"
                    for row in self._scalar_rows
                )
                self._atomic_write(
                    SCALARS_NAME, lambda fh: fh.write(lines.encode("utf-8")), internal=True
                )
            self._stop_log()
            manifest = self._manifest()
            self._atomic_write(
                MANIFEST_NAME,
                lambda fh: fh.write(self._dumps(manifest, MANIFEST_NAME).encode("utf-8")),
                internal=True,
            )
            final = self._rename_to_final()
        except BaseException as exc:
            if self._state == "open":
                self.abort(exc)
            raise
        self._final = final
        self._state = "finished"
        logger.info("wrote run folder %s", final)
        return final

    def abort(self, exc: BaseException | None = None) -> None:
        """End a failed run: remove the partial folder (or keep it with ``keep_failed``).

        Parameters
        ----------
        exc : BaseException, optional
            The error that ended the run, written to ``run.log`` when the folder is kept.
        """
        if self._state != "open":
            return
        self._close_mirrors(success=False)
        if exc is not None and self._handler is not None:
            # Straight to the file: the caller reports the error to the user already.
            self._handler.handle(
                logging.makeLogRecord(
                    {
                        "name": __name__,
                        "levelno": logging.ERROR,
                        "levelname": "ERROR",
                        "msg": "run failed: %s: %s",
                        "args": (type(exc).__name__, exc),
                    }
                )
            )
        self._stop_log()
        self._state = "failed"
        assert self._partial is not None
        if self.keep_failed:
            logger.info("kept the folder of the failed run: %s", self._partial)
        else:
            shutil.rmtree(self._partial, ignore_errors=True)

    # ------------------------------------------------------------------ properties

    @property
    def path(self) -> Path:
        """The folder being written (the hidden ``.partial`` one while the run is open)."""
        if self._state == "finished":
            assert self._final is not None
            return self._final
        if self._partial is None:
            raise RuntimeError("the run folder exists only inside `with LocalRun(...)` (or open())")
        return self._partial

    @property
    def run_name(self) -> str:
        """The run's folder name (``tsne_20250101_120000``); set when the run opens."""
        if self._final_name is None:
            raise RuntimeError("the run has a name only once it is open")
        return self._final_name

    @property
    def mirrors(self) -> tuple[str, ...]:
        """Names of the backends still receiving this run (a failed one is dropped)."""
        return tuple(m.name for m in self._mirrors)

    @property
    def final_path(self) -> Path:
        """The finished run folder; valid after :meth:`finish`."""
        if self._state != "finished" or self._final is None:
            raise RuntimeError(
                f"the run is {self._state}: final_path exists only after the run finished"
            )
        return self._final

    @property
    def state(self) -> str:
        """``"new"``, ``"open"``, ``"finished"`` or ``"failed"``."""
        return self._state

    @property
    def finished(self) -> bool:
        """Whether the run folder was completed and renamed to its final name."""
        return self._state == "finished"

    # ------------------------------------------------------------------ writers

    def write_bytes(
        self, name: str, data: bytes, *, tag: str | None = None, mirror: bool = True
    ) -> Path:
        """Write raw bytes to ``name``.

        With mirrors attached, a ``.png`` file is also logged to them as an image at
        :attr:`step`.

        Parameters
        ----------
        name : str
            Plain file name.
        data : bytes
            Content.
        tag : str, optional
            Name of a ``.png`` in the mirrors (default: the file name without ``.png``).
        mirror : bool, default True
            Send a ``.png`` to the mirrors; False keeps it in the folder only (e.g. sprites or
            thumbnails that are not pictures of the run on their own).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not a plain, allowed file name.
        OutputError
            If the file cannot be written.
        """
        path = self._atomic_write(name, lambda fh: fh.write(data))
        if mirror and self._mirrors and name.lower().endswith(".png"):
            self._mirror_image(tag or name[:-4], lambda: png_to_rgb(data))
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write UTF-8 text to ``name``.

        Parameters
        ----------
        name : str
            Plain file name, e.g. ``"notes.txt"``.
        text : str
            Content.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not a plain, allowed file name.
        OutputError
            If the file cannot be written.
        """
        return self.write_bytes(name, text.encode("utf-8"))

    def write_array(self, name: str, array: Any) -> Path:
        """Write an array as ``.npy`` (no pickles).

        Parameters
        ----------
        name : str
            File name; ``.npy`` is appended when missing.
        array : array-like
            Numeric array, e.g. ``(N, D)`` float32 features.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not allowed or the array holds Python objects.
        OutputError
            If the file cannot be written.
        """
        arr = np.asarray(array)
        if arr.dtype.hasobject:
            raise ParameterError(
                f"array for '{name}' has dtype object, which .npy can only store as a pickle; "
                "pass a numeric array"
            )
        return self._atomic_write(
            _with_suffix(name, ".npy"), lambda fh: np.save(fh, arr, allow_pickle=False)
        )

    def write_json(self, name: str, obj: Any) -> Path:
        """Write JSON with sorted keys, indent 2, NaN and infinities as ``null``.

        Parameters
        ----------
        name : str
            File name; ``.json`` is appended when missing.
        obj : Any
            Mappings, sequences, numbers (numpy scalars and arrays included), strings, paths.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not allowed or ``obj`` holds a value JSON cannot represent.
        OutputError
            If the file cannot be written.
        """
        name = _with_suffix(name, ".json")
        return self.write_text(name, self._dumps(obj, name))

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        """Write a CSV table (RFC 4180 quoting, newline line ends, UTF-8).

        Parameters
        ----------
        name : str
            File name; ``.csv`` is appended when missing.
        header : sequence of str
            Column names.
        rows : iterable of sequences
            One sequence per row, as long as ``header``.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not allowed or a row's length differs from the header's.
        OutputError
            If the file cannot be written.
        """
        name = _with_suffix(name, ".csv")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(header))
        for i, row in enumerate(rows):
            row = list(row)
            if len(row) != len(header):
                raise ParameterError(
                    f"row {i} of '{name}' has {len(row)} values but the header has "
                    f"{len(header)} columns; give every row one value per column"
                )
            writer.writerow(row)
        return self.write_text(name, buffer.getvalue())

    def write_figure(
        self,
        fig: Figure,
        stem: str,
        formats: str | Iterable[str] = ("png",),
        dpi: float = 150,
        *,
        tag: str | None = None,
    ) -> list[Path]:
        """Write a figure in one or more formats (see :func:`featscope.render.save_figure`).

        With mirrors attached, the figure is also logged to them as an image at :attr:`step`.

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure (``ax.figure`` for an axes).
        stem : str
            File name without suffix; ``"tsne_pre_logits"`` gives ``tsne_pre_logits.png``, ...
        formats : str or iterable of str, default ("png",)
            Any of ``png``, ``pdf``, ``svg``, ``jpg``.
        dpi : float, default 150
            Resolution of raster formats.
        tag : str, optional
            Name of the image in the mirrors (default ``stem``); give the same tag at every step
            to get one image series (e.g. ``"tsne/pre_logits"`` for ``tsne_pre_logits_e0003``).

        Returns
        -------
        list of pathlib.Path
            The files written, in the order of ``formats``.

        Raises
        ------
        ParameterError
            If ``stem`` is not allowed or a format is unknown.
        OutputError
            If a file cannot be written.
        """
        from featscope.render import save_figure

        self._require_open()
        stem = _check_name(stem, "figure name")
        temp_stem = self.path / f".{stem}.tmp-{os.getpid()}"
        try:
            temps = save_figure(fig, temp_stem, formats=formats, dpi=dpi)
        except BaseException as exc:
            if self._partial is not None and self._partial.is_dir():
                for leftover in self._partial.glob(f".{stem}.tmp-{os.getpid()}.*"):
                    leftover.unlink(missing_ok=True)
            # matplotlib's PDF writer, hit by a full disk, fails again while cleaning up and
            # raises AttributeError with the OSError as its context: look down the chain
            cause = _os_error_in(exc) if isinstance(exc, Exception) else None
            if cause is not None:
                raise self._write_error(f"{stem}.*", cause) from exc
            raise
        written = []
        for temp in temps:
            target = self.path / _check_name(f"{stem}{temp.suffix}")
            self._replace(temp, target)
            written.append(target)
        if self._mirrors:
            pngs = [p for p in written if p.suffix.lower() == ".png"]
            self._mirror_image(
                tag or stem,
                (lambda: png_to_rgb(pngs[0].read_bytes()))
                if pngs
                else (lambda: _figure_rgb(fig, dpi)),
            )
        return written

    def write_embedding(self, result: EmbeddingResult, stem: str) -> Path:
        """Write an embedding's coordinates as ``coords_<stem>.csv`` and record the result.

        Columns are ``id, label, class_name, x, y`` (and ``z`` for a 3-D map), one row per sample
        in result order; coordinates are written with full float precision.

        Parameters
        ----------
        result : EmbeddingResult
            The map.
        stem : str
            Key of the result (usually the capture point, e.g. ``"pre_logits"``); also the key of
            its entry in the manifest.

        Returns
        -------
        pathlib.Path
            The CSV file written.

        Raises
        ------
        ParameterError
            If ``stem`` is not allowed or was already recorded.
        OutputError
            If the file cannot be written.
        """
        names = result.class_names
        axes = ["x", "y", "z"][: result.n_components]

        def rows() -> Iterable[list[Any]]:
            for sample_id, label, coords in zip(
                result.ids, result.labels, result.coords, strict=True
            ):
                index = int(label)
                name = names[index] if 0 <= index < len(names) else str(index)
                yield [sample_id, index, name, *(repr(float(v)) for v in coords)]

        self._check_key(stem)
        path = self.write_csv(
            f"coords_{_check_name(stem, 'result key')}.csv",
            ["id", "label", "class_name", *axes],
            rows(),
        )
        self.add_result(stem, result)
        return path

    # ------------------------------------------------------------------ manifest content

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
        self._results[key] = _jsonable(entry)
        metrics = getattr(result, "metrics", None)
        if self._mirrors and isinstance(metrics, Mapping):
            scalars = _finite_scalars(metrics, f"{key}/", skip=COUNT_KEYS)
            if scalars:
                self._mirror_call("log_scalars", scalars, self._step())

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
        converted = _jsonable(value)
        self._dumps(converted, f"manifest metadata {key!r}")
        self._metadata[str(key)] = converted
        if self._mirrors and self._state == "open":
            self._mirror_call("log_config", {str(key): converted})

    # ------------------------------------------------------------------ mirrored logging

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, prefix: str = ""
    ) -> dict[str, float]:
        """Log scalars: a line in ``scalars.jsonl`` and a point in every mirror's charts.

        Parameters
        ----------
        metrics : Mapping of str to number
            Values by name (``{"pre_logits/knn_accuracy_map": 0.93}``). Values that are not
            finite real numbers (NaN, None, strings, bools) are left out.
        step : int, optional
            Step (epoch) of the values; default :attr:`step` (or 0).
        prefix : str, optional
            Prepended to every name (``"pre_logits/"``).

        Returns
        -------
        dict of str to float
            The values logged.

        Raises
        ------
        ParameterError
            If ``metrics`` is not a mapping or ``step`` is not a non-negative integer.
        """
        self._require_open()
        if not isinstance(metrics, Mapping):
            raise ParameterError(
                f"`metrics` must be a mapping of names to numbers; got {type(metrics).__name__}"
            )
        at = self._step(step)
        scalars = _finite_scalars(metrics, prefix)
        if scalars:
            self._scalar_rows.append({"step": at, **scalars})
            self._mirror_call("log_scalars", scalars, at)
        return scalars

    def log_image(self, tag: str, image: Any, step: int | None = None) -> None:
        """Log an image to the backends only (the folder gets files from :meth:`write_bytes`).

        Parameters
        ----------
        tag : str
            Image name; the same tag at later steps makes a series.
        image : array-like
            ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8 (alpha dropped).
        step : int, optional
            Step (epoch); default :attr:`step` (or 0).

        Raises
        ------
        ParameterError
            If ``tag`` is empty or the image is not one of those shapes and uint8.
        """
        self._require_open()
        if not isinstance(tag, str) or not tag:
            raise ParameterError(f"image tag {tag!r} must be a non-empty string, e.g. 'tsne/neck'")
        rgb = _as_rgb(image, tag)
        at = self._step(step)
        self._mirror_call("log_image", tag, rgb, at)

    def log_embedding(
        self,
        features: FeatureSet | None,
        result: EmbeddingResult | None = None,
        thumbnails: Any = None,
        *,
        thumbnail_indices: Any = None,
        tag: str | None = None,
        step: int | None = None,
    ) -> None:
        """Log feature vectors and/or their map to the mirrors' embedding views.

        TensorBoard gets projector entries (the features and the map, with a metadata table of
        label, class name and id, and a sprite of the thumbnails); W&B gets a Table of the map
        coordinates with id, class and thumbnail. The run folder already holds the same data
        (``feat_*.npy``, ``coords_*.csv``), so nothing is written to it.

        Parameters
        ----------
        features : FeatureSet or None
            Feature vectors with labels, class names and ids.
        result : EmbeddingResult, optional
            Their map (same samples, same order).
        thumbnails : numpy.ndarray, optional
            ``(N, s, s, 3)`` uint8, one per sample in order (see
            :func:`featscope.data.thumbnails.make_thumbnails`), or ``(M, s, s, 3)`` for the
            samples at ``thumbnail_indices``.
        thumbnail_indices : array-like of int, optional
            Positions of the samples the ``M`` thumbnails belong to (when only some samples have
            one, e.g. under a ``--thumbnails`` cap): the others get a black sprite tile and no
            W&B image.
        tag : str, optional
            Name of the embedding; default the capture point.
        step : int, optional
            Step (epoch); default :attr:`step` (or 0).

        Raises
        ------
        ParameterError
            If both ``features`` and ``result`` are None, or their lengths (or the thumbnails')
            differ.
        """
        self._require_open()
        if features is None and result is None:
            raise ParameterError("log_embedding needs `features`, `result` or both; got neither")
        n = len(features.labels) if features is not None else len(result.labels)  # type: ignore[union-attr]
        if result is not None and len(result.labels) != n:
            raise ParameterError(
                f"`result` has {len(result.labels)} samples but `features` has {n}; pass the map "
                "of these features"
            )
        thumbnails, present = _full_thumbnails(thumbnails, thumbnail_indices, n)
        if tag is None:
            tag = features.point if features is not None else result.point  # type: ignore[union-attr]
        if not isinstance(tag, str) or not tag:
            raise ParameterError(f"embedding tag {tag!r} must be a non-empty string, e.g. 'neck'")
        self._mirror_call(
            "log_embedding", tag, features, result, thumbnails, self._step(step), present
        )

    def _check_key(self, key: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ParameterError(f"result key {key!r} must be a non-empty string, e.g. 'neck'")
        if key in self._results:
            raise ParameterError(
                f"result key {key!r} is already recorded in this run; give each result its own "
                "key (e.g. the capture point)"
            )

    def _manifest(self) -> dict[str, Any]:
        from featscope import __version__

        assert self._partial is not None
        files = []
        for path in sorted(p for p in self._partial.rglob("*") if p.is_file()):
            rel = path.relative_to(self._partial).as_posix()
            if any(part.startswith(".") for part in rel.split("/")):
                # A temporary file left by an interrupted write: not part of the results.
                path.unlink(missing_ok=True)
                continue
            files.append({"path": rel, "bytes": path.stat().st_size, "sha256": _sha256(path)})
        return {
            "schema_version": SCHEMA_VERSION,
            "view": self.view,
            "created": self._created,
            "finished": _now(),
            "featscope_version": __version__,
            "files": files,
            "results": self._results,
            "metadata": self._metadata,
        }

    # ------------------------------------------------------------------ internals

    def _step(self, step: int | None = None) -> int:
        value = self.step if step is None else step
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"`step` must be an integer >= 0 (e.g. the epoch); got {value!r}")
        return int(value)

    def _start_mirrors(self) -> None:
        started: dict[str, Any] = {}
        for mirror in list(self._mirrors):
            if self._mirror_guard(mirror, "start", lambda m=mirror: m.start(self)):
                started[mirror.name] = self._mirror_value(mirror, "location", {})
        if started:
            self._metadata["backends"] = _jsonable(started)

    def _close_mirrors(self, success: bool) -> None:
        mirrors, self._mirrors = self._mirrors, []
        for mirror in mirrors:
            self._mirror_guard(mirror, "close", lambda m=mirror: m.close(success))

    def _mirror_call(self, method: str, *args: Any) -> None:
        for mirror in list(self._mirrors):
            self._mirror_guard(mirror, method, lambda m=mirror: getattr(m, method)(*args))

    def _mirror_value(self, mirror: Mirror, method: str, default: Any) -> Any:
        try:
            return getattr(mirror, method)()
        except Exception:  # a description is not worth losing the mirror for
            return default

    def _mirror_guard(self, mirror: Mirror, what: str, call: Callable[[], Any]) -> bool:
        """Run ``call``; on failure warn, drop the mirror and return False (the folder goes on)."""
        try:
            call()
        except Exception as exc:
            if mirror in self._mirrors:
                self._mirrors.remove(mirror)
            message = (
                f"the {mirror.name} backend failed in {what} ({type(exc).__name__}: {exc}); it is "
                "switched off for the rest of this run, the run folder is still written"
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            return False
        return True

    def _mirror_image(self, tag: str, decode: Callable[[], np.ndarray]) -> None:
        try:
            image = decode()
        except Exception as exc:
            message = f"could not read image {tag!r} for the backends ({exc}); not mirrored"
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            return
        self._mirror_call("log_image", tag, image, self._step())

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(
                f"the run is {self._state}; write files inside `with LocalRun(...) as run:`"
            )

    @staticmethod
    def _dumps(obj: Any, name: str) -> str:
        try:
            return json.dumps(_jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"cannot write '{name}' as JSON: {exc}; pass numbers, strings, lists and dicts"
            ) from exc

    def _atomic_write(
        self, name: str, write: Callable[[IO[bytes]], Any], *, internal: bool = False
    ) -> Path:
        """Write through a temporary file then ``os.replace`` it, so no file is ever torn."""
        self._require_open()
        name = _check_name(name)
        if name in _RESERVED and not internal:
            raise ParameterError(
                f"file name {name!r} is reserved for the run folder's own {name}; choose another"
            )
        target = self.path / name
        temp = self.path / f".{name}.tmp-{os.getpid()}"
        try:
            with temp.open("wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._write_error(name, exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._replace(temp, target)
        return target

    def _replace(self, temp: Path, target: Path) -> None:
        try:
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._write_error(target.name, exc) from exc

    def _write_error(self, name: str, exc: OSError) -> OutputError:
        """Turn an ``OSError`` into an :class:`OutputError`; a full disk ends the run."""
        if exc.errno in _NO_SPACE:
            folder = self._partial
            # Nothing more can be written: free the space now rather than when the with-block
            # unwinds (which may never happen if the caller catches the error).
            self._stop_log()
            self._close_mirrors(success=False)
            self._state = "failed"
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            return OutputError(
                f"no space left on the device while writing '{name}' in '{self.work_dir}' "
                f"({exc.strerror or exc}); the unfinished run folder was removed; free some "
                "space or choose another --work-dir"
            )
        return OutputError(
            f"cannot write '{name}' to run folder '{self.path}': {exc.strerror or exc}; "
            "check the folder is writable or choose another --work-dir"
        )

    @staticmethod
    def _folder_error(folder: Path, exc: OSError) -> OutputError:
        return OutputError(
            f"cannot write to run folder '{folder}': {exc.strerror or exc}; "
            "choose another --work-dir"
        )

    def _rename_to_final(self) -> Path:
        assert self._partial is not None
        assert self._final_name is not None
        base = self._final_name
        # The name was free when the run started, but another process may have finished a run of
        # the same name since (it checked before our .partial existed): never rename onto it.
        for i, candidate in _numbered(base):
            target = self.work_dir / candidate
            if target.exists() or (i > 0 and (self.work_dir / f".{candidate}.partial").exists()):
                continue
            try:
                os.rename(self._partial, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise self._folder_error(self.work_dir, exc) from exc
            return target
        raise OutputError(
            f"cannot find a free run folder name in '{self.work_dir}' for '{base}'; clean up or "
            "choose another --work-dir"
        )

    def _start_log(self) -> None:
        assert self._partial is not None
        # The first line says who writes the folder, whatever the log level, so that a later
        # run can tell a folder left by a killed process from one still being written.
        host, keep = socket.gethostname(), self.keep_failed
        owner = _OWNER_LINE.format(pid=os.getpid(), host=host, keep=keep)
        try:
            with (self._partial / LOG_NAME).open("w", encoding="utf-8") as handle:
                handle.write(f"{self._created} INFO {__name__}: {owner}\n")
            handler = logging.FileHandler(self._partial / LOG_NAME, encoding="utf-8")
        except OSError as exc:
            raise self._write_error(LOG_NAME, exc) from exc
        handler.setLevel(self.log_level)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        package_logger = logging.getLogger("featscope")
        if package_logger.getEffectiveLevel() > self.log_level:
            self._logger_level = package_logger.level
            package_logger.setLevel(self.log_level)
        package_logger.addHandler(handler)
        self._handler = handler

    def _stop_log(self) -> None:
        handler, self._handler = self._handler, None
        if handler is None:
            return
        package_logger = logging.getLogger("featscope")
        package_logger.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.close()
        if self._logger_level is not None:
            package_logger.setLevel(self._logger_level)
            self._logger_level = None

    def __repr__(self) -> str:
        where = self._final or self._partial or self.work_dir
        return f"LocalRun(view={self.view!r}, state={self._state!r}, path='{where}')"
