"""featscope.analysis.TSNE, reduce and embed: parameter flow, determinism, validation, quality."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from featscope.analysis import TSNE, embed, reduce
from featscope.analysis._tsne_engine import FFT_SAMPLES_PER_THREAD
from featscope.analysis.tsne_params import EXAGGERATION_ITER
from featscope.errors import ParameterError
from featscope.results import EmbeddingResult, FeatureSet, Provenance


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(0).choice(len(X), size=500, replace=False)
    return X[rows].astype(np.float32), y[rows]


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    return X[:120], y[:120]


def _two_blobs(n=20, dims=5, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0, 1, (n, dims)), rng.normal(20, 1, (n, dims))])
    return X, np.repeat([0, 1], n)


class _FakeOptimize:
    """Stands in for openTSNE's TSNEEmbedding.optimize and records how it is called."""

    def __init__(self):
        self.calls = []

    def __call__(self, embedding, n_iter, **kwargs):
        self.calls.append({"n_iter": n_iter, **kwargs})
        embedding.kl_divergence = 1.5
        return embedding

    def install(self, monkeypatch):
        import openTSNE

        monkeypatch.setattr(
            openTSNE.TSNEEmbedding, "optimize", lambda emb, n_iter, **kw: self(emb, n_iter, **kw)
        )
        return self


def test_parameters_reach_opentsne(monkeypatch, small):
    fake = _FakeOptimize().install(monkeypatch)
    X, _ = small
    tsne = TSNE(early_exaggeration=8.0, learning_rate=100.0, n_iter=600, n_jobs=1).fit(X)
    early, normal = fake.calls
    assert early["n_iter"] == EXAGGERATION_ITER == 250
    assert early["exaggeration"] == 8.0
    assert early["momentum"] == 0.8  # openTSNE 1.0's (sklearn: 0.5)
    # sklearn units -> openTSNE units (no factor 4 in openTSNE's gradient).
    assert early["learning_rate"] == normal["learning_rate"] == 400.0
    assert normal["n_iter"] == 350
    assert normal["exaggeration"] == 1.0
    assert normal["momentum"] == 0.8
    assert normal["callbacks_every_iters"] == 50
    assert early["negative_gradient_method"] == normal["negative_gradient_method"] == "bh"
    assert tsne.n_iter_ == 600
    assert tsne.kl_divergence_ == 1.5
    assert tsne.learning_rate_ == 100.0


def test_auto_learning_rate_and_effective_params(monkeypatch, small):
    fake = _FakeOptimize().install(monkeypatch)
    X, _ = small  # 120 x 64
    tsne = TSNE(pca_dims=10, negative_gradient_method="fft", backend="opentsne", n_jobs=1).fit(X)
    # max(120 / 12 / 4, 50) = 50 in sklearn units.
    assert tsne.learning_rate_ == 50.0
    assert fake.calls[0]["learning_rate"] == 200.0
    assert fake.calls[0]["negative_gradient_method"] == "fft"
    assert tsne.params_["pca_dims"] == 10
    assert tsne.params_["negative_gradient_method"] == "fft"
    assert tsne.params_["n_jobs"] == 1
    assert tsne.params_["init"] == "pca"
    assert TSNE(n_jobs=1).fit(X).params_["pca_dims"] == 50  # 64 features > 50
    # pca_dims wider than the data, or 0: no PCA.
    assert TSNE(pca_dims=100, n_jobs=1).fit(X).params_["pca_dims"] is None
    assert TSNE(pca_dims=0, n_jobs=1).fit(X).params_["pca_dims"] is None


@pytest.mark.parametrize(("n_jobs", "expected"), [(1, "fft"), (2, "bh")])
def test_auto_gradient_method_depends_on_points_per_thread(monkeypatch, n_jobs, expected):
    from featscope.analysis import _tsne_engine

    assert FFT_SAMPLES_PER_THREAD == 2_500  # the measured default (docs/benchmarks.md)
    monkeypatch.setattr(_tsne_engine, "FFT_SAMPLES_PER_THREAD", 50)  # same rule, smaller data
    fake = _FakeOptimize().install(monkeypatch)
    X = np.random.default_rng(0).normal(size=(80, 3))  # >= 50 x 1 thread, < 50 x 2 threads
    tsne = TSNE(perplexity=10, n_jobs=n_jobs).fit(X)
    assert tsne.params_["negative_gradient_method"] == expected
    # An FFT map runs on the numba engine (openTSNE's optimize is not called), Barnes-Hut on
    # openTSNE's.
    assert tsne.params_["backend"] == {"fft": "numba", "bh": "openTSNE"}[expected]
    assert [call["negative_gradient_method"] for call in fake.calls] == (
        [] if expected == "fft" else ["bh", "bh"]
    )


