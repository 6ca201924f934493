"""CPU cores for the t-SNE: how many other processes keep busy, and torch's and numba's threads.

``n_jobs=-1`` means the cores other processes leave idle, measured here (below) and turned into
a thread count by :func:`effective_n_jobs`; :func:`torch_threads` and :func:`numba_threads`
apply that count to torch's CPU kernels and numba's parallel loops for one step.

The 1-minute load average is the obvious measure but the wrong one for featscope: it counts this
very process. A ``featscope tsne`` run extracts features on every core for a minute, then starts
the t-SNE with a load average of about the core count, and a rule "idle cores = cores - load"
gave the t-SNE one thread on an otherwise idle machine (measured: 70,000 points, 145 s on one
thread vs 96 s on two). Instead, two snapshots of the kernel's CPU counters 0.1 s apart, minus
this process's own CPU time in between, give what *other* processes use, now.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

#: Sampling window. The kernel counts CPU time in ticks (usually 1/100 s per core), so 0.1 s
#: on 2 cores is 20 ticks: a resolution of a tenth of a core.
WINDOW_S = 0.1
#: A measurement younger than this is reused: the stages of one map (t-SNE, clusters,
#: neighbours) ask within a second of each other, and each sample costs a WINDOW_S sleep.
REUSE_S = 2.0

_last: tuple[float, int, float] | None = None  # (monotonic time, n_cores, busy cores)


def _snapshot() -> tuple[int, int, int]:
    """``(busy ticks, all ticks)`` over all cores from /proc/stat, and this process's ticks."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    with open("/proc/self/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of proc(5))
    return sum(values) - idle, sum(values), own


def busy_cores_elsewhere(n_cores: int, window: float = WINDOW_S) -> float:
    """Cores' worth of CPU time other processes used during the last ``window`` seconds.

    Parameters
    ----------
    n_cores : int
        Cores of the machine (to turn the fraction of CPU time into cores).
    window : float, default 0.1
        Seconds between the two snapshots.

    Returns
    -------
    float
        Busy cores, ``0 <= value <= n_cores``; the same value again within :data:`REUSE_S`.
        Where ``/proc`` is not available (not Linux), the 1-minute load average (which
        includes this process), or 0 without one.
    """
    global _last
    if _last is not None and _last[1] == n_cores and time.monotonic() - _last[0] < REUSE_S:
        return _last[2]
    try:
        busy0, total0, own0 = _snapshot()
        time.sleep(window)
        busy1, total1, own1 = _snapshot()
    except (OSError, ValueError, IndexError):
        with contextlib.suppress(AttributeError, OSError):
            return min(float(n_cores), os.getloadavg()[0])
        return 0.0
    ticks = total1 - total0
    if ticks <= 0:
        return 0.0
    others = max(0, (busy1 - busy0) - (own1 - own0))
    # /proc/stat sums every core of the machine; this process may be pinned to fewer.
    machine_cores = os.cpu_count() or n_cores
    busy = min(float(n_cores), others / ticks * machine_cores)
    _last = (time.monotonic(), n_cores, busy)
    return busy


def effective_n_jobs(n_jobs: int, load_aware: bool = True) -> int:
    """Resolve sklearn-style ``n_jobs`` (-1 = all cores) against the cores free for this fit.

    Negative values count from the cores this process may use *minus those other processes
    keep busy* (:func:`busy_cores_elsewhere`, rounded): openTSNE's OpenMP threads spin at their
    barriers, so on an oversubscribed machine two threads take longer than one (measured on
    this project's shared 2-core machines: Barnes-Hut at 2,000 points, 139 ms vs 63 ms per
    iteration). The map does not depend on the thread count, only the time does.

    Parameters
    ----------
    n_jobs : int
        Non-zero thread count; negative counts from the available cores (-1: all of them).
    load_aware : bool, default True
        Subtract the cores other processes keep busy; False counts the machine's cores only
        (for choices that must not depend on the load).

    Returns
    -------
    int
        Threads to use, at least 1.
    """
    try:
        n_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cores = os.cpu_count() or 1
    if n_jobs < 0:
        busy = round(busy_cores_elsewhere(n_cores)) if load_aware else 0
        return max(1, min(n_cores, n_cores - busy) + 1 + n_jobs)
    return n_jobs


def torch_threads(n: int) -> contextlib.AbstractContextManager[None]:
    """Run torch's CPU kernels on ``n`` threads (at least 1), restoring the caller's setting."""
    import torch

    return _threads(torch.get_num_threads, torch.set_num_threads, max(1, n))


def numba_threads(n: int) -> contextlib.AbstractContextManager[None]:
    """Run numba's parallel loops on ``n`` threads (at least 1, at most its pool), restoring."""
    import numba

    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    return _threads(numba.get_num_threads, numba.set_num_threads, n)


@contextlib.contextmanager
def _threads(get: Callable[[], int], set_: Callable[[int], None], n: int) -> Iterator[None]:
    before = get()
    set_(n)
    try:
        yield
    finally:
        set_(before)
