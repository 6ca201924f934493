"""Embedding quality metrics: known answers on constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from featscope.analysis import embedding_metrics, knn_accuracy, silhouette, trustworthiness
from featscope.errors import ParameterError


def _blobs(n_per_class: int = 30, dims: int = 5, gap: float = 50.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = np.concatenate(
        [rng.normal(0, 1, (n_per_class, dims)), rng.normal(gap, 1, (n_per_class, dims))]
    )
    y = np.repeat([0, 1], n_per_class)
    return X, y


def test_separated_blobs_give_perfect_knn_and_high_silhouette():
    X, y = _blobs()
    assert knn_accuracy(X, y, k=10) == 1.0
    assert silhouette(X[:, :2], y) > 0.95


def test_knn_accuracy_is_leave_one_out_with_nearest_first_ties():
    # Points on a line: 0,1 are class 0; 10,11 class 1; the 1-NN of each point is the other
    # point of its class, so leave-one-out accuracy is 1 (0 if the point counted itself wrongly).
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    assert knn_accuracy(X, y, k=1) == 1.0
    # k=2 on [0, 1, 2.5] labelled [a, b, b]: point 0 sees 1 (b) then 2.5 (b) -> b, wrong;
    # point 1 sees 0 (a) and 2.5 (b): a tie, the nearest (0, a) wins -> wrong;
    # point 2.5 sees 1 (b) then 0 (a): tie, nearest b wins -> right.
    X = np.array([[0.0], [1.0], [2.5]])
    assert knn_accuracy(X, np.array([0, 1, 1]), k=2) == pytest.approx(1 / 3)


def test_knn_accuracy_excludes_self_even_with_duplicates():
    X = np.array([[0.0], [0.0], [5.0], [5.0]])
    y = np.array([0, 1, 0, 1])
    # Each point's only neighbour at k=1 is its duplicate, which has the other label.
    assert knn_accuracy(X, y, k=1) == 0.0


def test_knn_accuracy_small_n_and_single_class():
    X, y = _blobs(n_per_class=3)
    # k is lowered to n - 1 = 5: each point then sees its 2 class mates and 3 others -> wrong.
    assert knn_accuracy(X, y, k=50) == 0.0
    assert knn_accuracy(X, y, k=2) == 1.0
    assert knn_accuracy(X, np.zeros(len(X)), k=5) == 1.0


def test_trustworthiness_of_affine_map_is_one_and_shuffled_is_low():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    A = np.array([[2.0, 0.5], [-0.5, 2.0]])  # rotation + uniform scale: distances keep order
    assert trustworthiness(X, X @ A.T + 3.0, k=10) == pytest.approx(1.0)
    shuffled = X[rng.permutation(len(X))]
    assert trustworthiness(X, shuffled, k=10) < 0.6


def test_trustworthiness_subsample_is_seeded():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    coords = X[:, :2]
    a = trustworthiness(X, coords, max_points=100, random_state=3)
    b = trustworthiness(X, coords, max_points=100, random_state=3)
    c = trustworthiness(X, coords, max_points=None)
    assert a == b
    assert a != c


def test_silhouette_none_for_one_class():
    X, _ = _blobs()
    assert silhouette(X[:, :2], np.zeros(len(X))) is None


def test_embedding_metrics_keys_and_values():
    X, y = _blobs()
    m = embedding_metrics(X, X[:, :2], y, k=10)
    assert m["knn_accuracy_features"] == 1.0
    assert m["knn_accuracy_map"] == 1.0
    assert m["trustworthiness"] > 0.9
    assert m["silhouette_map"] > 0.95
    assert (m["n_samples"], m["n_classes"], m["k"]) == (60, 2, 10)


def test_embedding_metrics_tiny_input_lowers_k():
    X, y = _blobs(n_per_class=2)
    m = embedding_metrics(X, X[:, :2], y, k=10)
    assert m["k"] == 3
    # With k = 3 of 4 points, each point sees 1 class mate and 2 others.
    assert m["knn_accuracy_map"] == 0.0


def test_metric_errors_name_the_problem():
    X, y = _blobs()
    with pytest.raises(ParameterError, match="`k` parameter must be an integer >= 1; got 0"):
        knn_accuracy(X, y, k=0)
    with pytest.raises(ParameterError, match="`labels` must be 1-D with one entry per sample"):
        knn_accuracy(X, y[:-1])
    with pytest.raises(ParameterError, match="`features` has 60 rows but `coords` has 59"):
        embedding_metrics(X, X[:-1, :2], y)


def test_unlabelled_samples_skip_the_label_metrics_with_a_reason():
    import json

    from featscope.analysis.metrics import NO_LABELS

    X, _ = _blobs()
    metrics = embedding_metrics(X, X[:, :2], np.full(len(X), -1), k=5)
    assert metrics["knn_accuracy_features"] is None
    assert metrics["knn_accuracy_map"] is None
    assert metrics["silhouette_map"] is None
    assert metrics["skipped"] == {
        "knn_accuracy_features": NO_LABELS,
        "knn_accuracy_map": NO_LABELS,
        "silhouette_map": NO_LABELS,
    }
    assert NO_LABELS == "the samples have no labels"
    assert 0.0 <= metrics["trustworthiness"] <= 1.0
    assert (metrics["n_samples"], metrics["n_classes"], metrics["k"]) == (60, 0, 5)
    assert json.loads(json.dumps(metrics)) == metrics  # JSON as it is
    # labelled data: no "skipped" entry
    assert "skipped" not in embedding_metrics(*_blobs()[:1], _blobs()[0][:, :2], _blobs()[1])


def test_trustworthiness_and_silhouette_are_sklearns_numbers():
    from sklearn.manifold import trustworthiness as sk_trust
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, 12))
    coords = X[:, :2] + rng.normal(scale=0.8, size=(700, 2))
    y = rng.integers(0, 5, 700)
    assert trustworthiness(X, coords, 7, max_points=None) == pytest.approx(
        sk_trust(X, coords, n_neighbors=7), abs=1e-12
    )
    assert silhouette(coords, y, max_points=None) == pytest.approx(
        silhouette_score(coords, y), abs=1e-12
    )
    # a class of one point scores 0 for that point, as in sklearn
    y[0] = 9
    assert silhouette(coords, y, max_points=None) == pytest.approx(
        silhouette_score(coords, y), abs=1e-12
    )


def test_silhouette_sample_is_at_most_10000_points_and_said_in_the_metrics():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(10_050, 3))
    y = rng.integers(0, 3, len(X))
    m = embedding_metrics(X, X[:, :2], y, max_trustworthiness_points=200)
    assert m["silhouette_points"] == 10_000
    assert m["silhouette_map"] == pytest.approx(silhouette(X[:, :2], y, max_points=10_000))
    assert embedding_metrics(X[:50], X[:50, :2], y[:50])["silhouette_points"] == 50


def test_knn_accuracy_reuses_a_given_neighbour_graph(monkeypatch):
    from featscope.analysis import metrics

    X, y = _blobs()
    expected = knn_accuracy(X, y, 5)
    graph = metrics.map_neighbors(X, 12)
    monkeypatch.setattr(metrics, "_feature_neighbors", lambda *a: pytest.fail("searched again"))
    assert knn_accuracy(X, y, 5, neighbors=graph) == expected
    # a graph whose neighbours are all of another class gives accuracy 0: it is really used
    other = np.array([np.flatnonzero(y != c)[:5] for c in y])
    assert knn_accuracy(X, y, 5, neighbors=other) == 0.0
    with pytest.raises(ParameterError, match=r"`neighbors` must have shape \(n_samples, >= k\)"):
        knn_accuracy(X, y, 5, neighbors=graph[:, :3])


def test_map_neighbors_exclude_each_point_even_among_duplicates():
    from featscope.analysis.metrics import map_neighbors

    coords = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [6.0, 6.0]])
    nn = map_neighbors(coords, 2)
    assert nn.shape == (5, 2)
    assert all(i not in row for i, row in enumerate(nn))
    assert set(nn[0]) == {1, 2}
    assert nn[4][0] == 3  # nearest first


def test_embed_reuses_the_tsne_graph_for_the_feature_knn(monkeypatch):
    from featscope.analysis import embed, metrics
    from featscope.results import FeatureSet, Provenance

    X, y = _blobs()
    expected = knn_accuracy(X, y, 10)
    calls = []
    real = metrics._feature_neighbors
    monkeypatch.setattr(metrics, "_feature_neighbors", lambda *a: calls.append(a) or real(*a))
    fs = FeatureSet(
        features=X.astype(np.float32),
        labels=y,
        class_names=["a", "b"],
        ids=[f"p:{i}" for i in range(len(y))],
        point="x",
        provenance=Provenance(source="test", seed=0),
    )
    result = embed(fs, n_iter=260, perplexity=5)
    assert result.metrics["knn_accuracy_features"] == expected
    assert [a[0].shape[1] for a in calls] == [2]  # only the map was searched
    # the page's feature-space neighbours are the same graph's first 10 columns
    from featscope.analysis.neighbors import feature_neighbors

    assert result.neighbors.dtype == np.int32
    np.testing.assert_array_equal(result.neighbors, feature_neighbors(X))
