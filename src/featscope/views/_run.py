"""Pieces every view uses: the run folder (or none) and per-stage wall times."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from featscope.errors import ParameterError

__all__ = ["BACKENDS", "Stopwatch", "check_backends", "open_run"]

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
) -> Any:
    """Return the run folder of a view as a context manager.

    Parameters
    ----------
    work_dir : path or None
        Parent folder of the run folder; None writes nothing.
    view : str
        Name of the view, the start of the folder name.
    backends : sequence of str, optional
        Where else the run is logged: ``"tensorboard"``, ``"wandb"``. ``"local"`` (the run
        folder) is always on and may be named.

    Returns
    -------
    LocalRun or contextlib.nullcontext
        A :class:`featscope.sinks.LocalRun`, or a context that gives ``None`` for no folder.
    """
    extra = check_backends(backends)
    if work_dir is None:
        if extra:
            raise ParameterError(
                f"backends {extra} log beside the run folder, but work_dir is None; pass a work_dir"
            )
        return nullcontext(None)
    if extra:
        # Filled in by issue 6 (sinks/tensorboard.py, sinks/wandb.py).
        raise ParameterError(f"backends {extra} are not available in this build")
    from featscope.sinks import LocalRun  # lazily: sinks import numpy and the writers

    return LocalRun(work_dir, view)


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
