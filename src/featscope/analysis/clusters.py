"""Clusters in feature space, and how pure they are against the labels.

Every map gets a ``cluster`` column: the groups the features form on their own, which is the
colouring of unlabelled data and, beside the labels, a way to see classes that split or merge.

The default is scikit-learn's k-means on the features reduced by PCA to at most
:data:`PCA_DIMS` dimensions (seeded): with the number of classes present as k for labelled
data, else the k in 2..:data:`MAX_AUTO_K` with the best silhouette on a seeded sample.
HDBSCAN (``method="hdbscan"``) is available too, but it is not the default: on pooled CNN
features it calls a third to a half of the samples noise (digits, 1,797 samples: 36-60 %
noise for min_cluster_size 10-36), and it took 45 s on 20,000 samples of 30 dimensions on
2 cores, where k-means takes about a second.

scikit-learn's k-means runs on OpenMP threads that spin at their barriers: on a machine whose
other processes keep the cores busy, two threads took 2.4 s where one took 0.04 s (1,000 x 50,
k = 10, load average 12 on 2 cores). The fit runs on the cores other processes leave idle
(:func:`featscope.analysis._cpu_load.effective_n_jobs`, as the t-SNE does); the clusters do not
depend on the thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featscope.analysis._cpu_load import effective_n_jobs
from featscope.errors import ParameterError

__all__ = ["MAX_AUTO_K", "PCA_DIMS", "cluster_features", "cluster_purity"]

#: Features are reduced to this many PCA dimensions before clustering (fewer when narrower).
PCA_DIMS = 50
#: Largest k tried for unlabelled data.
MAX_AUTO_K = 15
#: Samples the silhouette of each k is measured on (seeded subset).
_SILHOUETTE_SAMPLE = 2000
METHODS = ("kmeans", "hdbscan")


def _reduced(X: np.ndarray, random_state: int | None) -> np.ndarray:
    from sklearn.decomposition import PCA

    dims = min(PCA_DIMS, X.shape[1], X.shape[0])
    if dims >= X.shape[1]:
        return X.astype(np.float64)
    return PCA(n_components=dims, random_state=random_state).fit_transform(X.astype(np.float64))


def cluster_features(
    X: Any,
    labels: Any = None,
    *,
    method: str = "kmeans",
    n_clusters: int | None = None,
    min_cluster_size: int | None = None,
    random_state: int | None = 0,
) -> np.ndarray:
    """Cluster feature vectors.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors.
    labels : array-like of shape (n_samples,), optional
        Class indices (-1: unlabelled); with k-means and no ``n_clusters``, k is the number of
        classes present.
    method : {"kmeans", "hdbscan"}, default "kmeans"
        The algorithm (see the module docstring).
    n_clusters : int, optional
        k of k-means; default from the labels, else chosen by silhouette.
    min_cluster_size : int, optional
        HDBSCAN's smallest cluster; default ``max(5, n_samples // 100)``.
    random_state : int or None, default 0
        Seed of PCA, k-means and the silhouette sample.

    Returns
    -------
    ndarray of shape (n_samples,)
        int64 cluster of each sample, numbered from 0; -1 is noise (HDBSCAN only).

    Raises
    ------
    ParameterError
        For an unknown method, a 2-D shape violation, or a bad ``n_clusters``.
    """
    if method not in METHODS:
        raise ParameterError(f"unknown cluster method {method!r}; choose one of {METHODS}")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ParameterError(f"`X` must be 2-D (n_samples, n_features); got shape {X.shape}")
    n = len(X)
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(effective_n_jobs(-1)):
        return _cluster(X, labels, method, n_clusters, min_cluster_size, random_state)


def _cluster(
    X: np.ndarray,
    labels: Any,
    method: str,
    n_clusters: int | None,
    min_cluster_size: int | None,
    random_state: int | None,
) -> np.ndarray:
    n = len(X)
    Z = _reduced(X, random_state)
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        size = max(5, n // 100) if min_cluster_size is None else int(min_cluster_size)
        found = HDBSCAN(min_cluster_size=min(size, n), copy=True).fit_predict(Z)
        return np.asarray(found, dtype=np.int64)
    if n_clusters is None and labels is not None:
        present = np.unique(np.asarray(labels)[np.asarray(labels) >= 0])
        n_clusters = len(present) if len(present) >= 2 else None
    if n_clusters is None:
        n_clusters = _best_k(Z, random_state)
    if (
        isinstance(n_clusters, bool)
        or not isinstance(n_clusters, (int, np.integer))
        or (n_clusters < 1)
    ):
        raise ParameterError(f"`n_clusters` must be a positive integer; got {n_clusters!r}")
    return _kmeans(Z, min(int(n_clusters), n), random_state)


def _kmeans(Z: np.ndarray, k: int, random_state: int | None, n_init: int = 3) -> np.ndarray:
    from sklearn.cluster import KMeans

    found = KMeans(n_clusters=k, n_init=n_init, random_state=random_state).fit_predict(Z)
    return np.asarray(found, dtype=np.int64)


def _best_k(Z: np.ndarray, random_state: int | None) -> int:
    from sklearn.metrics import silhouette_score

    n = len(Z)
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, size=min(n, _SILHOUETTE_SAMPLE), replace=False))
    best, best_score = 2, -np.inf
    for k in range(2, min(MAX_AUTO_K, n - 1) + 1):
        found = _kmeans(Z[rows], k, random_state, n_init=1)  # a search: one start per k
        if len(np.unique(found)) < 2:
            continue
        score = silhouette_score(Z[rows], found)
        if score > best_score:
            best, best_score = k, score
    return best


def cluster_purity(clusters: Any, labels: Any) -> float | None:
    """Fraction of samples whose class is the majority class of their cluster.

    Noise (-1) and unlabelled samples (-1) are left out.

    Parameters
    ----------
    clusters : array-like of shape (n_samples,)
        Cluster of each sample.
    labels : array-like of shape (n_samples,)
        Class of each sample.

    Returns
    -------
    float or None
        Purity in [0, 1] (1: every cluster holds one class); None when no sample is both
        labelled and in a cluster.
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    keep = (clusters >= 0) & (labels >= 0)
    if not np.any(keep):
        return None
    clusters, labels = clusters[keep], labels[keep]
    majority = 0
    for c in np.unique(clusters):
        majority += int(np.bincount(labels[clusters == c]).max())
    return majority / len(labels)
