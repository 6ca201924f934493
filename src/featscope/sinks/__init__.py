"""Write results: the local run folder (atomic, manifest last), its reader and its mirrors.

:class:`LocalRun` is always written; it is a :class:`Sink`: ``run.write(result)`` writes any
result type with a writer (:func:`register_writer`). :func:`load_run` reads a finished run
folder back. :class:`~featscope.sinks.tensorboard.TensorBoardMirror` and
:class:`~featscope.sinks.wandb.WandbMirror` (imported from their modules, which need the
``tensorboard`` and ``wandb`` extras) receive a copy of what the run logs.
"""

from __future__ import annotations

from featscope.sinks.base import Sink
from featscope.sinks.mirrors import Mirror
from featscope.sinks.open import make_mirrors, open_run
from featscope.sinks.reader import RunRecord, load_run
from featscope.sinks.run import LocalRun
from featscope.sinks.writers import register_writer

__all__ = [
    "LocalRun",
    "Mirror",
    "RunRecord",
    "Sink",
    "load_run",
    "make_mirrors",
    "open_run",
    "register_writer",
]
