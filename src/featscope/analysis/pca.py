"""PCA with scikit-learn: maps of feature vectors, and the reduction before a t-SNE."""

from __future__ import annotations

from typing import Any

import numpy as np

from featscope.analysis.params import Delegated, Parameter, check_samples
from featscope.errors import ParameterError

__all__ = ["PARAMETERS", "pca_map", "reduce_dims"]

_SKLEARN = "sklearn.decomposition.PCA"

#: The PCA parameters featscope passes on (besides ``n_components`` and ``random_state``),
#: with scikit-learn's defaults; scikit-learn checks them.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter("whiten", False, Delegated(_SKLEARN), "scale the components to unit variance"),
    Parameter("svd_solver", "auto", Delegated(_SKLEARN), "scikit-learn's SVD solver"),
)


def pca_map(
    X: Any, n_components: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA map of ``X``: the map and the parameters it used.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors, one row per sample.
    n_components : int
        Map dimension (2 or 3).
    random_state : int or None
        Seed of the randomized solvers.
    params : dict
        Every parameter of :data:`PARAMETERS`.

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components)
        The map (float64).
    params : dict
        ``params`` with ``n_components``, ``random_state`` and each component's
        ``explained_variance_ratio``.

    Raises
    ------
    ParameterError
        Unusable ``X``, or fewer features than components.
    """
    from sklearn.decomposition import PCA

    X = check_samples(X, what="PCA", min_samples=n_components)
    if X.shape[1] < n_components:
        raise ParameterError(
            f"PCA to {n_components} components needs at least {n_components} features; "
            f"got {X.shape[1]}; use fewer components"
        )
    pca = PCA(n_components=n_components, random_state=random_state, **params)
    coords = np.asarray(pca.fit_transform(X), dtype=np.float64)
    used = {
        **params,
        "n_components": n_components,
        "random_state": random_state,
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
    }
    return coords, used


def reduce_dims(X: np.ndarray, n_components: int, random_state: int | None) -> np.ndarray:
    """Seeded float32 PCA (sklearn picks the solver: randomized for large, wide inputs)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, svd_solver="auto", random_state=random_state)
    return np.ascontiguousarray(pca.fit_transform(X), dtype=np.float32)
