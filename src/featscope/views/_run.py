"""Pieces every view uses: the run folder (or none) from the Output group, and stage times."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from featscope.errors import ParameterError
from featscope.options import Output

__all__ = ["Stopwatch", "file_stem", "make_mirrors", "open_run"]


def open_run(
    output: Output | str | os.PathLike[str] | None,
    view: str,
    backends: Sequence[str] | None = None,
) -> Any:
    """Return the run folder of a view as a context manager.

    Parameters
    ----------
    output : Output or path or None
        Work dir, backends (``tensorboard``: events in ``<work_dir>/tensorboard/<run name>/``;
        ``wandb``: a W&B run, its files in ``<work_dir>/wandb/``), run name, whether a failed
        run's ``.partial`` folder is kept, and the backends' options. A path or ``None`` is
        read as ``Output(work_dir=output, backends=backends)`` (``None``: no folder), the form
        of the views that do not take an Output yet.
    view : str
        Name of the view, the start of the folder name.
    backends : sequence of str, optional
        Only with a path for ``output``.

    Returns
    -------
    LocalRun or contextlib.nullcontext
        A :class:`featscope.sinks.LocalRun`, or a context that gives ``None`` without a work dir.

    Raises
    ------
    ParameterError
        For options of a backend that is not selected (names are checked by :class:`Output`).
    MissingExtraError
        When a backend's package is not installed (before anything is written).
    """
    if not isinstance(output, Output):
        output = Output(work_dir=output, backends=tuple(backends or ()))
    elif backends is not None:
        raise ParameterError("pass the backends in the Output group, not beside it")
    if output.work_dir is None:
        return nullcontext(None)
    from featscope.sinks import LocalRun  # lazily: sinks import numpy and the writers

    return LocalRun(
        output.work_dir,
        view,
        name=output.name,
        keep_failed=output.keep_failed,
        mirrors=make_mirrors(output),
    )


def make_mirrors(output: Output) -> list[Any]:
    """Build the mirror of each backend of ``output`` besides the run folder.

    Parameters
    ----------
    output : Output
        The backends and their options (``{"wandb": {"project": ...}}``, see
        :class:`featscope.sinks.tensorboard.TensorBoardMirror` and
        :class:`featscope.sinks.wandb.WandbMirror`).

    Returns
    -------
    list of featscope.sinks.Mirror
        One per backend, in order.

    Raises
    ------
    ParameterError
        For options of a backend that is not among ``output.backends``.
    MissingExtraError
        When a backend's package is not installed.
    """
    for key in output.backend_options:
        if key not in output.mirrored:
            raise ParameterError(
                f"backend_options has an entry for {key!r}, which is not among the selected "
                f"backends {list(output.mirrored)}; add {key!r} to the backends or drop its "
                "options"
            )
    mirrors: list[Any] = []
    for backend in output.mirrored:
        kwargs = dict(output.backend_options.get(backend) or {})
        if backend == "tensorboard":
            from featscope.sinks.tensorboard import TensorBoardMirror

            mirrors.append(TensorBoardMirror(**kwargs))
        else:
            from featscope.sinks.wandb import WandbMirror

            mirrors.append(WandbMirror(**kwargs))
    return mirrors


def file_stem(text: str) -> str:
    """Return a capture point or id usable in a file name (module paths keep their dots)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text) or "output"


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
