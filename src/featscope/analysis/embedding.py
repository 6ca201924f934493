"""Embedding maps of feature vectors: t-SNE, UMAP and PCA.

Three layers, each built from the one below:

* :func:`embed` -- a :class:`~featscope.results.FeatureSet` in, an
  :class:`~featscope.results.EmbeddingResult` (map + parameters + quality metrics) out;
* :func:`reduce` -- a numpy array in, ``(coords, effective_params)`` out, for any method;
* :class:`TSNE` -- a scikit-learn style estimator (``fit`` / ``fit_transform`` /
  ``embedding_``) built on openTSNE's stage objects (affinities, initialisation,
  :class:`openTSNE.TSNEEmbedding`).

The t-SNE parameters keep the names and meanings of :class:`sklearn.manifold.TSNE` as called by
MMPretrain's ``vis_tsne.py`` (``perplexity``, ``early_exaggeration``, ``learning_rate``,
``n_iter`` including the 250 exaggeration iterations, ``n_iter_without_progress``, ``init``), so
numbers users pass there mean the same here. Where featscope differs on purpose:

* it is faster than openTSNE's defaults with the same map quality (issue 8; profile and
  measurements in docs/benchmarks.md): exact nearest neighbours by blocked matrix products and
  affinities calibrated for all rows at once (:mod:`._tsne_affinity`) instead of Annoy, the
  PCA start from a 50 x 50 covariance matrix, Barnes-Hut below 2,500 points per core, and both
  phases stop when their KL divergence has converged (``kl_rtol``); the gradient descent itself
  is openTSNE's compiled Barnes-Hut / FFT code;

* every random choice is seeded (``random_state=0``; sklearn's default ``None`` gives a
  different map on every run);
* ``learning_rate="auto"`` and ``init="pca"`` are the defaults, since a fixed rate of 200
  converges badly on large data sets. "auto" is Belkina et al. (2019)'s rule as openTSNE applies
  it: ``max(n_samples / early_exaggeration / 4, 50)`` (sklearn's "auto") during early
  exaggeration, then ``max(n_samples / 4, 50)`` once the exaggeration is off, so the second
  phase converges in fewer iterations;
* ``n_iter`` defaults to 750 (250 exaggerated + 500), openTSNE's default: with the "auto" rate
  the map is as good as after sklearn's 1,000 iterations at a rate of 200, in three quarters of
  the time (docs/benchmarks.md). ``n_iter=1000`` gives the reference's count;
* features wider than ``pca_dims`` (50) are first reduced by PCA, the usual t-SNE preprocessing,
  which is much faster and changes the neighbourhoods very little.

``learning_rate`` is in scikit-learn's units; openTSNE (like bhtsne and FIt-SNE) defines the
gradient without sklearn's factor 4, so the rate handed to openTSNE is ``4 * learning_rate``.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions
from featscope.results import EmbeddingResult, FeatureSet

__all__ = ["TSNE", "embed", "map_feature_sets", "reduce"]

logger = logging.getLogger(__name__)

#: Iterations of the early-exaggeration phase (as in sklearn and openTSNE).
EXAGGERATION_ITER = 250
#: "auto" uses the FFT-interpolation gradient from this many samples *per thread* on, Barnes-Hut
#: below. openTSNE's own rule switches at 10,000 samples whatever the threads, but its FFT
#: gradient (1.0.4) does not get faster with more threads while Barnes-Hut does. Measured on
#: Fashion-MNIST PCA-50 (docs/benchmarks.md): with 16 threads Barnes-Hut won at 10,000
#: (19.5 s vs 69.1 s) and 20,000 points (40.4 s vs 93.5 s); with 2 threads FFT won at 20,000
#: (85.5 s vs 132.1 s) and Barnes-Hut at 2,000. The 10-NN accuracy was the same.
#: On this project's 2-core machines, Barnes-Hut won at 10,000 points (750 iterations: 31 s vs
#: 46 s) and FFT at 20,000 (64 s vs 72 s) with openTSNE's FFT grid. With featscope's coarser
#: grid (:data:`FFT_INTS_IN_INTERVAL`) the FFT gradient costs half as much, and one thread
#: measured per iteration of the second phase: 2,000 points BH 10.5 ms vs FFT 13.1 ms;
#: 20,000 points BH 243 ms vs FFT 47 ms. Hence the switch at 2,500 points per thread.
FFT_SAMPLES_PER_THREAD = 2_500
#: Interpolation intervals per unit of map length of the FFT gradient, openTSNE's
#: ``ints_in_interval`` (its default: 1). The FFT grid, whose size grows with the square of
#: the map's extent, is most of the gradient's cost once the map has unfolded; 2 makes it 4
#: times smaller (3 interpolation points per 2 units, still fine for a kernel 1 / (1 + d^2)
#: that varies on the scale of the clusters) and the 10-NN accuracy and trustworthiness of the
#: map stay those of openTSNE's default (docs/benchmarks.md).
FFT_INTS_IN_INTERVAL = 2
#: "auto" neighbours: exact search (blocked matrix products, :mod:`._tsne_affinity`) up to this
#: many samples, openTSNE's Annoy above. Exact search costs O(N^2 d) but runs in BLAS on all
#: cores; Annoy runs on one thread in openTSNE's defaults (docs/benchmarks.md has the profile).
EXACT_NEIGHBORS_MAX = 100_000
#: Default ``kl_rtol``: relative KL decrease per 50 iterations below which the second phase
#: stops (docs/benchmarks.md: the 10-NN accuracy of the map barely changes after that).
KL_RTOL = 0.05
#: ``kl_rtol`` applies as given up to this many samples and shrinks as ``1 / N`` above: larger
#: maps keep improving their neighbourhoods at a given relative KL decrease (Fashion-MNIST
#: PCA-50, second phase, KL decrease per 50 iterations -> 10-NN accuracy of the map: 20,000
#: points 4.9 % -> 0.8234, final 0.8256; 70,000 points 4.8 % -> 0.8366, 2.4 % -> 0.8412,
#: while openTSNE's 750 iterations reach 0.8446; a ``sqrt(N)`` scaling stopped at 2.4 % and
#: missed that by 0.0055, docs/benchmarks.md). Full up to 20,000 left the 20,000-point map
#: 0.0052 below openTSNE's median in a later run (348 iterations, 0.8201 vs 0.8253); from
#: 10,000 on it runs 398 iterations there (0.8223) and 723 at 70,000 points (0.8422 vs 0.8448).
KL_RTOL_FULL_UP_TO = 10_000
#: With ``kl_rtol`` on, the early-exaggeration phase stops (after at least ``EE_MIN_ITER``
#: iterations) once its KL divergence fell by less than this fraction over 25 iterations
#: (20,000 points: cutting it to 125 iterations cost 0.003 of 10-NN accuracy, so it is strict).
EE_RTOL = 0.005
EE_MIN_ITER = 100
#: The torch engine's "auto" gradient: exact (all pairs) up to this many samples on a GPU,
#: FFT interpolation above. 20,000 points are 4e8 pairs an iteration, a few milliseconds of
#: elementwise arithmetic on an H100-class GPU; the FFT grid costs about the same there and
#: is approximate, so exact wins below. (Not measured on a GPU in this project yet; see
#: docs/benchmarks.md.)
TORCH_EXACT_MAX_GPU = 20_000
#: ... and on the CPU, where all pairs cost about 10 ns each (2,000 points: ~40 ms an
#: iteration on 2 cores, against 6-10 ms for openTSNE's Barnes-Hut).
TORCH_EXACT_MAX_CPU = 1_000
#: Box width (map units) of the torch FFT gradient on a GPU, where the grid is cheap: half of
#: openTSNE's default (1). On the digits (1,797 points) the maps' exact KL divergence was
#: 0.825 at width 1, 0.794 at 0.5, 0.789 at 0.25 and 0.789 with the exact gradient: the
#: coarse grid under-estimates the repulsion of near neighbours and the map stays too
#: compact (tests/analysis/test_tsne_torch.py measures the force error against the exact sums).
TORCH_FFT_BOX_WIDTH_GPU = 0.5
#: ... and on the CPU, where the FFT of the grid costs as much as the rest (16.6 s vs 6.8 s
#: for those digits at 0.5 vs 1): openTSNE's default width.
TORCH_FFT_BOX_WIDTH_CPU = 1.0
#: Exact neighbour search on a GPU up to this many samples (O(N^2 d) in matrix products).
EXACT_NEIGHBORS_MAX_GPU = 2_000_000
#: KL divergence is checked this often for ``n_iter_without_progress`` (as in sklearn).
_CHECK_EVERY = 50
_INITS = ("pca", "random")
_GRADIENT_METHODS = ("auto", "bh", "fft", "exact")
_BACKENDS = ("auto", "opentsne", "torch")
_NEIGHBOR_METHODS = ("auto", "exact", "annoy", "pynndescent")
_METRICS = ("euclidean", "cosine", "manhattan")
_METHODS = ("tsne", "umap", "pca")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bad(name: str, rule: str, value: Any, fix: str = "") -> ParameterError:
    """Build a ParameterError in sklearn's template, plus the fix when there is more to say."""
    tail = f" {fix}" if fix else ""
    return ParameterError(f"The `{name}` parameter must be {rule}; got {value!r}.{tail}")


