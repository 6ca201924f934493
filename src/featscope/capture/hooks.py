"""Hooks as a resource: capture named outputs during a forward pass, then leave no trace.

``capture(handle, points)`` is a context manager. On entry it records every module's
``training`` flag, puts the model in eval mode and registers one hook per module point; on exit
(normal or not) it removes the hooks and restores each flag. Inside, :meth:`Capture.run` runs the
model under ``torch.inference_mode()`` and returns the value of every requested point.

Examples
--------
>>> with capture(handle, ["layer4", "pre_logits"]) as tap:  # doctest: +SKIP
...     outputs = tap.run(images)
>>> outputs["layer4"].shape  # doctest: +SKIP
torch.Size([8, 512, 7, 7])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from featscope.capture.points import CapturePoint, module_table, resolve_points
from featscope.errors import CaptureError
from featscope.models.handle import ModelHandle
from featscope.models.points import forward_errors

__all__ = ["Capture", "capture", "select_element"]

_MISSING = object()


def _detached_copy(value: Any) -> Any:
    """Copy the tensors in a captured value.

    A later in-place op (``ReLU(inplace=True)`` after a hooked BatchNorm, ``out += identity``)
    would otherwise change the recorded tensor after the hook ran. Inference tensors carry no
    version counter, so the change cannot even be detected afterwards: copy now.
    ``ModelOutput`` becomes a plain dict of its non-``None`` fields, the same fields its own
    ``keys()`` lists.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, Mapping):
        return {k: _detached_copy(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple):
        return tuple(_detached_copy(v) for v in value)
    if isinstance(value, list):
        return [_detached_copy(v) for v in value]
    return value


def select_element(point: CapturePoint, value: Any) -> Any:
    """Apply ``point.ref.select`` to a captured value.

    Parameters
    ----------
    point : CapturePoint
        The point, whose ``ref.select`` is an index, a key or ``None``.
    value : Any
        The raw value (tensor, tuple, list, dict or ``ModelOutput``).

    Returns
    -------
    Any
        ``value[select]``, or ``value`` when ``select`` is ``None``.

    Raises
    ------
    CaptureError
        When the value has no such element.
    """
    select = point.ref.select
    if select is None:
        return value
    try:
        if isinstance(value, Mapping):
            if isinstance(select, int):
                # ModelOutput's integer indexing: the i-th field that is set
                return list(value.values())[select]
            return value[select]
        if isinstance(value, (tuple, list)):
            return value[int(select)]
    except (IndexError, KeyError, ValueError):
        pass
    described = (
        f"keys {list(value)}"
        if isinstance(value, Mapping)
        else f"{len(value)} elements"
        if isinstance(value, (tuple, list))
        else f"a {type(value).__name__}"
    )
    raise CaptureError(
        f"capture point {point.name!r} takes element {select!r} of its output, but the output "
        f"has {described}; pick an existing element or the whole point"
    )


class Capture:
    """Context manager that captures the named points of a model during its forward passes.

    Use it through :func:`capture`.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    points : iterable of str or CapturePoint
        Capture points; names are resolved with :func:`resolve_points` (unknown names fail
        here, before any forward pass).

    Attributes
    ----------
    handle : ModelHandle
        The model.
    points : tuple of CapturePoint
        The resolved points, in order.
    outputs : dict of str to Any
        The latest value recorded by each module hook, by point name (filled by :meth:`run`).
    """

    def __init__(self, handle: ModelHandle, points: Iterable[str | CapturePoint] | str) -> None:
        self.handle = handle
        if isinstance(points, (str, CapturePoint)):
            points = [points]
        points = list(points)
        names = [p for p in points if not isinstance(p, CapturePoint)]
        # names are resolved together (one module table, one error for the first bad name)
        by_name = (
            {cp.name: cp for cp in resolve_points(handle, names)} if names or not points else {}
        )
        ordered: dict[str, CapturePoint] = {}
        for p in points:
            point = p if isinstance(p, CapturePoint) else by_name[p]
            ordered.setdefault(point.name, point)
        self.points: tuple[CapturePoint, ...] = tuple(ordered.values())
        self.outputs: dict[str, Any] = {}
        self._handles: list[Any] = []
        self._training: list[tuple[Any, bool]] = []
        self._active = False

    # -- resource handling -------------------------------------------------------------------

    def __enter__(self) -> Capture:
        if self._active:
            raise CaptureError(
                "this capture is already active; a capture context cannot be entered twice, "
                "create a new one with capture(handle, points)"
            )
        module = self.handle.module
        # every flag first, so that a failing eval() (or hook) still restores all of them
        self._training = [(m, bool(m.training)) for m in module.modules()]
        self._active = True
        try:
            module.eval()
            self._register_hooks()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks and restore every module's ``training`` flag; safe to repeat."""
        try:
            handles, self._handles = self._handles, []
            for hook in handles:
                hook.remove()
        finally:
            training, self._training = self._training, []
            for m, flag in training:
                # per-module attribute, not train(flag): train() recurses and would overwrite
                # children that were in a different mode (e.g. frozen BatchNorm in a trained net)
                m.training = flag
            self.outputs = {}
            self._active = False

    def _register_hooks(self) -> None:
        module_points = [p for p in self.points if p.ref.module is not None]
        if not module_points:
            return
        table = module_table(self.handle.module)
        for point in module_points:
            target = table.get(point.ref.module)
            if target is None:
                raise CaptureError(
                    f"capture point {point.name!r} refers to module {point.ref.module!r}, which "
                    f"is not in this model ({self.handle.spec}); list the valid points with "
                    f"`featscope points --model {self.handle.spec}`"
                )
            if point.ref.io == "input":
                hook = target.register_forward_pre_hook(
                    self._input_recorder(point.name), with_kwargs=True
                )
            else:
                hook = target.register_forward_hook(self._output_recorder(point.name))
            self._handles.append(hook)

    def _output_recorder(self, name: str) -> Any:
        def record(_module: Any, _args: Any, output: Any) -> None:
            self.outputs[name] = _detached_copy(output)

        return record

    def _input_recorder(self, name: str) -> Any:
        def record(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if args:
                self.outputs[name] = _detached_copy(args[0])
            elif kwargs:  # called as module(x=...) : the first keyword argument is the input
                self.outputs[name] = _detached_copy(next(iter(kwargs.values())))

        return record

    # -- capture -------------------------------------------------------------------------------

    def run(self, x: Any) -> dict[str, Any]:
        """Run the model on a batch and return the value of every capture point.

        Parameters
        ----------
        x : torch.Tensor
            The model input, already on the model's device.

        Returns
        -------
        dict of str to Any
            ``{point name: raw value}`` in the order of :attr:`points`; a value is a tensor,
            tuple, list or dict (``ModelOutput`` becomes a dict), after ``PointRef.select``.

        Raises
        ------
        CaptureError
            When called outside the ``with`` block, when the model fails on ``x`` (a shape or
            channel mismatch), when a hooked module did not run during the forward pass, or when
            a value the model's API provides is missing.
        """
        if not self._active:
            raise CaptureError(
                "Capture.run() was called outside its `with` block; use "
                "`with capture(handle, points) as tap: tap.run(x)`"
            )
        self.outputs = {}
        # torch's shape errors ("expected input[8, 3, 20, 20] to have 1 channels") mean the input
        # does not fit the model: a user's option to change, not a featscope bug
        with forward_errors(self.handle, x), torch.inference_mode():
            _output, extras = self.handle.forward(self.handle.module, x)
        extras = extras or {}
        values: dict[str, Any] = {}
        for point in self.points:
            if point.ref.module is None:
                raw = extras.get(point.extras_key, _MISSING)
                if raw is _MISSING:
                    raise CaptureError(
                        f"capture point {point.name!r} is computed by the model's own API, but "
                        f"the forward of {self.handle.spec} returned no {point.extras_key!r} "
                        f"(it returned: {', '.join(extras) or 'nothing'}); pick a module path "
                        "instead and report this adapter bug"
                    )
            else:
                raw = self.outputs.get(point.name, _MISSING)
                if raw is _MISSING:
                    raise CaptureError(self._not_run_message(point))
            values[point.name] = select_element(point, raw)
        return values

    def _not_run_message(self, point: CapturePoint) -> str:
        path = point.ref.module or "<the model itself>"
        hint = "it may be unused by forward()"
        if self.handle.family == "torchscript":
            hint = "TorchScript modules do not run Python hooks; use an alias such as 'logits'"
        return (
            f"capture point {point.name!r} (module {path!r}) did not run during the forward "
            f"pass; {hint}; pick a module that the forward pass calls"
        )


def capture(handle: ModelHandle, points: Iterable[str | CapturePoint] | str) -> Capture:
    """Capture the named points of a model during its forward passes.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    points : str, CapturePoint or iterable of them
        Aliases (``"backbone"``, ``"pre_logits"``, ``"logits"``), module paths (``"layer4"``)
        or points from :func:`resolve_points`.

    Returns
    -------
    Capture
        A context manager; inside its ``with`` block, ``tap.run(x)`` returns
        ``{point name: raw value}``. On exit the hooks are removed and every module's
        ``training`` flag is restored, also when the block raises.

    Raises
    ------
    CaptureError
        When a name is not a capture point of the model (before anything is run).

    Examples
    --------
    >>> with capture(handle, ["layer4"]) as tap:  # doctest: +SKIP
    ...     feats = tap.run(batch)["layer4"]
    """
    return Capture(handle, points)
