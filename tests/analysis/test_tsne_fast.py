"""featscope's fast t-SNE path: exact neighbours, vectorised affinities, early stop, quality."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from featscope.analysis import TSNE
from featscope.analysis._tsne_affinity import conditional_probabilities, perplexity_affinities
from featscope.analysis._tsne_init import pca_init
from featscope.analysis._tsne_neighbors import EXACT_NEIGHBORS_MAX, exact_neighbors
from featscope.analysis.metrics import knn_accuracy, trustworthiness
from featscope.analysis.tsne_params import EXAGGERATION_ITER, KL_RTOL
from featscope.errors import ParameterError


@pytest.fixture(scope="module")
def digits_maps(digits, digits_map):
    """featscope's default map and openTSNE's (seeded, Barnes-Hut to keep the test short)."""
    import openTSNE

    X, _ = digits
    ours = digits_map
    theirs = np.asarray(
        openTSNE.TSNE(random_state=0, negative_gradient_method="bh", n_jobs=1).fit(X)
    )
    return ours, theirs


def test_exact_neighbors_match_brute_force(digits):
    X, _ = digits
    X = X[:300]
    dist, idx = exact_neighbors(X, 12)
    full = np.linalg.norm(X[:, None, :].astype(np.float64) - X[None, :, :], axis=2)
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :12]
    np.testing.assert_allclose(dist, expected, rtol=1e-3, atol=1e-2)
    assert (idx != np.arange(300)[:, None]).all()  # never the point itself
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), dist, rtol=1e-3, atol=1e-2)


def test_exact_neighbors_torch_and_numpy_agree(monkeypatch, digits):
    from featscope.analysis import _tsne_neighbors

    X, _ = digits
    X = X[:400]
    d_np, i_np = exact_neighbors(X, 10)
    monkeypatch.setattr(_tsne_neighbors, "TORCH_FROM_SAMPLES", 100)
    d_t, i_t = exact_neighbors(X, 10, n_jobs=1)
    np.testing.assert_allclose(d_np, d_t, rtol=1e-4, atol=1e-3)
    assert (i_np == i_t).mean() > 0.99  # only exact ties may come in another order


def test_torch_search_by_column_groups_finds_the_same_distances(monkeypatch, digits):
    from featscope.analysis import _tsne_neighbors

    X, _ = digits
    X = X[:1000] + np.random.default_rng(0).normal(scale=1e-3, size=(1000, X.shape[1]))
    monkeypatch.setattr(_tsne_neighbors, "TORCH_FROM_SAMPLES", 100)
    monkeypatch.setattr(_tsne_neighbors, "SKLEARN_UP_TO", 0)  # torch, even when not loaded
    monkeypatch.setattr(_tsne_neighbors, "_GROUPS_FROM", 10**9)
    d_plain, i_plain = exact_neighbors(X, 15, n_jobs=1)
    # groups of 16 columns: 63 of them (the last one padded), at least 4 per neighbour
    monkeypatch.setattr(_tsne_neighbors, "_GROUP", 16)
    monkeypatch.setattr(_tsne_neighbors, "_GROUPS_FROM", 4)
    calls = []
    real = _tsne_neighbors._smallest_by_groups
    monkeypatch.setattr(
        _tsne_neighbors, "_smallest_by_groups", lambda d, k: calls.append(d.shape) or real(d, k)
    )
    d_groups, i_groups = exact_neighbors(X, 15, n_jobs=1)
    assert calls
    assert {shape[1] for shape in calls} == {1008}  # the padded width
    np.testing.assert_array_equal(d_groups, d_plain)
    np.testing.assert_array_equal(i_groups, i_plain)  # no ties in jittered data
    assert (i_groups < 1000).all()


def test_exact_neighbors_sklearn_search_agrees_with_numpy(monkeypatch, digits):
    from featscope.analysis import _tsne_neighbors

    X, _ = digits
    X = X[:400]
    d_np, _ = exact_neighbors(X, 10)
    # as in a --features run, where nothing has imported torch
    monkeypatch.setattr(_tsne_neighbors, "TORCH_FROM_SAMPLES", 100)
    monkeypatch.setattr(_tsne_neighbors, "search_backend", lambda n, loaded: "sklearn")
    d_sk, i_sk = exact_neighbors(X, 10, n_jobs=2)
    assert d_sk.dtype == np.float64
    assert i_sk.dtype == np.int64
    np.testing.assert_allclose(d_np, d_sk, rtol=1e-4, atol=1e-3)
    assert (i_sk != np.arange(400)[:, None]).all()
    # the digits' integer pixels make many exact ties, so indices may differ in order: check
    # that the returned points are at the returned distances instead
    full = np.linalg.norm(X[:, None, :].astype(np.float64) - X[None, :, :], axis=2)
    np.testing.assert_allclose(np.take_along_axis(full, i_sk, axis=1), d_sk, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("n", "torch_loaded", "expected"),
    [(2_000, False, "numpy"), (20_000, False, "sklearn"), (20_000, True, "torch"),
     (70_000, False, "torch")],
)  # fmt: skip
def test_search_backend_avoids_importing_torch_for_small_searches(n, torch_loaded, expected):
    from featscope.analysis._tsne_neighbors import search_backend

    assert search_backend(n, torch_loaded) == expected


def test_compiled_calibration_takes_the_array_calibrations_steps(monkeypatch, digits):
    from featscope.analysis import _tsne_numba

    X, _ = digits
    distances, _ = exact_neighbors(X, 45)
    distances[:5] = distances[:1]  # identical rows, and a row of equal distances
    distances[5] = 2.0
    compiled = conditional_probabilities(distances, 15.0, threads=1)
    arrays = conditional_probabilities(distances, 15.0)
    monkeypatch.setattr(_tsne_numba, "available", lambda: False)
    np.testing.assert_array_equal(conditional_probabilities(distances, 15.0, 2), arrays)
    np.testing.assert_allclose(compiled, arrays, rtol=0, atol=1e-12)
    np.testing.assert_allclose(compiled[5], 1 / 45)
    entropy = -(compiled * np.log(np.maximum(compiled, 1e-300))).sum(axis=1)
    np.testing.assert_allclose(np.exp(entropy[6:]), 15.0, rtol=1e-3)


@pytest.mark.parametrize(("backend", "threads"), [("numba", 1), ("opentsne", None)])
def test_numba_maps_calibrate_compiled_on_the_runs_threads(monkeypatch, digits, backend, threads):
    import numba

    from featscope.analysis import _tsne_affinity, _tsne_kernels

    seen = []
    real = _tsne_kernels.calibrate
    monkeypatch.setattr(
        _tsne_kernels, "calibrate", lambda *a: seen.append(numba.get_num_threads()) or real(*a)
    )
    X, _ = digits
    options = {"metric": "euclidean", "neighbors": "exact", "device": "cpu", "random_state": 0}
    P, _ = _tsne_affinity.affinities(X, 10.0, backend=backend, n_jobs=1, **options)
    assert seen == ([] if threads is None else [threads])
    assert P.sum() == pytest.approx(1.0)


def test_affinities_match_opentsne(digits):
    from openTSNE import affinity

    X, _ = digits
    X = X[:500].astype(np.float64)
    # The same neighbours for both (float64 brute force), so only the calibration differs.
    full = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    np.fill_diagonal(full, np.inf)
    idx = np.argsort(full, axis=1, kind="stable")[:, :90]
    dist = np.take_along_axis(full, idx, axis=1)
    P = perplexity_affinities(dist, idx, 30.0)
    theirs = affinity.joint_probabilities_nn(idx, dist, [30.0], symmetrize=True)
    assert P.shape == (500, 500)
    assert P.sum() == pytest.approx(1.0)
    np.testing.assert_allclose((P - P.T).toarray(), 0, atol=1e-12)  # symmetric
    assert P.nnz == theirs.nnz
    assert abs(P - theirs).max() < 1e-4 * P.max()
    # Each row of the conditional distribution sums to 1 and has the target perplexity.
    for target in (30.0, 5.0):
        p = conditional_probabilities(dist, target)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        perplexity = np.exp(-(p * np.log(np.maximum(p, 1e-300))).sum(axis=1))
        np.testing.assert_allclose(perplexity, target, rtol=1e-3)
    # And from featscope's own search: nearly the same matrix as openTSNE's whole pipeline.
    ours = perplexity_affinities(*exact_neighbors(X, 90), 30.0)
    pipeline = affinity.PerplexityBasedNN(X, perplexity=30, method="exact", random_state=0).P
    assert abs(ours - pipeline).sum() < 0.01  # total variation of two distributions


def test_pca_init_is_the_first_principal_components(digits):
    from sklearn.decomposition import PCA

    X, _ = digits
    start = pca_init(X, 2, 0)
    assert start.shape == (len(X), 2)
    assert start[:, 0].std() == pytest.approx(1e-4)
    ref = PCA(2).fit_transform(X.astype(np.float64))
    for j in range(2):
        assert abs(np.corrcoef(start[:, j], ref[:, j])[0, 1]) > 0.999


def test_same_quality_as_opentsne(digits, digits_maps):
    X, y = digits
    ours, theirs = digits_maps
    assert ours.params_["neighbors"] == "exact"
    acc_ours, acc_theirs = knn_accuracy(ours.embedding_, y, 10), knn_accuracy(theirs, y, 10)
    trust_ours = trustworthiness(X, ours.embedding_, 10)
    trust_theirs = trustworthiness(X, theirs, 10)
    assert acc_ours >= acc_theirs - 0.005, (acc_ours, acc_theirs)
    assert trust_ours >= trust_theirs - 0.002, (trust_ours, trust_theirs)


def test_early_stop_on_converged_kl(digits_maps):
    ours, _ = digits_maps
    assert ours.params_["kl_rtol"] == KL_RTOL
    assert EXAGGERATION_ITER < ours.n_iter_ < 750  # converged before the budget
    kl = [e for _, e in ours.kl_divergence_history_]
    assert (kl[-2] - kl[-1]) < KL_RTOL * kl[-2]  # the rule that stopped it
    assert all(a - b >= KL_RTOL * a for a, b in itertools.pairwise(kl[:-1]))


def test_kl_rtol_off_runs_every_iteration(digits):
    X, _ = digits
    tsne = TSNE(n_iter=400, kl_rtol=None, n_iter_without_progress=None, n_jobs=1).fit(X[:300])
    assert tsne.n_iter_ == 400
    with pytest.raises(ParameterError, match=r"`kl_rtol` parameter must be a number in \[0, 1\)"):
        TSNE(kl_rtol=2).fit(X[:300])


def test_parameters_still_matter(digits):
    X, _ = digits
    X = X[:300]

    def fit(**kw):
        return TSNE(n_iter=300, n_jobs=1, **kw).fit(X)

    base = fit()
    np.testing.assert_array_equal(base.embedding_, fit().embedding_)  # seeded
    for changed in (
        fit(early_exaggeration=30.0),
        fit(learning_rate=20.0),
        fit(init="random"),
        fit(perplexity=10.0),
    ):
        assert not np.allclose(changed.embedding_, base.embedding_)
    # A tiny learning rate barely unfolds the map within the same iterations.
    slow = fit(learning_rate=1.0, kl_rtol=None)
    assert slow.learning_rate_ == 1.0
    assert np.ptp(slow.embedding_) < 0.75 * np.ptp(base.embedding_)


def test_thread_count_does_not_change_the_map(digits):
    X, _ = digits
    X = X[:200]
    one = TSNE(n_iter=260, n_jobs=1).fit_transform(X)
    two = TSNE(n_iter=260, n_jobs=2).fit_transform(X)
    np.testing.assert_allclose(one, two, rtol=1e-6, atol=1e-6)


def test_neighbor_method_choice():
    X = np.random.default_rng(0).normal(size=(60, 5))
    assert TSNE(n_iter=260, perplexity=5, n_jobs=1).fit(X).params_["neighbors"] == "exact"
    manhattan = TSNE(n_iter=260, perplexity=5, metric="manhattan", n_jobs=1).fit(X)
    assert manhattan.params_["neighbors"] == "annoy"
    cosine = TSNE(n_iter=260, perplexity=5, metric="cosine", n_jobs=1).fit(X)
    assert cosine.params_["neighbors"] == "exact"
    assert EXACT_NEIGHBORS_MAX == 100_000


def test_kl_rtol_is_stricter_for_larger_data(monkeypatch, digits):
    from featscope.analysis import _tsne_engine

    X, _ = digits
    X = X[:300]
    plain = TSNE(n_jobs=1).fit(X)
    # Pretend 300 samples are "large": the relative tolerance shrinks as 100 / 300.
    monkeypatch.setattr(_tsne_engine, "KL_RTOL_FULL_UP_TO", 100)
    strict = TSNE(n_jobs=1).fit(X)
    assert strict.n_iter_exaggeration_ == plain.n_iter_exaggeration_ == 250
    assert strict.n_iter_ > plain.n_iter_
