"""The oldest Python that pyproject.toml declares runs featscope's pure-Python layers.

The full suite needs torch, whose builds on this machine exist for one Python only; so the floor
interpreter gets a light check: every module compiles, and the modules that need no third-party
package (the package entry, errors, option groups, the config reader with its TOML fallback)
import and work. `.ci/run` prepares that interpreter and points FEATSCOPE_FLOOR_PYTHON at it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _declared_floor() -> tuple[int, int]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'requires-python\s*=\s*">=\s*(\d+)\.(\d+)"', text)
    assert match, "pyproject.toml declares no requires-python floor"
    return int(match.group(1)), int(match.group(2))


def _floor_python() -> str:
    path = os.environ.get("FEATSCOPE_FLOOR_PYTHON")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("FEATSCOPE_FLOOR_PYTHON is not set; .ci/run prepares the floor interpreter")
    pytest.skip("no floor interpreter prepared (set FEATSCOPE_FLOOR_PYTHON; .ci/run does)")


def _run(python: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([python, *args], capture_output=True, text=True, env=env, timeout=120)


def test_floor_interpreter_is_the_declared_one():
    python = _floor_python()
    version = _run(python, "-c", "import sys; print(*sys.version_info[:2])").stdout.split()
    assert tuple(map(int, version)) == _declared_floor()
    assert _declared_floor() < sys.version_info[:2] or _declared_floor() == sys.version_info[:2]


def test_every_module_compiles_on_the_floor(tmp_path):
    python = _floor_python()
    result = _run(python, "-m", "compileall", "-q", "-d", "src", str(ROOT / "src" / "featscope"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_and_option_groups_work_on_the_floor(tmp_path):
    python = _floor_python()
    config = tmp_path / "run.toml"
    config.write_text("perplexity = 50\nclass_idx = [0, 2]\nlegend = true\n")
    code = (
        "import argparse, featscope\n"
        "from featscope.cli.config import load_config\n"
        "from featscope.cli.groups import add_group, group_from_args\n"
        "from featscope.options import Selection\n"
        "p = argparse.ArgumentParser()\n"
        "add_group(p, Selection, 'data')\n"
        "p.add_argument('--perplexity', type=float)\n"
        "p.add_argument('--legend', action='store_true')\n"
        f"print(sorted(load_config({str(config)!r}, p).items()))\n"
        "print(group_from_args(Selection, p.parse_args(['--seed', '3'])).seed)\n"
    )
    result = _run(python, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[('class_idx', [0, 2]), ('legend', True), ('perplexity', 50.0)]",
        "3",
    ]
