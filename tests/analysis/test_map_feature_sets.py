"""map_feature_sets (the analysis step of tsne and Monitor) and its options, EmbeddingOptions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import featscope.analysis.embedding as embedding_module
from featscope.analysis import embed, map_feature_sets
from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions
from featscope.results import FeatureSet, Provenance


def _sets(n=60, dims=(12, 5)):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), n // 3)
    return [
        FeatureSet(
            features=(rng.normal(size=(n, d)) + labels[:, None] * 4).astype(np.float32),
            labels=labels,
            class_names=("a", "b", "c"),
            ids=tuple(f"s{i}" for i in range(n)),
            point=point,
            provenance=Provenance(seed=99),
        )
        for point, d in zip(("neck", "pre_logits"), dims, strict=False)
    ]


def test_one_map_per_set_as_embed_makes_it():
    sets = _sets()
    maps = map_feature_sets(sets, EmbeddingOptions(method="pca", align="none"), seed=3)
    assert isinstance(maps, tuple)
    assert [m.point for m in maps] == ["neck", "pre_logits"]
    expected = embed(sets[1], "pca", n_components=2, random_state=3)
    np.testing.assert_array_equal(maps[1].coords, expected.coords)
    assert maps[1].params["random_state"] == 3  # the seed given, not the provenance's 99
    assert maps[0].metrics["n_samples"] == 60
    from featscope.analysis.metrics import COUNT_METRICS as counts

    assert counts == frozenset(
        {"n_samples", "n_classes", "k", "n_misclassified", "n_clusters", "silhouette_points"}
    )
    assert counts - {"n_misclassified"} < set(maps[0].metrics)  # no classifier: no errors


def test_parameters_reach_the_method(monkeypatch):
    calls = []

    def fake_embed(fs, method, **kwargs):
        calls.append((method, kwargs))
        return embed(fs, "pca", n_components=kwargs["n_components"], random_state=0)

    monkeypatch.setattr(embedding_module, "embed", fake_embed)
    (fs,) = _sets(dims=(6,))
    options = EmbeddingOptions(perplexity=5, n_iter=300, learning_rate=200.0, pca_dims=0)
    map_feature_sets([fs], options, seed=1, device="cuda:1")
    map_feature_sets([fs], options, device="mps")  # no float64 there: the t-SNE stays on the CPU
    map_feature_sets([fs], EmbeddingOptions(method="umap", params={"n_neighbors": 7}))
    map_feature_sets([fs], EmbeddingOptions(method="pca", n_components=3), device="cuda")
    (_, first), (_, second), umap, pca = calls
    assert first == {
        "random_state": 1,
        "n_components": 2,
        "perplexity": 5,
        "early_exaggeration": 12.0,
        "learning_rate": 200.0,
        "n_iter": 300,
        "n_iter_without_progress": 300,
        "init": "pca",
        "pca_dims": 0,
        "device": "cuda:1",
    }
    assert second["device"] == "cpu"
    assert umap == ("umap", {"random_state": 0, "n_components": 2, "n_neighbors": 7})
    assert pca == ("pca", {"random_state": 0, "n_components": 3})  # no t-SNE parameters


def test_an_unknown_method_parameter_is_named():
    with pytest.raises(ParameterError, match=r"unknown parameter.* for method 'pca': n_neighbors"):
        map_feature_sets(_sets()[:1], EmbeddingOptions(method="pca", params={"n_neighbors": 3}))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "lda"}, r"`--method` must be one of tsne, umap, pca; got 'lda'"),
        ({"n_components": 4}, r"`--n-components` must be 2 or 3; got 4"),
        ({"n_components": True}, r"`--n-components` must be 2 or 3; got True"),
        ({"learning_rate": "fast"}, r"`--learning-rate` must be 'auto' or a number; got 'fast'"),
        ({"align": "rotate"}, r"`--align` must be one of procrustes, none; got .rotate."),
    ],
)
def test_embedding_options_check_their_values(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        EmbeddingOptions(**kwargs)


def test_embedding_options_are_frozen_and_pickle():
    options = EmbeddingOptions(method="umap", params={"n_neighbors": 7})
    with pytest.raises(TypeError):
        options.params["n_neighbors"] = 3  # read-only
    again = pickle.loads(pickle.dumps(options))
    assert again == options
    assert again.reducer_params() == {"n_components": 2, "n_neighbors": 7}
