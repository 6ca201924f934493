"""Write results: the local run folder (atomic, manifest last) and its backend mirrors.

:class:`LocalRun` is always written. :class:`~featscope.sinks.tensorboard.TensorBoardMirror` and
:class:`~featscope.sinks.wandb.WandbMirror` (imported from their modules, which need the
``tensorboard`` and ``wandb`` extras) receive a copy of what the run logs.
"""

from __future__ import annotations

from featscope.sinks.local import LocalRun, Mirror

__all__ = ["LocalRun", "Mirror"]