def _effective_n_jobs(n_jobs: int, load_aware: bool = True) -> int:
    """Resolve sklearn-style ``n_jobs`` (-1 = all cores) against the cores free for this fit.

    Negative values count from the cores this process may use *minus those other processes
    keep busy* (:func:`._cpu_load.busy_cores_elsewhere`, rounded): openTSNE's OpenMP threads
    spin at their barriers, so on an oversubscribed machine two threads take longer than one
    (measured on this project's shared 2-core machines: Barnes-Hut at 2,000 points, 139 ms vs
    63 ms per iteration). The map does not depend on the thread count, only the time does.
    """
    try:
        n_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cores = os.cpu_count() or 1
    if n_jobs < 0:
        busy = 0
        if load_aware:
            from featscope.analysis._cpu_load import busy_cores_elsewhere

            busy = round(busy_cores_elsewhere(n_cores))
        return max(1, min(n_cores, n_cores - busy) + 1 + n_jobs)
    return n_jobs


def _check_samples(X: Any, what: str = "t-SNE", min_samples: int = 4) -> np.ndarray:
    """Return ``X`` as a finite, non-constant float32 (N, D) array or raise ParameterError."""
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"`X` must be a numeric array (n_samples, n_features); could not convert it ({exc})"
        ) from exc
    if X.ndim != 2:
        raise ParameterError(
            f"`X` must be 2-D (n_samples, n_features); got shape {X.shape}; "
            "flatten or pool the features to one vector per sample"
        )
    n = X.shape[0]
    if n < min_samples:
        raise ParameterError(
            f"{what} needs at least {min_samples} samples; got {n}; pass more samples"
        )
    if X.shape[1] == 0:
        raise ParameterError("`X` has 0 features per sample; pass at least one feature")
    bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad_rows.size:
        shown = ", ".join(str(i) for i in bad_rows[:5])
        more = f" and {bad_rows.size - 5} more" if bad_rows.size > 5 else ""
        raise ParameterError(
            f"`X` contains NaN or infinite values in {bad_rows.size} row(s) (rows {shown}{more}); "
            "remove or repair those samples before making a map"
        )
    if np.all(X[0] == X):
        raise ParameterError(
            f"all {n} rows of `X` are identical, so every pairwise distance is 0 and a map "
            "would be meaningless; check that the features come from the intended layer and "
            "that the inputs differ"
        )
    return X


