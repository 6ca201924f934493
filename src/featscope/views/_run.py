"""Pieces every view uses: the run folder (or none) and per-stage wall times."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

__all__ = ["Stopwatch", "open_run"]


def open_run(work_dir: str | os.PathLike[str] | None, view: str) -> Any:
    """Return the run folder of a view as a context manager.

    Parameters
    ----------
    work_dir : path or None
        Parent folder of the run folder; None writes nothing.
    view : str
        Name of the view, the start of the folder name.

    Returns
    -------
    LocalRun or contextlib.nullcontext
        A :class:`featscope.sinks.LocalRun`, or a context that gives ``None`` for no folder.
    """
    if work_dir is None:
        return nullcontext(None)
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
