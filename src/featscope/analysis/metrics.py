"""Quality metrics of an embedding map (does the map keep what the features know?).

Every function takes plain numpy arrays and returns plain Python numbers, so the results can go
straight into :class:`featscope.results.EmbeddingResult.metrics` and a run folder's JSON.

* :func:`knn_accuracy` -- leave-one-out k-nearest-neighbour classification accuracy. Computed in
  the feature space it says how well the features separate the classes; computed in the map it
  says how much of that separation the map kept.
* :func:`trustworthiness` -- :func:`sklearn.manifold.trustworthiness` on a seeded subsample:
  1.0 when every map neighbour is also a neighbour in the feature space.
* :func:`silhouette` -- :func:`sklearn.metrics.silhouette_score` of the classes in the map, or
  ``None`` when it is undefined (a single class).
* :func:`embedding_metrics` -- all of the above in one dict. For unlabelled samples (every
  label negative, featscope's -1) the label metrics are ``None`` and ``"skipped"`` maps each
  of them to the reason, so the dict stays JSON-ready and its keys stay the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from featscope.errors import ParameterError

__all__ = [
    "COUNT_METRICS",
    "NO_LABELS",
    "embedding_metrics",
    "knn_accuracy",
    "silhouette",
    "trustworthiness",
]

#: Entries of :func:`embedding_metrics` that count (samples, classes, neighbours) rather than
#: measure a map: recorded with it, not charted as scalars over training.
COUNT_METRICS = frozenset({"n_samples", "n_classes", "k", "n_misclassified", "n_clusters"})
#: Why :func:`embedding_metrics` leaves out the label metrics of unlabelled samples.
NO_LABELS = "the samples have no labels"
_LABEL_METRICS = ("knn_accuracy_features", "knn_accuracy_map", "silhouette_map")


def _as_2d(name: str, X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ParameterError(
            f"`{name}` must be a 2-D array (n_samples, n_dims); got shape {X.shape}; "
            "reshape it to one row per sample"
        )
    return X


def _check_labels(labels: Any, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ParameterError(
            f"`labels` must be 1-D with one entry per sample ({n}); got shape {labels.shape}; "
            "pass one class index per row"
        )
    return labels


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"The `k` parameter must be an integer >= 1; got {k!r}.")
    return int(k)


def _subsample(n: int, max_points: int | None, random_state: int | None) -> np.ndarray | None:
    """Sorted indices of a seeded subsample of ``max_points`` rows, or ``None`` for all rows."""
    if max_points is None or n <= max_points:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def knn_accuracy(X: Any, labels: Any, k: int = 10) -> float:
    """Leave-one-out k-nearest-neighbour classification accuracy.

    Each point is classified by the majority label among its ``k`` nearest *other* points
    (Euclidean distance; the point itself is never its own neighbour, even when it has exact
    duplicates). A tie between labels is broken nearest-first: of the tied labels, the one
    whose closest occurrence ranks nearest wins. This is deterministic and, unlike
    :class:`sklearn.neighbors.KNeighborsClassifier` (which picks the smallest label), does not
    favour low class indices.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_dims)
        Points (features or map coordinates).
    labels : array-like of shape (n_samples,)
        Class of every point (any integer or string labels).
    k : int, default 10
        Number of neighbours. When ``n_samples <= k`` the ``n_samples - 1`` other points are
        used.

    Returns
    -------
    float
        Fraction of points whose predicted label equals their own label (1.0 when there is a
        single class).

    Raises
    ------
    ParameterError
        ``X`` is not 2-D, ``labels`` does not have one entry per row, ``k < 1`` or there are
        fewer than 2 points.
    """
    from sklearn.neighbors import NearestNeighbors

    X = _as_2d("X", X)
    n = len(X)
    labels = _check_labels(labels, n)
    k = _check_k(k)
    if n < 2:
        raise ParameterError(f"k-NN accuracy needs at least 2 points; got {n}; pass more samples")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) == 1:
        return 1.0
    k = min(k, n - 1)
    # kneighbors() without a query excludes each point from its own neighbour list.
    index = NearestNeighbors(n_neighbors=k).fit(X)
    neighbours = index.kneighbors(return_distance=False)
    neighbour_labels = y[neighbours]  # (n, k), nearest first
    rows = np.arange(n)
    counts = np.zeros((n, len(classes)), dtype=np.int64)
    first_rank = np.full((n, len(classes)), k, dtype=np.int64)
    for rank in range(k - 1, -1, -1):
        counts[rows, neighbour_labels[:, rank]] += 1
        first_rank[rows, neighbour_labels[:, rank]] = rank
    # Most votes first; among equal votes, the label seen at the smallest rank.
    score = counts * (k + 1) + (k - first_rank)
    predicted = np.argmax(score, axis=1)
    return float(np.mean(predicted == y))


def trustworthiness(
    X: Any,
    coords: Any,
    k: int = 10,
    *,
    max_points: int | None = 5000,
    random_state: int | None = 0,
) -> float:
    """Trustworthiness of a map (are the map's neighbours also neighbours in ``X``?).

    A thin wrapper around :func:`sklearn.manifold.trustworthiness` (Venna and Kaski) that
    evaluates it on a seeded subsample, since it needs the full pairwise distance matrix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The high-dimensional points.
    coords : array-like of shape (n_samples, n_components)
        Their map coordinates, same row order.
    k : int, default 10
        Neighbourhood size. sklearn requires ``k < n / 2``, so it is lowered to
        ``ceil(n / 2) - 1`` on tiny inputs (``n`` after subsampling).
    max_points : int or None, default 5000
        Evaluate on at most this many rows, drawn without replacement with ``random_state``
        (``None``: all rows).
    random_state : int or None, default 0
        Seed of the subsample.

    Returns
    -------
    float
        Trustworthiness in [0, 1]; 1.0 means no false neighbours in the map.

    Raises
    ------
    ParameterError
        Shapes disagree, ``k < 1`` or there are fewer than 3 points.
    """
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    X = _as_2d("X", X)
    coords = _as_2d("coords", coords)
    k = _check_k(k)
    if len(X) != len(coords):
        raise ParameterError(
            f"`X` has {len(X)} rows but `coords` has {len(coords)}; "
            "pass the map of exactly these points"
        )
    rows = _subsample(len(X), max_points, random_state)
    if rows is not None:
        X, coords = X[rows], coords[rows]
    n = len(X)
    if n < 3:
        raise ParameterError(f"trustworthiness needs at least 3 points; got {n}; pass more samples")
    k = min(k, math.ceil(n / 2) - 1)
    return float(sk_trustworthiness(X, coords, n_neighbors=k))


def silhouette(
    coords: Any,
    labels: Any,
    *,
    max_points: int | None = 20000,
    random_state: int | None = 0,
) -> float | None:
    """Silhouette score of the classes in the map.

    Parameters
    ----------
    coords : array-like of shape (n_samples, n_components)
        Map coordinates.
    labels : array-like of shape (n_samples,)
        Class of every point.
    max_points : int or None, default 20000
        Score a seeded subsample of at most this many points (the score is quadratic in the
        number of points); ``None``: all of them.
    random_state : int or None, default 0
        Seed of the subsample.

    Returns
    -------
    float or None
        Mean silhouette coefficient in [-1, 1], or ``None`` when it is undefined: fewer than
        two classes, or as many classes as points.

    Raises
    ------
    ParameterError
        ``coords`` is not 2-D or ``labels`` does not have one entry per row.
    """
    from sklearn.metrics import silhouette_score

    coords = _as_2d("coords", coords)
    labels = _check_labels(labels, len(coords))
    rows = _subsample(len(coords), max_points, random_state)
    if rows is not None:
        coords, labels = coords[rows], labels[rows]
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels > len(coords) - 1:
        return None
    score = float(silhouette_score(coords, labels))
    return None if math.isnan(score) else score


def embedding_metrics(
    features: Any,
    coords: Any,
    labels: Any,
    *,
    k: int = 10,
    max_trustworthiness_points: int | None = 5000,
    max_silhouette_points: int | None = 20000,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """All quality metrics of a map, as a JSON-ready dict.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
        The features the map was made from. Metrics use them as given (the original
        features, not the PCA-reduced copy that :class:`~featscope.analysis.TSNE` optimises
        on).
    coords : array-like of shape (n_samples, n_components)
        The map.
    labels : array-like of shape (n_samples,)
        Class of every sample.
    k : int, default 10
        Neighbourhood size of the k-NN accuracies and of trustworthiness (lowered on tiny
        inputs; the value used is returned as ``"k"``).
    max_trustworthiness_points : int or None, default 5000
        Trustworthiness is computed on a seeded subsample of at most this many points.
    max_silhouette_points : int or None, default 20000
        The silhouette score is computed on a seeded subsample of at most this many points.
    random_state : int or None, default 0
        Seed of the subsamples.

    Returns
    -------
    dict
        ``knn_accuracy_features``, ``knn_accuracy_map`` (floats in [0, 1], leave-one-out,
        see :func:`knn_accuracy`), ``trustworthiness`` (float), ``silhouette_map`` (float or
        ``None`` with one class), ``n_samples``, ``n_classes`` and ``k`` (ints). When every
        label is negative (unlabelled data) the k-NN accuracies and the silhouette are
        ``None``, ``n_classes`` is 0, and ``skipped`` maps those three names to
        :data:`NO_LABELS` (the reason); ``skipped`` is absent otherwise.

    Raises
    ------
    ParameterError
        The arrays disagree in length or shape, or there are fewer than 3 samples.
    """
    features = _as_2d("features", features)
    coords = _as_2d("coords", coords)
    n = len(features)
    if len(coords) != n:
        raise ParameterError(
            f"`features` has {n} rows but `coords` has {len(coords)}; "
            "pass the map of exactly these samples"
        )
    labels = _check_labels(labels, n)
    k_used = min(_check_k(k), max(n - 1, 1))
    trust = trustworthiness(
        features,
        coords,
        k_used,
        max_points=max_trustworthiness_points,
        random_state=random_state,
    )
    if n and np.issubdtype(labels.dtype, np.number) and bool(np.all(labels < 0)):
        skipped = dict.fromkeys(_LABEL_METRICS, NO_LABELS)
        return {
            **dict.fromkeys(_LABEL_METRICS),
            "trustworthiness": trust,
            "n_samples": int(n),
            "n_classes": 0,
            "k": int(k_used),
            "skipped": skipped,
        }
    return {
        "knn_accuracy_features": knn_accuracy(features, labels, k_used),
        "knn_accuracy_map": knn_accuracy(coords, labels, k_used),
        "trustworthiness": trust,
        "silhouette_map": silhouette(
            coords, labels, max_points=max_silhouette_points, random_state=random_state
        ),
        "n_samples": int(n),
        "n_classes": len(np.unique(labels)),
        "k": int(k_used),
    }