class TSNE:
    """t-SNE with scikit-learn's parameters and openTSNE's speed.

    Parameters
    ----------
    n_components : int, default 2
        Dimension of the map: 2 or 3. 2-D maps may use either gradient method; 3-D maps use
        Barnes-Hut (openTSNE's FFT method is limited to 1-2 dimensions).
    perplexity : float, default 30.0
        Effective number of neighbours of each point. Must be > 0; values above
        ``(n_samples - 1) / 3`` are lowered to it with a warning (openTSNE needs
        ``3 * perplexity`` neighbours per point).
    early_exaggeration : float, default 12.0
        Factor on the attractive forces during the first 250 iterations. Must be >= 1.
    learning_rate : float or "auto", default "auto"
        Step size in scikit-learn's units, used in both phases. ``"auto"`` is
        ``max(n_samples / early_exaggeration / 4, 50)`` during early exaggeration and
        ``max(n_samples / 4, 50)`` after it (openTSNE's schedule); MMPretrain's ``vis_tsne.py``
        passes 200.
    n_iter : int, default 750
        Total number of iterations, including the 250 of early exaggeration. Must be > 250.
        openTSNE's default; the reference (sklearn) used 1,000 at a slower rate.
    n_iter_without_progress : int or None, default 300
        Stop the second phase when the KL divergence (checked every 50 iterations) has not
        decreased for this many iterations. ``None`` never stops early.
    kl_rtol : float or None, default 0.05
        Convergence stop. The second phase stops once the KL divergence fell by less than
        this fraction (times ``10,000 / n_samples`` above 10,000 samples) over the
        last 50 iterations, and the early-exaggeration phase (at least 100 iterations) once
        its KL divergence fell by less than :data:`EE_RTOL` (0.5 %) over 25 iterations: by
        then the map's neighbourhoods barely change (10-NN accuracy and trustworthiness
        measured in docs/benchmarks.md), so the remaining iterations are mostly wasted time.
        ``None`` or ``0``: the fixed schedule of sklearn and openTSNE (250 exaggerated
        iterations, then up to ``n_iter``).
    init : {"pca", "random"} or ndarray of shape (n_samples, n_components), default "pca"
        Initial positions. "pca" and "random" are scaled to a standard deviation of 1e-4
        (as sklearn and openTSNE do); an array is used as given.
    pca_dims : int or None, default 50
        When the features have more columns than this, they are first reduced to ``pca_dims``
        dimensions with a seeded PCA (float32). ``0`` or ``None`` switches this off. Only
        applied with ``metric="euclidean"``: PCA preserves Euclidean, not angular, geometry.
    metric : {"euclidean", "cosine", "manhattan"}, default "euclidean"
        Distance used to find each point's neighbours.
    random_state : int or None, default 0
        Seed of the PCA, the neighbour index and the initialisation. ``None``: not
        reproducible.
    n_jobs : int, default -1
        Threads for the neighbour search and the gradient; -1 = all idle cores (cores minus
        the 1-minute load average, at least 1), -2 = one fewer. The map is the same whatever
        the thread count.
    negative_gradient_method : {"auto", "bh", "fft", "exact"}, default "auto"
        How the repulsive forces are computed: Barnes-Hut (openTSNE only), FFT-accelerated
        interpolation (2-D maps) or all pairs ("exact", torch only). "auto" with openTSNE
        uses "fft" for 2-D maps of at least :data:`FFT_SAMPLES_PER_THREAD` (2,500) points
        per core of the machine, "bh" otherwise: Barnes-Hut gets faster with more threads,
        openTSNE's FFT gradient does not (measurements in docs/benchmarks.md). "auto" with
        torch uses "exact" up to :data:`TORCH_EXACT_MAX_GPU` (20,000) samples on a GPU
        (:data:`TORCH_EXACT_MAX_CPU` on the CPU) and for 3-D maps, "fft" above.
    neighbors : {"auto", "exact", "annoy", "pynndescent"}, default "auto"
        Nearest-neighbour search. "auto": "exact" for the Euclidean and cosine metrics up to
        :data:`EXACT_NEIGHBORS_MAX` (100,000) samples, openTSNE's Annoy otherwise. "exact"
        with those metrics is featscope's blocked matrix-product search (torch from 5,000
        samples, numpy below) with affinities calibrated in numpy; with "manhattan" it is
        openTSNE's exact search. ``params_["neighbors"]`` records the search used. On a GPU
        ``device``, "auto" searches exactly up to :data:`EXACT_NEIGHBORS_MAX_GPU` samples, on
        the GPU.
    device : str, default "cpu"
        Where the map is computed: "cpu", "cuda", "cuda:N" or "mps". Anything but the CPU
        runs featscope's torch engine (:mod:`._tsne_torch`), which also moves the exact
        neighbour search there.
    backend : {"auto", "opentsne", "torch"}, default "auto"
        The gradient-descent engine. "opentsne": openTSNE's compiled Barnes-Hut / FFT code
        (CPU only, the fastest on a CPU). "torch": featscope's torch implementation of the
        same update rule (exact or FFT-interpolated repulsion) on ``device``. "auto": torch
        when ``device`` is not the CPU or ``negative_gradient_method="exact"``, openTSNE
        otherwise. ``params_["backend"]`` records the engine used.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        The map (float64).
    kl_divergence_ : float
        KL divergence of the final map.
    n_iter_ : int
        Iterations run (gradient updates, both phases), ``<= n_iter``.
    n_iter_exaggeration_ : int
        Of these, iterations of the early-exaggeration phase (``<= 250``; fewer when
        ``kl_rtol`` stopped it).
    learning_rate_ : float
        Learning rate of the second phase (scikit-learn units; openTSNE got 4 times this).
        The exaggeration phase used ``learning_rate_exaggeration_``.
    learning_rate_exaggeration_ : float
        Learning rate of the early-exaggeration phase (scikit-learn units).
    perplexity_ : float
        Perplexity used, after lowering it for small data sets.
    params_ : dict
        Every effective parameter ("auto" values resolved), JSON-ready.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> coords = TSNE(n_iter=500).fit_transform(X)  # doctest: +SKIP
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        perplexity: float = 30.0,
        early_exaggeration: float = 12.0,
        learning_rate: float | str = "auto",
        n_iter: int = 750,
        n_iter_without_progress: int | None = 300,
        kl_rtol: float | None = KL_RTOL,
        init: str | np.ndarray = "pca",
        pca_dims: int | None = 50,
        metric: str = "euclidean",
        random_state: int | None = 0,
        n_jobs: int = -1,
        negative_gradient_method: str = "auto",
        neighbors: str = "auto",
        device: str = "cpu",
        backend: str = "auto",
    ) -> None:
        self.n_components = n_components
        self.perplexity = perplexity
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.n_iter = n_iter
        self.n_iter_without_progress = n_iter_without_progress
        self.kl_rtol = kl_rtol
        self.init = init
        self.pca_dims = pca_dims
        self.metric = metric
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.negative_gradient_method = negative_gradient_method
        self.neighbors = neighbors
        self.device = device
        self.backend = backend

    # -- sklearn-style helpers -------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> tuple[str, ...]:
        return (
            "n_components",
            "perplexity",
            "early_exaggeration",
            "learning_rate",
            "n_iter",
            "n_iter_without_progress",
            "kl_rtol",
            "init",
            "pca_dims",
            "metric",
            "random_state",
            "n_jobs",
            "negative_gradient_method",
            "neighbors",
            "device",
            "backend",
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn estimator API).

        Parameters
        ----------
        deep : bool, default True
            Unused; present for scikit-learn compatibility.

        Returns
        -------
        dict
            Parameter name to value.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> TSNE:
        """Set constructor parameters (scikit-learn estimator API).

        Parameters
        ----------
        **params
            Parameter names and new values.

        Returns
        -------
        TSNE
            ``self``.

        Raises
        ------
        ParameterError
            A name is not a parameter of TSNE.
        """
        _check_known("tsne", params, self._param_names())
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = TSNE()
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name in self._param_names()
            if not _same(getattr(self, name), getattr(defaults, name))
        ]
        return f"TSNE({', '.join(changed)})"

    # -- validation ----------------------------------------------------------------------

    def _validate(self, n_samples: int) -> dict[str, Any]:
        """Check every parameter against its rule; return the resolved values."""
        if not _is_int(self.n_components) or self.n_components not in (2, 3):
            raise _bad("n_components", "2 or 3", self.n_components)
        if not _is_real(self.perplexity) or not self.perplexity > 0:
            raise _bad("perplexity", "> 0", self.perplexity)
        if not _is_real(self.early_exaggeration) or not self.early_exaggeration >= 1:
            raise _bad("early_exaggeration", ">= 1", self.early_exaggeration)
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise _bad("learning_rate", '"auto" or a number > 0', self.learning_rate)
        elif not _is_real(self.learning_rate) or not self.learning_rate > 0:
            raise _bad("learning_rate", '"auto" or a number > 0', self.learning_rate)
        if not _is_int(self.n_iter) or self.n_iter <= EXAGGERATION_ITER:
            raise ParameterError(
                f"The `n_iter` parameter must be > {EXAGGERATION_ITER} "
                f"({EXAGGERATION_ITER} iterations are early exaggeration); got {self.n_iter!r}."
            )
        patience = self.n_iter_without_progress
        if patience is not None and (not _is_int(patience) or patience < 1):
            raise _bad("n_iter_without_progress", "an integer >= 1 or None", patience)
        rtol = self.kl_rtol
        if rtol is not None and (not _is_real(rtol) or not 0 <= rtol < 1):
            raise _bad("kl_rtol", "a number in [0, 1) or None", rtol)
        if isinstance(self.init, str):
            if self.init not in _INITS:
                raise _bad(
                    "init", '"pca", "random" or an array (n_samples, n_components)', self.init
                )
        else:
            init = np.asarray(self.init)
            if init.shape != (n_samples, self.n_components):
                raise ParameterError(
                    f"The `init` array must have shape (n_samples, n_components) = "
                    f"({n_samples}, {self.n_components}); got {init.shape}."
                )
            if not np.isfinite(init).all():
                raise ParameterError("The `init` array contains NaN or infinite values.")
        pca_dims = self.pca_dims
        if (pca_dims is not None and pca_dims != 0) and (
            not _is_int(pca_dims) or pca_dims < self.n_components
        ):
            raise _bad(
                "pca_dims",
                f"0, None or an integer >= n_components ({self.n_components})",
                pca_dims,
            )
        if self.metric not in _METRICS:
            raise _bad("metric", f"one of {', '.join(map(repr, _METRICS))}", self.metric)
        if self.random_state is not None and not _is_int(self.random_state):
            raise _bad("random_state", "an integer or None", self.random_state)
        if not _is_int(self.n_jobs) or self.n_jobs == 0:
            raise _bad("n_jobs", "a non-zero integer (-1 = all cores)", self.n_jobs)
        method = self.negative_gradient_method
        if method not in _GRADIENT_METHODS:
            raise _bad(
                "negative_gradient_method",
                f"one of {', '.join(map(repr, _GRADIENT_METHODS))}",
                method,
            )
        if method == "fft" and self.n_components != 2:
            raise ParameterError(
                f'The `negative_gradient_method` "fft" supports 2-D maps only; got '
                f'n_components={self.n_components}; use "bh" or "auto" for 3-D maps.'
            )
        if self.backend not in _BACKENDS:
            raise _bad("backend", f"one of {', '.join(map(repr, _BACKENDS))}", self.backend)
        device = _resolve_device(self.device)
        if device.startswith("mps"):
            raise ParameterError(
                f"The t-SNE does not run on {device!r}: its affinities and sums need float64, "
                'which MPS lacks; pass device="cpu" (the model can still run on MPS)'
            )
        backend = self.backend
        if backend == "auto":
            backend = "torch" if not _on_cpu(device) or method == "exact" else "opentsne"
        if backend == "opentsne" and not _on_cpu(device):
            raise ParameterError(
                f'The `backend` "opentsne" runs on the CPU only; got device={self.device!r}; '
                'pass backend="torch" (or "auto") for a GPU, or device="cpu"'
            )
        if backend == "opentsne" and method == "exact":
            raise ParameterError(
                'The `negative_gradient_method` "exact" is the torch engine\'s; got '
                'backend="opentsne"; pass backend="torch" or "auto"'
            )
        if backend == "torch" and method == "bh":
            raise ParameterError(
                'The `negative_gradient_method` "bh" (Barnes-Hut) is openTSNE\'s and runs on '
                'the CPU only; pass "exact", "fft" or "auto" with the torch engine'
            )
        if self.neighbors not in _NEIGHBOR_METHODS:
            raise _bad(
                "neighbors", f"one of {', '.join(map(repr, _NEIGHBOR_METHODS))}", self.neighbors
            )

        # Resolve the "auto" values and clamps.
        perplexity = float(self.perplexity)
        limit = (n_samples - 1) / 3
        if perplexity > limit:
            warnings.warn(
                f"`perplexity` {perplexity:g} is too large for {n_samples} samples: it must be at "
                f"most (n_samples - 1) / 3 = {limit:.4g}, because each point needs 3 x "
                f"perplexity neighbours; using perplexity {limit:.4g}",
                UserWarning,
                stacklevel=3,
            )
            perplexity = limit
        exaggeration = float(self.early_exaggeration)
        if self.learning_rate == "auto":
            learning_rate_ee = max(n_samples / exaggeration / 4, 50.0)
            learning_rate = max(n_samples / 4, 50.0)
        else:
            learning_rate = learning_rate_ee = float(self.learning_rate)
        n_jobs = _effective_n_jobs(self.n_jobs)
        if backend == "torch":
            exact_max = TORCH_EXACT_MAX_CPU if _on_cpu(device) else TORCH_EXACT_MAX_GPU
            if method == "auto":
                fft = self.n_components == 2 and n_samples > exact_max
                method = "fft" if fft else "exact"
            if method == "exact" and n_samples > 5 * exact_max:
                warnings.warn(
                    f"the exact t-SNE gradient costs n_samples^2 = {n_samples**2:.1e} pair "
                    f"evaluations an iteration; for {n_samples} points use a 2-D map (FFT "
                    "gradient), or for 3-D maps openTSNE's Barnes-Hut on the CPU "
                    '(backend="opentsne", device="cpu")',
                    UserWarning,
                    stacklevel=3,
                )
        elif method == "auto":
            # The machine's cores, not the idle ones: the method (hence the map) must not
            # depend on the load.
            cores = _effective_n_jobs(self.n_jobs, load_aware=False)
            fft = self.n_components == 2 and n_samples >= FFT_SAMPLES_PER_THREAD * cores
            method = "fft" if fft else "bh"
        neighbors = self.neighbors
        if neighbors == "auto":
            exact_ok = self.metric in ("euclidean", "cosine")
            exact_max = EXACT_NEIGHBORS_MAX if _on_cpu(device) else EXACT_NEIGHBORS_MAX_GPU
            neighbors = "exact" if exact_ok and n_samples <= exact_max else "annoy"
        return {
            "device": device,
            "backend": backend,
            "neighbors": neighbors,
            "perplexity": perplexity,
            "learning_rate": learning_rate,
            "learning_rate_exaggeration": learning_rate_ee,
            "negative_gradient_method": method,
            "n_jobs": n_jobs,
        }

    # -- fitting -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> TSNE:
        """Compute the map of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Feature vectors, one row per sample (at least 4 rows, finite, not all identical).
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        TSNE
            ``self``, with ``embedding_`` and the other fitted attributes set.

        Raises
        ------
        ParameterError
            A parameter breaks its rule, or ``X`` is not a usable (n_samples, n_features) array.
        """
        from openTSNE import affinity, initialization

        from featscope.analysis._tsne_affinity import (
            device_affinities,
            exact_neighbors,
            pca_init,
            perplexity_affinities,
        )

        X = _check_samples(X)
        n_samples, n_features = X.shape
        resolved = self._validate(n_samples)
        n_jobs = resolved["n_jobs"]
        method = resolved["negative_gradient_method"]
        device = resolved["device"]

        pca_dims = None
        if self.pca_dims and self.metric == "euclidean" and n_features > self.pca_dims:
            pca_dims = min(int(self.pca_dims), n_samples)
            X = _pca(X, pca_dims, self.random_state)
            logger.info("PCA %d -> %d dimensions before t-SNE", n_features, pca_dims)

        perplexity = resolved["perplexity"]
        # openTSNE's own rule (3 x perplexity neighbours), kept >= 1 for tiny perplexities.
        k_neighbors = min(n_samples - 1, max(1, int(3 * perplexity)))
        neighbors = resolved["neighbors"]
        exact = neighbors == "exact" and self.metric in ("euclidean", "cosine")
        if exact and resolved["backend"] == "torch":
            # The same affinities, computed where the torch engine will run (a GPU).
            P = device_affinities(X, k_neighbors, perplexity, self.metric, n_jobs, device)
        elif exact:
            # Exact k-NN by blocked matrix products + vectorised calibration (_tsne_affinity):
            # much faster than openTSNE's single-threaded Annoy on <= 100k PCA-reduced points.
            distances, indices = exact_neighbors(X, k_neighbors, self.metric, n_jobs)
            P = perplexity_affinities(distances, indices, perplexity)
        else:
            P = affinity.PerplexityBasedNN(
                X,
                perplexity=perplexity,
                method=neighbors,
                metric=self.metric,
                n_jobs=n_jobs,
                random_state=self.random_state,
                k_neighbors=k_neighbors,
            ).P

        if isinstance(self.init, str) and self.init == "pca":
            start = pca_init(X, self.n_components, self.random_state)
        elif isinstance(self.init, str):
            start = initialization.random(
                n_samples, n_components=self.n_components, random_state=self.random_state
            )
        else:
            start = np.array(self.init, dtype=np.float64)

        if resolved["backend"] == "torch":
            engine: _Engine = _TorchEngine(P, start, device, method, n_jobs)
        else:
            engine = _OpenTSNEEngine(P, start, method, n_jobs, self.random_state)
        del P  # the engine holds its own copy (on the device); free ~1 GB per million points
        # openTSNE's gradient lacks sklearn's factor 4 (see the module docstring).
        step = 4.0 * resolved["learning_rate"]
        step_ee = 4.0 * resolved["learning_rate_exaggeration"]
        exaggeration = float(self.early_exaggeration)
        logger.info(
            "t-SNE: %d points on %s (%s, %s gradient), early exaggeration %g for %d iterations",
            n_samples,
            device,
            resolved["backend"],
            method,
            exaggeration,
            EXAGGERATION_ITER,
        )
        # The exaggerated phase stops once its (exaggerated) KL divergence has converged; the
        # clusters have formed by then and more exaggerated iterations only tighten them.
        ee_monitor = _ProgressMonitor(
            None, offset=0, rtol=EE_RTOL if self.kl_rtol else None, min_checks=EE_MIN_ITER // 25
        )
        engine.run(EXAGGERATION_ITER, exaggeration, 0.5, step_ee, ee_monitor, every=25)
        n_ee = ee_monitor.stopped_at - 1 if ee_monitor.stopped_at is not None else EXAGGERATION_ITER
        rtol = self.kl_rtol
        if rtol:
            rtol = rtol * min(1.0, KL_RTOL_FULL_UP_TO / n_samples)
        monitor = _ProgressMonitor(self.n_iter_without_progress, offset=n_ee, rtol=rtol)
        n_normal = self.n_iter - EXAGGERATION_ITER
        engine.run(n_normal, 1.0, 0.8, step, monitor, every=_CHECK_EVERY)

        self.embedding_, self.kl_divergence_ = engine.result()
        self.n_iter_ = n_ee + (
            monitor.stopped_at - 1 if monitor.stopped_at is not None else n_normal
        )
        self.n_iter_exaggeration_ = n_ee
        self.learning_rate_ = resolved["learning_rate"]
        self.learning_rate_exaggeration_ = resolved["learning_rate_exaggeration"]
        self.perplexity_ = perplexity
        self.kl_divergence_history_ = list(monitor.history)
        if monitor.stopped_at is not None:
            logger.info("t-SNE stopped after %d iterations: %s", self.n_iter_, monitor.reason)
        self.params_ = {
            "n_components": int(self.n_components),
            "perplexity": perplexity,
            "early_exaggeration": exaggeration,
            "early_exaggeration_iter": EXAGGERATION_ITER,
            "learning_rate": self.learning_rate_,
            "learning_rate_exaggeration": self.learning_rate_exaggeration_,
            "n_iter": int(self.n_iter),
            "n_iter_without_progress": self.n_iter_without_progress,
            "kl_rtol": self.kl_rtol,
            "n_iter_run": int(self.n_iter_),
            "n_iter_exaggeration_run": int(n_ee),
            "init": self.init if isinstance(self.init, str) else "array",
            "pca_dims": pca_dims,
            "metric": self.metric,
            "random_state": self.random_state,
            "n_jobs": n_jobs,
            "negative_gradient_method": method,
            "neighbors": neighbors,
            "device": device,
            "backend": "torch" if resolved["backend"] == "torch" else "openTSNE",
        }
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Compute the map of ``X`` and return it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Feature vectors, one row per sample.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            The map, same as ``embedding_`` after the call.

        Raises
        ------
        ParameterError
            See :meth:`fit`.
        """
        return self.fit(X).embedding_


