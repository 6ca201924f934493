"""The `featscope` entry point: usage, version, unknown commands."""

from __future__ import annotations

import featscope
from featscope.cli import main


def test_no_arguments_prints_usage_on_stderr_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "featmap-diff  where two models' feature maps differ" in captured.err


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "commands:" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"featscope {featscope.__version__}"


def test_unknown_command(capsys):
    assert main(["tsen"]) == 2
    assert "error: unknown command 'tsen'" in capsys.readouterr().err
