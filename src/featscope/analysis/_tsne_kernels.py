"""numba kernels of the CPU t-SNE engine (:mod:`._tsne_numba`): attraction, update, FFT grid.

Module-level functions so that numba's on-disk cache finds them again in the next process:
kernels defined inside a function, calling one another through closures, were compiled
afresh by every run (2 s). Where no cache folder is writable (a read-only install and home),
they compile in every process instead. This module imports numba; :mod:`._tsne_numba`
imports it only when a map is optimised, so ``import featscope`` stays without it.

The map must not depend on the number of threads (the default ``n_jobs=-1`` counts the idle
cores): no kernel sums across points in a parallel loop. Per-point values are written out and
summed by the caller in numpy, and the FFT grid is filled by box rows, each owned by one
thread, in the points' order.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from featscope.analysis._tsne_shared import MAX_STEP_NORM, MIN_GAIN


def _jit(**options):
    """``numba.njit(cache=True, nogil=True, **options)``, without the cache where it cannot be."""

    def decorate(function):
        try:
            return njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(nogil=True, **options)(function)

    return decorate


@_jit(parallel=True)
def attraction_error(indptr, indices, p, Y, parts):
    """``parts[i] = sum_j p_ij log(1 + |y_i - y_j|^2)`` over the edges of row i of ``P``."""
    for i in prange(Y.shape[0]):
        part = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            d0 = Y[i, 0] - Y[j, 0]
            d1 = Y[i, 1] - Y[j, 1]
            # log(1 + x), not log1p: twice as fast here; the rounding of 1 + x moves a term
            # by at most 1e-16, nothing beside a divergence of order 1
            part += p[e] * math.log(1.0 + d0 * d0 + d1 * d1)
        parts[i] = part


@_jit(parallel=True)
def descend(indptr, indices, p, Y, out, repulsion, update, gains, scale, momentum, rate):
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


@_jit()
def lagrange(u, out):
    """Quadratic Lagrange weights of the nodes at (k + 0.5) / 3 of a box, u in [0, 1)."""
    t0 = 0.5 / 3.0
    t1 = 1.5 / 3.0
    t2 = 2.5 / 3.0
    out[0] = (u - t1) * (u - t2) / ((t0 - t1) * (t0 - t2))
    out[1] = (u - t0) * (u - t2) / ((t1 - t0) * (t1 - t2))
    out[2] = (u - t0) * (u - t1) / ((t2 - t0) * (t2 - t1))


@_jit()
def box_of(y, lo, width, n_boxes):
    """Return the box of coordinate ``y`` along one axis, clamped to the grid."""
    return min(max(math.floor((y - lo) / width), 0), n_boxes - 1)


@_jit()
def locate(y, lo, width, n_boxes, weights):
    """First node of ``y``'s box along one axis; its node weights into ``weights``."""
    box = box_of(y, lo, width, n_boxes)
    lagrange((y - lo) / width - box, weights)
    return box * 3


@_jit()
def rows_of(Y, lo0, width, n_boxes, order, starts):
    """Bucket the points by their box along axis 0 (a stable counting sort).

    ``order[starts[r]:starts[r + 1]]`` are the points of box row r, in their own order.
    """
    starts[:] = 0
    for i in range(Y.shape[0]):
        starts[box_of(Y[i, 0], lo0, width, n_boxes) + 1] += 1
    for r in range(n_boxes):
        starts[r + 1] += starts[r]
    filled = starts[:-1].copy()
    for i in range(Y.shape[0]):
        r = box_of(Y[i, 0], lo0, width, n_boxes)
        order[filled[r]] = i
        filled[r] += 1


