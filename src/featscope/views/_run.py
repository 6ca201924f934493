"""Wall time per stage, which every view reports in its run's ``timings``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Stopwatch"]


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
