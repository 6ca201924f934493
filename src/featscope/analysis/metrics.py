"""Quality metrics of an embedding map (does the map keep what the features know?).

Every function takes plain numpy arrays and returns plain Python numbers, so the results can go
straight into :class:`featscope.results.EmbeddingResult.metrics` and a run folder's JSON.

* :func:`knn_accuracy` -- leave-one-out k-nearest-neighbour classification accuracy. Computed in
  the feature space it says how well the features separate the classes; computed in the map it
  says how much of that separation the map kept. It accepts a neighbour graph already computed
  (the t-SNE's own exact search of the features), so the features are not searched twice.
* :func:`trustworthiness` -- Venna and Kaski's trustworthiness on a seeded subsample: 1.0 when
  every map neighbour is also a neighbour in the feature space.
* :func:`silhouette` -- the silhouette score of the classes in the map on a seeded subsample of
  at most 10,000 points, or ``None`` when it is undefined (a single class).

Trustworthiness and the silhouette are written here, by blocks of one matrix product, rather
than called from scikit-learn: sklearn's ``trustworthiness`` argsorts the whole distance matrix
and its ``silhouette_score`` reduces each distance block class by class, together 4 s of a 14 s
``featscope tsne`` run at 20,000 points (issue 18). The same numbers (tests compare them with
sklearn's to 1e-12) come from counting, for each map neighbour, the points nearer in the
features, and from one product of the distance block with the class indicator matrix.
* :func:`embedding_metrics` -- all of the above in one dict. For unlabelled samples (every
  label negative, featscope's -1) the label metrics are ``None`` and ``"skipped"`` maps each
  of them to the reason, so the dict stays JSON-ready and its keys stay the same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from featscope.errors import ParameterError
from featscope.progress import Progress

__all__ = [
    "COUNT_METRICS",
    "NO_LABELS",
    "SILHOUETTE_POINTS",
    "embedding_metrics",
    "knn_accuracy",
    "map_neighbors",
    "silhouette",
    "trustworthiness",
]

#: Entries of :func:`embedding_metrics` that count (samples, classes, neighbours) rather than
#: measure a map: recorded with it, not charted as scalars over training.
COUNT_METRICS = frozenset(
    {"n_samples", "n_classes", "k", "n_misclassified", "n_clusters", "silhouette_points"}
)
#: Default size of the silhouette's seeded subsample (the score is quadratic in the points).
SILHOUETTE_POINTS = 10_000
#: Rows of a distance block (bounded memory: block x n float64).
_BLOCK_BYTES = 32 * 2**20
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


def map_neighbors(coords: np.ndarray, k: int) -> np.ndarray:
    """Find the ``k`` nearest other points of every row of a low-dimensional map, nearest first.

    A k-d tree (:class:`scipy.spatial.cKDTree`, all cores): at 70,000 2-D points it answers in
    a fraction of the time of a brute-force search. A point is never its own neighbour, even
    when it has exact duplicates.

    Parameters
    ----------
    coords : ndarray of shape (n_samples, n_dims)
        Points (a map; any dimension works, the tree is fast up to about 10).
    k : int
        Neighbours per point, ``1 <= k < n_samples``.

    Returns
    -------
    ndarray of shape (n_samples, k)
        Row indices (int64).
    """
    from scipy.spatial import cKDTree

    n = len(coords)
    _, idx = cKDTree(coords).query(coords, k=k + 1, workers=-1)
    idx = np.asarray(idx, dtype=np.int64).reshape(n, k + 1)
    # Drop each point itself; where duplicates pushed it out of its own list, drop the farthest.
    own = idx == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    own &= np.cumsum(own, axis=1) == 1  # one column per row, even if listed twice
    return idx[~own].reshape(n, k)


def _feature_neighbors(X: np.ndarray, k: int) -> np.ndarray:
    """Exact ``k`` nearest other rows of ``X`` (Euclidean), the t-SNE's blocked search."""
    from featscope.analysis._tsne_neighbors import exact_neighbors

    if X.shape[1] <= 3:
        return map_neighbors(np.asarray(X, dtype=np.float64), k)
    return exact_neighbors(np.asarray(X, dtype=np.float32), k)[1]


