"""A run killed at any point leaves no manifest and nothing that looks like a result.

Each test starts the real ``featscope`` command in a subprocess (the built-in default model and
data, tiny settings), waits until the run is at a given stage (its hidden ``.partial`` folder's
``run.log`` shows it), sends a signal and checks what is left on disk.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _subprocess_runs import (
    HOLD_BEFORE_MANIFEST,
    HOLD_IN_FORWARD,
    manifests,
    partial_with_log,
    start,
    stop,
    visible_entries,
    wait_until,
)

from featscope.sinks.folder import clean_stale_partials

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TSNE = ["tsne", "--max-num-samples", "3", "--no-html", "--quiet"]
MESSAGE = "interrupted ({}); the unfinished run was discarded, no result was written"


def _held_run(tmp_path: Path, where: str) -> tuple[subprocess.Popen[str], Path]:
    """Start a tsne run that stops (until a signal) at ``where``: "forward" or "manifest"."""
    work = tmp_path / "work"
    if where == "forward":  # extracting features, inside the run folder
        (tmp_path / "held_model.py").write_text(HOLD_IN_FORWARD, encoding="utf-8")
        proc = start([*TSNE, "--model", "py:held_model:build", "--work-dir", str(work)], tmp_path)
    else:  # everything written, the manifest next
        proc = start(
            [*TSNE, "--method", "pca", "--work-dir", str(work)], tmp_path, HOLD_BEFORE_MANIFEST
        )
    wait_until(proc, lambda: (tmp_path / "HELD").exists())
    return proc, work


def _assert_clean(work: Path, code: int, err: str, signum: int) -> None:
    assert code == 128 + signum, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == MESSAGE.format(signal.Signals(signum).name)
    assert manifests(work) == []
    assert visible_entries(work) == []
    assert list(work.glob(".*.partial")) == []  # removed, not left for a later run


@pytest.mark.parametrize(
    ("signum", "where"),
    [
        (signal.SIGINT, "forward"),  # Ctrl-C while extracting
        (signal.SIGTERM, "manifest"),  # kill / a scheduler's limit, the manifest next
        pytest.param(signal.SIGHUP, "forward", marks=pytest.mark.slow),  # terminal closed
    ],
    ids=["sigint-extracting", "sigterm-before-manifest", "sighup-extracting"],
)
def test_signal_removes_the_partial_folder_and_prints_one_line(tmp_path, signum, where):
    proc, work = _held_run(tmp_path, where)
    partial = partial_with_log(work)()
    assert partial is not None
    assert partial.is_dir()
    code, err = stop(proc, signum)
    _assert_clean(work, code, err, signum)


@pytest.mark.slow  # a subprocess run, ~10 s
def test_sigterm_as_the_run_folder_opens(tmp_path):
    work = tmp_path / "work"
    proc = start([*TSNE, "--method", "pca", "--work-dir", str(work)], tmp_path)
    wait_until(proc, partial_with_log(work, "run folder"))
    code, err = stop(proc, signal.SIGTERM)
    _assert_clean(work, code, err, signal.SIGTERM)


def test_sigkill_leaves_only_hidden_partial_which_a_later_run_removes(tmp_path):
    proc, work = _held_run(tmp_path, "manifest")
    partial = partial_with_log(work)()
    assert partial is not None
    assert sorted(p.name for p in partial.iterdir())  # the results are all there ...
    # ... and while the run lives, a second run must not touch its folder
    assert clean_stale_partials(work) == []
    assert partial.is_dir()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)  # reaped: its pid is gone
    assert proc.returncode == -signal.SIGKILL
    # kill -9 cannot be caught: the folder stays, hidden and without a manifest
    assert partial.is_dir()
    assert manifests(work) == []
    assert visible_entries(work) == []
    # the next run in this work dir cleans it up (LocalRun.open calls this)
    assert clean_stale_partials(work) == [partial]
    assert not partial.exists()


def test_later_run_removes_stale_partial_and_keeps_live_and_foreign_ones(tmp_path):
    from featscope.sinks import LocalRun

    work = tmp_path
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_out())
    dead_pid = int(dead.stdout)
    stale = _fake_partial(work, "tsne_1", f"process {dead_pid} on host {_host()}", "False")
    kept = _fake_partial(work, "monitor_1", f"process {dead_pid} on host {_host()}", "True")
    other_host = _fake_partial(work, "tsne_2", f"process {dead_pid} on host elsewhere", "False")
    alive = _fake_partial(work, "tsne_3", f"process {_own_pid()} on host {_host()}", "False")
    no_log = work / ".tsne_4.partial"
    no_log.mkdir()
    with LocalRun(work, "tsne", name="new") as run:
        run.write_text("a.txt", "x")
    assert not stale.exists()
    for folder in (kept, other_host, alive, no_log):
        assert folder.is_dir(), folder
    assert (work / "new" / "manifest.json").is_file()


def _out() -> dict:
    return {"capture_output": True, "text": True, "check": True}


def _host() -> str:
    import socket

    return socket.gethostname()


def _own_pid() -> int:
    import os

    return os.getpid()


def _fake_partial(work, name: str, who: str, keep: str):
    folder = work / f".{name}.partial"
    folder.mkdir()
    (folder / "run.log").write_text(
        f"2025-01-01T00:00:00 INFO featscope.sinks.runlog: run folder written by {who} "
        f"(keep_failed={keep})\n",
        encoding="utf-8",
    )
    (folder / "feat_neck.npy").write_bytes(b"half")
    return folder


@pytest.mark.slow  # a subprocess run, ~5 s; the full-disk test covers --out-file in-process
def test_recon_out_file_is_not_written_by_an_interrupted_run(tmp_path):
    from PIL import Image

    work, out, data = tmp_path / "work", tmp_path / "out", tmp_path / "photos"
    out.mkdir()
    data.mkdir()
    # enough images (a figure each) that the run is still going when the signal comes
    for i in range(300):
        Image.new("RGB", (28, 28), (i % 256, 90, 160)).save(data / f"img_{i:03d}.png")
    args = ["recon", str(data), "--quiet", "--work-dir", str(work), "--batch-size", "1"]
    proc = start([*args, "--out-file", str(out / "r.png")], tmp_path)
    wait_until(proc, partial_with_log(work, "run folder"))
    code, err = stop(proc, signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == []  # no figure, no temporary file
    assert manifests(work) == []
    assert visible_entries(work) == []


@pytest.mark.slow  # about 12 s: a subprocess that imports timm's transforms
def test_browse_out_dir_keeps_no_picture_of_an_interrupted_run(tmp_path):
    from PIL import Image

    data = tmp_path / "photos"
    data.mkdir()
    for i in range(40):
        Image.new("RGB", (48, 40), (i * 5, 100, 200 - i * 4)).save(data / f"img_{i:02d}.png")
    work, out = tmp_path / "work", tmp_path / "out"
    args = ["browse", str(data), "-n", "0", "--quiet", "--mode", "original", "--out-dir", str(out)]
    proc = start([*args, "--work-dir", str(work)], tmp_path)
    # pictures are being drawn into the hidden run folder; --out gets copies once it is finished
    wait_until(proc, lambda: any(work.glob(".*.partial/*.png")))
    time.sleep(0.2)
    code, err = stop(proc, signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err
    # no picture of the interrupted run in --out, and no run folder that looks finished
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []
    assert manifests(work) == []
    assert visible_entries(work) == []
