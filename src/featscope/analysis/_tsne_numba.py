"""t-SNE gradient descent on the CPU: openTSNE's update rule, compiled and on all cores.

openTSNE's FFT gradient runs partly on one thread and partly through numpy: the attractive
forces loop over the edges of ``P`` through a heap buffer, reloading and storing each point's
gradient on every edge; the repulsion interpolates every point to and from the FFT grid on
one thread; and the update runs a dozen numpy passes over the map an iteration. Here the
three run as numba kernels (:mod:`._tsne_kernels`) on all cores: the attractive forces
accumulate in registers and the update is fused into the same pass over the points; the FFT
grid (FIt-SNE's method, as :mod:`._tsne_torch` implements it) keeps its buffers and its
kernel's spectrum between iterations and skips the zero half of the padded transforms.
Measured on 2 cores, Fashion-MNIST PCA-50 (docs/benchmarks.md, "Issue 18, third session"):
the attraction takes 2.4 ms an iteration at 20,000 points against openTSNE's 5.8 ms, the
repulsion 5.5 ms against 8.8 ms, and a whole fit 6.2 s against 8.2 s. No library offers
these pieces alone (openTSNE's are not pluggable; umap-learn and pynndescent compile their
own numba kernels for the same reason).

The update rule is openTSNE's ``gradient_descent`` step for step (as in :mod:`._tsne_torch`):
gradient without scikit-learn's factor 4, momentum, delta-bar-delta gains with ``min_gain``
0.01, update norms clipped at 5, the map re-centred after each step, the KL divergence of the
un-exaggerated ``P`` every ``every`` iterations, before that iteration's update. With
openTSNE's own repulsion (``repulsion="opentsne"``) the map is openTSNE's to 1e-9 after 80
iterations; with the compiled one it is a map of the same quality, not the same map. The map
does not depend on the number of threads.

The kernels compile on first use and are cached on disk (beside the module, or in the user's
cache folder), so later processes load them in about 0.2 s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from featscope.analysis._cpu_load import numba_threads
from featscope.analysis._tsne_shared import MIN_BOXES, NODES, Callback, grid_boxes

__all__ = ["NumbaTSNE", "available"]

logger = logging.getLogger(__name__)


def available() -> bool:
    """Whether the compiled kernels load (numba is a dependency; a broken one falls back)."""
    try:
        _kernels()
    except Exception as error:  # an ImportError, or numba failing in its own ways
        logger.info("numba's t-SNE kernels are unavailable (%s); openTSNE's engine runs", error)
        return False
    return True


def _kernels() -> Any:
    """Return the compiled kernels' module (imported here: it imports numba)."""
    from featscope.analysis import _tsne_kernels

    return _tsne_kernels


def _opentsne_repulsion(Y: np.ndarray, out: np.ndarray, box_width: float) -> float:
    """Repulsion by openTSNE's FFT code: ``out = -sum_j w_ij^2 (y_i - y_j) / Z``; returns Z.

    The reference the tests hold :class:`_FFTRepulsion` and the update rule to.
    """
    from openTSNE import _tsne

    out.fill(0.0)
    sum_q = _tsne.estimate_negative_gradient_fft_2d(
        Y,
        out,
        n_interpolation_points=NODES,
        min_num_intervals=MIN_BOXES,
        ints_in_interval=box_width,
        dof=1,
    )
    # Later openTSNE versions return a tuple with the sum first.
    return float(sum_q[0] if isinstance(sum_q, tuple) else sum_q)


