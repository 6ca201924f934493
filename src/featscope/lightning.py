"""The PyTorch Lightning entry point: :class:`FeatscopeCallback` runs a Monitor inside a Trainer.

Like the command line, this is a way into the views rather than a view: the callback only turns
Lightning's hooks (fit start, epoch ends, fit end, exception) into calls of
:class:`featscope.views.monitor.Monitor`. Lightning is an optional extra, so the class is built
on first use: ``from featscope.lightning import FeatscopeCallback`` (or
``featscope.FeatscopeCallback``) imports ``lightning.pytorch`` if installed, else
``pytorch_lightning``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from featscope.errors import ParameterError

__all__ = ["FeatscopeCallback"]  # noqa: F822 - made on first use, by __getattr__ below


@functools.cache
def _callback_class() -> type:
    """Build the Lightning callback class on first use (Lightning is an optional extra)."""
    try:
        from lightning.pytorch import Callback
    except ImportError:
        try:
            from pytorch_lightning import Callback
        except ImportError:
            from featscope._optional import require

            require("lightning", "lightning", "the Lightning callback")
            raise  # pragma: no cover - require raised already
    from featscope.capture.training import check_every
    from featscope.views.monitor import Monitor

    class FeatscopeCallback(Callback):  # type: ignore[misc, valid-type]
        """A PyTorch Lightning callback running a :class:`Monitor` on the LightningModule.

        Parameters
        ----------
        data : str, path or ImageSamples, optional
            The samples to map (see :class:`Monitor`).
        points : sequence of str, optional
            Capture points, module paths inside the LightningModule (``"net.layer4"``).
        every : int, default 1
            Log every ``every`` epochs.
        on : {"train", "validation"}, default "train"
            Log at the end of the training epoch, or of the validation epoch (sanity checks
            skipped).
        **monitor_kwargs
            The other :class:`Monitor` arguments (``output``, ``embedding``, ``preprocess``,
            ``featmaps``, ...).

        Attributes
        ----------
        monitor : Monitor or None
            Made when fitting starts (on the global-zero process only).
        """

        def __init__(
            self,
            data: Any = None,
            points: Sequence[str] | None = None,
            *,
            every: int = 1,
            on: str = "train",
            **monitor_kwargs: Any,
        ) -> None:
            super().__init__()
            if on not in ("train", "validation"):
                raise ParameterError(f"`on` must be 'train' or 'validation'; got {on!r}")
            self.data, self.points, self.every = data, points, check_every(every)
            self.on, self.monitor_kwargs = on, monitor_kwargs
            self.monitor: Monitor | None = None

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.is_global_zero and self.monitor is None:
                self.monitor = Monitor(
                    pl_module, self.data, self.points, every=self.every, **self.monitor_kwargs
                )

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on == "train" and self.monitor is not None:
                self.monitor.step(int(trainer.current_epoch))

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on == "validation" and not trainer.sanity_checking and self.monitor:
                self.monitor.step(int(trainer.current_epoch))

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            if self.monitor is not None:
                self.monitor.close()

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            if self.monitor is not None:
                self.monitor.abort(exception)

    # Named as the module attribute that returns it, so pickle finds it by reference.
    FeatscopeCallback.__module__ = __name__
    FeatscopeCallback.__qualname__ = "FeatscopeCallback"
    return FeatscopeCallback


def __getattr__(name: str) -> Any:
    # `from featscope.lightning import FeatscopeCallback` imports Lightning only then.
    if name == "FeatscopeCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
