"""The numba engine: openTSNE's update step for step, the point order, the engine choice."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from openTSNE import TSNEEmbedding, affinity

from featscope.analysis import TSNE, _tsne_engine
from featscope.analysis._tsne_affinity import perplexity_affinities
from featscope.analysis._tsne_neighbors import exact_neighbors
from featscope.analysis._tsne_numba import NumbaTSNE, _FFTRepulsion, _opentsne_repulsion
from featscope.analysis._tsne_order import locality_order, renumber
from featscope.errors import ParameterError


@pytest.fixture(scope="module")
def problem():
    """Affinities of 600 digits (PCA-free, 64 features) and a seeded start."""
    from sklearn.datasets import load_digits

    X = load_digits().data[:600].astype(np.float32)
    distances, indices = exact_neighbors(X, 45)
    P = perplexity_affinities(distances, indices, 15.0)
    start = np.random.default_rng(0).normal(scale=1e-2, size=(len(X), 2))
    return P, start


def _opentsne(P, start, n_iter, exaggeration, momentum, rate):
    embedding = TSNEEmbedding(
        start.copy(),
        affinity.PrecomputedAffinities(P, normalize=False),
        negative_gradient_method="fft",
        n_jobs=1,
    )
    return embedding.optimize(
        n_iter=n_iter,
        exaggeration=exaggeration,
        momentum=momentum,
        learning_rate=rate,
        ints_in_interval=2,
        inplace=True,
    )


def test_follows_opentsne_step_for_step(problem):
    """With openTSNE's own repulsion, the compiled attraction and update are openTSNE's."""
    P, start = problem
    state = NumbaTSNE(P, start, box_width=2, n_jobs=2, repulsion="opentsne")
    state.optimize(40, exaggeration=12.0, momentum=0.5, learning_rate=50.0)
    state.optimize(40, exaggeration=1.0, momentum=0.8, learning_rate=150.0)
    reference = _opentsne(P, start, 40, 12.0, 0.5, 50.0)
    reference = reference.optimize(
        n_iter=40, exaggeration=1.0, momentum=0.8, learning_rate=150.0, ints_in_interval=2,
        inplace=True,
    )  # fmt: skip
    ours = state.embedding()
    assert np.abs(ours - np.asarray(reference)).max() < 1e-9 * np.abs(ours).max()
    assert state.kl_divergence() == pytest.approx(float(reference.kl_divergence), rel=1e-8)
    assert np.abs(start).max() == pytest.approx(np.abs(problem[1]).max())  # start not moved


def test_callbacks_see_the_kl_before_the_update_and_can_stop(problem):
    P, start = problem
    state = NumbaTSNE(P, start, box_width=2, n_jobs=1)
    seen = []

    def callback(iteration, kl, embedding):
        # No embedding: the engine's own array may be in its own order.
        seen.append((iteration, kl, embedding, state.embedding()))
        return iteration == 20

    assert state.optimize(100, 12.0, 0.5, 50.0, callbacks=[callback], every=10) is True
    assert [s[0] for s in seen] == [10, 20]
    assert [s[2] for s in seen] == [None, None]
    # Stopped before the 20th update: the map is the one the callback saw, and its KL.
    assert np.array_equal(seen[-1][3], state.embedding())
    assert seen[-1][1] == pytest.approx(state.kl_divergence(), rel=1e-12)
    assert seen[0][1] > 0
    assert state.optimize(5, 1.0, 0.8, 50.0) is False


def _exact_repulsion(Y):
    diff = Y[:, None, :] - Y[None, :, :]
    w = 1.0 / (1.0 + (diff**2).sum(axis=-1))
    np.fill_diagonal(w, 0.0)
    z = w.sum()
    return -((w**2)[:, :, None] * diff).sum(axis=1) / z, z


@pytest.mark.parametrize(
    ("scale", "z_tol", "force_tol"),
    # A compact map (all in a few boxes), an unfolded one, a sprawling one (800 points over
    # 500 units, where both interpolations are coarse: only the comparison holds there).
    [(0.05, 1e-5, 1e-3), (1.0, 0.02, 0.1), (8.0, None, None)],
)
def test_fft_repulsion_is_at_least_as_close_to_the_exact_sums_as_opentsnes(scale, z_tol, force_tol):
    Y = np.random.default_rng(1).normal(scale=scale * 10, size=(800, 2))
    exact, z = _exact_repulsion(Y)
    z_error, force_error = {}, {}
    for name, repulsion in (("ours", _FFTRepulsion()), ("openTSNE", _opentsne_repulsion)):
        out = np.empty_like(Y)
        z_error[name] = abs(repulsion(Y, out, 1.5) - z) / z
        relative = np.linalg.norm(out - exact, axis=1) / np.linalg.norm(exact, axis=1)
        force_error[name] = np.median(relative)
    assert z_error["ours"] <= 1.1 * z_error["openTSNE"] + 1e-6  # both exact to rounding
    assert force_error["ours"] <= 1.1 * force_error["openTSNE"] + 1e-6
    if z_tol is not None:
        assert z_error["ours"] < z_tol
        assert force_error["ours"] < force_tol


def test_fft_repulsion_keeps_the_kernel_while_the_grid_stays():
    Y = np.random.default_rng(2).normal(scale=30.0, size=(500, 2))
    repulsion, out = _FFTRepulsion(), np.empty_like(Y)
    repulsion(Y, out, 1.5)
    key, spectra = repulsion.key, repulsion.spectra
    repulsion(Y + 0.01, out, 1.5)  # moved, same extent: same grid, same spectra object
    assert repulsion.key == key
    assert repulsion.spectra is spectra
    repulsion(Y * 2.0, out, 1.5)  # twice as wide: more boxes
    assert repulsion.key[0] > key[0]
    assert repulsion.key[1] == key[1] == 1.5  # boxes of box_width once the map is wide


def test_rejects_maps_that_are_not_2d(problem):
    P, start = problem
    with pytest.raises(ValueError, match="2-D maps only"):
        NumbaTSNE(P, np.zeros((len(start), 3)), box_width=2, n_jobs=1)
    with pytest.raises(ValueError, match="repulsion must be 'fft' or 'opentsne', got 'exact'"):
        NumbaTSNE(P, start, box_width=2, n_jobs=1, repulsion="exact")


def test_renumber_is_the_permuted_matrix_and_the_order_brings_neighbours_together():
    rng = np.random.default_rng(0)
    n = 300
    # A ring whose points were shuffled: each point's neighbours are far away in memory.
    shuffle = rng.permutation(n)
    rows = np.concatenate([shuffle, shuffle])
    cols = np.concatenate([np.roll(shuffle, 1), np.roll(shuffle, -1)])
    P = sp.csr_matrix((rng.random(2 * n), (rows, cols)), shape=(n, n))
    P = P + P.T
    order = locality_order(P)
    assert sorted(order.tolist()) == list(range(n))
    Q = renumber(P, order)
    assert np.array_equal(Q.toarray(), P.toarray()[order][:, order])

    def bandwidth(M):
        coo = M.tocoo()
        return int(np.abs(coo.row - coo.col).max())

    assert bandwidth(P) > n / 2
    assert bandwidth(Q) <= 2


@pytest.mark.parametrize(
    ("backend", "method"), [("numba", "fft"), ("opentsne", "fft"), ("opentsne", "bh")]
)
def test_reordered_engines_give_the_map_in_the_callers_order(problem, monkeypatch, backend, method):
    P, start = problem

    def run(threshold):
        monkeypatch.setattr(_tsne_engine, "LOCALITY_ORDER_FROM", threshold)
        engine = _tsne_engine.make_engine(
            backend, P, start, device="cpu", method=method, n_jobs=1, random_state=0
        )
        monitor = _tsne_engine.ProgressMonitor(None, 0)
        engine.run(30, 12.0, 0.5, 50.0, monitor, every=10)
        return engine, engine.result()

    plain, (unordered, kl_plain) = run(10**9)
    ordered, (reordered, kl_ordered) = run(0)
    assert plain.order is None
    assert ordered.order is not None
    assert not np.array_equal(ordered.order, np.arange(len(start)))
    # The same map, point for point, up to the rounding of a different summation order
    # (Barnes-Hut's tree sums in point order, and its approximation amplifies that; the numba
    # engine's float32 grid sums each node's charges in point order). A map handed back in
    # the engine's order would be off by the map's own size.
    tolerance = {"opentsne-fft": 1e-8, "numba-fft": 1e-3}.get(f"{backend}-{method}", 0.05)
    assert np.abs(reordered - unordered).max() < tolerance * np.abs(unordered).max()
    assert kl_ordered == pytest.approx(kl_plain, rel=tolerance)


def test_auto_runs_fft_maps_on_numba_and_falls_back_to_opentsne(monkeypatch):
    from featscope.analysis import tsne as tsne_module

    X = np.random.default_rng(0).normal(size=(200, 5))
    fit = TSNE(negative_gradient_method="fft", n_iter=260, n_jobs=1, random_state=0).fit(X)
    assert fit.params_["backend"] == "numba"
    assert fit.embedding_.shape == (200, 2)
    assert np.isfinite(fit.embedding_).all()
    monkeypatch.setattr(tsne_module, "numba_ok", lambda: False)
    fallback = TSNE(negative_gradient_method="fft", n_iter=260, n_jobs=1, random_state=0).fit(X)
    assert fallback.params_["backend"] == "openTSNE"
    # Barnes-Hut stays openTSNE's whatever is installed.
    monkeypatch.undo()
    assert (
        TSNE(negative_gradient_method="bh", n_iter=260, n_jobs=1).fit(X).params_["backend"]
        == "openTSNE"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"negative_gradient_method": "bh"}, r"\"numba\" runs the FFT gradient.*method='bh'"),
        ({"n_components": 3, "negative_gradient_method": "auto"}, r"n_components=3"),
        ({"negative_gradient_method": "exact"}, r'"exact" is the torch engine.*"numba"'),
    ],
)
def test_numba_backend_parameter_errors(params, message):
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(ParameterError, match=message):
        TSNE(backend="numba", perplexity=5, **params).fit(X)


def test_the_map_does_not_depend_on_the_thread_count(problem):
    P, start = problem
    maps, kls = [], []
    for n_jobs in (1, 2):
        state = NumbaTSNE(P, start, box_width=1.5, n_jobs=n_jobs)
        state.optimize(60, 12.0, 0.5, 50.0)
        state.optimize(60, 1.0, 0.8, 150.0)
        maps.append(state.embedding())
        kls.append(state.kl_divergence())
    assert np.array_equal(maps[0], maps[1])
    assert kls[0] == kls[1]


def test_the_schedule_reaches_the_numba_engine(monkeypatch):
    calls = []

    def record(self, n_iter, exaggeration, momentum, learning_rate, callbacks=(), every=50):
        calls.append((n_iter, exaggeration, momentum, learning_rate, every))
        return False

    monkeypatch.setattr(NumbaTSNE, "optimize", record)
    X = np.random.default_rng(0).normal(size=(120, 5))
    fit = TSNE(
        negative_gradient_method="fft", learning_rate=100.0, early_exaggeration=8.0,
        n_iter=600, n_jobs=1,
    ).fit(X)  # fmt: skip
    assert fit.params_["backend"] == "numba"
    # sklearn units -> openTSNE's (no factor 4 in its gradient); momentum 0.8 in both phases.
    assert calls == [(250, 8.0, 0.8, 400.0, 50), (350, 1.0, 0.8, 400.0, 50)]


@pytest.mark.parametrize(
    "Y",
    [
        np.zeros((30, 2)),  # every point in one place
        np.array([[0.0, 0.0], [1.0, 0.5], [-2.0, 3.0], [0.5, -1.0]]),  # 4 points
        np.stack([np.linspace(-4, 4, 300), np.zeros(300)], axis=1),  # a line
    ],
    ids=["identical", "four", "line"],
)
def test_fft_repulsion_on_degenerate_maps(Y):
    exact, z = _exact_repulsion(Y)
    out = np.empty_like(Y)
    z_fft = _FFTRepulsion()(np.ascontiguousarray(Y), out, 1.5)
    assert z_fft == pytest.approx(z, rel=1e-3)
    assert np.isfinite(out).all()
    assert np.abs(out - exact).max() <= 1e-3 * max(np.abs(exact).max(), 1e-12)


def test_kernels_compile_without_a_writable_cache(monkeypatch):
    from featscope.analysis import _tsne_kernels

    def njit(cache=False, **options):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available")
        return lambda function: ("compiled", function, options)

    monkeypatch.setattr(_tsne_kernels, "njit", njit)
    compiled = _tsne_kernels._jit(parallel=True)(len)
    assert compiled == ("compiled", len, {"nogil": True, "parallel": True})


def test_without_numba_auto_falls_back_and_numba_is_refused(monkeypatch):
    from featscope.analysis import _tsne_numba
    from featscope.analysis import tsne as tsne_module

    def broken():
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(_tsne_numba, "_kernels", broken)
    assert _tsne_numba.available() is False
    monkeypatch.setattr(tsne_module, "numba_ok", _tsne_numba.available)
    X = np.random.default_rng(0).normal(size=(60, 4))
    with pytest.raises(ParameterError, match=r'"numba" needs numba.*backend="opentsne"'):
        TSNE(backend="numba", perplexity=5, n_jobs=1).fit(X)
    fit = TSNE(negative_gradient_method="fft", perplexity=5, n_iter=260, n_jobs=1).fit(X)
    assert fit.params_["backend"] == "openTSNE"
