"""Looking at a model while it trains, and leaving it as it was.

:class:`featscope.Monitor` runs extractions between training epochs on the very module being
trained. It must not move the module, leave it in eval mode or consume the random numbers the
training would have drawn next (data order, dropout masks), or a run with monitoring would differ
from one without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from featscope.errors import ParameterError

__all__ = ["check_epoch", "check_every", "check_monitoring", "module_device", "training_state"]


def check_monitoring(extraction: Any, figures: Any, output: Any) -> None:
    """Refuse the option-group settings that mean nothing while a model trains.

    A monitor logs a fixed set of samples every few epochs from inside the training process:
    it has no single finished result to copy (``--out``), cannot start worker processes of its
    own (``nproc``), re-extracts every epoch (a resume cache would refuse the second epoch) and
    must not block training on a window (``show``).

    Parameters
    ----------
    extraction : Extraction
        How features are extracted.
    figures : Figures
        How figures are drawn.
    output : Output
        Where the run is written.

    Raises
    ------
    ParameterError
        Naming the first setting that a monitor cannot honour, and what to do instead.
    """
    refused = [
        (
            output.export is not None,
            "Output.export",
            "copy files from the run folder after close()",
        ),
        (extraction.nproc != 1, "Extraction.nproc", "leave it at 1: the training process extracts"),
        (
            extraction.cache_dir is not None or extraction.resume,
            "Extraction.cache_dir/resume",
            "leave them unset: every logged epoch extracts anew",
        ),
        (figures.show, "Figures.show", "leave it off: a window would stop training"),
    ]
    for given, name, fix in refused:
        if given:
            raise ParameterError(f"Monitor does not take {name}; {fix}")


def check_every(every: Any) -> int:
    """Return ``every`` if it is a logging interval in epochs (an integer >= 1), else raise.

    Parameters
    ----------
    every : int
        Log at epochs ``every - 1``, ``2 * every - 1``, ... (MMEngine's ``interval``).

    Returns
    -------
    int
        ``every``.

    Raises
    ------
    ParameterError
        For a bool, a non-integer or a value below 1.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ParameterError(f"`every` must be a positive integer (epochs); got {every!r}")
    return every


def check_epoch(epoch: Any) -> int:
    """Return ``epoch`` as an int if it is an epoch number (an integer >= 0), else raise.

    Parameters
    ----------
    epoch : int or numpy.integer
        The 0-based epoch just finished (a loop counter, or numpy's from ``np.arange``).

    Returns
    -------
    int
        ``epoch`` as a Python int.

    Raises
    ------
    ParameterError
        For a bool, a non-integer or a negative value.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ParameterError(f"`epoch` must be an integer >= 0; got {epoch!r}")
    return int(epoch)


def module_device(module: Any) -> torch.device:
    """Return the device of a module's first parameter (or buffer); the CPU when it has none.

    Parameters
    ----------
    module : torch.nn.Module
        The model.

    Returns
    -------
    torch.device
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def training_state(module: Any) -> Iterator[None]:
    """Restore every submodule's train/eval mode and torch's random state on exit.

    Parameters
    ----------
    module : torch.nn.Module
        The model being trained.

    Yields
    ------
    None
        Inside the block the module may be put in eval mode and random numbers drawn; both are
        restored afterwards, also when the block raises.
    """
    modes = [(m, m.training) for m in module.modules()]
    cpu_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        for submodule, mode in modes:
            submodule.training = mode
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