class _FFTRepulsion:
    """FIt-SNE's interpolated repulsion, as openTSNE's: ``out = -force / Z``; returns Z.

    The method of :meth:`._tsne_torch.TorchTSNE._repulsion_fft` (3 x 3 quadratic-interpolation
    nodes a box; the sums over the nodes are a convolution, computed by FFT), with the
    per-point interpolation compiled and parallel (openTSNE's runs on one thread), the grid's
    buffers reused, the zero half of the padded FFTs skipped, and the kernel's spectrum kept
    while the grid keeps its size and spacing. The grid and its FFTs are float32 (openTSNE's
    float64): the interpolation's own error is far larger (forces about 8 % off the exact
    all-pairs sums at 20,000 points, the same to three digits in either precision), and the
    FFTs run about twice as fast (70,000-point fit 31.7 -> 29.6 s; the points, the forces
    and the update stay float64). Boxes are ``box_width`` map units wide
    where the map spans at least :data:`MIN_BOXES` of them; a smaller map gets boxes of
    ``box_width * 2^(-j/16)`` for the smallest ``j`` that makes it at least that many boxes
    across, so that the spacing (and the kernel) changes in steps, not at every iteration.
    """

    def __init__(self) -> None:
        self.key: tuple[int, float] | None = None
        self.spectra: np.ndarray | None = None
        self.grid: np.ndarray | None = None
        self.order: np.ndarray | None = None
        self.z_parts: np.ndarray | None = None

    def __call__(self, Y: np.ndarray, out: np.ndarray, box_width: float) -> float:
        # scipy's FFTs (pocketfft in C++): 15-20 % faster than numpy's on these grids in
        # float64, and they keep float32 (numpy before 2.0 computes in float64). On one
        # worker: a second lost more to numba's threads, still spinning after the grid's
        # kernels, than it gained (measured in this call at 20,000 and 70,000 points).
        import scipy.fft as fft

        kernels = _kernels()
        # Column by column: numpy reduces an (n, 2) array along axis 0 about 30x slower
        # (2.6 s of a 70,000-point fit went to these four numbers).
        lo = (float(Y[:, 0].min()), float(Y[:, 1].min()))
        extent = max(float(Y[:, 0].max()) - lo[0], float(Y[:, 1].max()) - lo[1])
        span = extent * (1 + 1e-5) + 1e-12
        width = box_width
        if span < MIN_BOXES * box_width:
            steps = math.ceil(16 * math.log2(MIN_BOXES * box_width / span))
            width = box_width * 2 ** (-steps / 16)
        n_boxes = grid_boxes(span, width)
        width = max(width, span / n_boxes)  # grid_boxes caps the count for sprawling maps
        m = n_boxes * NODES
        n = len(Y)
        if self.grid is None or self.grid.shape[1] != m:
            self.grid = np.zeros((3, m, m), dtype=np.float32)
        else:
            self.grid.fill(0.0)
        if self.order is None or len(self.order) != n:
            self.order = np.empty(n, dtype=np.int64)
            self.z_parts = np.empty(n)
        starts = np.empty(n_boxes + 1, dtype=np.int64)
        kernels.rows_of(Y, lo[0], width, n_boxes, self.order, starts)
        kernels.spread(Y, lo[0], lo[1], width, n_boxes, self.order, starts, self.grid)
        spectra = self._spectra(m, width)
        # rfft2 of the grid zero-padded to 2m x 2m, without transforming the zero rows.
        charges = fft.fft(fft.rfft(self.grid, n=2 * m, axis=-1), n=2 * m, axis=-2, overwrite_x=True)
        products = np.empty((4, *charges.shape[1:]), dtype=charges.dtype)
        np.multiply(charges[0], spectra[0], out=products[0])
        np.multiply(charges, spectra[1], out=products[1:])
        # irfft2, keeping only the m x m quadrant the nodes need.
        potential = fft.irfft(
            fft.ifft(products, axis=-2, overwrite_x=True)[:, :m], n=2 * m, axis=-1
        )
        potential = np.ascontiguousarray(potential[:, :, :m])
        kernels.gather(Y, lo[0], lo[1], width, n_boxes, potential, out, self.z_parts)
        z = max(float(self.z_parts.sum()) - n, 1e-12)  # without the self terms, w_ii = 1
        out /= -z
        return z

    def _spectra(self, m: int, width: float) -> np.ndarray:
        """FFTs of 1 / (1 + r^2) and its square on the node offsets (circular, size 2m)."""
        if self.key != (m, width):
            offsets = np.arange(2 * m, dtype=np.float64)
            offsets = np.where(offsets <= m, offsets, offsets - 2 * m) * (width / NODES)
            k1 = 1.0 / (1.0 + offsets[:, None] ** 2 + offsets[None, :] ** 2)
            self.spectra = np.fft.rfft2(np.stack([k1, k1 * k1])).astype(np.complex64)
            self.key = (m, width)
        return self.spectra


class NumbaTSNE:
    """State of one 2-D map being optimised on the CPU: positions, momentum, gains.

    Parameters
    ----------
    P : scipy.sparse matrix of shape (n_samples, n_samples)
        Symmetric affinities summing to 1.
    start : ndarray of shape (n_samples, 2)
        Start positions (copied).
    box_width : float
        Width of the FFT grid's boxes in map units (openTSNE's ``ints_in_interval``).
    n_jobs : int
        Threads of the compiled loops.
    repulsion : {"fft", "opentsne"}, default "fft"
        Who computes the repulsive forces: the compiled interpolation here, or openTSNE's
        own FFT code (the tests' reference for the update rule).
    """

    def __init__(
        self,
        P: Any,
        start: np.ndarray,
        box_width: float,
        n_jobs: int,
        repulsion: str = "fft",
    ) -> None:
        if start.ndim != 2 or start.shape[1] != 2:
            raise ValueError(f"the FFT gradient supports 2-D maps only, got {start.shape}")
        if repulsion not in ("fft", "opentsne"):
            raise ValueError(f"repulsion must be 'fft' or 'opentsne', got {repulsion!r}")
        import scipy.sparse as sp

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
        self.box_width = float(box_width)
        self._repulsion = _FFTRepulsion() if repulsion == "fft" else _opentsne_repulsion
        self.n_jobs = n_jobs
        self.kernels = _kernels()

    def kl_divergence(self) -> float:
        """Return ``KL(P || Q)`` of the current map (un-exaggerated ``P``)."""
        with numba_threads(self.n_jobs):
            z = self._repulsion(self.Y, self.repulsion, self.box_width)
            return self._kl(z)

    def _kl(self, z: float) -> float:
        # KL = sum p log p - sum p log q, q = w / Z, sum p = 1:
        # = sum p log p + sum p log(1 + d^2) + log Z.
        parts = np.empty(len(self.Y))
        self.kernels.attraction_error(self.indptr, self.indices, self.p, self.Y, parts)
        return self.p_log_p + float(parts.sum()) + math.log(max(z, 1e-12))

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
        descend = self.kernels.descend
        with numba_threads(self.n_jobs):
            for iteration in range(1, n_iter + 1):
                z = self._repulsion(self.Y, self.repulsion, self.box_width)
                if callbacks and iteration % every == 0:
                    kl = self._kl(z)
                    # No embedding: from 40,000 points self.Y is in the engine's own order.
                    if any([bool(c(iteration, kl, None)) for c in callbacks]):
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