class _ProgressMonitor:
    """openTSNE callback: stop when the KL divergence has not decreased for ``patience`` steps.

    openTSNE calls it every ``_CHECK_EVERY`` iterations with ``(iteration, kl, embedding)``;
    returning True interrupts the optimisation (before that iteration's update).
    """

    def __init__(
        self, patience: int | None, offset: int, rtol: float | None = None, min_checks: int = 1
    ) -> None:
        self.patience = patience
        self.min_checks = min_checks
        self.offset = offset
        self.rtol = rtol or 0.0
        self.reason = ""
        self.best = math.inf
        self.best_iteration = 0
        self.stopped_at: int | None = None
        self.history: list[tuple[int, float]] = []

    def __call__(self, iteration: int, error: float, embedding: Any) -> bool:
        self.history.append((self.offset + iteration, float(error)))
        logger.debug("t-SNE iteration %d: KL divergence %.4f", self.offset + iteration, error)
        previous = self.best
        if error < self.best:
            self.best, self.best_iteration = error, iteration
            # Converged: the last _CHECK_EVERY iterations gained less than rtol (relative).
            converged = math.isfinite(previous) and previous - error < self.rtol * previous
            if self.rtol > 0 and converged and len(self.history) >= self.min_checks:
                self.stopped_at = iteration
                self.reason = f"KL divergence fell by less than {self.rtol:g} (relative)"
                return True
            return False
        if self.patience is not None and iteration - self.best_iteration >= self.patience:
            self.stopped_at = iteration
            self.reason = f"no KL progress for {self.patience} iterations"
            return True
        return False


