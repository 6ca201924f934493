"""Option groups on the command line: one argparse group per dataclass, and back.

Each field of an option group (:mod:`featscope.options`) declares its flag beside its default.
:func:`add_group` turns those declarations into an argparse group whose ``dest`` names are the
field names, so ``--config`` files and ``--cfg-options`` (which key on ``dest``) fill the same
fields; :func:`group_from_args` builds the frozen dataclass from the parsed namespace, where the
group checks every value once.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["add_group", "group_from_args"]

G = TypeVar("G")


def _selected(group: type, only: Iterable[str] | None) -> list[dataclasses.Field]:
    fields = [f for f in dataclasses.fields(group) if f.metadata.get("flags")]
    if only is None:
        return fields
    wanted = list(only)
    names = {f.name for f in fields}
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ValueError(f"{group.__name__} has no flag for {unknown}")
    return [f for f in fields if f.name in wanted]


def add_group(
    parser: argparse.ArgumentParser,
    group: type,
    title: str,
    *,
    only: Iterable[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    aliases: Mapping[str, Iterable[str]] | None = None,
    helps: Mapping[str, str] | None = None,
) -> argparse._ArgumentGroup:
    """Add the flags of an option group to a subcommand's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    group : type
        An option-group dataclass from :mod:`featscope.options`.
    title : str
        Heading of the group in ``--help``.
    only : iterable of str, optional
        The fields to offer (default: every field that declares a flag).
    defaults : Mapping, optional
        Field name -> the subcommand's own default, where it differs from the group's.
    aliases : Mapping, optional
        Field name -> further spellings of its flag (``--vis-stage`` for users of the reference
        tools); they are accepted and listed after the field's own flag.
    helps : Mapping, optional
        Field name -> this subcommand's own words for the flag, where the group's are too
        general (recon's ``--out`` says how several figures are named).

    Returns
    -------
    argparse._ArgumentGroup
        The group, for the subcommand to add its own flags to.
    """
    defaults = dict(defaults or {})
    aliases = dict(aliases or {})
    helps = dict(helps or {})
    arg_group = parser.add_argument_group(title)
    for f in _selected(group, only):
        meta = f.metadata
        kwargs = dict(meta["argparse"])
        if f.name in defaults:
            default = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()  # type: ignore[misc]
        if isinstance(default, tuple):
            default = list(default)
        if default is not None and not isinstance(default, (str, int, float, bool, list)):
            default = str(default)  # a Path: shown as typed
        action = kwargs.get("action")
        if action == "store_false":
            default = True if default is None else default
        arg_group.add_argument(
            *meta["flags"],
            *aliases.get(f.name, ()),
            dest=f.name,
            default=default,
            help=helps.get(f.name, meta["help"]),
            **kwargs,
        )
    return arg_group


def group_from_args(group: type[G], args: argparse.Namespace, **overrides: Any) -> G:
    """Build an option group from parsed flags.

    Parameters
    ----------
    group : type
        An option-group dataclass.
    args : argparse.Namespace
        The parsed namespace; fields whose flag the subcommand did not offer keep the group's
        default.
    **overrides
        Values that win over the namespace (computed by the subcommand).

    Returns
    -------
    object
        The frozen option group, its values checked.
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(group):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif f.metadata.get("flags") and hasattr(args, f.name):
            value = getattr(args, f.name)
            convert = f.metadata.get("from_arg")
            values[f.name] = convert(value) if convert is not None and value is not None else value
    return group(**values)