def knn_accuracy(X: Any, labels: Any, k: int = 10, *, neighbors: Any = None) -> float:
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
    neighbors : array-like of shape (n_samples, >= k), optional
        Each point's nearest other points, nearest first, already found (the t-SNE's exact
        neighbour graph of the same ``X``): its first ``k`` columns are used and no search
        runs. Default: an exact search (a k-d tree for maps of up to 3 dimensions, blocks of
        one matrix product above).

    Returns
    -------
    float
        Fraction of points whose predicted label equals their own label (1.0 when there is a
        single class).

    Raises
    ------
    ParameterError
        ``X`` is not 2-D, ``labels`` does not have one entry per row, ``k < 1``, there are
        fewer than 2 points, or ``neighbors`` has too few rows or columns.
    """
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
    if neighbors is not None:
        neighbors = np.asarray(neighbors)
        if neighbors.ndim != 2 or len(neighbors) != n or neighbors.shape[1] < k:
            raise ParameterError(
                f"`neighbors` must have shape (n_samples, >= k) = ({n}, >= {k}); got "
                f"{neighbors.shape}; pass each point's nearest neighbours or None"
            )
        neighbours = neighbors[:, :k]
    else:
        neighbours = _feature_neighbors(X, k)
    return _vote(y.reshape(-1)[neighbours], y.reshape(-1), len(classes), k)


def _vote(neighbour_labels: np.ndarray, y: np.ndarray, n_classes: int, k: int) -> float:
    """Accuracy of the nearest-first majority vote of ``(n, k)`` neighbour labels."""
    n = len(y)
    rows = np.arange(n)
    counts = np.zeros((n, n_classes), dtype=np.int64)
    first_rank = np.full((n, n_classes), k, dtype=np.int64)
    for rank in range(k - 1, -1, -1):
        counts[rows, neighbour_labels[:, rank]] += 1
        first_rank[rows, neighbour_labels[:, rank]] = rank
    # Most votes first; among equal votes, the label seen at the smallest rank.
    score = counts * (k + 1) + (k - first_rank)
    predicted = np.argmax(score, axis=1)
    return float(np.mean(predicted == y))


def _sq_distances(A: np.ndarray, B: np.ndarray, sq_b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of ``A`` and ``B`` (float64, clipped at 0)."""
    d = A @ B.T
    d *= -2.0
    d += sq_b[None, :]
    d += np.einsum("ij,ij->i", A, A)[:, None]
    return np.maximum(d, 0.0, out=d)