class _Engine:
    """A t-SNE optimiser: runs phases of gradient descent, then hands back the map."""

    def run(
        self,
        n_iter: int,
        exaggeration: float,
        momentum: float,
        learning_rate: float,
        monitor: _ProgressMonitor,
        every: int,
    ) -> None:
        """Run one phase (up to ``n_iter`` iterations; ``monitor`` may stop it)."""
        raise NotImplementedError

    def result(self) -> tuple[np.ndarray, float]:
        """Return the map (float64) and its KL divergence."""
        raise NotImplementedError


class _OpenTSNEEngine(_Engine):
    """openTSNE's compiled Barnes-Hut / FFT gradient descent on the CPU."""

    def __init__(
        self, P: Any, start: np.ndarray, method: str, n_jobs: int, random_state: int | None
    ) -> None:
        from openTSNE import TSNEEmbedding, affinity

        self.options: dict[str, Any] = {"negative_gradient_method": method, "n_jobs": n_jobs}
        if method == "fft":
            self.options["ints_in_interval"] = FFT_INTS_IN_INTERVAL
        self.embedding = TSNEEmbedding(
            start,
            affinity.PrecomputedAffinities(P, normalize=False),
            negative_gradient_method=method,
            n_jobs=n_jobs,
            random_state=random_state,
        )

    def run(self, n_iter, exaggeration, momentum, learning_rate, monitor, every) -> None:
        self.embedding = self.embedding.optimize(
            n_iter=n_iter,
            exaggeration=exaggeration,
            momentum=momentum,
            learning_rate=learning_rate,
            callbacks=[monitor],
            callbacks_every_iters=every,
            inplace=True,
            **self.options,
        )

    def result(self) -> tuple[np.ndarray, float]:
        return np.array(self.embedding, dtype=np.float64), float(self.embedding.kl_divergence)


