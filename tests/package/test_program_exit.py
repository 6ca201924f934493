"""The ``featscope`` program ends without module teardown, after the exit handlers ran."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _program(tmp_path, argv):
    marker = tmp_path / "handler-ran"
    code = textwrap.dedent(f"""
        import atexit, sys
        atexit.register(lambda: open({str(marker)!r}, "w").write("yes"))
        sys.argv = ["featscope", *{argv!r}]
        from featscope.cli import run_and_exit
        run_and_exit()
        print("not reached")
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    return done, marker


def test_exit_handlers_run_and_the_output_is_flushed(tmp_path):
    done, marker = _program(tmp_path, ["--version"])
    assert done.returncode == 0
    assert done.stdout.startswith("featscope ")
    assert "not reached" not in done.stdout
    assert marker.read_text() == "yes"


def test_the_exit_status_is_mains(tmp_path):
    done, marker = _program(tmp_path, ["no-such-command"])
    assert done.returncode == 2
    assert "unknown command 'no-such-command'" in done.stderr
    assert marker.read_text() == "yes"
