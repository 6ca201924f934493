"""Run the ``featscope`` command in a real subprocess and interrupt it (shared by the tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The command line, as the installed ``featscope`` script runs it.
MAIN = "from featscope.cli import run_and_exit; run_and_exit()"


#: Prepended to MAIN: the run stops just before its manifest until a signal ends it.
HOLD_BEFORE_MANIFEST = """
import pathlib, time
import featscope.sinks.run as _run
def _hold(self):
    pathlib.Path("HELD").touch()
    while True:
        time.sleep(0.05)
_run.LocalRun._manifest = _hold
"""

#: A ``py:`` model module: the demo CNN, whose first forward pass waits for a signal.
HOLD_IN_FORWARD = """
import pathlib, time
from featscope.models import load_model

def build():
    handle = load_model("demo:digits-cnn")
    def hold(module, args):
        pathlib.Path("HELD").touch()
        while True:
            time.sleep(0.05)
    handle.module.register_forward_pre_hook(hold)
    return handle
"""


def start(args: Sequence[str], cwd: Path, prelude: str = "") -> subprocess.Popen[str]:
    """Start ``featscope <args>`` in ``cwd``, offline and headless, with pipes for its output.

    ``cwd`` is on the module path (for ``py:`` models written there); ``prelude`` is Python code
    run before the command.
    """
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-c", prelude + "\n" + MAIN, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(
    proc: subprocess.Popen[str], ready: Callable[[], object], timeout: float = 90.0
) -> object:
    """Poll ``ready()`` until it returns something truthy; fail if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ready()
        if found:
            return found
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the run ended (status {proc.returncode}) first:\n{err[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    raise AssertionError(f"timed out after {timeout} s waiting for the run")


def partial_with_log(work_dir: Path, marker: str = "") -> Callable[[], Path | None]:
    """Return a probe for a ``.<name>.partial`` folder whose run.log contains ``marker``."""

    def probe() -> Path | None:
        if not work_dir.is_dir():
            return None
        for folder in work_dir.glob(".*.partial"):
            log = folder / "run.log"
            try:
                if marker in log.read_text(encoding="utf-8", errors="replace"):
                    return folder
            except OSError:
                continue
        return None

    return probe


def stop(proc: subprocess.Popen[str], signum: int, timeout: float = 60.0) -> tuple[int, str]:
    """Send ``signum`` and return the exit status and stderr."""
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"the run did not stop within {timeout} s of {signum}") from None
    return proc.returncode, err


def visible_entries(folder: Path) -> list[str]:
    """Names in ``folder`` a user (or a script globbing ``*``) would take for results."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def manifests(folder: Path) -> list[Path]:
    """Every ``manifest.json`` under ``folder``, hidden folders included."""
    return sorted(folder.rglob("manifest.json")) if folder.exists() else []