class _TorchEngine(_Engine):
    """featscope's torch gradient descent (:mod:`._tsne_torch`), on any torch device."""

    def __init__(self, P: Any, start: np.ndarray, device: Any, method: str, n_jobs: int) -> None:
        from featscope.analysis._tsne_torch import TorchTSNE

        self.n_jobs = n_jobs
        on_cpu = _on_cpu(device)
        width = TORCH_FFT_BOX_WIDTH_CPU if on_cpu else TORCH_FFT_BOX_WIDTH_GPU
        self.state = TorchTSNE(P, start, device, method, box_width=width)

    def run(self, n_iter, exaggeration, momentum, learning_rate, monitor, every) -> None:
        from featscope.analysis._cpu_load import torch_threads

        with torch_threads(self.n_jobs):
            self.state.optimize(n_iter, exaggeration, momentum, learning_rate, [monitor], every)

    def result(self) -> tuple[np.ndarray, float]:
        from featscope.analysis._cpu_load import torch_threads

        with torch_threads(self.n_jobs):
            return self.state.embedding(), self.state.kl_divergence()


def _resolve_device(device: Any) -> str:
    """Check the ``device`` parameter; return it as a string ("cpu", "cuda:0", ...).

    "cpu" is accepted without importing torch: a CPU fit below 5,000 samples never needs it.
    """
    if device == "cpu":
        return "cpu"
    from featscope.models import resolve_device

    return str(resolve_device(device))


