"""``--nproc`` workers stopped with their parent: one line, no traceback, nothing leaked.

torch's launcher replaces the command's signal handlers and raised its ``SignalException`` (a
traceback); the workers printed ``KeyboardInterrupt`` tracebacks and the resource tracker
warned about leaked semaphores. Now the launcher's exception becomes the command's one
``interrupted (...)`` line and each worker unwinds quietly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _subprocess_runs import HOLD_IN_FORWARD, MAIN, manifests, visible_entries, wait_until

MESSAGE = "interrupted ({}); the unfinished run was discarded, no result was written"


def _start(tmp_path, work):
    (tmp_path / "held_model.py").write_text(HOLD_IN_FORWARD, encoding="utf-8")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    }
    args = ["tsne", "--model", "py:held_model:build", "--nproc", "2", "--max-num-samples", "8",
            "--max-num-class", "2", "--batch-size", "4", "--work-dir", str(work)]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", MAIN, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job is
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("signum", "group"),
    [
        (signal.SIGTERM, False),  # kill <parent> / a scheduler's limit
        pytest.param(signal.SIGINT, True, marks=pytest.mark.slow),  # Ctrl-C: the whole group
    ],
    ids=["sigterm-parent", "sigint-group"],
)
def test_nproc_workers_stop_with_their_parent_quietly(tmp_path, signum, group):
    work = tmp_path / "work"
    proc = _start(tmp_path, work)
    wait_until(proc, lambda: (tmp_path / "HELD").exists(), timeout=180)
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("the run did not stop") from None
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert "leaked semaphore" not in err
    assert "SignalException" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == MESSAGE.format(signal.Signals(signum).name), err
    deadline = time.monotonic() + 30
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "a worker outlived its parent"
    assert manifests(work) == []
    assert visible_entries(work) == []
