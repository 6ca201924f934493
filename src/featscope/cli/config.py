"""Flags from a TOML config file and ``--cfg-options key=value`` overrides.

Precedence, lowest first: the subcommand's defaults, the ``--config`` file, flags given on the
command line, then ``--cfg-options``. Values are parsed as TOML values, so ``perplexity=50``,
``legend=true``, ``class_idx=[0, 3, 5]`` and ``model="timm:resnet50"`` all work; a value that is
not valid TOML is taken as a plain string (``model=timm:resnet50``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomllib

from featscope.errors import ParameterError

__all__ = ["apply_cfg_options", "load_config", "parse_cfg_options"]


def _known_keys(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Map every accepted key spelling (``max_num_class``, ``max-num-class``) to its dest."""
    keys = {}
    for action in parser._actions:  # argparse has no public listing of actions
        if action.dest in ("help", "config", "cfg_options"):
            continue
        keys[action.dest] = action.dest
        keys[action.dest.replace("_", "-")] = action.dest
    return keys


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
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParameterError(f"cannot read --config {str(path)!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"--config {str(path)!r} is not valid TOML: {exc}") from exc
    command = parser.prog.split()[-1]
    if isinstance(table.get(command), dict):
        table = table[command]
    known = _known_keys(parser)
    return {_resolve_key(k, known, f"--config {path}"): v for k, v in table.items()}


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


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
        For an item without ``=`` or an unknown key.
    """
    known = _known_keys(parser)
    values = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ParameterError(
                f"--cfg-options takes key=value pairs; got {item!r} (e.g. perplexity=50)"
            )
        values[_resolve_key(key.strip(), known, "--cfg-options")] = _parse_value(text.strip())
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
