"""Start positions of featscope's t-SNE: openTSNE's "pca" and "random", or the caller's array."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["initial_positions", "pca_init"]


def initial_positions(
    init: Any, X: np.ndarray, n_components: int, random_state: int | None
) -> np.ndarray:
    """Start the map at "pca" (:func:`pca_init`), "random" (openTSNE's) or ``init`` itself.

    Parameters
    ----------
    init : {"pca", "random"} or array of shape (n_samples, n_components)
        The ``init`` parameter (already checked).
    X : ndarray of shape (n_samples, n_features)
        The (PCA-reduced) data.
    n_components : int
        Map dimension.
    random_state : int or None
        Seed of the random start.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
        float64 start positions.
    """
    if isinstance(init, str) and init == "pca":
        return pca_init(X, n_components, random_state)
    if isinstance(init, str):
        from openTSNE import initialization

        return initialization.random(len(X), n_components=n_components, random_state=random_state)
    return np.array(init, dtype=np.float64)


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