def test_same_seed_same_map_different_seed_different_map(small):
    X, _ = small
    a = TSNE(n_iter=300, n_jobs=1, random_state=1).fit_transform(X)
    b = TSNE(n_iter=300, n_jobs=1, random_state=1).fit_transform(X)
    c = TSNE(n_iter=300, n_jobs=1, random_state=2, init="random").fit_transform(X)
    d = TSNE(n_iter=300, n_jobs=1, random_state=3, init="random").fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(c, d)
    assert a.shape == (120, 2)
    assert a.dtype == np.float64


def test_three_components(small):
    X, _y = small
    tsne = TSNE(n_components=3, n_iter=300, n_jobs=1)
    coords = tsne.fit_transform(X)
    assert coords.shape == (120, 3)
    assert np.isfinite(coords).all()
    assert tsne.params_["negative_gradient_method"] == "bh"
    assert np.std(coords, axis=0).min() > 1.0  # the map spread out in all three dimensions


def test_array_init_is_used(monkeypatch, small):
    _FakeOptimize().install(monkeypatch)
    X, _ = small
    start = np.random.default_rng(0).normal(scale=1e-4, size=(120, 2))
    tsne = TSNE(init=start, n_jobs=1).fit(X)
    np.testing.assert_allclose(tsne.embedding_, start)  # optimize is a no-op here
    assert tsne.params_["init"] == "array"


def test_perplexity_clamped_with_warning():
    X, _ = _two_blobs(n=15)  # 30 samples -> at most 29 / 3
    with pytest.warns(
        UserWarning, match=r"`perplexity` 30 is too large for 30 samples.*using perplexity 9\.667"
    ):
        tsne = TSNE(n_iter=300, n_jobs=1).fit(X)
    assert tsne.perplexity_ == pytest.approx(29 / 3)
    assert tsne.params_["perplexity"] == pytest.approx(29 / 3)


def test_stops_without_progress_on_an_easy_problem():
    X, _ = _two_blobs(n=20)
    # kl_rtol=None: the default convergence stop (test_tsne_fast.py) would end this run first.
    tsne = TSNE(perplexity=5, n_iter=3000, n_iter_without_progress=100, kl_rtol=None, n_jobs=1).fit(
        X
    )
    assert EXAGGERATION_ITER < tsne.n_iter_ < 3000
    kl = [e for _, e in tsne.kl_divergence_history_]
    assert min(kl[-3:]) >= min(kl)  # stopped because the last checks did not improve
    never = TSNE(perplexity=5, n_iter=400, n_iter_without_progress=None, n_jobs=1).fit(X)
    assert never.n_iter_ == 400


def test_invalid_data_rejected():
    X, _ = _two_blobs()
    with pytest.raises(ParameterError, match="t-SNE needs at least 4 samples; got 3"):
        TSNE().fit(X[:3])
    bad = X.copy()
    bad[[2, 7], 1] = [np.nan, np.inf]
    with pytest.raises(ParameterError, match=r"NaN or infinite values in 2 row\(s\) \(rows 2, 7\)"):
        TSNE().fit(bad)
    with pytest.raises(ParameterError, match=r"all 10 rows of `X` are identical.*meaningless"):
        TSNE().fit(np.ones((10, 3)))
    with pytest.raises(ParameterError, match=r"`X` must be 2-D \(n_samples, n_features\)"):
        TSNE().fit(X[:, 0])