@_jit(parallel=True)
def spread(Y, lo0, lo1, width, n_boxes, order, starts, grid):
    """Charges 1, y_0 - lo_0, y_1 - lo_1 of every point onto its box's 3 x 3 nodes.

    The points of box row r write only node rows 3r to 3r + 2: one thread per box row needs
    no atomics, and each node sums its points in the same order whatever the threads.
    """
    for r in prange(n_boxes):
        wx = np.empty(3)
        wy = np.empty(3)
        for t in range(starts[r], starts[r + 1]):
            i = order[t]
            r0 = Y[i, 0] - lo0
            r1 = Y[i, 1] - lo1
            x = locate(Y[i, 0], lo0, width, n_boxes, wx)
            y = locate(Y[i, 1], lo1, width, n_boxes, wy)
            for a in range(3):
                for b in range(3):
                    w = wx[a] * wy[b]
                    grid[0, x + a, y + b] += w
                    grid[1, x + a, y + b] += w * r0
                    grid[2, x + a, y + b] += w * r1


@_jit(parallel=True)
def gather(Y, lo0, lo1, width, n_boxes, potential, force, z_parts):
    """Interpolate the grid's potentials at the points: the forces and Z's per-point terms.

    ``potential`` holds, per node, sum w, sum w^2, sum w^2 (y_0 - lo_0) and
    sum w^2 (y_1 - lo_1) over all points (w = 1 / (1 + d^2)); the force on point i is
    ``sum_j w_ij^2 (y_i - y_j) = (y_i - lo) sum w^2 - sum w^2 (y_j - lo)``, and
    ``z_parts[i] = sum_j w_ij`` (its own term, 1, included).
    """
    for i in prange(Y.shape[0]):
        wx = np.empty(3)
        wy = np.empty(3)
        r0 = Y[i, 0] - lo0
        r1 = Y[i, 1] - lo1
        x = locate(Y[i, 0], lo0, width, n_boxes, wx)
        y = locate(Y[i, 1], lo1, width, n_boxes, wy)
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for a in range(3):
            for b in range(3):
                w = wx[a] * wy[b]
                s0 += w * potential[0, x + a, y + b]
                s1 += w * potential[1, x + a, y + b]
                s2 += w * potential[2, x + a, y + b]
                s3 += w * potential[3, x + a, y + b]
        force[i, 0] = r0 * s1 - s2
        force[i, 1] = r1 * s1 - s3
        z_parts[i] = s0


@_jit(parallel=True)
def calibrate(sq, ref_column, target, max_steps, tol, p):
    """Rows of Gaussian probabilities with entropy ``target``: ``p = exp(-beta d) / sum``.

    ``sq`` holds each row's squared distances minus the row's smallest; ``beta`` starts at
    ``1 / sq[i, ref_column]`` and moves by Newton's step inside a bisection bracket, as
    :func:`._tsne_affinity.conditional_probabilities` does for all rows at once (the same
    steps; this is that function for numpy arrays, one row per iteration on all cores).
    """
    n, k = sq.shape
    for i in prange(n):
        d = sq[i]
        w = p[i]  # the row's weights, normalised at the end
        ref = d[ref_column]
        beta = 1.0 / ref if ref > 0 else 1.0
        lo = 0.0
        hi = np.inf
        for _ in range(max_steps):
            s = 0.0
            sd = 0.0
            sdd = 0.0
            for j in range(k):
                w[j] = math.exp(-d[j] * beta)
                s += w[j]
                sd += w[j] * d[j]
                sdd += w[j] * d[j] * d[j]
            mean_d = sd / s
            # Entropy of w / s is log(s) + beta E[d]; its derivative in beta is -beta Var[d].
            gap = math.log(s) + beta * mean_d - target
            if abs(gap) < tol:
                break
            if gap > 0:  # perplexity too high: raise the precision
                lo = beta
            else:
                hi = beta
            slope = beta * max(sdd / s - mean_d * mean_d, 0.0)
            newton = beta + gap / slope if slope > 0 else np.nan
            if math.isfinite(newton) and lo < newton < hi:
                beta = newton
            elif math.isinf(hi):
                beta = beta * 2.0
            else:
                beta = (lo + hi) / 2.0
        s = 0.0
        for j in range(k):
            w[j] = math.exp(-d[j] * beta)
            s += w[j]
        for j in range(k):
            w[j] /= s
