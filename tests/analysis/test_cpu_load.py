"""`n_jobs=-1` counts the cores other processes keep busy, not this process's own load."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from featscope.analysis import _cpu_load


@pytest.fixture(autouse=True)
def _fresh_measurement(monkeypatch):
    monkeypatch.setattr(_cpu_load, "_last", None)


def _scripted(monkeypatch, snapshots):
    it = iter(snapshots)
    monkeypatch.setattr(_cpu_load, "_snapshot", lambda: next(it))
    monkeypatch.setattr(_cpu_load.os, "cpu_count", lambda: 4)


def test_own_cpu_time_is_not_counted(monkeypatch):
    # 40 ticks over 4 cores: 30 busy, 20 of them this process's -> 10 / 40 of 4 cores = 1 core
    _scripted(monkeypatch, [(100, 1000, 50), (130, 1040, 70)])
    assert _cpu_load.busy_cores_elsewhere(4, window=0) == pytest.approx(1.0)


def test_a_recent_measurement_is_reused_and_an_old_one_is_not(monkeypatch):
    clock = iter([100.0, 100.5, 103.0, 103.0])
    monkeypatch.setattr(_cpu_load.time, "monotonic", lambda: next(clock))
    _scripted(monkeypatch, [(100, 1000, 50), (130, 1040, 70), (130, 1040, 70), (170, 1080, 70)])
    assert _cpu_load.busy_cores_elsewhere(4, window=0) == pytest.approx(1.0)
    # 0.5 s later: the same value, no new snapshots
    assert _cpu_load.busy_cores_elsewhere(4, window=0) == pytest.approx(1.0)
    # 3 s later: measured again (40 of 40 ticks busy, none of them this process's)
    assert _cpu_load.busy_cores_elsewhere(4, window=0) == pytest.approx(4.0)


def test_result_is_clipped_to_the_cores(monkeypatch):
    _scripted(monkeypatch, [(0, 0, 0), (40, 40, 0)])
    assert _cpu_load.busy_cores_elsewhere(2, window=0) == 2.0


def test_without_proc_falls_back_to_the_load_average(monkeypatch):
    def missing():
        raise OSError("no /proc here")

    monkeypatch.setattr(_cpu_load, "_snapshot", missing)
    monkeypatch.setattr(_cpu_load.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert _cpu_load.busy_cores_elsewhere(4, window=0) == 1.5


def test_effective_n_jobs_uses_the_idle_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3})
    monkeypatch.setattr(_cpu_load, "busy_cores_elsewhere", lambda n: 2.6)
    assert _cpu_load.effective_n_jobs(-1) == 1  # 4 cores - 3 busy
    assert _cpu_load.effective_n_jobs(-1, load_aware=False) == 4
    assert _cpu_load.effective_n_jobs(3) == 3  # explicit counts are kept


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc")
def test_a_busy_process_is_seen():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _cpu_load.busy_cores_elsewhere(len(os.sched_getaffinity(0)), window=0.5)
    finally:
        spin.kill()
        spin.wait()
    assert busy >= 0.5  # at least most of the spinning core (other load only adds to it)


@pytest.mark.parametrize("library", ["torch", "numba"])
def test_thread_helpers_set_the_count_and_restore_it(library):
    module = importlib.import_module(library)  # both are dependencies
    helper = {"torch": _cpu_load.torch_threads, "numba": _cpu_load.numba_threads}[library]
    before = module.get_num_threads()
    with helper(1):
        assert module.get_num_threads() == 1
    assert module.get_num_threads() == before
    with helper(0):  # at least one thread
        assert module.get_num_threads() == 1
    if library == "numba":  # at most numba's pool, which cannot grow after start-up
        with helper(10_000):
            assert module.get_num_threads() == module.config.NUMBA_NUM_THREADS
    assert module.get_num_threads() == before
