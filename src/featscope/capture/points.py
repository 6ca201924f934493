"""Capture points: turn the names a user gives into references the hooks can use.

A name is either an alias from :data:`featscope.models.handle.ALIASES` that the model's adapter
resolved (``backbone``, ``neck``, ``pre_logits``, ``logits``) or a module path from
``named_modules()`` (``layer3``, ``blocks.11``; ``""`` is the whole model). Names are checked
here, before any image is read, so a typo costs nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from featscope.errors import CaptureError, ParameterError
from featscope.models.handle import ALIASES, ModelHandle, PointRef
from featscope.models.points import module_table

__all__ = ["CapturePoint", "module_table", "resolve_points"]

_NEAREST = 5


@dataclass(frozen=True)
class CapturePoint:
    """One named place in the model whose value is captured.

    Attributes
    ----------
    name : str
        The name the user asked for; features are stored under it (``"layer4"``,
        ``"pre_logits"``, ``"neck.0"``).
    ref : PointRef
        Where the value is read: a module output or input, or the extras of the model's forward.
    alias : str or None
        The alias the point was resolved from, if any; for ``PointRef(None)`` points it is the
        key of the value in the extras returned by :attr:`ModelHandle.forward`.
    """

    name: str
    ref: PointRef
    alias: str | None = None

    @property
    def extras_key(self) -> str:
        """Key of the value in the forward extras (for ``ref.module is None``)."""
        return self.alias if self.alias is not None else self.name


def _unknown_point_error(handle: ModelHandle, name: str, candidates: list[str]) -> CaptureError:
    nearest = difflib.get_close_matches(name, candidates, n=_NEAREST, cutoff=0.3)
    if not nearest:
        nearest = candidates[:_NEAREST]
    aliases = ", ".join(handle.aliases) or "none"
    return CaptureError(
        f"capture point {name!r} is not in this model ({handle.spec}); "
        f"nearest: {', '.join(nearest) or 'none'}; aliases this model has: {aliases}; "
        f"list all with `featscope points --model {handle.spec}`"
    )


def _missing_alias_error(handle: ModelHandle, name: str) -> CaptureError:
    have = ", ".join(handle.aliases) or "none"
    # "neck is not in the model": wrapped models keep it one level down (architecture.neck)
    nested = [path for path in module_table(handle.module) if path.endswith(f".{name}")]
    hint = f"; modules named like it: {', '.join(nested[:5])}" if nested else ""
    return CaptureError(
        f"capture point {name!r} is an alias this model ({handle.spec}, family "
        f"{handle.family!r}) does not provide; aliases this model has: {have}{hint}; pass one "
        f"of them or a module path (list all with `featscope points --model {handle.spec}`)"
    )


def _element_of_alias(handle: ModelHandle, name: str) -> CapturePoint | None:
    # "neck.0" / "backbone.last_hidden_state": one element of an alias' tuple or dict output,
    # the same names that tuple outputs get in results, so a result's point can be asked again
    head, sep, tail = name.partition(".")
    if not sep or not tail or head not in handle.aliases or "." in tail:
        return None
    ref = handle.aliases[head]
    if ref.select is not None:
        return None
    select: str | int = int(tail) if tail.isdigit() else tail
    return CapturePoint(name=name, ref=replace(ref, select=select), alias=head)


def resolve_points(handle: ModelHandle, names: str | Iterable[str]) -> list[CapturePoint]:
    """Resolve capture-point names against a model, before any image is read.

    Parameters
    ----------
    handle : ModelHandle
        The loaded model.
    names : str or iterable of str
        Aliases the model supports (``"backbone"``, ``"pre_logits"``, ``"logits"``), module paths
        from ``named_modules()`` (``"layer4"``; ``""`` is the whole model's output), or
        ``"<alias>.<i>"`` / ``"<alias>.<key>"`` for one element of an alias' tuple/dict output.
        Duplicates are dropped, keeping the first.

    Returns
    -------
    list of CapturePoint
        One per distinct name, in the order given.

    Raises
    ------
    ParameterError
        When ``names`` is empty or holds something other than strings.
    CaptureError
        When a name is neither an alias of this model nor one of its module paths; the message
        lists the nearest valid names and the model's aliases.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ParameterError(
            "`points` is empty; pass at least one capture point, e.g. 'backbone' or a module "
            f"path (list them with `featscope points --model {handle.spec}`)"
        )
    table: dict[str, Any] | None = None
    points: list[CapturePoint] = []
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise ParameterError(
                f"capture point names must be strings; got {name!r} ({type(name).__name__}); "
                "pass names such as 'layer4' or 'pre_logits'"
            )
        if name in seen:
            continue
        seen.add(name)
        if name in handle.aliases:
            points.append(CapturePoint(name=name, ref=handle.aliases[name], alias=name))
            continue
        if table is None:
            table = module_table(handle.module)
        if name in table:
            if handle.family == "torchscript":
                # torch refuses Python hooks on ScriptModules (register_forward_hook raises)
                raise CaptureError(
                    f"capture point {name!r} is a module inside the TorchScript model "
                    f"{handle.spec}, and TorchScript modules cannot be hooked; use "
                    f"{', '.join(repr(a) for a in handle.aliases)}, or script a model whose "
                    "forward returns the features you want"
                )
            points.append(CapturePoint(name=name, ref=PointRef(name)))
            continue
        element = _element_of_alias(handle, name)
        if element is not None:
            points.append(element)
            continue
        if name in ALIASES:
            raise _missing_alias_error(handle, name)
        raise _unknown_point_error(handle, name, handle.point_names())
    return points