def _rows_per_block(n: int, width: int = 1) -> int:
    return max(1, min(n, _BLOCK_BYTES // (8 * n * width)))


def trustworthiness(
    X: Any,
    coords: Any,
    k: int = 10,
    *,
    max_points: int | None = 5000,
    random_state: int | None = 0,
) -> float:
    """Trustworthiness of a map (are the map's neighbours also neighbours in ``X``?).

    Venna and Kaski's measure, the same number as :func:`sklearn.manifold.trustworthiness`,
    on a seeded subsample (it needs every distance between the points):
    ``1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_i} (r(i, j) - k)``, where ``U_i`` are
    the ``k`` map neighbours of point ``i`` that are not among its ``k`` nearest in ``X`` and
    ``r(i, j)`` is the rank of ``j`` among the points nearest to ``i`` in ``X``. Ranks are
    counted (1 + points strictly nearer), not sorted for: equal distances share the best rank,
    where sklearn's argsort orders ties arbitrarily.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The high-dimensional points.
    coords : array-like of shape (n_samples, n_components)
        Their map coordinates, same row order.
    k : int, default 10
        Neighbourhood size. As in sklearn it must be ``k < n / 2``, so it is lowered to
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
    map_nn = map_neighbors(np.asarray(coords, dtype=np.float64), k)
    # Centring keeps |x|^2 + |y|^2 - 2 x.y accurate; float64 keeps the ranks exact.
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    sq = np.einsum("ij,ij->i", X, X)
    penalty = 0
    block = _rows_per_block(n, k)
    for start in range(0, n, block):
        stop = min(n, start + block)
        d = _sq_distances(X[start:stop], X, sq)
        local = np.arange(stop - start)
        d[local, local + start] = np.inf  # a point is not its own neighbour
        to_map_nn = d[local[:, None], map_nn[start:stop]]  # (b, k)
        # rank = 1 + points strictly nearer; penalised when beyond the k nearest.
        ranks = 1 + np.count_nonzero(d[:, None, :] < to_map_nn[:, :, None], axis=2)
        penalty += int(np.sum(np.maximum(ranks - k, 0)))
    return float(1.0 - penalty * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))))


def silhouette(
    coords: Any,
    labels: Any,
    *,
    max_points: int | None = SILHOUETTE_POINTS,
    random_state: int | None = 0,
) -> float | None:
    """Silhouette score of the classes in the map.

    The mean over points of ``(b - a) / max(a, b)``, ``a`` the mean distance to the other
    points of the same class, ``b`` the smallest mean distance to another class (0 for a
    point alone in its class): :func:`sklearn.metrics.silhouette_score`'s number, computed by
    blocks of one matrix product.

    Parameters
    ----------
    coords : array-like of shape (n_samples, n_components)
        Map coordinates.
    labels : array-like of shape (n_samples,)
        Class of every point.
    max_points : int or None, default 10000
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
    coords = _as_2d("coords", coords)
    labels = _check_labels(labels, len(coords))
    rows = _subsample(len(coords), max_points, random_state)
    if rows is not None:
        coords, labels = coords[rows], labels[rows]
    classes, y = np.unique(labels, return_inverse=True)
    y = y.reshape(-1)
    n, n_labels = len(coords), len(classes)
    if n_labels < 2 or n_labels > n - 1:
        return None
    from scipy.spatial.distance import cdist

    P = np.asarray(coords, dtype=np.float64)
    onehot = np.zeros((n, n_labels))
    onehot[np.arange(n), y] = 1.0
    sizes = onehot.sum(axis=0)
    scores = np.empty(n)
    block = _rows_per_block(n, 2)  # 16 MB of distances: fast in cache, cdist's one pass
    for start in range(0, n, block):
        stop = min(n, start + block)
        d = cdist(P[start:stop], P)
        local = np.arange(stop - start)
        d[local, local + start] = 0.0  # rounding must not count a point's distance to itself
        sums = d @ onehot  # (b, classes): summed distance to each class
        own = y[start:stop]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = sums[local, own] / (sizes[own] - 1)
            means = sums / sizes
            means[local, own] = np.inf
            b = means.min(axis=1)
            s = (b - a) / np.maximum(a, b)
        s[sizes[own] == 1] = 0.0  # sklearn's convention for a class of one
        scores[start:stop] = np.nan_to_num(s)
    score = float(np.mean(scores))
    return None if math.isnan(score) else score


def embedding_metrics(
    features: Any,
    coords: Any,
    labels: Any,
    *,
    k: int = 10,
    max_trustworthiness_points: int | None = 5000,
    max_silhouette_points: int | None = SILHOUETTE_POINTS,
    random_state: int | None = 0,
    feature_neighbors: Any = None,
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
    max_silhouette_points : int or None, default 10000
        The silhouette score is computed on a seeded subsample of at most this many points
        (the number used is returned as ``"silhouette_points"``).
    random_state : int or None, default 0
        Seed of the subsamples.
    feature_neighbors : array-like of shape (n_samples, >= k), optional
        Each sample's exact nearest other samples in ``features`` (Euclidean), nearest first:
        the t-SNE's neighbour graph when it searched these very features. The feature k-NN
        accuracy then needs no second search.

    Returns
    -------
    dict
        ``knn_accuracy_features``, ``knn_accuracy_map`` (floats in [0, 1], leave-one-out,
        see :func:`knn_accuracy`), ``trustworthiness`` (float), ``silhouette_map`` (float or
        ``None`` with one class), ``silhouette_points``, ``n_samples``, ``n_classes`` and
        ``k`` (ints). When every label is negative (unlabelled data) the k-NN accuracies and
        the silhouette are ``None``, ``n_classes`` is 0, and ``skipped`` maps those three
        names to :data:`NO_LABELS` (the reason); ``skipped`` is absent otherwise.

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
    unlabelled = n and np.issubdtype(labels.dtype, np.number) and bool(np.all(labels < 0))
    with Progress(1 if unlabelled else 4, "quality metrics", "metrics") as bar:
        trust = trustworthiness(
            features,
            coords,
            k_used,
            max_points=max_trustworthiness_points,
            random_state=random_state,
        )
        bar.update(note="trustworthiness")
        if unlabelled:
            skipped = dict.fromkeys(_LABEL_METRICS, NO_LABELS)
            return {
                **dict.fromkeys(_LABEL_METRICS),
                "trustworthiness": trust,
                "silhouette_points": 0,
                "n_samples": int(n),
                "n_classes": 0,
                "k": int(k_used),
                "skipped": skipped,
            }
        knn_features = knn_accuracy(features, labels, k_used, neighbors=feature_neighbors)
        bar.update(note="10-NN accuracy, features")
        knn_map = knn_accuracy(coords, labels, k_used)
        bar.update(note="10-NN accuracy, map")
        sil = silhouette(
            coords, labels, max_points=max_silhouette_points, random_state=random_state
        )
        bar.update(note="silhouette")
    sample = n if max_silhouette_points is None else min(n, int(max_silhouette_points))
    return {
        "knn_accuracy_features": knn_features,
        "knn_accuracy_map": knn_map,
        "trustworthiness": trust,
        "silhouette_map": sil,
        "silhouette_points": int(sample),
        "n_samples": int(n),
        "n_classes": len(np.unique(labels)),
        "k": int(k_used),
    }
