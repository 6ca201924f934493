"""User models: ``py:package.module:factory`` specs, zero-arg callables and ``nn.Module`` objects.

**A ``py:`` spec executes code**: the named module is imported (running its top-level code) and
the factory is called. Only name modules you trust, exactly as with ``python -c "import ..."``.

The factory takes no arguments and returns either a ready :class:`ModelHandle` (returned as is,
for models that need their own aliases or preprocessing) or an ``nn.Module``, wrapped with
:func:`wrap_module`: timm models keep timm's aliases and preprocessing, anything else gets the
aliases of :func:`featscope.models.generic.resolve_generic` and ImageNet preprocessing.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from featscope.errors import ModelSpecError
from featscope.models.generic import resolve_generic, with_model_channels
from featscope.models.handle import ModelHandle
from featscope.models.preprocessing import ASSUMED, Preprocessing
from featscope.models.spec import ModelSpec

__all__ = ["from_callable", "load_factory", "wrap_module"]


def import_attribute(spec: ModelSpec, what: str = "model") -> Any:
    """Import ``package.module`` of a ``py:`` spec and return the attribute it names.

    Parameters
    ----------
    spec : ModelSpec
        A parsed ``py:`` spec (``py:package.module:name``, ``name`` may be dotted).
    what : str, default "model"
        What the spec names, for the error messages (``"model"``, ``"transform"``).

    Returns
    -------
    object
        The attribute, not called.

    Raises
    ------
    ModelSpecError
        When the module cannot be imported or has no such attribute (with close names).
    """
    module_name, attribute = spec.factory_path()
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(
            f"{what} spec {spec.raw!r}: cannot import module {module_name!r} ({exc}); put its "
            "folder on PYTHONPATH or install its package"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "check the name"
            raise ModelSpecError(
                f"{what} spec {spec.raw!r}: {getattr(target, '__name__', module_name)!r} has no "
                f"attribute {part!r}; {hint}"
            )
        target = getattr(target, part)
    return target


def load_factory(spec: ModelSpec) -> ModelHandle:
    """Import ``package.module``, call ``factory()`` and wrap what it returns.

    Parameters
    ----------
    spec : ModelSpec
        A parsed ``py:`` spec.

    Returns
    -------
    ModelHandle
        The factory's handle, or its module wrapped by :func:`wrap_module`.

    Raises
    ------
    ModelSpecError
        When the module cannot be imported, has no such attribute, the attribute is not a
        zero-argument callable, or it returns neither an ``nn.Module`` nor a ``ModelHandle``.
    """
    return from_callable(import_attribute(spec), spec=spec.raw)


def from_callable(factory: Callable[[], Any], *, spec: str | None = None) -> ModelHandle:
    """Call a zero-argument factory and wrap its result.

    Parameters
    ----------
    factory : callable
        Takes no arguments; returns an ``nn.Module`` or a :class:`ModelHandle`.
    spec : str, optional
        The spec to record; defaults to ``"py:<module>:<qualname>"`` of the factory.

    Returns
    -------
    ModelHandle
        The returned handle as is, or the module wrapped by :func:`wrap_module`.

    Raises
    ------
    ModelSpecError
        When ``factory`` is not callable, needs arguments, or returns something else.
    """
    from torch import nn

    spec = spec or _qualified(factory)
    if not callable(factory):
        raise ModelSpecError(
            f"model {spec!r} is a {type(factory).__name__}, not a callable; name a function "
            "that takes no arguments and returns an nn.Module"
        )
    required = _required_parameters(factory)
    if required:
        raise ModelSpecError(
            f"model factory {spec!r} needs argument(s) {', '.join(required)}; pass a function "
            "that takes no arguments (e.g. functools.partial or a small wrapper def)"
        )
    result = factory()
    if isinstance(result, ModelHandle):
        return result
    if isinstance(result, nn.Module):
        return wrap_module(result, spec=spec)
    raise ModelSpecError(
        f"model factory {spec!r} returned a {type(result).__name__}; it must return a "
        "torch.nn.Module or a featscope ModelHandle"
    )


def wrap_module(module: Any, *, spec: str | None = None) -> ModelHandle:
    """Wrap a plain ``nn.Module`` in a handle.

    Parameters
    ----------
    module : torch.nn.Module
        Any model. A timm model keeps timm's aliases and data config.
    spec : str, optional
        The name to record; defaults to the module's qualified class name.

    Returns
    -------
    ModelHandle
        ``family="timm"`` for timm models, else ``family="factory"`` with generic aliases and
        ImageNet preprocessing (224, crop 0.875) for the input channels of its first
        convolution.
    """
    from featscope.models.timm_adapter import build_timm_handle, is_timm_model

    spec = spec or f"{type(module).__module__}.{type(module).__qualname__}"
    if is_timm_model(module):
        return build_timm_handle(module, spec)
    layout = resolve_generic(module)
    return ModelHandle(
        module=module,
        spec=spec,
        family="factory",
        preprocess=with_model_channels(Preprocessing().with_sources(ASSUMED), module),
        aliases=layout.aliases,
        num_prefix_tokens=layout.num_prefix_tokens,
        patch_grid=layout.patch_grid,
    )


def _required_parameters(factory: Callable[..., Any]) -> list[str]:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return []
    return [
        name
        for name, p in signature.parameters.items()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _qualified(factory: Any) -> str:
    module = getattr(factory, "__module__", None) or "?"
    name = getattr(factory, "__qualname__", None) or type(factory).__name__
    return f"py:{module}:{name}"
