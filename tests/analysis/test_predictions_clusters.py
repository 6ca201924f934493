"""Predictions, clusters and feature-space neighbours of a map (issue 16, items 1, 3, 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featscope.analysis.clusters import cluster_features, cluster_purity
from featscope.analysis.embedding import embed
from featscope.analysis.neighbors import feature_neighbors
from featscope.analysis.predictions import predict, prediction_fields, prediction_metrics
from featscope.capture import extract_feature_sets
from featscope.data import load_samples, select_samples
from featscope.errors import ParameterError
from featscope.models import load_model
from featscope.options import Extraction, Selection
from featscope.results import FeatureSet


def test_predict_is_argmax_and_softmax_of_the_winner():
    logits = np.array([[1.0, 3.0, 0.0], [5.0, 5.0, -1.0], [1000.0, 0.0, 0.0]])
    prediction, confidence = predict(logits)
    assert prediction.tolist() == [1, 0, 0]  # the first on ties
    soft = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert confidence[0] == pytest.approx(soft[1], rel=1e-6)
    assert confidence[1] == pytest.approx(np.exp(5) / (2 * np.exp(5) + np.exp(-1)), rel=1e-6)
    assert confidence[2] == pytest.approx(1.0)  # large logits do not overflow
    with pytest.raises(ParameterError, match="must be 2-D"):
        predict(np.zeros(3))
    with pytest.raises(ParameterError, match="NaN or infinite"):
        predict(np.array([[np.nan, 1.0]]))


def test_prediction_fields_need_outputs_that_are_the_data_classes():
    logits = np.array([[0.0, 2.0], [3.0, 1.0], [0.0, 1.0]])
    fields, reason = prediction_fields(logits, [1, 1, 0], ("a", "b"))
    assert reason is None
    assert fields["prediction"].tolist() == [1, 0, 1]
    assert fields["correct"].tolist() == [True, False, False]
    # unlabelled data: predictions, no correctness
    fields, _ = prediction_fields(logits, [-1, -1, -1], ())
    assert set(fields) == {"prediction", "confidence"}
    # an ImageNet-sized head on two classes: no predictions, and why
    fields, reason = prediction_fields(np.zeros((3, 5)), [0, 1, 0], ("a", "b"))
    assert fields == {}
    assert "5 outputs but the data 2 classes" in reason
    fields, reason = prediction_fields(None, [0, 1, 0], ("a", "b"))
    assert fields == {}
    assert "no classifier output" in reason


def test_prediction_metrics_count_the_most_confused_pairs():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, -1]
    predicted = [0, 1, 1, 1, 2, 2, 0, 2, 2]
    metrics = prediction_metrics(predicted, labels, ("cat", "dog", "fox"))
    assert metrics["accuracy"] == pytest.approx(4 / 8)  # the unlabelled sample is left out
    assert metrics["n_misclassified"] == 4
    assert metrics["confused_pairs"] == [
        {"true": "cat", "predicted": "dog", "count": 2},
        {"true": "dog", "predicted": "fox", "count": 1},
        {"true": "fox", "predicted": "cat", "count": 1},
    ]


def test_predictions_equal_the_argmax_of_the_logits_of_a_fixed_model():
    handle = load_model("demo:digits-cnn")
    samples = select_samples(load_samples("demo:digits"), Selection(max_num_samples=3))
    extracted = extract_feature_sets(
        handle, samples, ["neck"], Extraction(progress=False, batch_size=7)
    )
    (fs,) = extracted.feature_sets
    assert fs.point == "neck"
    assert fs.logits.shape == (len(samples), 10)
    # the same images through the model by hand
    batch = torch.stack([handle.preprocess(samples.load(i)) for i in range(len(samples))])
    with torch.no_grad():
        logits = handle.module(batch).numpy()
    np.testing.assert_allclose(fs.logits, logits, rtol=1e-4, atol=1e-4)
    result = embed(fs, "pca")
    assert result.fields["prediction"].tolist() == np.argmax(logits, axis=1).tolist()
    assert result.fields["correct"].tolist() == (np.argmax(logits, 1) == fs.labels).tolist()
    assert result.metrics["accuracy"] == pytest.approx(np.mean(np.argmax(logits, 1) == fs.labels))
    assert result.neighbors.shape == (len(samples), 10)


def _blobs():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=150, centers=3, n_features=20, cluster_std=0.5, random_state=0)
    return X.astype(np.float32), y


def test_clusters_find_separated_blobs():
    X, y = _blobs()
    for found in (
        cluster_features(X, y),  # k from the labels
        cluster_features(X),  # k chosen by silhouette
        cluster_features(X, method="hdbscan"),
    ):
        assert len(np.unique(found[found >= 0])) == 3
        assert cluster_purity(found, y) == 1.0
    assert cluster_purity([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(3 / 4)
    assert cluster_purity([-1, -1], [0, 1]) is None
    with pytest.raises(ParameterError, match="unknown cluster method"):
        cluster_features(X, method="dbscan")


def test_embed_records_clusters_neighbours_and_purity():
    X, y = _blobs()
    fs = FeatureSet(X, y, ("a", "b", "c"), tuple(map(str, range(len(y)))), "p")
    result = embed(fs, "pca")
    assert result.fields["cluster"].dtype == np.int64
    assert result.metrics["cluster_purity"] == 1.0
    assert result.metrics["n_clusters"] == 3
    assert "prediction" not in result.fields
    assert "no classifier output" in result.metrics["skipped"]["accuracy"]
    neighbors = result.neighbors
    assert neighbors.shape == (150, 10)
    assert neighbors.dtype == np.int32
    assert not np.any(neighbors == np.arange(150)[:, None])  # never itself
    assert np.all(y[neighbors] == y[:, None])  # the blobs are far apart
    np.testing.assert_array_equal(feature_neighbors(X[:4]), feature_neighbors(X[:4], k=3))
    assert feature_neighbors(X[:4]).shape == (4, 3)
