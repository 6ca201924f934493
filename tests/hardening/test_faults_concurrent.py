"""Runs writing to the same work dir at the same time get distinct folders and keep their files."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from _subprocess_runs import manifests, start

N_PROCESSES = 4
SECOND = "20250101_120000"


def _one_run(work: str, barrier, queue) -> None:
    """Open a run in the same (patched) second as the others and write this process's id."""
    from featscope.sinks import LocalRun

    time.strftime = lambda fmt, *args: SECOND  # every process starts "in the same second"
    barrier.wait(timeout=30)
    with LocalRun(work, "tsne") as run:
        run.write_text("who.txt", str(os.getpid()))
        barrier.wait(timeout=30)  # all runs are open at once before any finishes
        run.write_json("metrics", {"pid": os.getpid()})
    queue.put((os.getpid(), str(run.final_path)))


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
def test_processes_in_the_same_second_get_distinct_folders(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(N_PROCESSES), context.Queue()
    procs = [
        context.Process(target=_one_run, args=(str(tmp_path), barrier, queue))
        for _ in range(N_PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    finished = dict(queue.get(timeout=5) for _ in procs)
    names = sorted(Path(p).name for p in finished.values())
    assert names == [f"tsne_{SECOND}", *(f"tsne_{SECOND}_{i}" for i in (1, 2, 3))]
    for pid, folder in finished.items():
        folder = Path(folder)
        assert (folder / "who.txt").read_text() == str(pid)  # nobody wrote into another's folder
        assert json.loads((folder / "metrics.json").read_text()) == {"pid": pid}
        manifest = json.loads((folder / "manifest.json").read_text())
        for entry in manifest["files"]:
            data = (folder / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no partial folder left


@pytest.mark.slow
def test_two_cli_runs_started_together_both_finish(tmp_path):
    work = tmp_path / "work"
    args = ["tsne", "--method", "pca", "--max-num-samples", "3", "--no-html", "--quiet"]
    procs = [start([*args, "--work-dir", str(work)], tmp_path) for _ in range(2)]
    try:
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    folders = sorted(p for p in work.iterdir())
    assert len(folders) == 2
    assert all(not p.name.startswith(".") for p in folders)
    assert len(manifests(work)) == 2
