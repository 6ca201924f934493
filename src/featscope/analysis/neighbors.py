"""Nearest neighbours in feature space, for the page's neighbour inspector.

scikit-learn's :class:`~sklearn.neighbors.NearestNeighbors` (exact, Euclidean) on the features a
map was made from, so that "the samples nearest this one" means nearest for the model, not on the
picture, where t-SNE may have torn a neighbourhood apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["N_NEIGHBORS", "feature_neighbors"]

#: Neighbours kept per sample.
N_NEIGHBORS = 10


def feature_neighbors(X: Any, k: int = N_NEIGHBORS) -> np.ndarray:
    """Return the rows of each sample's ``k`` nearest neighbours, nearest first.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors.
    k : int, default 10
        Neighbours per sample; fewer (``n_samples - 1``) for small inputs.

    Returns
    -------
    ndarray of shape (n_samples, min(k, n_samples - 1))
        int32 row indices; a sample is never its own neighbour.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X)
    n = len(X)
    k = min(int(k), n - 1)
    if k < 1:
        return np.zeros((n, 0), dtype=np.int32)
    from threadpoolctl import threadpool_limits

    from featscope.analysis._cpu_load import effective_n_jobs

    # the cores other processes leave idle (see featscope.analysis.clusters); kneighbors()
    # without a query leaves each point out of its own list
    with threadpool_limits(effective_n_jobs(-1)):
        index = NearestNeighbors(n_neighbors=k).fit(X)
        return index.kneighbors(return_distance=False).astype(np.int32)