def _on_cpu(device: str) -> bool:
    return device.split(":")[0] == "cpu"


def _pca(X: np.ndarray, n_components: int, random_state: int | None) -> np.ndarray:
    """Seeded float32 PCA (sklearn picks the solver: randomized for large, wide inputs)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, svd_solver="auto", random_state=random_state)
    return np.ascontiguousarray(pca.fit_transform(X), dtype=np.float32)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is b
    return bool(a == b) and type(a) is type(b)


def _check_known(method: str, params: dict[str, Any], valid: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) for method {method!r}: {', '.join(unknown)}; "
            f"valid ones are: {', '.join(sorted(valid))}"
        )


_UMAP_DEFAULTS: dict[str, Any] = {
    "n_neighbors": 15,
    "min_dist": 0.1,
    "metric": "euclidean",
    "spread": 1.0,
    "n_epochs": None,
    "init": "spectral",
}
_PCA_DEFAULTS: dict[str, Any] = {"whiten": False, "svd_solver": "auto"}


def reduce(
    X: Any,
    method: str = "tsne",
    n_components: int = 2,
    random_state: int | None = 0,
    **params: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Map feature vectors to 2 or 3 dimensions with t-SNE, UMAP or PCA.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors, one row per sample.
    method : {"tsne", "umap", "pca"}, default "tsne"
        The reducer: :class:`TSNE`, ``umap.UMAP`` (extra ``umap``) or
        :class:`sklearn.decomposition.PCA`.
    n_components : int, default 2
        Map dimension (2 or 3).
    random_state : int or None, default 0
        Seed of every random choice.
    **params
        Method parameters. tsne: those of :class:`TSNE`. umap: ``n_neighbors`` (15, lowered to
        ``n_samples - 1`` on tiny inputs), ``min_dist`` (0.1), ``metric``, ``spread``,
        ``n_epochs``, ``init``. pca: ``whiten``, ``svd_solver``.

    Returns
    -------
    coords : ndarray of shape (n_samples, n_components)
        The map (float64).
    params : dict
        The parameters the reducer actually used ("auto" values resolved).

    Raises
    ------
    ParameterError
        Unknown method, a parameter unknown to the method, or a bad value.
    MissingExtraError
        ``method="umap"`` without umap-learn installed.
    """
    if method not in _METHODS:
        raise ParameterError(
            f"unknown embedding method {method!r}; choose one of: {', '.join(_METHODS)}"
        )
    if not _is_int(n_components) or n_components not in (2, 3):
        raise _bad("n_components", "2 or 3", n_components)
    if method == "tsne":
        valid = tuple(n for n in TSNE._param_names() if n not in ("n_components", "random_state"))
        _check_known(method, params, valid)
        tsne = TSNE(n_components=n_components, random_state=random_state, **params).fit(X)
        return tsne.embedding_, dict(tsne.params_)
    if method == "umap":
        _check_known(method, params, tuple(_UMAP_DEFAULTS))
        return _umap(X, n_components, random_state, {**_UMAP_DEFAULTS, **params})
    _check_known(method, params, tuple(_PCA_DEFAULTS))
    return _pca_map(X, n_components, random_state, {**_PCA_DEFAULTS, **params})


