"""Pieces every view uses: the run folder (or none) and per-stage wall times."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from featscope.errors import ParameterError

__all__ = [
    "BACKENDS",
    "Stopwatch",
    "check_backends",
    "make_mirrors",
    "open_output_run",
    "open_run",
]

BACKENDS = ("local", "tensorboard", "wandb")


def check_backends(backends: Sequence[str] | None) -> list[str]:
    """Return the backends besides ``"local"``, in order and without repeats.

    Parameters
    ----------
    backends : sequence of str or None
        Backend names; ``None`` means the run folder only.

    Returns
    -------
    list of str
        The names other than ``"local"``.

    Raises
    ------
    ParameterError
        For a name that is not a backend.
    """
    if backends is None:
        return []
    if isinstance(backends, str):
        backends = [backends]
    extra: list[str] = []
    for name in backends:
        if name not in BACKENDS:
            raise ParameterError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
        if name != "local" and name not in extra:
            extra.append(name)
    return extra


def open_run(
    work_dir: str | os.PathLike[str] | None,
    view: str,
    backends: Sequence[str] | None = None,
    *,
    name: str | None = None,
    keep_failed: bool = False,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Return the run folder of a view as a context manager.

    Parameters
    ----------
    work_dir : path or None
        Parent folder of the run folder; None writes nothing.
    view : str
        Name of the view, the start of the folder name.
    backends : sequence of str, optional
        Where else the run is logged: ``"tensorboard"`` (events in
        ``<work_dir>/tensorboard/<run name>/``), ``"wandb"`` (a W&B run; its local files in
        ``<work_dir>/wandb/``). ``"local"`` (the run folder) is always on and may be named.
    name : str, optional
        Run folder name instead of ``<view>_<timestamp>``.
    keep_failed : bool, default False
        Keep the hidden ``.partial`` folder of a failed run.
    backend_options : Mapping, optional
        Keyword arguments per backend: ``{"tensorboard": {"log_dir": ...}, "wandb":
        {"project": ..., "mode": "offline", "init_kwargs": {...}}}`` (see
        :class:`featscope.sinks.tensorboard.TensorBoardMirror` and
        :class:`featscope.sinks.wandb.WandbMirror`).

    Returns
    -------
    LocalRun or contextlib.nullcontext
        A :class:`featscope.sinks.LocalRun`, or a context that gives ``None`` for no folder.

    Raises
    ------
    ParameterError
        For an unknown backend, backends without a work_dir, or options for a backend that is
        not selected.
    MissingExtraError
        When a backend's package is not installed (before anything is written).
    """
    extra = check_backends(backends)
    if work_dir is None:
        if extra:
            raise ParameterError(
                f"backends {extra} log beside the run folder, but work_dir is None; pass a work_dir"
            )
        return nullcontext(None)
    from featscope.sinks import LocalRun  # lazily: sinks import numpy and the writers

    return LocalRun(
        work_dir,
        view,
        name=name,
        keep_failed=keep_failed,
        mirrors=make_mirrors(extra, backend_options),
    )


def open_output_run(output: Any, view: str) -> Any:
    """Return the run folder of a view as an ``Output`` group asks for it (see :func:`open_run`).

    Parameters
    ----------
    output : featscope.options.Output
        ``work_dir``, ``backends``, ``name``, ``keep_failed`` and ``backend_options``.
    view : str
        Name of the view, the start of the folder name.

    Returns
    -------
    LocalRun or contextlib.nullcontext
        As :func:`open_run`.
    """
    return open_run(
        output.work_dir,
        view,
        output.backends,
        name=output.name,
        keep_failed=output.keep_failed,
        backend_options=output.backend_options,
    )


def make_mirrors(
    backends: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Any]:
    """Build the mirror of each backend name (besides ``"local"``).

    Parameters
    ----------
    backends : sequence of str
        ``"tensorboard"`` and/or ``"wandb"`` (``"local"`` is skipped).
    options : Mapping, optional
        Keyword arguments per backend name.

    Returns
    -------
    list of featscope.sinks.Mirror
        One per backend, in order.

    Raises
    ------
    ParameterError
        For an unknown name, or options for a backend not in ``backends``.
    MissingExtraError
        When a backend's package is not installed.
    """
    extra = check_backends(backends)
    options = dict(options or {})
    for key in options:
        if key not in extra:
            raise ParameterError(
                f"backend_options has an entry for {key!r}, which is not among the selected "
                f"backends {extra}; add {key!r} to the backends or drop its options"
            )
    mirrors: list[Any] = []
    for backend in extra:
        kwargs = dict(options.get(backend) or {})
        if backend == "tensorboard":
            from featscope.sinks.tensorboard import TensorBoardMirror

            mirrors.append(TensorBoardMirror(**kwargs))
        else:
            from featscope.sinks.wandb import WandbMirror

            mirrors.append(WandbMirror(**kwargs))
    return mirrors


class Stopwatch:
    """Add up wall time per stage name: ``with clock("draw"): ...``.

    Parameters
    ----------
    timings : dict, optional
        Dict to add the seconds to (a new one by default); kept as :attr:`timings`.
    """

    def __init__(self, timings: dict[str, float] | None = None) -> None:
        self.timings: dict[str, float] = {} if timings is None else timings

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start
