"""numba kernels of the CPU t-SNE engine (:mod:`._tsne_numba`): attraction, update, FFT grid.

Module-level functions so that numba's on-disk cache (``cache=True``) finds them again in
the next process: kernels defined inside a function, calling one another through closures,
were compiled afresh by every run (2 s). This module imports numba; :mod:`._tsne_numba`
imports it only when a map is optimised, so ``import featscope`` stays without it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: openTSNE's gradient-descent constants (``gradient_descent.__call__`` defaults).
MIN_GAIN = 0.01
MAX_STEP_NORM = 5.0


@njit(parallel=True, cache=True, nogil=True)
def attraction_error(indptr, indices, p, Y):
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


@njit(cache=True, nogil=True)
def lagrange(u, out):
    """Quadratic Lagrange weights of the nodes at (k + 0.5) / 3 of a box, u in [0, 1)."""
    t0 = 0.5 / 3.0
    t1 = 1.5 / 3.0
    t2 = 2.5 / 3.0
    out[0] = (u - t1) * (u - t2) / ((t0 - t1) * (t0 - t2))
    out[1] = (u - t0) * (u - t2) / ((t1 - t0) * (t1 - t2))
    out[2] = (u - t0) * (u - t1) / ((t2 - t0) * (t2 - t1))


@njit(cache=True, nogil=True)
def locate(y, lo, width, n_boxes, weights):
    """First node of ``y``'s box along one axis; its node weights into ``weights``."""
    local = (y - lo) / width
    box = min(max(math.floor(local), 0), n_boxes - 1)
    lagrange(local - box, weights)
    return box * 3


@njit(parallel=True, cache=True, nogil=True)
def spread(Y, lo0, lo1, width, n_boxes, grids):
    """Charges 1, y_0 - lo_0, y_1 - lo_1 of every point onto its box's 3 x 3 nodes.

    ``grids`` has one (3, m, m) grid per chunk of points, summed by the caller: each
    thread writes its own grid, so the scatter needs no atomics.
    """
    n = Y.shape[0]
    chunks = grids.shape[0]
    step = (n + chunks - 1) // chunks
    for c in prange(chunks):
        wx = np.empty(3)
        wy = np.empty(3)
        grid = grids[c]
        for i in range(c * step, min(n, (c + 1) * step)):
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


@njit(parallel=True, cache=True, nogil=True)
def gather(Y, lo0, lo1, width, n_boxes, potential, out):
    """Interpolate the grid's potentials at the points; ``out = -force / Z``; return Z.

    ``potential`` holds, per node, sum w, sum w^2, sum w^2 (y_0 - lo_0) and
    sum w^2 (y_1 - lo_1) over all points (w = 1 / (1 + d^2)); the force on point i is
    ``sum_j w_ij^2 (y_i - y_j) = (y_i - lo) sum w^2 - sum w^2 (y_j - lo)``.
    """
    n = Y.shape[0]
    z = 0.0
    for i in prange(n):
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
        out[i, 0] = r0 * s1 - s2
        out[i, 1] = r1 * s1 - s3
        z += s0
    z -= n  # the self terms, w_ii = 1
    for i in prange(n):
        out[i, 0] = -out[i, 0] / z
        out[i, 1] = -out[i, 1] / z
    return z
