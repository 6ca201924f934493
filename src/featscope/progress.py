"""Progress of long stages: a bar on a terminal or in a notebook, a log line in a log file.

Every stage that can take more than a couple of seconds (feature extraction, the t-SNE's
neighbour search and optimisation, the quality metrics, thumbnails, the page, shape-bias
evaluation, reconstructions) reports through :class:`Progress`:

* on a terminal (stderr is a tty) or in a Jupyter notebook: a :mod:`tqdm.auto` bar (a widget in
  notebooks), removed when the stage ends;
* otherwise (output redirected to a log file, CI, a scheduler): one plain ``logging`` line
  about every :data:`LOG_EVERY_S` seconds (``"t-SNE optimisation: 300/750 iterations (40 %),
  12 s, KL 2.31"``), so a two-minute stage does not leave the log silent; a stage shorter
  than that writes nothing;
* nothing when progress is switched off (``--quiet`` on the command line, which calls
  :func:`set_enabled`, or ``enabled=False``).

tqdm is a dependency of featscope; it is imported only when a bar is shown.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["LOG_EVERY_S", "Progress", "enabled", "set_enabled"]

logger = logging.getLogger("featscope.progress")

#: Seconds between two plain log lines when the output is not a terminal.
LOG_EVERY_S = 10.0

_STATE = {"enabled": True}


def set_enabled(flag: bool) -> bool:
    """Switch progress reports on or off for the whole process; return the previous setting.

    Parameters
    ----------
    flag : bool
        False silences every bar and log line (the command line's ``--quiet``).

    Returns
    -------
    bool
        The setting before the call, to restore it.
    """
    before = _STATE["enabled"]
    _STATE["enabled"] = bool(flag)
    return before


@contextlib.contextmanager
def enabled(flag: bool) -> Iterator[None]:
    """Run a block with progress reports on (``True``) or off, restoring the setting after."""
    before = set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(before)


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _interactive() -> bool:
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        tty = False
    return tty or _in_notebook()


class Progress:
    """Progress of one stage: ``update`` it as work is done, ``close`` it (or use ``with``).

    Parameters
    ----------
    total : int or None
        Units of work of the stage (``None``: unknown, counted without a percentage).
    desc : str
        Name of the stage, shown before the count ("extracting features").
    unit : str, default "it"
        Name of one unit ("img", "iterations", "rows").
    enabled : bool or None, default None
        ``False`` shows nothing; ``None`` follows :func:`set_enabled` (on unless switched off).
    interval : float, optional
        Seconds between two log lines when the output is not a terminal (default
        :data:`LOG_EVERY_S`).

    Attributes
    ----------
    mode : {"bar", "log", "off"}
        How progress is shown.
    n : int
        Units done so far.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        *,
        enabled: bool | None = None,
        interval: float | None = None,
    ) -> None:
        on = _STATE["enabled"] if enabled is None else bool(enabled) and _STATE["enabled"]
        self.total, self.desc, self.unit = total, desc, unit
        self.interval = LOG_EVERY_S if interval is None else interval
        self.n = 0
        self.note = ""
        self.start = self._last_log = time.perf_counter()
        self._bar: Any = None
        if not on:
            self.mode = "off"
        elif _interactive():
            from tqdm.auto import tqdm

            self.mode = "bar"
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
        else:
            self.mode = "log"

    def update(self, n: int = 1, note: str | None = None) -> None:
        """Record ``n`` more units done; ``note`` (e.g. ``"KL 2.31"``) is shown beside them."""
        self.n += n
        if note is not None:
            self.note = note
        if self.mode == "bar":
            if note is not None:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)
        elif self.mode == "log":
            now = time.perf_counter()
            if now - self._last_log >= self.interval:
                self._last_log = now
                logger.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """Return the plain progress line (what the log gets): count, percentage, time, note."""
        elapsed = (time.perf_counter() if now is None else now) - self.start
        if self.total:
            count = f"{self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f} %)"
        else:
            count = f"{self.n} {self.unit}"
        note = f", {self.note}" if self.note else ""
        return f"{self.desc}: {count}, {elapsed:.0f} s{note}"

    def close(self) -> None:
        """End the stage (removes the bar)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