def _umap(
    X: Any, n_components: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    from featscope._optional import require

    umap = require("umap", extra="umap", purpose="UMAP maps")
    X = _check_samples(X, what="UMAP")
    n_samples = len(X)
    n_neighbors = params["n_neighbors"]
    if not _is_int(n_neighbors) or n_neighbors < 2:
        raise _bad("n_neighbors", "an integer >= 2", n_neighbors)
    if n_neighbors > n_samples - 1:
        warnings.warn(
            f"`n_neighbors` {n_neighbors} is too large for {n_samples} samples; "
            f"using {n_samples - 1}",
            UserWarning,
            stacklevel=3,
        )
        n_neighbors = n_samples - 1
    if not _is_real(params["min_dist"]) or params["min_dist"] < 0:
        raise _bad("min_dist", ">= 0", params["min_dist"])
    used = {**params, "n_neighbors": n_neighbors}
    # A seeded UMAP runs single-threaded; saying so avoids umap's warning about it.
    reducer = umap.UMAP(n_components=n_components, random_state=random_state, n_jobs=1, **used)
    coords = np.asarray(reducer.fit_transform(X), dtype=np.float64)
    used.update(n_components=n_components, random_state=random_state)
    return coords, used


def _pca_map(
    X: Any, n_components: int, random_state: int | None, params: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    from sklearn.decomposition import PCA

    X = _check_samples(X, what="PCA", min_samples=n_components)
    if X.shape[1] < n_components:
        raise ParameterError(
            f"PCA to {n_components} components needs at least {n_components} features; "
            f"got {X.shape[1]}; use fewer components"
        )
    pca = PCA(n_components=n_components, random_state=random_state, **params)
    coords = np.asarray(pca.fit_transform(X), dtype=np.float64)
    used = {
        **params,
        "n_components": n_components,
        "random_state": random_state,
        "explained_variance_ratio": [float(v) for v in pca.explained_variance_ratio_],
    }
    return coords, used


def embed(
    features: FeatureSet,
    method: str = "tsne",
    *,
    n_components: int = 2,
    random_state: int | None = None,
    k: int = 10,
    **params: Any,
) -> EmbeddingResult:
    """Make a map of a feature set and measure how well it keeps the classes apart.

    Parameters
    ----------
    features : FeatureSet
        Feature vectors with labels, ids and provenance.
    method : {"tsne", "umap", "pca"}, default "tsne"
        The reducer (see :func:`reduce`).
    n_components : int, default 2
        Map dimension (2 or 3).
    random_state : int or None, default None
        Seed; ``None`` uses the seed recorded in ``features.provenance``.
    k : int, default 10
        Neighbourhood size of the quality metrics (see
        :func:`featscope.analysis.embedding_metrics`).
    **params
        Parameters of the method (see :func:`reduce`).

    Returns
    -------
    EmbeddingResult
        Coordinates, effective parameters, metrics and the feature set's labels, ids and
        provenance.

    Raises
    ------
    ParameterError
        Bad method, parameter or features (see :func:`reduce`).
    MissingExtraError
        ``method="umap"`` without umap-learn installed.
    """
    from featscope.analysis.metrics import embedding_metrics

    if not isinstance(features, FeatureSet):
        raise ParameterError(
            f"`features` must be a featscope.results.FeatureSet; got {type(features).__name__}; "
            "use reduce() for plain arrays"
        )
    seed = features.provenance.seed if random_state is None else random_state
    coords, used = reduce(
        features.features, method, n_components=n_components, random_state=seed, **params
    )
    metrics = embedding_metrics(features.features, coords, features.labels, k=k, random_state=seed)
    return EmbeddingResult(
        coords=coords,
        labels=features.labels,
        class_names=features.class_names,
        ids=features.ids,
        point=features.point,
        method=method,
        params=used,
        metrics=metrics,
        pooling=features.pooling,
        provenance=features.provenance,
    )


def map_feature_sets(
    feature_sets: Iterable[FeatureSet],
    options: EmbeddingOptions | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[EmbeddingResult, ...]:
    """Map every feature set with the same method and parameters, as every embedding view does.

    Parameters
    ----------
    feature_sets : iterable of FeatureSet
        Features at one or more capture points (usually of the same samples).
    options : EmbeddingOptions, optional
        The method and its parameters (default: ``EmbeddingOptions()``, a 2-D t-SNE).
    seed : int, default 0
        Seed of every map.
    device : str, default "cpu"
        Where the features were extracted. A t-SNE follows them onto a CUDA device
        (featscope's torch engine); on any other device (MPS has no float64) it runs on the
        CPU. UMAP and PCA always run on the CPU.

    Returns
    -------
    tuple of EmbeddingResult
        One map per feature set, in order, with its metrics.

    Raises
    ------
    ParameterError, MissingExtraError
        As :func:`embed`.
    """
    options = EmbeddingOptions() if options is None else options
    params = options.reducer_params()
    if options.method == "tsne":
        params.setdefault("device", device if str(device).startswith("cuda") else "cpu")
    results = []
    for fs in feature_sets:
        result = embed(fs, method=options.method, random_state=seed, **params)
        logger.info(
            "%s: %s map of %d samples; metrics %s",
            fs.point,
            options.method,
            len(fs),
            dict(result.metrics),
        )
        results.append(result)
    return tuple(results)
