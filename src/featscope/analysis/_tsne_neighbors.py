"""Nearest neighbours for featscope's t-SNE: exact search by blocks of one matrix product.

openTSNE's default neighbour search (Annoy, one thread) builds a forest of random-projection
trees, a large part of its time at 2,000-20,000 points (docs/benchmarks.md has the profile).
On PCA-reduced features (50 dimensions) an *exact* k-NN search by blocks of one matrix product
is both faster and better: the product runs on all cores in BLAS, and the k smallest entries of
each row are picked with ``torch.topk`` (many times faster than ``np.argpartition`` on long
rows; on a CPU, over the minima of groups of columns first) when torch is at hand, numpy
otherwise. torch is imported here only inside functions (the
layering rule: ``analysis/`` never imports torch at module level). When nothing has imported
torch yet (a ``--features`` run) and the search is small, scikit-learn's own blocked search
(``ArgKmin``, OpenMP) does it instead: importing torch costs 1.7 s, more than torch saves below
:data:`SKLEARN_UP_TO` points, and scikit-learn is loaded for the t-SNE anyway.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from featscope.analysis.tsne_params import on_cpu
from featscope.progress import Progress

__all__ = ["choose_neighbors", "exact_neighbors", "search_backend"]

#: "auto" neighbours: exact search up to this many samples, Annoy above; exact runs in BLAS on
#: all cores, Annoy on one thread (docs/benchmarks.md: "Exact neighbours").
EXACT_NEIGHBORS_MAX = 100_000
#: Exact neighbour search on a GPU up to this many samples (O(N^2 d) in matrix products).
EXACT_NEIGHBORS_MAX_GPU = 2_000_000
#: Below this many samples the neighbour search stays in numpy: importing torch (about a
#: second) would cost more than it saves.
TORCH_FROM_SAMPLES = 5_000
#: Without torch loaded, scikit-learn searches up to this many samples (20,000 PCA-50 points,
#: 2 cores: 2.3 s against torch's 1.7 s import + 1.35 s search; the gap to torch's search
#: grows with N^2 and passes the import's cost near 27,000).
SKLEARN_UP_TO = 25_000
#: Columns per group of :func:`_smallest_by_groups` (a CPU selection; 32 was slower, 128 too),
#: used where the rows hold at least this many groups per neighbour.
_GROUP = 64
_GROUPS_FROM = 4
#: Rows of the distance matrix computed at once (bounded memory: block x n float32).
_BLOCK_BYTES = 64 * 2**20
#: ... on a GPU: 1 GiB blocks keep its matrix units busy (1,000,000 points: 268 rows a block).
_BLOCK_BYTES_GPU = 2**30


def choose_neighbors(neighbors: str, metric: str, n_samples: int, device: str) -> str:
    """Resolve ``neighbors="auto"``; any other value is returned as given.

    "auto" is "exact" for the Euclidean and cosine metrics up to :data:`EXACT_NEIGHBORS_MAX`
    samples (:data:`EXACT_NEIGHBORS_MAX_GPU` on a GPU), "annoy" otherwise.
    """
    if neighbors != "auto":
        return neighbors
    exact_ok = metric in ("euclidean", "cosine")
    exact_max = EXACT_NEIGHBORS_MAX if on_cpu(device) else EXACT_NEIGHBORS_MAX_GPU
    return "exact" if exact_ok and n_samples <= exact_max else "annoy"


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
    on_gpu = not on_cpu(device)
    block = max(1, min(n, (_BLOCK_BYTES_GPU if on_gpu else _BLOCK_BYTES) // (4 * n)))
    if on_gpu or as_tensors:
        return _neighbors_torch(X, k, block, n_jobs, device, as_tensors)
    backend = search_backend(n, "torch" in sys.modules)
    if backend == "sklearn":
        return _neighbors_sklearn(X, k, n_jobs)
    if backend == "torch":
        try:
            return _neighbors_torch(X, k, block, n_jobs)
        except ImportError:  # torch is a dependency, but stay usable without it
            pass
    return _neighbors_numpy(X, k, block)


def search_backend(n_samples: int, torch_loaded: bool) -> str:
    """Return which exact search runs on the CPU: ``"numpy"``, ``"sklearn"`` or ``"torch"``.

    Parameters
    ----------
    n_samples : int
        Points searched.
    torch_loaded : bool
        Whether torch is imported already (then it costs nothing to use).
    """
    if n_samples < TORCH_FROM_SAMPLES:
        return "numpy"
    if not torch_loaded and n_samples <= SKLEARN_UP_TO:
        return "sklearn"
    return "torch"


def _neighbors_sklearn(X: np.ndarray, k: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    with threadpool_limits(max(1, n_jobs)), Progress(len(X), "neighbours", "points") as bar:
        search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(X)
        dist, idx = search.kneighbors()  # without X: each point's neighbours, itself excluded
        bar.update(len(X))
    return dist.astype(np.float64), idx.astype(np.int64)


def _finish(sq: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist = np.sqrt(np.maximum(sq.astype(np.float64), 0.0))
    return dist, idx.astype(np.int64)


def _neighbors_numpy(X: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(X)
    sq_norms = np.einsum("ij,ij->i", X, X)
    out_d = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    bar = Progress(n, "neighbours", "points")
    for start in range(0, n, block):
        stop = min(n, start + block)
        bar.update(stop - start)
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
    bar.close()
    return _finish(out_d, out_i)


def _smallest(d: Any, k: int) -> tuple[Any, Any]:
    import torch

    return torch.topk(d, k, dim=1, largest=False, sorted=True)


def _smallest_by_groups(d: Any, k: int) -> tuple[Any, Any]:
    """``torch.topk(d, k, largest=False)`` along rows, found through groups of columns.

    Every row's k smallest entries lie in the k groups of :data:`_GROUP` columns with the
    smallest minima (those k groups hold k entries no larger than the k-th group minimum,
    and an entry below it is in a group whose minimum is below it too), so ``topk`` runs over
    the group minima, then over those k groups' entries: 1.7x faster than over whole rows of
    70,000 on a CPU (the minima are one vectorised pass). The distances are ``topk``'s; tied
    entries may come in another order, or from other columns at the k-th value.
    """
    import torch

    rows, width = d.shape
    grouped = d.view(rows, width // _GROUP, _GROUP)
    _, best = torch.topk(grouped.amin(dim=2), k, dim=1, largest=False, sorted=False)
    candidates = grouped.gather(1, best[:, :, None].expand(rows, k, _GROUP))
    columns = best[:, :, None] * _GROUP + torch.arange(_GROUP, device=d.device)
    vals, picked = torch.topk(candidates.reshape(rows, -1), k, dim=1, largest=False, sorted=True)
    return vals, columns.reshape(rows, -1).gather(1, picked)


def _neighbors_torch(
    X: np.ndarray, k: int, block: int, n_jobs: int, device: str = "cpu", as_tensors: bool = False
) -> tuple[Any, Any]:
    import torch

    from featscope.analysis._cpu_load import torch_threads

    with torch_threads(n_jobs), torch.no_grad(), Progress(len(X), "neighbours", "points") as bar:
        data = torch.from_numpy(X).to(device)
        sq_norms = (data * data).sum(dim=1)
        n = len(X)
        # One product gives |y|^2 - 2 x.y: rows [x, 1] times columns [-2 y, |y|^2]. Unlike
        # addmm with a broadcast |y|^2 (copied into the block, then read and rewritten by the
        # product), the block is written once, into a buffer reused for every block: 1.4x
        # faster at 70,000 points, where the search is bound by memory traffic.
        ones = torch.ones((n, 1), dtype=data.dtype, device=device)
        rows_aug = torch.cat([data, ones], dim=1)
        cols_aug = torch.cat([-2.0 * data, sq_norms[:, None]], dim=1)
        groups = on_cpu(device) and n >= _GROUPS_FROM * k * _GROUP
        width = -(-n // _GROUP) * _GROUP if groups else n
        if width > n:  # padding columns [0, ..., 0, inf]: at distance inf from every row
            padding = torch.zeros((width - n, cols_aug.shape[1]), dtype=data.dtype, device=device)
            padding[:, -1] = math.inf
            cols_aug = torch.cat([cols_aug, padding])
        cols_aug = cols_aug.T.contiguous()
        buffer = torch.empty((block, width), dtype=data.dtype, device=device)
        out_d = torch.empty((n, k), dtype=torch.float32, device=device)
        out_i = torch.empty((n, k), dtype=torch.int64, device=device)
        for start in range(0, n, block):
            stop = min(n, start + block)
            d = buffer[: stop - start]
            torch.mm(rows_aug[start:stop], cols_aug, out=d)
            rows = torch.arange(stop - start, device=device)
            d[rows, rows + start] = math.inf  # exclude the point itself
            vals, idx = _smallest_by_groups(d, k) if groups else _smallest(d, k)
            # |x_i|^2 is the same along a row: added after the selection, not to every
            # entry of the block (one pass less over a 1 GB block on a GPU).
            out_d[start:stop] = vals + sq_norms[start:stop, None]
            out_i[start:stop] = idx
            bar.update(stop - start)
    if as_tensors:
        return out_d.clamp_(min=0.0).double().sqrt_(), out_i
    return _finish(out_d.cpu().numpy(), out_i.cpu().numpy())
