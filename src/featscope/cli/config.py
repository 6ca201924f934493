"""Flags from a TOML config file and ``--cfg-options key=value`` overrides.

Precedence, lowest first: the subcommand's defaults, the ``--config`` file, flags given on the
command line, then ``--cfg-options``. Values are parsed as TOML values, so ``perplexity=50``,
``legend=true``, ``class_idx=[0, 3, 5]`` and ``model="timm:resnet50"`` all work; a value that is
not valid TOML is taken as a plain string (``model=timm:resnet50``).

Every value is checked against its flag exactly as the command line would check it, and a bad
one is a :class:`~featscope.errors.ParameterError` naming the key (never a traceback later on):

- on/off flags (``legend``, ``html``, ``overlaid``) take ``true`` or ``false``;
- flags that take one value take one value (a list or a table is refused), converted by the
  flag's own type (``dpi=abc`` is refused) and checked against its choices;
- flags that take several values take a list; a single value is a list of one
  (``format=pdf`` means ``format=["pdf"]``), and a fixed count (``arrangement=[2, 3]``) is checked;
- text flags (``model``, ``work_dir``) take a string; a bare number or date written on
  ``--cfg-options`` keeps the text as typed (``work_dir=2024``); in a config file, quote it.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is tomli, adopted into the standard library in 3.11
    import tomli as tomllib

from featscope._bounded import read_bounded_text
from featscope.errors import ParameterError

__all__ = ["apply_cfg_options", "load_config", "parse_cfg_options"]


def _known_keys(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Map every accepted key spelling to its dest.

    A key is the dest (``max_num_class``, ``max-num-class``) or, where the dest is named after
    an option group's field, a long flag's own name (``format`` for ``formats``, ``vis_stage``
    for ``points``, ``quiet`` for ``progress``): config files written for the flags keep
    working. A dest wins over a flag name that spells another dest.
    """
    actions = [a for a in parser._actions if a.dest not in ("help", "config", "cfg_options")]
    keys = {}
    for action in actions:  # argparse has no public listing of actions
        keys[action.dest] = action.dest
        keys[action.dest.replace("_", "-")] = action.dest
    for action in actions:
        for flag in action.option_strings:
            if flag.startswith("--"):
                keys.setdefault(flag[2:], action.dest)
                keys.setdefault(flag[2:].replace("-", "_"), action.dest)
    return keys


def _key_value(action: argparse.Action, key: str, value: Any) -> Any:
    """Return ``value`` for the dest: a store_false switch named by its flag is inverted.

    ``quiet = true`` (flag ``--quiet``, dest ``progress``) means ``progress = false``, as on the
    command line; ``html = false`` names the dest itself.
    """
    by_flag = key.replace("-", "_") != action.dest
    if by_flag and action.nargs == 0 and action.const is False and isinstance(value, bool):
        return not value
    return value


