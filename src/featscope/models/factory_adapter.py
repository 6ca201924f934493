"""User models: ``py:package.module:factory`` specs, zero-arg callables and ``nn.Module`` objects.

**A ``py:`` spec executes code**: the named module is imported (running its top-level code) and
the factory is called. Only name modules you trust, exactly as with ``python -c "import ..."``.

One importer for py: specs (models, transforms and data): :func:`import_attribute`. It finds a
module in the current folder as ``python -m`` does (the ``featscope`` console script does not
put the current folder on ``sys.path``), and imports a file named by path
(``py:path/to/nets.py:build``) with its folder on ``sys.path``, as ``python path/to/nets.py``
does, so that the file's own sibling imports work.

The factory takes no arguments and returns either a ready :class:`ModelHandle` (returned as is,
for models that need their own aliases or preprocessing) or an ``nn.Module``, wrapped with
:func:`wrap_module`: timm models keep timm's aliases and preprocessing, anything else gets the
aliases of :func:`featscope.models.generic.resolve_generic` and ImageNet preprocessing.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from featscope.errors import FeatscopeError, ModelSpecError
from featscope.models.generic import resolve_generic, with_model_channels
from featscope.models.handle import ModelHandle
from featscope.models.preprocessing import ASSUMED, Preprocessing
from featscope.models.spec import ModelSpec

__all__ = [
    "from_callable",
    "import_attribute",
    "load_factory",
    "required_parameters",
    "wrap_module",
]


def import_attribute(
    spec: ModelSpec, what: str = "model", error: type[FeatscopeError] = ModelSpecError
) -> Any:
    """Import the module (or file) of a ``py:`` spec and return the attribute it names.

    Parameters
    ----------
    spec : ModelSpec
        A parsed ``py:`` spec: ``py:package.module:name`` or ``py:path/to/file.py:name``
        (``name`` may be dotted).
    what : str, default "model"
        What the spec names, for the error messages (``"model"``, ``"transform"``, ``"data"``).
    error : type, default ModelSpecError
        The error to raise (data specs raise :class:`~featscope.errors.DataError`).

    Returns
    -------
    object
        The attribute, not called.

    Raises
    ------
    ModelSpecError
        (or ``error``) When the module cannot be imported or has no such attribute (with close
        names).
    """
    module_name, attribute = spec.factory_path()
    try:
        if _is_file(module_name):
            target: Any = _import_file(Path(module_name))
        else:
            target = _import_module(module_name)
    except ImportError as exc:
        where = "file" if module_name.lower().endswith(".py") else "module"
        raise error(
            f"{what} spec {spec.raw!r}: cannot import {where} {module_name!r} ({exc}); run from "
            "its folder, put the folder on PYTHONPATH, install its package, or give the file's "
            "path (py:path/to/file.py:name)"
        ) from exc
    except Exception as exc:  # the module's own top-level code failed
        raise error(
            f"{what} spec {spec.raw!r}: importing {module_name!r} raised {type(exc).__name__}: "
            f"{exc}; fix that module"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "check the name"
            raise error(
                f"{what} spec {spec.raw!r}: {getattr(target, '__name__', module_name)!r} has no "
                f"attribute {part!r}; {hint}"
            )
        target = getattr(target, part)
    return target


def _is_file(module_name: str) -> bool:
    """Tell a file path (ends in ``.py`` and exists, or holds a separator) from a module."""
    if not module_name.lower().endswith(".py"):
        return False
    return os.path.isfile(module_name) or any(c in module_name for c in "/\\:")


def _on_path(folder: str) -> bool:
    here = os.path.realpath(folder)
    return any(os.path.realpath(entry or os.curdir) == here for entry in sys.path)


def _import_module(name: str) -> ModuleType:
    """Import ``name``, finding it in the current folder as ``python -m`` does.

    The folder goes first for this import only (a local ``nets.py`` is the one meant), then
    stays at the end of ``sys.path``: the module's later imports of its siblings still work,
    and a local folder named like an installed package (``datasets/``) shadows nothing after.
    """
    cwd = os.getcwd()
    top = name.partition(".")[0]
    local = os.path.isfile(os.path.join(cwd, f"{top}.py")) or os.path.isdir(os.path.join(cwd, top))
    if _on_path(cwd) or not local or top in sys.modules:
        return importlib.import_module(name)
    sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(cwd)
        sys.path.append(cwd)


def _import_file(path: Path) -> ModuleType:
    """Import a ``.py`` file as ``python path/to/file.py`` would see it (its folder on the path).

    The module is registered under its file name when that name is free (so that pickling its
    objects for data-loader workers works), else under a name made unique by the path.
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ImportError(f"no such file: {path}")
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if os.path.realpath(getattr(existing, "__file__", "") or "") == str(path):
            return existing
        name = f"{name}_{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"
        if name in sys.modules:
            return sys.modules[name]
    if not _on_path(str(path.parent)):
        sys.path.append(str(path.parent))
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


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
    required = required_parameters(factory)
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


def required_parameters(factory: Callable[..., Any]) -> list[str]:
    """Return the names of the parameters ``factory`` cannot be called without.

    Parameters
    ----------
    factory : callable
        A function or class.

    Returns
    -------
    list of str
        Parameters without a default (none for builtins without a signature).
    """
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