def test_auto_learning_rate_follows_opentsne_schedule(monkeypatch):
    fake = _FakeOptimize().install(monkeypatch)
    X = np.random.default_rng(0).normal(size=(1200, 8))
    tsne = TSNE(n_jobs=1, negative_gradient_method="bh").fit(X)
    # exaggeration phase: max(1200 / 12 / 4, 50) = 50; after it: max(1200 / 4, 50) = 300
    assert tsne.learning_rate_exaggeration_ == 50.0
    assert tsne.learning_rate_ == 300.0
    early, normal = fake.calls
    assert (early["learning_rate"], normal["learning_rate"]) == (200.0, 1200.0)
    assert early["n_iter"] + normal["n_iter"] == 750  # openTSNE's default count
    assert tsne.params_["learning_rate_exaggeration"] == 50.0


def test_sklearn_style_params_api():
    tsne = TSNE(perplexity=10.0)
    assert tsne.get_params()["perplexity"] == 10.0
    assert tsne.set_params(n_iter=500) is tsne
    assert tsne.n_iter == 500
    assert repr(tsne) == "TSNE(perplexity=10.0, n_iter=500)"
    with pytest.raises(ParameterError, match="unknown parameter\\(s\\) for method 'tsne': n_iters"):
        tsne.set_params(n_iters=3)


def test_digits_map_keeps_classes_apart(digits):
    from featscope.analysis import knn_accuracy, trustworthiness

    X, y = digits
    coords = TSNE(n_jobs=1).fit_transform(X)
    assert knn_accuracy(coords, y, k=10) > 0.9
    assert trustworthiness(X, coords, k=10) > 0.9


def test_reduce_methods_and_unknown_params(small):
    X, _ = small
    coords, params = reduce(X, "pca", n_components=3)
    assert coords.shape == (120, 3)
    assert len(params["explained_variance_ratio"]) == 3
    coords, params = reduce(X, "tsne", n_iter=300, n_jobs=1)
    assert coords.shape == (120, 2)
    assert params["n_iter"] == 300
    with pytest.raises(
        ParameterError, match=r"for method 'pca': n_neighbors; valid ones are: svd_solver, whiten"
    ):
        reduce(X, "pca", n_neighbors=5)
    with pytest.raises(
        ParameterError,
        match=r"for method 'tsne': n_neighbors, zz; valid ones are: backend, device, early",
    ):
        reduce(X, "tsne", n_neighbors=5, zz=1)
    with pytest.raises(
        ParameterError, match=r"unknown embedding method 'isomap'; choose one of: tsne, umap, pca"
    ):
        reduce(X, "isomap")


@pytest.mark.slow
def test_reduce_umap_shape_and_seed(small):
    pytest.importorskip("umap")
    X, _ = small
    a, params = reduce(X, "umap", random_state=0)
    b, _ = reduce(X, "umap", random_state=0)
    assert a.shape == (120, 2)
    np.testing.assert_array_equal(a, b)
    assert params["n_neighbors"] == 15
    assert params["min_dist"] == 0.1
    with pytest.raises(ParameterError, match="for method 'umap': perplexity; valid ones are"):
        reduce(X, "umap", perplexity=30)


def test_embed_feature_set(small):
    X, y = small
    fs = FeatureSet(
        features=X,
        labels=y,
        class_names=[str(i) for i in range(10)],
        ids=[f"digits:{i}" for i in range(len(y))],
        point="pixels",
        provenance=Provenance(source="demo:digits", seed=4),
    )
    result = embed(fs, "pca")
    assert isinstance(result, EmbeddingResult)
    assert result.coords.shape == (120, 2)
    assert result.method == "pca"
    assert result.params["random_state"] == 4  # seed taken from the provenance
    assert result.ids == fs.ids
    assert result.point == "pixels"
    assert set(result.metrics) >= {
        "knn_accuracy_features",
        "knn_accuracy_map",
        "trustworthiness",
        "silhouette_map",
        "n_samples",
        "n_classes",
    }
    assert result.metrics["n_samples"] == 120
    assert 0.5 < result.metrics["knn_accuracy_features"] <= 1.0
    with pytest.raises(
        ParameterError, match=r"`features` must be a featscope\.results\.FeatureSet"
    ):
        embed(X)


def test_analysis_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys, numpy as np; from featscope.analysis import reduce; "
        "reduce(np.random.default_rng(0).normal(size=(20, 4)), 'pca'); "
        "bad = {'torch', 'matplotlib'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
