"""Affinities for featscope's t-SNE: perplexity-calibrated Gaussians over the neighbours.

The affinities are openTSNE's (and bhtsne's): a Gaussian over each point's ``3 * perplexity``
nearest neighbours, its precision found by bisection so that the row's perplexity matches, then
``P = (P + P.T) / 2`` normalised to sum to 1. openTSNE calibrates one row at a time in one
thread (3.8 s at 20,000 points, docs/benchmarks.md); here, for the numba engine, a compiled
kernel does the rows on its threads (0.15 s at 70,000 points on 2), and for the other engines
(or without numba) the same steps run on all rows at once as array operations, in torch where
the torch engine's gradient descent will run (0.44 s at 20,000 points in numpy).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from featscope.analysis import _tsne_numba
from featscope.analysis._tsne_neighbors import exact_neighbors

__all__ = [
    "affinities",
    "conditional_probabilities",
    "device_affinities",
    "perplexity_affinities",
]

#: Bisection steps on the Gaussian precision; 2**-60 relative resolution is far below float32.
_MAX_STEPS = 100
_TOL = 1e-5
#: Columns of the exact neighbour graph kept for the quality metrics (k = 10 by default).
GRAPH_COLUMNS = 30


def affinities(
    X: np.ndarray,
    perplexity: float,
    *,
    metric: str,
    neighbors: str,
    backend: str,
    device: str,
    n_jobs: int,
    random_state: int | None,
) -> tuple[Any, np.ndarray | None]:
    """Build the t-SNE's ``P`` matrix of ``X`` where the chosen engine will use it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The (PCA-reduced) float32 data.
    perplexity : float
        Target perplexity of each row, ``<= (n_samples - 1) / 3``.
    metric : {"euclidean", "cosine", "manhattan"}
        Neighbour metric.
    neighbors : {"exact", "annoy", "pynndescent"}
        The search ("auto" already resolved). "exact" with the Euclidean or cosine metric is
        :func:`~featscope.analysis._tsne_neighbors.exact_neighbors`; anything else is
        openTSNE's :class:`openTSNE.affinity.PerplexityBasedNN`.
    backend : {"opentsne", "numba", "torch"}
        The engine: torch gets a sparse tensor on ``device``, the CPU engines a scipy CSR
        matrix.
    device : str
        torch device of the torch engine.
    n_jobs : int
        Threads of the search.
    random_state : int or None
        Seed of openTSNE's approximate searches.

    Returns
    -------
    P : scipy.sparse.csr_matrix or torch.Tensor of shape (n_samples, n_samples)
        Symmetric affinities summing to 1.
    graph : ndarray of shape (n_samples, min(k, GRAPH_COLUMNS)) or None
        With an exact search: each point's nearest other points, nearest first (int32), the
        neighbour graph the quality metrics reuse instead of searching again; None after an
        approximate search.
    """
    n_samples = len(X)
    # openTSNE's own rule (3 x perplexity neighbours), kept >= 1 for tiny perplexities.
    k_neighbors = min(n_samples - 1, max(1, int(3 * perplexity)))
    exact = neighbors == "exact" and metric in ("euclidean", "cosine")
    if exact and backend == "torch":
        # The same affinities, computed where the torch engine will run (a GPU).
        return device_affinities(X, k_neighbors, perplexity, metric, n_jobs, device)
    if exact:
        # Much faster than openTSNE's single-threaded Annoy on <= 100k PCA-reduced points.
        distances, indices = exact_neighbors(X, k_neighbors, metric, n_jobs)
        graph = indices[:, :GRAPH_COLUMNS].astype(np.int32)
        # Compiled for the numba engine, which loads numba anyway; for openTSNE's engine
        # (Barnes-Hut sizes, the image job) importing numba (0.4 s) would cost more than the
        # kernel saves there (0.5-0.8 s at 70,000 points, about 0.05 s at 5,000).
        threads = n_jobs if backend == "numba" else None
        return perplexity_affinities(distances, indices, perplexity, threads), graph
    from openTSNE import affinity

    P = affinity.PerplexityBasedNN(
        X,
        perplexity=perplexity,
        method=neighbors,
        metric=metric,
        n_jobs=n_jobs,
        random_state=random_state,
        k_neighbors=k_neighbors,
    ).P
    return P, None


def conditional_probabilities(distances: Any, perplexity: float, threads: int | None = None) -> Any:
    """Row-wise Gaussian probabilities whose perplexity is ``perplexity``.

    Parameters
    ----------
    distances : ndarray or torch.Tensor of shape (n_samples, k)
        Distances to each point's k nearest neighbours (not squared), ascending. A torch
        tensor is calibrated where it lives (a GPU for the torch t-SNE engine) in float64.
    perplexity : float
        Target perplexity, ``< k``.
    threads : int, optional
        Calibrate numpy distances with the compiled kernel, row by row on this many threads
        (where numba loads); by default, and for torch tensors, the same steps run as array
        operations on all rows at once.

    Returns
    -------
    ndarray or torch.Tensor of shape (n_samples, k)
        Same kind as ``distances``: ``p[i, j] = exp(-beta_i * d_ij**2) / sum_j(...)``, each row
        summing to 1, with ``beta_i`` chosen by Newton steps inside a bisection bracket so that
        ``exp(entropy_i) = perplexity``.
    """
    xp = _namespace(distances)
    # Shift by the nearest distance: the probabilities are unchanged and exp() cannot
    # underflow to an all-zero row.
    sq = xp.float64(distances) ** 2
    sq = sq - sq[:, :1]
    n, k = sq.shape
    target = math.log(perplexity)
    # Start from the precision that puts the perplexity-th neighbour at one "sigma".
    ref_column = min(k - 1, max(1, int(perplexity)))
    if threads is not None and xp is _NumpyOps and _tsne_numba.available():
        # The same steps row by row, compiled: 0.5-0.8 s -> 0.15 s at 70,000 points on 2
        # threads (the kernels' module imports numba: imported here, on use).
        from featscope.analysis._cpu_load import numba_threads
        from featscope.analysis._tsne_kernels import calibrate

        p = np.empty_like(sq)
        with numba_threads(threads):
            calibrate(sq, ref_column, target, _MAX_STEPS, _TOL, p)
        return p
    ref = sq[:, ref_column]
    beta = 1.0 / xp.where(ref > 0, ref, 1.0)
    lo = xp.zeros_like(beta)
    hi = xp.full_like(beta, math.inf)
    active = xp.arange(n, like=beta)
    for _ in range(_MAX_STEPS):
        b = beta[active]
        d = sq[active]
        w = xp.exp(-d * b[:, None])
        s = w.sum(axis=1)
        mean_d = (w * d).sum(axis=1) / s
        # Entropy of p = w / s is log(s) + beta * E[d]; its derivative in beta is -beta * Var[d].
        entropy = xp.log(s) + b * mean_d
        gap = entropy - target
        done = xp.abs(gap) < _TOL
        too_flat = gap > 0  # perplexity too high: raise the precision
        lo_a = xp.where(too_flat, b, lo[active])
        hi_a = xp.where(too_flat, hi[active], b)
        var_d = xp.clip((w * d * d).sum(axis=1) / s - mean_d**2, 0.0, None)
        slope = b * var_d
        with xp.quiet():
            newton = b + gap / slope
        # Newton's step where it stays inside the bracket, bisection (or doubling) elsewhere.
        fallback = xp.where(xp.isinf(hi_a), b * 2.0, (lo_a + hi_a) / 2.0)
        ok = xp.isfinite(newton) & (newton > lo_a) & (newton < hi_a)
        new_b = xp.where(ok, newton, fallback)
        lo[active], hi[active] = lo_a, hi_a
        beta[active] = xp.where(done, b, new_b)
        active = active[~done]
        if len(active) == 0:
            break
    p = xp.exp(-sq * beta[:, None])
    return p / p.sum(axis=1)[:, None]


class _NumpyOps:
    """The few array functions :func:`conditional_probabilities` needs, for numpy ..."""

    exp, log, abs, where = np.exp, np.log, np.abs, np.where
    isinf, isfinite, clip = np.isinf, np.isfinite, np.clip
    zeros_like, full_like = np.zeros_like, np.full_like

    @staticmethod
    def float64(a: Any) -> Any:
        return np.asarray(a, dtype=np.float64)

    @staticmethod
    def arange(n: int, like: Any) -> Any:
        return np.arange(n)

    @staticmethod
    def quiet() -> Any:
        return np.errstate(divide="ignore", invalid="ignore")


class _TorchOps:
    """... and for torch tensors, on their device (same names, same semantics)."""

    def __init__(self) -> None:
        import torch

        self.exp, self.log, self.abs, self.where = torch.exp, torch.log, torch.abs, torch.where
        self.isinf, self.isfinite, self.clip = torch.isinf, torch.isfinite, torch.clip
        self.zeros_like, self.full_like = torch.zeros_like, torch.full_like
        self.float64 = lambda a: a.double()
        self.arange = lambda n, like: torch.arange(n, device=like.device)
        self.quiet = contextlib.nullcontext  # torch never warns on x / 0


def _namespace(a: Any) -> Any:
    return _NumpyOps if isinstance(a, np.ndarray) else _TorchOps()


def perplexity_affinities(
    distances: np.ndarray, indices: np.ndarray, perplexity: float, threads: int | None = None
):
    """Symmetric t-SNE affinities ``P`` (scipy CSR, summing to 1) from k-NN distances.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
        Distances to each point's neighbours (not squared), ascending.
    indices : ndarray of shape (n_samples, k)
        The neighbours' row indices.
    perplexity : float
        Target perplexity of each row's conditional distribution.
    threads : int, optional
        Calibrate with the compiled kernel on this many threads (see
        :func:`conditional_probabilities`); by default with array operations.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        ``(P_cond + P_cond.T) / 2`` normalised to sum to 1, as openTSNE builds it.
    """
    import scipy.sparse as sp

    n, k = indices.shape
    p = conditional_probabilities(distances, perplexity, threads)
    P = sp.csr_matrix((p.ravel(), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    # (P + P.T) / 2 normalised to sum 1, without the copy the halving makes: scaling by 2 is
    # exact, so this is the same matrix to the last bit.
    P = (P + P.T).tocsr()
    P.data *= 1.0 / P.sum()
    P.sort_indices()
    return P


def device_affinities(
    X: np.ndarray, k: int, perplexity: float, metric: str, n_jobs: int, device: str
) -> Any:
    """:func:`perplexity_affinities` of :func:`exact_neighbors`, computed on a torch device.

    For the torch t-SNE engine: the neighbour search, the calibration and the symmetrisation
    run where the gradient descent will (a GPU), so 1,000,000 points never make the round trip
    through numpy and scipy.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The (PCA-reduced) data.
    k : int
        Neighbours per point.
    perplexity : float
        Target perplexity.
    metric : {"euclidean", "cosine"}
        Neighbour metric.
    n_jobs : int
        CPU threads (when ``device`` is the CPU).
    device : str
        torch device.

    Returns
    -------
    P : torch.Tensor
        Coalesced sparse COO tensor (float64) of ``P``, ``(n_samples, n_samples)``, summing to
        1; the same matrix as :func:`perplexity_affinities` returns.
    graph : ndarray of shape (n_samples, min(k, GRAPH_COLUMNS))
        Each point's nearest other points, nearest first (int32, on the CPU).
    """
    import torch

    distances, indices = exact_neighbors(X, k, metric, n_jobs, device, as_tensors=True)
    graph = indices[:, :GRAPH_COLUMNS].to(device="cpu", dtype=torch.int32).numpy()
    p = conditional_probabilities(distances, perplexity)
    n = len(X)
    rows = torch.arange(n, device=p.device).repeat_interleave(indices.shape[1])
    cols = indices.reshape(-1)
    pairs = torch.stack([torch.cat([rows, cols]), torch.cat([cols, rows])])
    values = torch.cat([p.reshape(-1), p.reshape(-1)]) / 2
    # Indices built here are in range by construction: no invariant check (torch warns when
    # it is left implicit). coalesce() sums each pair with its mirror and sorts by row.
    device = values.device  # explicit: torch.set_default_device must not move it
    P = torch.sparse_coo_tensor(pairs, values, (n, n), device=device, check_invariants=False)
    P = P.coalesce()
    P = torch.sparse_coo_tensor(
        P.indices(),
        P.values() / P.values().sum(),
        (n, n),
        device=device,
        is_coalesced=True,
        check_invariants=False,
    )
    return P, graph
