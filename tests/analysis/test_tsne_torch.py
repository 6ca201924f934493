"""featscope's torch t-SNE engine (the GPU path), checked on the CPU against openTSNE."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from featscope.analysis import TSNE
from featscope.analysis._tsne_affinity import (
    conditional_probabilities,
    device_affinities,
    perplexity_affinities,
)
from featscope.analysis._tsne_neighbors import exact_neighbors
from featscope.analysis._tsne_torch import TorchTSNE, _lagrange_weights
from featscope.analysis.metrics import knn_accuracy, trustworthiness
from featscope.errors import ParameterError


@pytest.fixture(scope="module")
def affinities(digits):
    X, _ = digits
    X = X[:400]
    distances, indices = exact_neighbors(X, 45)
    return perplexity_affinities(distances, indices, 15.0)


def _clusters(n: int, spread: float, seed: int = 0) -> np.ndarray:
    """Four Gaussian blobs, ``spread`` map units apart: a map mid-optimisation."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-spread, spread, size=(4, 2))
    return np.concatenate([rng.normal(size=(n // 4, 2)) * spread / 8 + c for c in centres])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_device_affinities_are_the_numpy_ones(digits, metric):
    X, _ = digits
    # Jittered: the digits' integer pixels tie many distances, and the numpy and torch searches
    # may then keep different (equally near) neighbours.
    X = X[:300] + np.random.default_rng(0).normal(scale=1e-2, size=(300, 64)).astype(np.float32)
    distances, indices = exact_neighbors(X, 45, metric)
    expected = perplexity_affinities(distances, indices, 15.0).toarray()
    P, graph = device_affinities(X, 45, 15.0, metric, 1, "cpu")
    # The graph the metrics reuse: the first 30 neighbours, nearest first, as int32 (near
    # ties may swap two neighbours between the searches: compare their distances).
    assert graph.dtype == np.int32
    assert graph.shape == (300, 30)
    Xs = X / np.linalg.norm(X, axis=1, keepdims=True) if metric == "cosine" else X
    found = np.linalg.norm(Xs[:, None, :] - Xs[graph], axis=2)
    np.testing.assert_allclose(found, distances[:, :30], rtol=1e-4, atol=1e-5)
    assert P.is_sparse
    assert P.dtype == torch.float64
    np.testing.assert_allclose(P.to_dense().numpy(), expected, rtol=1e-5, atol=1e-12)
    assert float(P.values().sum()) == pytest.approx(1.0)


def test_calibration_gives_the_same_rows_in_torch_and_numpy(digits):
    X, _ = digits
    distances, _ = exact_neighbors(X[:200], 30)
    ours = conditional_probabilities(torch.from_numpy(distances), 10.0)
    assert isinstance(ours, torch.Tensor)
    np.testing.assert_allclose(ours.numpy(), conditional_probabilities(distances, 10.0), atol=1e-12)


def test_lagrange_weights_sum_to_one_and_reproduce_quadratics():
    u = torch.linspace(0, 0.999, 37)[:, None]
    w = _lagrange_weights(u)[:, 0, :]  # (37, 3)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(37))
    nodes = (torch.arange(3) + 0.5) / 3
    f = lambda x: 3 * x**2 - 2 * x + 0.5  # noqa: E731
    torch.testing.assert_close((w * f(nodes)).sum(dim=1), f(u[:, 0]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("spread", "force_tol", "z_tol"), [(5.0, 1e-3, 1e-4), (40.0, 0.06, 0.005)])
def test_fft_repulsion_approximates_the_exact_sums(spread, force_tol, z_tol):
    Y = _clusters(2000, spread)
    P = sp.eye(len(Y), format="csr") / len(Y)
    exact_force, exact_z = TorchTSNE(P, Y, "cpu", "exact")._repulsion_exact()
    fft_force, fft_z = TorchTSNE(P, Y, "cpu", "fft", box_width=1.0)._repulsion_fft()
    assert abs(float(fft_z / exact_z) - 1) < z_tol
    reference = exact_force / exact_z
    error = float((fft_force / fft_z - reference).norm() / reference.norm())
    assert error < force_tol
    if spread < 10:
        return  # the grid has its minimum 50 boxes whatever the width: nothing to compare
    # ... and a coarser grid is measurably worse (so the test can tell grids apart).
    coarse_force, coarse_z = TorchTSNE(P, Y, "cpu", "fft", box_width=4.0)._repulsion_fft()
    coarse = float(
        (coarse_force / coarse_z - exact_force / exact_z).norm() / (exact_force / exact_z).norm()
    )
    assert coarse > error


def test_exact_gradient_is_opentsnes_exact_gradient(affinities):
    """Barnes-Hut with theta = 0 visits every pair: openTSNE's exact gradient and KL."""
    from openTSNE.tsne import kl_divergence_bh

    Y = _clusters(400, 10.0, seed=1)
    kl_ref, grad_ref = kl_divergence_bh(
        Y.copy(), affinities, dof=1, bh_params={"theta": 0.0}, should_eval_error=True
    )
    grad, kl = TorchTSNE(affinities, Y, "cpu", "exact").gradient(1.0)
    np.testing.assert_allclose(grad.numpy(), grad_ref, rtol=2e-3, atol=1e-6)
    assert kl == pytest.approx(kl_ref, rel=1e-4)


def test_gradient_descent_follows_opentsne_step_for_step(affinities):
    """Momentum, gains, step clipping and re-centring as openTSNE's gradient_descent."""
    from openTSNE import TSNEEmbedding, affinity

    # A start of unit scale: at the usual 1e-4 the forces nearly cancel, openTSNE's tree
    # rounds them differently in the 4th digit, and the sign-driven gains turn that into a
    # different (as good) map within a few steps.
    start = _clusters(400, 1.0, seed=2)
    theirs = TSNEEmbedding(
        start.copy(),
        affinity.PrecomputedAffinities(affinities, normalize=False),
        negative_gradient_method="bh",
        n_jobs=1,
        random_state=0,
    )
    # 25 steps: t-SNE's dynamics are chaotic (rounding differences double every step or two),
    # so longer runs agree in quality, not in coordinates.
    theirs.optimize(15, exaggeration=12, momentum=0.5, learning_rate=400, theta=0.0, inplace=True)
    theirs.optimize(10, exaggeration=1, momentum=0.8, learning_rate=400, theta=0.0, inplace=True)
    # float64, openTSNE's precision, so that the two can agree to rounding error.
    ours = TorchTSNE(affinities, start, "cpu", "exact", dtype=torch.float64)
    ours.optimize(15, exaggeration=12, momentum=0.5, learning_rate=400)
    ours.optimize(10, exaggeration=1, momentum=0.8, learning_rate=400)
    np.testing.assert_array_equal(start, _clusters(400, 1.0, seed=2))  # the start was copied
    theirs = np.asarray(theirs)
    scale = np.abs(theirs).max()
    assert np.abs(theirs - start).max() > 1  # the points moved, so agreement is not trivial
    np.testing.assert_allclose(ours.embedding(), theirs, atol=1e-6 * scale)


def test_callbacks_see_the_kl_divergence_and_can_stop(affinities):
    seen = []

    def stop_at_second(iteration, kl, _):
        seen.append((iteration, kl))
        return len(seen) == 2

    state = TorchTSNE(affinities, _clusters(400, 1e-3), "cpu", "exact")
    stopped = state.optimize(200, 12.0, 0.5, 400.0, callbacks=[stop_at_second], every=25)
    assert stopped
    assert [i for i, _ in seen] == [25, 50]
    assert all(np.isfinite(kl) and kl > 0 for _, kl in seen)


@pytest.mark.parametrize("method", ["fft", "exact"])
def test_torch_engine_matches_opentsne_quality(digits, digits_map, method):
    X, y = digits
    ours = TSNE(backend="torch", negative_gradient_method=method, n_jobs=1).fit(X)
    assert ours.params_["backend"] == "torch"
    assert ours.params_["negative_gradient_method"] == method
    assert ours.params_["device"] == "cpu"
    ref = digits_map.embedding_
    assert knn_accuracy(ours.embedding_, y) >= knn_accuracy(ref, y) - 0.005
    assert trustworthiness(X, ours.embedding_) >= trustworthiness(X, ref) - 0.002
    assert ours.kl_divergence_ == pytest.approx(digits_map.kl_divergence_, rel=0.1)


def test_torch_engine_is_deterministic_and_keeps_parameters_meaningful(digits):
    X, _ = digits
    X = X[:500]
    base = TSNE(backend="torch", n_jobs=1, kl_rtol=None, n_iter=300).fit(X).embedding_
    again = TSNE(backend="torch", n_jobs=1, kl_rtol=None, n_iter=300).fit(X).embedding_
    np.testing.assert_array_equal(base, again)
    for change in ({"perplexity": 10.0}, {"early_exaggeration": 4.0}, {"learning_rate": 20.0}):
        other = TSNE(backend="torch", n_jobs=1, kl_rtol=None, n_iter=300, **change).fit(X)
        assert not np.allclose(other.embedding_, base, atol=1e-2), change


def test_auto_backend_and_method_resolution():
    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    cpu = TSNE(n_iter=260, perplexity=5.0).fit(X).params_
    assert (cpu["backend"], cpu["negative_gradient_method"]) == ("openTSNE", "bh")
    exact = TSNE(n_iter=260, perplexity=5.0, negative_gradient_method="exact").fit(X).params_
    assert (exact["backend"], exact["negative_gradient_method"]) == ("torch", "exact")
    torch_3d = TSNE(n_components=3, n_iter=260, perplexity=5.0, backend="torch").fit(X).params_
    assert torch_3d["negative_gradient_method"] == "exact"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"backend": "jax"},
            r"`backend` parameter must be one of 'auto', 'opentsne', 'numba', 'torch'",
        ),
        ({"backend": "torch", "negative_gradient_method": "bh"}, r"\"bh\" \(Barnes-Hut\)"),
        ({"backend": "opentsne", "negative_gradient_method": "exact"}, r"pass backend=\"torch\""),
        ({"device": "gpu0"}, r"`device` 'gpu0' is not a torch device"),
    ],
)
def test_engine_parameter_errors(params, message):
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(ParameterError, match=message):
        TSNE(**params).fit(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only host")
def test_cuda_without_a_gpu_says_so():
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(ParameterError, match="no CUDA device is available"):
        TSNE(device="cuda").fit(X)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_map_matches_cpu_quality(digits, digits_map):
    X, y = digits
    for method in ("exact", "fft"):
        ours = TSNE(device="cuda", negative_gradient_method=method).fit(X)
        assert ours.params_["device"].startswith("cuda")
        ref = digits_map.embedding_
        assert knn_accuracy(ours.embedding_, y) >= knn_accuracy(ref, y) - 0.005
        assert trustworthiness(X, ours.embedding_) >= trustworthiness(X, ref) - 0.002


def test_exact_gradient_on_a_large_map_warns_before_any_work():
    with pytest.warns(UserWarning, match=r"exact t-SNE gradient costs n_samples\^2 = 4.0e\+10"):
        resolved = TSNE(n_components=3, backend="torch")._validate(200_000)
    assert resolved["negative_gradient_method"] == "exact"


def test_smooth_box_counts():
    from featscope.analysis._tsne_shared import _smooth, grid_boxes

    assert [_smooth(n) for n in (50, 599, 601, 1349, 7)] == [50, 600, 625, 1350, 8]
    # At least 50 boxes, about span / width, 5-smooth, at most 1,350.
    assert [grid_boxes(s, 1.5) for s in (3.0, 100.0, 898.5, 1e6)] == [50, 72, 600, 1350]


def test_fft_forces_on_isolated_points_of_a_wide_map():
    """Far from the clusters the force is a small difference of large sums (float64 grid)."""
    rng = np.random.default_rng(3)
    Y = np.concatenate([_clusters(3000, 150.0, seed=3), rng.uniform(-200, 200, size=(40, 2))])
    P = sp.eye(len(Y), format="csr") / len(Y)
    exact, z = TorchTSNE(P, Y, "cpu", "exact", dtype=torch.float64)._repulsion_exact()
    approx, z_fft = TorchTSNE(P, Y, "cpu", "fft", box_width=0.5)._repulsion_fft()
    isolated = slice(3000, None)
    error = (approx[isolated].double() - exact[isolated]).norm(dim=1) / exact[isolated].norm(dim=1)
    assert float(error.median()) < 2e-3
    assert float(error.max()) < 0.05
    assert abs(float(z_fft / z) - 1) < 1e-3


def test_gpu_resolution_of_the_auto_choices(monkeypatch):
    from featscope.analysis import tsne_params

    monkeypatch.setattr(tsne_params, "check_device", lambda device: "cuda:0")
    small = TSNE(device="cuda")._validate(20_000)
    large = TSNE(device="cuda")._validate(1_000_000)
    assert (small["backend"], small["negative_gradient_method"]) == ("torch", "exact")
    assert (large["backend"], large["negative_gradient_method"]) == ("torch", "fft")
    assert large["neighbors"] == "exact"  # up to 2,000,000 points on a GPU
    assert TSNE(device="cuda")._validate(3_000_000)["neighbors"] == "annoy"
    with pytest.raises(ParameterError, match=r"`backend` \"opentsne\" runs on the CPU only"):
        TSNE(device="cuda", backend="opentsne")._validate(1000)


def test_mps_is_refused_with_the_reason(monkeypatch):
    from featscope.analysis import tsne_params

    monkeypatch.setattr(tsne_params, "check_device", lambda device: "mps")
    with pytest.raises(ParameterError, match=r"need float64, which MPS lacks; pass device=\"cpu\""):
        TSNE(device="mps")._validate(1000)


def test_engine_state_stays_on_its_device_whatever_the_default(affinities):
    """Every tensor is placed explicitly: a different default device must not matter."""
    X = np.random.default_rng(0).normal(size=(120, 8)).astype(np.float32)
    torch.set_default_device("meta")
    try:
        P, _ = device_affinities(X, 20, 6.0, "euclidean", 1, "cpu")
        state = TorchTSNE(P, _clusters(120, 5.0), "cpu", "fft")
        state.optimize(3, 12.0, 0.5, 100.0)
        grad, kl = state.gradient(1.0)
    finally:
        torch.set_default_device(None)
    assert P.device.type == "cpu"
    assert grad.device.type == "cpu"
    assert np.isfinite(kl)
