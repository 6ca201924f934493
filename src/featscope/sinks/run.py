"""The local run folder: the only way featscope writes results to disk.

:class:`LocalRun` composes the pieces: the hidden ``.partial`` folder and its rename
(:mod:`~featscope.sinks.folder`), ``run.log`` (:mod:`~featscope.sinks.runlog`), whole-or-nothing
files (:mod:`~featscope.sinks.files`), the writer of each result type
(:mod:`~featscope.sinks.writers`), the manifest written last (:mod:`~featscope.sinks.manifest`)
and the mirrors (:mod:`~featscope.sinks.mirrors`, :mod:`~featscope.sinks.mirrored`). Every
failure rolls back: the partial folder is removed (or kept, hidden and without a manifest, with
``keep_failed``), so a folder under a final name always holds a finished run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from featscope.errors import OutputError
from featscope.sinks.files import FileWriters
from featscope.sinks.folder import NO_SPACE, create_partial, rename_to_final
from featscope.sinks.layout import LOG_NAME, MANIFEST_NAME, SCALARS_NAME, check_name
from featscope.sinks.manifest import ManifestRecords, build_manifest, dumps_json, jsonable, now
from featscope.sinks.mirrored import MirroredLogging
from featscope.sinks.mirrors import Mirror, MirrorFanout
from featscope.sinks.runlog import RunLog
from featscope.sinks.writers import ResultWriters

__all__ = ["LocalRun"]

logger = logging.getLogger(__name__)


class LocalRun(ResultWriters, ManifestRecords, FileWriters, MirroredLogging):
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

    A run is a :class:`~featscope.sinks.Sink`: :meth:`write` takes any result type with a
    registered writer (:func:`~featscope.sinks.register_writer`); the ``write_*`` methods write
    plain files. :func:`~featscope.sinks.load_run` reads the finished folder back.

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
    ...     run.write(features)  # feat_pre_logits.npy, labels.npy, ids.txt, class_names.txt
    ...     run.write(result)  # coords_pre_logits.csv, recorded in the manifest
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
        self.view = check_name(view, "`view`")
        self.name = None if name is None else check_name(name, "run folder `name`")
        self.keep_failed = bool(keep_failed)
        self.log_level = log_level
        self._partial: Path | None = None
        self._final: Path | None = None
        self._final_name: str | None = None
        self._state = "new"  # new -> open -> finished | failed
        self._created: str | None = None
        self._results: dict[str, dict[str, Any]] = {}
        self._metadata: dict[str, Any] = {}
        self._log = RunLog()
        self._fanout = MirrorFanout(mirrors)
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
        base = self.name or f"{self.view}_{time.strftime('%Y%m%d_%H%M%S')}"
        self._partial, self._final_name = create_partial(self.work_dir, base)
        self._created = now()
        self._state = "open"
        try:
            try:
                self._log.start(self._partial, self._created, self.keep_failed, self.log_level)
            except OSError as exc:
                raise self._write_error(LOG_NAME, exc) from exc
            logger.info("run folder %s (written as %s)", self._final_name, self._partial)
            started = self._fanout.start(self)
            if started:
                self._metadata["backends"] = jsonable(started)
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
            self._fanout.close(success=True)
            if self._scalar_rows:
                lines = "".join(
                    json.dumps(jsonable(row), sort_keys=True, allow_nan=False) + "\n"
                    for row in self._scalar_rows
                )
                self._atomic_write(
                    SCALARS_NAME, lambda fh: fh.write(lines.encode("utf-8")), internal=True
                )
            self._log.stop()
            manifest = self._manifest()
            self._atomic_write(
                MANIFEST_NAME,
                lambda fh: fh.write(dumps_json(manifest, MANIFEST_NAME).encode("utf-8")),
                internal=True,
            )
            assert self._partial is not None
            assert self._final_name is not None
            final = rename_to_final(self._partial, self.work_dir, self._final_name)
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
        self._fanout.close(success=False)
        if exc is not None:
            self._log.record_failure(exc)
        self._log.stop()
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
        return self._fanout.names

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

    # ------------------------------------------------------------------ internals

    def _manifest(self) -> dict[str, Any]:
        assert self._partial is not None
        return build_manifest(
            self._partial,
            view=self.view,
            created=self._created,
            results=self._results,
            metadata=self._metadata,
        )

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(
                f"the run is {self._state}; write files inside `with LocalRun(...) as run:`"
            )

    def _write_error(self, name: str, exc: OSError) -> OutputError:
        """Turn an ``OSError`` into an :class:`OutputError`; a full disk ends the run."""
        if exc.errno in NO_SPACE:
            folder = self._partial
            # Nothing more can be written: free the space now rather than when the with-block
            # unwinds (which may never happen if the caller catches the error).
            self._log.stop()
            self._fanout.close(success=False)
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

    def __repr__(self) -> str:
        where = self._final or self._partial or self.work_dir
        return f"LocalRun(view={self.view!r}, state={self._state!r}, path='{where}')"