def _resolve_key(key: str, known: dict[str, str], origin: str) -> str:
    if key not in known:
        import difflib

        close = difflib.get_close_matches(key, list(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ParameterError(f"unknown option {key!r} in {origin}{hint}")
    return known[key]


def load_config(path: str | Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Read a TOML config file into ``{dest: value}`` for ``parser``.

    Parameters
    ----------
    path : str or Path
        The TOML file. Keys are flag names with ``_`` or ``-`` (``max_num_class``); a table
        named after the subcommand (``[tsne]``) may hold them instead.
    parser : argparse.ArgumentParser
        The subcommand's parser, used to check the keys.

    Returns
    -------
    dict
        Values by argparse ``dest``.

    Raises
    ------
    ParameterError
        When the file cannot be read, is not valid TOML, or names an unknown option.
    """
    path = Path(path)
    # a regular file of bounded size: /dev/zero or a FIFO would be read without end
    text = read_bounded_text(path, f"--config {str(path)!r}", error=ParameterError)
    try:
        table = tomllib.loads(text)
    except RecursionError:
        raise ParameterError(
            f"--config {str(path)!r} is nested too deeply to be a featscope config; write "
            "flat keys (perplexity = 50) or one [tsne] table"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(
            f"--config {str(path)!r} is not valid TOML: {_one_line(exc)}; fix the file "
            '(e.g. perplexity = 50, model = "timm:resnet50")'
        ) from exc
    command = parser.prog.split()[-1]
    if isinstance(table.get(command), dict):
        from featscope.cli import COMMANDS

        # other subcommands' tables may share the file; anything else beside [command] would
        # be dropped without a word (a typo, or a key meant for the table)
        stray = [
            k for k in table if k != command and not (k in COMMANDS and isinstance(table[k], dict))
        ]
        if stray:
            raise ParameterError(
                f"--config {str(path)!r} has a [{command}] table and top-level keys "
                f"({', '.join(stray[:5])}) that would be ignored; move them into [{command}] "
                "(or drop the table and keep every key at the top)"
            )
        table = table[command]
    known = _known_keys(parser)
    actions = _actions_by_dest(parser)
    origin = f"--config {path}"
    values = {}
    for key, value in table.items():
        dest = _resolve_key(key, known, origin)
        coerced = coerce_value(actions[dest], value, key, origin)
        values[dest] = _key_value(actions[dest], key, coerced)
    return values


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ParameterError(
            f"--cfg-options value {_short(text)} is nested too deeply; no option takes more "
            "than a flat list (class_idx=[0, 3])"
        ) from None


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions}


def _flag(action: argparse.Action, key: str) -> str:
    return f"`{action.option_strings[-1] if action.option_strings else key}`"


def _is_switch(action: argparse.Action) -> bool:
    """Whether ``action`` is an on/off flag (store_true/false, --x/--no-x)."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return True
    return action.nargs == 0 and isinstance(action.const, bool)


def _is_list(action: argparse.Action) -> bool:
    if isinstance(action, (argparse._AppendAction, argparse._ExtendAction)):
        return True
    return action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1)


def coerce_value(
    action: argparse.Action, value: Any, key: str, origin: str, raw: str | None = None
) -> Any:
    """Check and convert a config or ``--cfg-options`` value as the command line would.

    Parameters
    ----------
    action : argparse.Action
        The flag the key names.
    value : Any
        The TOML value.
    key : str
        The key as written (named in errors).
    origin : str
        ``"--cfg-options"`` or ``"--config FILE"`` (named in errors).
    raw : str, optional
        The text as typed on ``--cfg-options``; a string flag given a number or a date keeps it.

    Returns
    -------
    Any
        The value the parsed command line would hold.

    Raises
    ------
    ParameterError
        When the value has the wrong kind (a table, a list for a one-value flag, a non-boolean for
        an on/off flag), the flag's type rejects it, or it is not one of the flag's choices.
    """
    where = f"{_flag(action, key)} in {origin}"
    if isinstance(value, dict):
        raise ParameterError(
            f"{where} is a table ({_short(value)}); give it a value such as "
            f"{_example(action)} (a [table] in a config file is read only when it is named "
            "after the subcommand)"
        )
    if _is_switch(action):
        if not isinstance(value, bool):
            raise ParameterError(
                f"{where} is an on/off flag; got {_short(value)}; use true or false"
            )
        return value
    if _is_list(action):
        items = value if isinstance(value, list) else [value]
        if action.nargs == "+" and not items:
            raise ParameterError(
                f"{where} needs at least one value; got []; e.g. {_example(action)}"
            )
        if isinstance(action.nargs, int) and len(items) != action.nargs:
            raise ParameterError(
                f"{where} takes {action.nargs} values; got {len(items)} ({_short(value)}); "
                f"e.g. {_example(action)}"
            )
        return [_scalar(action, item, where, None) for item in items]
    if isinstance(value, list):
        raise ParameterError(
            f"{where} takes one value; got the list {_short(value)}; e.g. {_example(action)}"
        )
    return _scalar(action, value, where, raw)


def _scalar(action: argparse.Action, value: Any, where: str, raw: str | None) -> Any:
    if isinstance(value, (list, dict)):
        raise ParameterError(
            f"{where} takes plain values; got {_short(value)} inside a list; "
            f"e.g. {_example(action)}"
        )
    convert = action.type
    if isinstance(value, (datetime.date, datetime.time)):
        if raw is None:
            raise ParameterError(
                f"{where} got the TOML date/time {_short(value)}; quote it if it is text"
            )
        value = raw
    if convert is None:
        if not isinstance(value, str):
            if isinstance(value, bool) or raw is None:
                raise ParameterError(
                    f'{where} takes text; got {_short(value)}; quote it ("{value}")'
                )
            value = raw  # work_dir=2024 on the command line: the text as typed
    elif isinstance(value, bool):
        raise ParameterError(f"{where} takes a {_type_name(convert)}; got {_short(value)}")
    else:
        text = value if isinstance(value, str) else raw if raw is not None else repr(value)
        if isinstance(value, float) and convert is int and value.is_integer():
            text = str(int(value))  # n_iter = 500.0 in a file
        elif isinstance(value, float) and not math.isfinite(value) and convert is float:
            text = str(value)  # tomllib gives nan/inf; float("nan") reads them back
        try:
            value = convert(text)
        except (ValueError, TypeError, ArithmeticError, argparse.ArgumentTypeError) as exc:
            raise ParameterError(
                f"{where} takes a {_type_name(convert)}; got {_short(value)} ({_one_line(exc)})"
            ) from exc
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise ParameterError(f"{where} must be one of {choices}; got {_short(value)}")
    return value


def _type_name(convert: Any) -> str:
    names = {int: "whole number", float: "number"}
    return names.get(convert, getattr(convert, "__name__", "value").strip("_").replace("_", " "))


def _sample_item(actions: dict[str, argparse.Action]) -> str:
    """Return one valid ``key=value`` of this subcommand's own options, shown in errors."""
    for dest, action in actions.items():
        if dest not in ("help", "config", "cfg_options") and not _is_switch(action):
            return f"{dest}={_example(action)}"
    return "key=value"


def _example(action: argparse.Action) -> str:
    """Return a valid TOML value for ``action``, shown in errors."""
    if action.choices is not None:
        first = next(iter(action.choices))
        sample = f'"{first}"' if isinstance(first, str) else str(first)
    elif action.type is int:
        sample = "1"
    elif action.type is float:
        sample = "0.5"
    else:
        sample = '"text"'
    if _is_list(action):
        count = action.nargs if isinstance(action.nargs, int) else 1
        return "[" + ", ".join([sample] * count) + "]"
    return sample


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_cfg_options(items: Sequence[str] | None, parser: argparse.ArgumentParser) -> dict:
    """Parse ``["key=value", ...]`` into ``{dest: value}``.

    Parameters
    ----------
    items : sequence of str or None
        The ``--cfg-options`` arguments.
    parser : argparse.ArgumentParser
        The subcommand's parser, used to check the keys.

    Returns
    -------
    dict
        Values by argparse ``dest``.

    Raises
    ------
    ParameterError
        For an item without ``=``, an unknown key, or a value its flag refuses (see the module
        docstring).
    """
    known = _known_keys(parser)
    actions = _actions_by_dest(parser)
    values = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(
                f"--cfg-options takes key=value pairs; got {_short(item)} "
                f"(e.g. {_sample_item(actions)})"
            )
        dest = _resolve_key(key.strip(), known, "--cfg-options")
        raw = text.strip()
        coerced = coerce_value(
            actions[dest], _parse_value(raw), key.strip(), "--cfg-options", raw=raw
        )
        values[dest] = _key_value(actions[dest], key.strip(), coerced)
    return values


def apply_cfg_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with config-file defaults and ``--cfg-options`` overrides applied.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand parser that has ``--config`` and ``--cfg-options``.
    argv : sequence of str
        The subcommand's arguments.

    Returns
    -------
    argparse.Namespace
        The final options.
    """
    first = parser.parse_args(argv)
    if getattr(first, "config", None):
        parser.set_defaults(**load_config(first.config, parser))
        first = parser.parse_args(argv)
    for dest, value in parse_cfg_options(getattr(first, "cfg_options", None), parser).items():
        setattr(first, dest, value)
    return first
