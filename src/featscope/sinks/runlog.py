"""``run.log``: the featscope log messages of one run, kept in its folder."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from featscope.sinks.folder import owner_line
from featscope.sinks.layout import LOG_NAME

__all__ = ["LOG_FORMAT", "RunLog"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RunLog:
    """A ``logging.FileHandler`` on the ``"featscope"`` logger, writing ``<folder>/run.log``."""

    def __init__(self) -> None:
        self._handler: logging.Handler | None = None
        self._logger_level: int | None = None

    def start(self, folder: Path, created: str, keep_failed: bool, level: int) -> None:
        """Write the owner line and attach the handler.

        The first line says who writes the folder, whatever the log level, so that a later run
        can tell a folder left by a killed process from one still being written (see
        :func:`featscope.sinks.folder.clean_stale_partials`).

        Parameters
        ----------
        folder : pathlib.Path
            The run folder being written.
        created : str
            ISO time of the run's start, the first line's time stamp.
        keep_failed : bool
            Whether the folder of a failed run is kept (then never removed as stale).
        level : int
            Lowest level written. While the log is open the ``"featscope"`` logger's level is
            lowered to it if needed (and restored by :meth:`stop`).

        Raises
        ------
        OSError
            When the file cannot be written (the caller names the run folder).
        """
        with (folder / LOG_NAME).open("w", encoding="utf-8") as handle:
            handle.write(f"{created} INFO {__name__}: {owner_line(keep_failed)}\n")
        handler = logging.FileHandler(folder / LOG_NAME, encoding="utf-8")
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        package_logger = logging.getLogger("featscope")
        if package_logger.getEffectiveLevel() > level:
            self._logger_level = package_logger.level
            package_logger.setLevel(level)
        package_logger.addHandler(handler)
        self._handler = handler

    def record_failure(self, exc: BaseException) -> None:
        """Write ``run failed: <type>: <message>`` to the file only.

        Straight to the file, not through the logger: the caller reports the error to the
        user already.

        Parameters
        ----------
        exc : BaseException
            The error that ended the run.
        """
        if self._handler is None:
            return
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

    def stop(self) -> None:
        """Detach and close the handler and restore the logger's level (twice is harmless)."""
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
