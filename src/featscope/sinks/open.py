"""Open the run folder an :class:`~featscope.options.Output` group asks for, with its mirrors.

Every view opens its run this way, so the folder, the trackers beside it and their options mean
the same in every view.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from featscope.errors import ParameterError
from featscope.options import Output
from featscope.sinks.run import LocalRun

__all__ = ["make_mirrors", "open_run"]


def open_run(output: Output, view: str) -> Any:
    """Return the run folder of a view as a context manager.

    Parameters
    ----------
    output : Output
        Work dir (``None``: no folder), backends (``tensorboard``: events in
        ``<work_dir>/tensorboard/<run name>/``; ``wandb``: a W&B run, its files in
        ``<work_dir>/wandb/``), run name, whether a failed run's ``.partial`` folder is kept, and
        the backends' options.
    view : str
        Name of the view, the start of the folder name.

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
    if output.work_dir is None:
        return nullcontext(None)
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
