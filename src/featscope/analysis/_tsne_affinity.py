"""The input side of featscope's t-SNE: exact neighbours, perplexity affinities, PCA start.

openTSNE spends most of its time at 2,000-20,000 points outside the gradient descent: its
default neighbour search (Annoy, one thread) builds a forest of random-projection trees, and its
PCA initialisation runs scikit-learn's PCA again on the input (docs/benchmarks.md has the
profile). On PCA-reduced features (50 dimensions) an *exact* k-NN search by blocks of one matrix
product is both faster and better: the product runs on all cores in BLAS, and the k smallest
entries of each row are picked with ``torch.topk`` (many times faster than ``np.argpartition``
on long rows) when torch is at hand, numpy otherwise. torch is imported here only inside
functions (the layering rule: ``analysis/`` never imports torch at module level).

The affinities are openTSNE's (and bhtsne's): a Gaussian over each point's ``3 * perplexity``
nearest neighbours, its precision found by bisection so that the row's perplexity matches, then
``P = (P + P.T) / 2`` normalised to sum to 1. The bisection runs on all rows at once in numpy.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

__all__ = ["device_affinities", "exact_neighbors", "pca_init", "perplexity_affinities"]

#: Below this many samples the neighbour search stays in numpy: importing torch (about a
#: second) would cost more than it saves.
TORCH_FROM_SAMPLES = 5_000
#: Rows of the distance matrix computed at once (bounded memory: block x n float32).
_BLOCK_BYTES = 64 * 2**20
#: ... on a GPU: 1 GiB blocks keep its matrix units busy (1,000,000 points: 268 rows a block).
_BLOCK_BYTES_GPU = 2**30
#: Bisection steps on the Gaussian precision; 2**-60 relative resolution is far below float32.
_MAX_STEPS = 100
_TOL = 1e-5


def exact_neighbors(
    X: np.ndarray,
    k: int,
    metric: str = "euclidean",
    n_jobs: int = 1,
    device: str = "cpu",
    as_tensors: bool = False,
) -> tuple[Any, Any]:
    """Exact k nearest neighbours of every row of ``X`` (itself excluded).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        float32 data.
    k : int
        Neighbours per point, ``1 <= k < n_samples``.
    metric : {"euclidean", "cosine"}, default "euclidean"
        "cosine" searches the unit-normalised rows, whose Euclidean distance is
        ``sqrt(2 * (1 - cos))``, a monotone function of the cosine distance.
    n_jobs : int, default 1
        Threads for torch (numpy's BLAS uses its own setting).
    device : str, default "cpu"
        torch device of the search; anything but "cpu" searches there with torch (blocks of
        :data:`_BLOCK_BYTES_GPU`) whatever the size.
    as_tensors : bool, default False
        Search with torch and return torch tensors on ``device`` (the torch t-SNE engine keeps
        everything there).

    Returns
    -------
    distances : ndarray or torch.Tensor of shape (n_samples, k)
        Euclidean distances (float64), ascending along each row.
    indices : ndarray or torch.Tensor of shape (n_samples, k)
        Neighbour indices (int64).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.maximum(norms, np.finfo(np.float32).tiny)
    n = len(X)
    # Centring does not change distances and makes |x|^2 + |y|^2 - 2 x.y far less prone to
    # cancellation in float32.
    X = X - X.mean(axis=0, dtype=np.float64).astype(np.float32)
    on_gpu = device.split(":")[0] != "cpu"
    block = max(1, min(n, (_BLOCK_BYTES_GPU if on_gpu else _BLOCK_BYTES) // (4 * n)))
    if on_gpu or as_tensors:
        return _neighbors_torch(X, k, block, n_jobs, device, as_tensors)
    if n >= TORCH_FROM_SAMPLES:
        try:
            return _neighbors_torch(X, k, block, n_jobs)
        except ImportError:  # torch is a dependency, but stay usable without it
            pass
    return _neighbors_numpy(X, k, block)


def _finish(sq: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist = np.sqrt(np.maximum(sq.astype(np.float64), 0.0))
    return dist, idx.astype(np.int64)


def _neighbors_numpy(X: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(X)
    sq_norms = np.einsum("ij,ij->i", X, X)
    out_d = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        d = X[start:stop] @ X.T
        d *= -2.0
        d += sq_norms[None, :]
        d += sq_norms[start:stop, None]
        rows = np.arange(stop - start)
        d[rows, rows + start] = np.inf  # exclude the point itself
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(d, part, axis=1)
        order = np.argsort(vals, axis=1, kind="stable")
        out_i[start:stop] = np.take_along_axis(part, order, axis=1)
        out_d[start:stop] = np.take_along_axis(vals, order, axis=1)
    return _finish(out_d, out_i)


def _neighbors_torch(
    X: np.ndarray, k: int, block: int, n_jobs: int, device: str = "cpu", as_tensors: bool = False
) -> tuple[Any, Any]:
    import torch

    from featscope.analysis._cpu_load import torch_threads

    with torch_threads(n_jobs), torch.no_grad():
        data = torch.from_numpy(X).to(device)
        sq_norms = (data * data).sum(dim=1)
        n = len(X)
        out_d = torch.empty((n, k), dtype=torch.float32, device=device)
        out_i = torch.empty((n, k), dtype=torch.int64, device=device)
        for start in range(0, n, block):
            stop = min(n, start + block)
            d = torch.addmm(sq_norms[None, :], data[start:stop], data.T, alpha=-2.0)
            rows = torch.arange(stop - start, device=device)
            d[rows, rows + start] = math.inf  # exclude the point itself
            vals, idx = torch.topk(d, k, dim=1, largest=False, sorted=True)
            # |x_i|^2 is the same along a row: added after the selection, not to every
            # entry of the block (one pass less over a 1 GB block on a GPU).
            out_d[start:stop] = vals + sq_norms[start:stop, None]
            out_i[start:stop] = idx
    if as_tensors:
        return out_d.clamp_(min=0.0).double().sqrt_(), out_i
    return _finish(out_d.cpu().numpy(), out_i.cpu().numpy())


def conditional_probabilities(distances: Any, perplexity: float) -> Any:
    """Row-wise Gaussian probabilities whose perplexity is ``perplexity`` (all rows at once).

    Parameters
    ----------
    distances : ndarray or torch.Tensor of shape (n_samples, k)
        Distances to each point's k nearest neighbours (not squared), ascending. A torch
        tensor is calibrated where it lives (a GPU for the torch t-SNE engine) in float64.
    perplexity : float
        Target perplexity, ``< k``.

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
    ref = sq[:, min(k - 1, max(1, int(perplexity)))]
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


def perplexity_affinities(distances: np.ndarray, indices: np.ndarray, perplexity: float):
    """Symmetric t-SNE affinities ``P`` (scipy CSR, summing to 1) from k-NN distances.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
        Distances to each point's neighbours (not squared), ascending.
    indices : ndarray of shape (n_samples, k)
        The neighbours' row indices.
    perplexity : float
        Target perplexity of each row's conditional distribution.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        ``(P_cond + P_cond.T) / 2`` normalised to sum to 1, as openTSNE builds it.
    """
    import scipy.sparse as sp

    n, k = indices.shape
    p = conditional_probabilities(distances, perplexity)
    P = sp.csr_matrix((p.ravel(), indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    P = (P + P.T) / 2
    P = P.tocsr()
    P /= P.sum()
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
    torch.Tensor
        Coalesced sparse COO tensor (float64) of ``P``, ``(n_samples, n_samples)``, summing to
        1; the same matrix as :func:`perplexity_affinities` returns.
    """
    import torch

    distances, indices = exact_neighbors(X, k, metric, n_jobs, device, as_tensors=True)
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
    return torch.sparse_coo_tensor(
        P.indices(),
        P.values() / P.values().sum(),
        (n, n),
        device=device,
        is_coalesced=True,
        check_invariants=False,
    )


def pca_init(X: np.ndarray, n_components: int, random_state: int | None) -> np.ndarray:
    """Start positions as openTSNE's "pca": top principal components scaled to std 1e-4.

    The components come from the ``d x d`` covariance matrix (``d`` <= a few hundred after
    featscope's PCA step), which is much cheaper than a second full PCA of the data. The sign
    of each component is fixed (largest loading positive) so the start is deterministic;
    ``random_state`` is unused and kept for symmetry with the random start.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The (PCA-reduced) data.
    n_components : int
        Map dimension.
    random_state : int or None
        Unused.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
        Start positions with the first column's standard deviation equal to 1e-4.
    """
    del random_state
    Xc = X - X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    if Xc.shape[1] < n_components:
        Xc = np.pad(Xc, ((0, 0), (0, n_components - Xc.shape[1])))
    cov = (Xc.T @ Xc).astype(np.float64)
    _, vecs = np.linalg.eigh(cov)
    comps = vecs[:, ::-1][:, :n_components]
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(n_components)])
    comps = comps * np.where(signs == 0, 1.0, signs)
    Y = (Xc @ comps.astype(Xc.dtype)).astype(np.float64)
    std = Y[:, 0].std()
    return np.ascontiguousarray(Y / (std if std > 0 else 1.0) * 1e-4)
