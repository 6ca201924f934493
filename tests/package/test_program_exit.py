"""The ``featscope`` program ends without module teardown, after the exit handlers ran."""

from __future__ import annotations

import json
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


def test_a_profiler_around_the_program_still_writes_its_output(tmp_path):
    out = tmp_path / "featscope.prof"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "featscope", "--version"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stdout.startswith("featscope ")
    assert out.is_file()
    assert out.stat().st_size > 0


def test_a_real_command_writes_its_run_folder_before_the_quick_exit(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [
            sys.executable, "-m", "featscope", "tsne", "--max-num-samples", "5", "--no-html",
            "--method", "pca", "--work-dir", str(tmp_path), "--quiet",
        ],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_dir,) = tmp_path.glob("tsne_*")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["finished"]
    assert "results written to" in done.stdout
