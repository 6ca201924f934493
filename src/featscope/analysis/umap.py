"""UMAP maps of feature vectors, through umap-learn (the ``umap`` extra)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from featscope.analysis.params import (
    Delegated,
    Interval,
    Parameter,
    check_parameters,
    check_samples,
)

__all__ = ["PARAMETERS", "umap_map"]

_UMAP = "umap-learn"

#: The UMAP parameters featscope passes on (besides ``n_components`` and ``random_state``):
#: umap-learn's defaults, checked here where a bad value would fail late or obscurely.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "n_neighbors",
        15,
        Interval(numbers.Integral, 2),
        "neighbours of each point's fuzzy neighbourhood, lowered to n_samples - 1",
    ),
    Parameter("min_dist", 0.1, Interval(numbers.Real, 0), "smallest distance between points"),
    Parameter("metric", "euclidean", Delegated(_UMAP), "distance between feature vectors"),
    Parameter("spread", 1.0, Delegated(_UMAP), "scale of the embedded points"),
    Parameter("n_epochs", None, Delegated(_UMAP), "training epochs; None: umap-learn's choice"),
    Parameter("init", "spectral", Delegated(_UMAP), "start positions"),
)


def umap_map(
    X: Any, n_components: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """UMAP of ``X``: the map and the parameters it used.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors, one row per sample.
    n_components : int
        Map dimension (2 or 3).
    random_state : int or None
        Seed.
    params : dict
        Every parameter of :data:`PARAMETERS`.

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components)
        The map (float64).
    params : dict
        ``params`` with ``n_neighbors`` as used, ``n_components`` and ``random_state``.

    Raises
    ------
    ParameterError
        Unusable ``X`` or a value outside its rule.
    MissingExtraError
        umap-learn is not installed.
    """
    from featscope._optional import require

    umap = require("umap", extra="umap", purpose="UMAP maps")
    X = check_samples(X, what="UMAP")
    check_parameters(PARAMETERS, params)
    n_samples = len(X)
    n_neighbors = params["n_neighbors"]
    if n_neighbors > n_samples - 1:
        warnings.warn(
            f"`n_neighbors` {n_neighbors} is too large for {n_samples} samples; "
            f"using {n_samples - 1}",
            UserWarning,
            stacklevel=3,
        )
        n_neighbors = n_samples - 1
    used = {**params, "n_neighbors": n_neighbors}
    # A seeded UMAP runs single-threaded; saying so avoids umap's warning about it.
    reducer = umap.UMAP(n_components=n_components, random_state=random_state, n_jobs=1, **used)
    coords = np.asarray(reducer.fit_transform(X), dtype=np.float64)
    used.update(n_components=n_components, random_state=random_state)
    return coords, used
