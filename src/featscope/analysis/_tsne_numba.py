"""t-SNE gradient descent on the CPU: openTSNE's FFT repulsion, compiled attraction and update.

openTSNE's FFT gradient has two halves. The repulsive one (an interpolation grid convolved by
FFT) is efficient and is called here as it is (``openTSNE._tsne``). The attractive one loops
over the edges of ``P`` through a heap buffer, reloading and storing each point's gradient on
every edge; and its gradient descent updates the map with a dozen numpy passes an iteration.
Both are written again here, compiled by numba (``parallel=True``): the attractive forces
accumulate in registers, and the update (gains, momentum, step clipping) is fused into the same
pass over the points. Measured on 2 cores, Fashion-MNIST PCA-50 (docs/benchmarks.md, "numba
engine"): the attractive forces take 2.5 ms an iteration at 20,000 points against openTSNE's
5.8 ms, and 11 ms at 70,000 against 22 ms, the same sums to 1e-15 relative. No library offers
this piece alone (openTSNE's kernels are not pluggable; pynndescent and umap-learn compile
their own numba kernels for the same reason).

The update rule is openTSNE's ``gradient_descent`` step for step (as in :mod:`._tsne_torch`):
gradient without scikit-learn's factor 4, momentum, delta-bar-delta gains with ``min_gain``
0.01, update norms clipped at 5, the map re-centred after each step, the KL divergence of the
un-exaggerated ``P`` every ``every`` iterations, before that iteration's update.

The kernels compile on first use and are cached on disk (numba's ``cache=True``, beside this
file or in the user's cache folder), so later runs load them in about 0.2 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["NumbaTSNE", "available"]

#: openTSNE's gradient-descent constants (``gradient_descent.__call__`` defaults).
MIN_GAIN = 0.01
MAX_STEP_NORM = 5.0
#: openTSNE's FFT defaults: interpolation nodes per box, fewest boxes per axis.
_NODES = 3
_MIN_BOXES = 50

#: A callback as openTSNE calls it: ``(iteration, kl_divergence, embedding) -> stop?``.
Callback = Callable[[int, float, Any], bool]


def available() -> bool:
    """Whether numba imports (it is a dependency; a broken install falls back to openTSNE)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _threads(n_jobs: int) -> Iterator[None]:
    """Run numba's parallel loops on ``n_jobs`` threads (at most its pool), then restore."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_jobs, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


_KERNELS: dict[str, Any] = {}


def _kernels() -> dict[str, Any]:
    """Compile (or load from numba's cache) the kernels, once per process."""
    if _KERNELS:
        return _KERNELS
    from numba import njit, prange

    @njit(parallel=True, cache=True, nogil=True)
    def attraction_error(indptr, indices, p, Y):  # pragma: no cover - compiled
        """``sum_ij p_ij log(1 + |y_i - y_j|^2)`` over the edges of ``P``."""
        total = 0.0
        for i in prange(Y.shape[0]):
            part = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                d0 = Y[i, 0] - Y[j, 0]
                d1 = Y[i, 1] - Y[j, 1]
                part += p[e] * math.log1p(d0 * d0 + d1 * d1)
            total += part
        return total

    @njit(parallel=True, cache=True, nogil=True)
    def descend(
        indptr, indices, p, Y, out, repulsion, update, gains, scale, momentum, rate
    ):  # pragma: no cover - compiled
        """One step: gradient = attraction + repulsion, then openTSNE's update into ``out``.

        ``Y`` is only read (other threads read it for their neighbours); the moved points go
        to ``out``.
        """
        for i in prange(Y.shape[0]):
            y0 = Y[i, 0]
            y1 = Y[i, 1]
            f0 = 0.0
            f1 = 0.0
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                d0 = y0 - Y[j, 0]
                d1 = y1 - Y[j, 1]
                w = p[e] / (1.0 + d0 * d0 + d1 * d1)
                f0 += w * d0
                f1 += w * d1
            g0 = scale * f0 + repulsion[i, 0]
            g1 = scale * f1 + repulsion[i, 1]
            # Gains grow where the gradient's sign differs from the last update's (np.sign
            # semantics: 0 has its own sign), shrink elsewhere.
            if np.sign(update[i, 0]) != np.sign(g0):
                gains[i, 0] += 0.2
            else:
                gains[i, 0] = gains[i, 0] * 0.8 + MIN_GAIN
            if np.sign(update[i, 1]) != np.sign(g1):
                gains[i, 1] += 0.2
            else:
                gains[i, 1] = gains[i, 1] * 0.8 + MIN_GAIN
            u0 = momentum * update[i, 0] - rate * gains[i, 0] * g0
            u1 = momentum * update[i, 1] - rate * gains[i, 1] * g1
            norm = math.sqrt(u0 * u0 + u1 * u1)
            if norm > MAX_STEP_NORM:
                u0 = u0 / norm * MAX_STEP_NORM
                u1 = u1 / norm * MAX_STEP_NORM
            update[i, 0] = u0
            update[i, 1] = u1
            out[i, 0] = y0 + u0
            out[i, 1] = y1 + u1

    _KERNELS.update(attraction_error=attraction_error, descend=descend)
    return _KERNELS


def _repulsion(Y: np.ndarray, out: np.ndarray, ints_in_interval: float) -> float:
    """Repulsion by openTSNE's FFT code: ``out = -sum_j q_ij^2 (y_i - y_j) / Z``; returns ``Z``."""
    from openTSNE import _tsne

    out.fill(0.0)
    sum_q = _tsne.estimate_negative_gradient_fft_2d(
        Y,
        out,
        n_interpolation_points=_NODES,
        min_num_intervals=_MIN_BOXES,
        ints_in_interval=ints_in_interval,
        dof=1,
    )
    # Later openTSNE versions return a tuple with the sum first.
    return float(sum_q[0] if isinstance(sum_q, tuple) else sum_q)


class NumbaTSNE:
    """State of one 2-D map being optimised on the CPU: positions, momentum, gains.

    Parameters
    ----------
    P : scipy.sparse matrix of shape (n_samples, n_samples)
        Symmetric affinities summing to 1.
    start : ndarray of shape (n_samples, 2)
        Start positions (copied).
    ints_in_interval : float
        openTSNE's FFT box width in map units.
    n_jobs : int
        Threads of the compiled loops.
    """

    def __init__(self, P: Any, start: np.ndarray, ints_in_interval: float, n_jobs: int) -> None:
        if start.ndim != 2 or start.shape[1] != 2:
            raise ValueError(f"the FFT gradient supports 2-D maps only, got {start.shape}")
        P = sp.csr_matrix(P)
        self.indptr, self.indices = P.indptr, P.indices
        self.p = np.ascontiguousarray(P.data, dtype=np.float64)
        positive = self.p[self.p > 0]
        # sum p log p, the constant part of KL(P || Q).
        self.p_log_p = float(np.dot(positive, np.log(positive)))
        self.Y = np.array(start, dtype=np.float64, order="C")
        self.spare = np.empty_like(self.Y)
        self.repulsion = np.empty_like(self.Y)
        self.update = np.zeros_like(self.Y)
        self.gains = np.ones_like(self.Y)
        self.ints_in_interval = float(ints_in_interval)
        self.n_jobs = n_jobs
        self.kernels = _kernels()

    def kl_divergence(self) -> float:
        """Return ``KL(P || Q)`` of the current map (un-exaggerated ``P``)."""
        with _threads(self.n_jobs):
            z = _repulsion(self.Y, self.repulsion, self.ints_in_interval)
            return self._kl(z)

    def _kl(self, z: float) -> float:
        # KL = sum p log p - sum p log q, q = w / Z, sum p = 1:
        # = sum p log p + sum p log(1 + d^2) + log Z.
        error = self.kernels["attraction_error"](self.indptr, self.indices, self.p, self.Y)
        return self.p_log_p + float(error) + math.log(max(z, 1e-12))

    def optimize(
        self,
        n_iter: int,
        exaggeration: float,
        momentum: float,
        learning_rate: float,
        callbacks: Sequence[Callback] = (),
        every: int = 50,
    ) -> bool:
        """Run up to ``n_iter`` iterations of gradient descent with momentum and gains.

        Parameters
        ----------
        n_iter : int
            Iterations to run.
        exaggeration : float
            Early exaggeration factor on the attractive forces (1 for none).
        momentum : float
            Momentum of the update.
        learning_rate : float
            Step size in openTSNE's units (4 x scikit-learn's).
        callbacks : sequence of callables, default ()
            Called every ``every`` iterations as ``callback(iteration, kl, embedding)``,
            before that iteration's update, like openTSNE's; any returning True stops.
        every : int, default 50
            Iterations between callback calls.

        Returns
        -------
        bool
            True when a callback stopped the phase.
        """
        descend = self.kernels["descend"]
        with _threads(self.n_jobs):
            for iteration in range(1, n_iter + 1):
                z = _repulsion(self.Y, self.repulsion, self.ints_in_interval)
                if callbacks and iteration % every == 0:
                    kl = self._kl(z)
                    if any([bool(c(iteration, kl, self.Y)) for c in callbacks]):
                        return True
                descend(
                    self.indptr,
                    self.indices,
                    self.p,
                    self.Y,
                    self.spare,
                    self.repulsion,
                    self.update,
                    self.gains,
                    exaggeration,
                    momentum,
                    learning_rate,
                )
                self.Y, self.spare = self.spare, self.Y
                self.Y -= self.Y.mean(axis=0)
        return False

    def embedding(self) -> np.ndarray:
        """Return a copy of the current map (float64)."""
        return self.Y.copy()
