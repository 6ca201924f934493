"""Property tests: any --cfg-options strings or config text parse or raise ParameterError."""

from __future__ import annotations

import argparse
import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featscope.cli import COMMANDS
from featscope.cli.config import load_config, parse_cfg_options
from featscope.errors import ParameterError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure here is a real regression
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PARSERS = {
    name: importlib.import_module(module).build_parser() for name, (module, _) in COMMANDS.items()
}

# values that are TOML of every kind, half-TOML, and plain text
_VALUES = st.one_of(
    st.sampled_from(
        [
            "1",
            "-3",
            "0.5",
            "1e400",
            "nan",
            "inf",
            "true",
            "false",
            '"text"',
            "'x'",
            "[1, 2]",
            "[]",
            "[[1]]",
            '["png", "svg"]',
            "{a = 1}",
            "1979-05-27",
            "07:32:00",
            "[1, 'a']",
            '"',
            "{",
            "",
        ]
    ),
    st.text(max_size=20),
)


def _keys(parser) -> list[str]:
    return sorted(
        a.dest for a in parser._actions if a.dest not in ("help", "config", "cfg_options")
    )


def _item_ok(action, value) -> bool:
    if isinstance(value, (list, dict, tuple)):
        return False
    if action.type in (int, float) and type(value) is not action.type:
        return False
    if action.type is None and not isinstance(value, str):
        return False
    return action.choices is None or value in action.choices


def _conforms(action, value) -> bool:
    """Whether ``value`` is what argparse itself could have stored for ``action``."""
    if action.nargs == 0:
        return isinstance(value, bool)
    if isinstance(action, (argparse._AppendAction, argparse._ExtendAction)) or action.nargs in (
        "+",
        "*",
    ):
        return isinstance(value, list) and all(_item_ok(action, v) for v in value)
    if isinstance(action.nargs, int):
        return (
            isinstance(value, list)
            and len(value) == action.nargs
            and all(_item_ok(action, v) for v in value)
        )
    return _item_ok(action, value)


def _parsed(call, parser) -> None:
    try:
        values = call()
    except ParameterError as exc:
        message = str(exc)
        assert "\n" not in message
    else:
        actions = {a.dest: a for a in parser._actions}
        for dest, value in values.items():
            assert _conforms(actions[dest], value), (dest, value)


@pytest.mark.parametrize("command", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_known_keys_with_any_value(command, data):
    parser = PARSERS[command]
    items = data.draw(
        st.lists(
            st.tuples(st.sampled_from(_keys(parser)), _VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
            max_size=4,
        )
    )
    _parsed(lambda: parse_cfg_options(items, parser), parser)


@FUZZ
@given(items=st.lists(st.text(max_size=30), max_size=4))
def test_any_strings(items):
    _parsed(lambda: parse_cfg_options(items, PARSERS["tsne"]), PARSERS["tsne"])


@pytest.mark.parametrize("command", ["tsne", "featmap-diff"])
@FUZZ
@given(data=st.data())
def test_any_config_file(tmp_path, command, data):
    parser = PARSERS[command]
    line = st.tuples(st.sampled_from([*_keys(parser), "nope", f"[{command}]"]), _VALUES).map(
        lambda kv: kv[0] if kv[0].startswith("[") else f"{kv[0]} = {kv[1]}"
    )
    text = "\n".join(data.draw(st.lists(line, max_size=5)))
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _parsed(lambda: load_config(path, parser), parser)
