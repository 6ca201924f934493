"""t-SNE maps of feature vectors: the :class:`TSNE` estimator.

A scikit-learn style estimator (``fit`` / ``fit_transform`` / ``embedding_``) whose ``fit``
runs the method's stages, one module each as in openTSNE: parameters (:mod:`.tsne_params`),
neighbours (:mod:`._tsne_neighbors`), affinities (:mod:`._tsne_affinity`), start positions
(:mod:`._tsne_init`), gradient descent (:mod:`._tsne_engine`, :mod:`._tsne_torch`).

The parameters keep the names and meanings of :class:`sklearn.manifold.TSNE` as called by
MMPretrain's ``vis_tsne.py`` (``perplexity``, ``early_exaggeration``, ``learning_rate``,
``n_iter`` including the 250 exaggeration iterations, ``n_iter_without_progress``, ``init``), so
numbers users pass there mean the same here. Where featscope differs on purpose:

* it is faster than openTSNE's defaults with the same map quality: exact neighbours, affinities
  calibrated for all rows at once, a PCA start from the covariance matrix, Barnes-Hut below
  2,500 points per core, and a convergence stop (``kl_rtol``); each stage's module says how,
  docs/benchmarks.md has the profile and measurements;
* every random choice is seeded (``random_state=0``; sklearn's default ``None`` gives a
  different map on every run);
* ``learning_rate="auto"`` and ``init="pca"`` are the defaults, since a fixed rate of 200
  converges badly on large data sets. "auto" is Belkina et al. (2019)'s rule as openTSNE applies
  it: ``max(n_samples / early_exaggeration / 4, 50)`` (sklearn's "auto") during early
  exaggeration, then ``max(n_samples / 4, 50)`` once the exaggeration is off, so the second
  phase converges in fewer iterations;
* the early-exaggeration phase runs with momentum 0.8, openTSNE 1.0's (sklearn: 0.5), which
  gives slightly better maps in the same 250 iterations;
* ``n_iter`` defaults to 750 (250 exaggerated + 500), openTSNE's default: with the "auto" rate
  the map is as good as after sklearn's 1,000 iterations at a rate of 200, in three quarters of
  the time (docs/benchmarks.md). ``n_iter=1000`` gives the reference's count;
* features wider than ``pca_dims`` (50) are first reduced by PCA, the usual t-SNE preprocessing,
  which is much faster and changes the neighbourhoods very little.

``learning_rate`` is in scikit-learn's units; openTSNE (like bhtsne and FIt-SNE) defines the
gradient without sklearn's factor 4, so the rate handed to the engines is ``4 * learning_rate``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from featscope.analysis._cpu_load import effective_n_jobs
from featscope.analysis._tsne_affinity import affinities
from featscope.analysis._tsne_engine import choose_gradient_method, make_engine, optimize
from featscope.analysis._tsne_init import initial_positions
from featscope.analysis._tsne_neighbors import choose_neighbors
from featscope.analysis._tsne_numba import available as numba_ok
from featscope.analysis.params import check_known, check_samples
from featscope.analysis.pca import reduce_dims
from featscope.analysis.tsne_params import EXAGGERATION_ITER, KL_RTOL, PARAMETERS, validate
from featscope.errors import ParameterError

__all__ = ["TSNE"]

logger = logging.getLogger(__name__)

_NAMES = tuple(param.name for param in PARAMETERS)


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
        this fraction (times ``10,000 / n_samples`` above 10,000 samples) over the last 50
        iterations: by then the map's neighbourhoods barely change (10-NN accuracy and
        trustworthiness measured in docs/benchmarks.md), so the remaining iterations are
        mostly wasted time. The 250 exaggerated iterations always run.
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
        those other processes keep busy, at least 1), -2 = one fewer. The map is the same whatever
        the thread count.
    negative_gradient_method : {"auto", "bh", "fft", "exact"}, default "auto"
        How the repulsive forces are computed: Barnes-Hut (openTSNE only), FFT-accelerated
        interpolation (2-D maps) or all pairs ("exact", torch only). "auto" with openTSNE
        uses "fft" for 2-D maps of at least :data:`~._tsne_engine.FFT_SAMPLES_PER_THREAD`
        (2,500) points per core of the machine, "bh" otherwise: Barnes-Hut gets faster with
        more threads, openTSNE's FFT gradient does not (measurements in docs/benchmarks.md).
        "auto" with torch uses "exact" up to :data:`~._tsne_engine.TORCH_EXACT_MAX_GPU`
        (20,000) samples on a GPU (:data:`~._tsne_engine.TORCH_EXACT_MAX_CPU` on the CPU) and
        for 3-D maps, "fft" above.
    neighbors : {"auto", "exact", "annoy", "pynndescent"}, default "auto"
        Nearest-neighbour search. "auto": "exact" for the Euclidean and cosine metrics up to
        :data:`~._tsne_neighbors.EXACT_NEIGHBORS_MAX` (100,000) samples, openTSNE's Annoy
        otherwise. "exact" with those metrics is featscope's blocked matrix-product search
        (torch from 5,000 samples, numpy below) with affinities calibrated in numpy; with
        "manhattan" it is openTSNE's exact search. ``params_["neighbors"]`` records the search
        used. On a GPU ``device``, "auto" searches exactly up to
        :data:`~._tsne_neighbors.EXACT_NEIGHBORS_MAX_GPU` samples, on the GPU.
    device : str, default "cpu"
        Where the map is computed: "cpu", "cuda" or "cuda:N" ("mps" is refused: the
        affinities and sums need float64, which MPS lacks). Anything but the CPU runs
        featscope's torch engine (:mod:`._tsne_torch`), which also moves the exact neighbour
        search there.
    backend : {"auto", "opentsne", "numba", "torch"}, default "auto"
        The gradient-descent engine. "opentsne": openTSNE's compiled Barnes-Hut / FFT code
        (CPU only). "numba": featscope's compiled, multi-threaded version of openTSNE's FFT
        gradient descent (:mod:`._tsne_numba`; CPU, 2-D FFT maps; maps of the same quality
        in about three quarters of the time). "torch": featscope's torch implementation of
        the same update rule (exact or FFT-interpolated repulsion) on ``device``. "auto":
        torch when ``device`` is not the CPU or ``negative_gradient_method="exact"``, numba
        for an FFT map on the CPU (openTSNE where numba does not import), openTSNE's
        Barnes-Hut otherwise. ``params_["backend"]`` records the engine used.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        The map (float64).
    kl_divergence_ : float
        KL divergence of the final map.
    n_iter_ : int
        Iterations run (gradient updates, both phases), ``<= n_iter``.
    n_iter_exaggeration_ : int
        Of these, iterations of the early-exaggeration phase (250).
    learning_rate_ : float
        Learning rate of the second phase (scikit-learn units; openTSNE got 4 times this).
        The exaggeration phase used ``learning_rate_exaggeration_``.
    learning_rate_exaggeration_ : float
        Learning rate of the early-exaggeration phase (scikit-learn units).
    perplexity_ : float
        Perplexity used, after lowering it for small data sets.
    neighbors_ : ndarray of shape (n_samples, min(3 * perplexity, 30)) or None
        With an exact neighbour search: each sample's nearest other samples (int32 row
        indices, nearest first) in the space the t-SNE searched (the PCA-reduced features when
        ``params_["pca_dims"]`` is set, else the features as given, with ``metric``). The
        quality metrics reuse it instead of searching again. None after an approximate search.
    params_ : dict
        Every effective parameter ("auto" values resolved), JSON-ready.

    See Also
    --------
    featscope.analysis.tsne_params.PARAMETERS : These parameters as a table of defaults, rules
        and one-line descriptions, which the checks in :meth:`fit` run on.

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

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn estimator API).

        Parameters
        ----------
        deep : bool, default True
            Unused; present for scikit-learn compatibility.

        Returns
        -------
        dict
            Parameter name to value, in the order of
            :data:`featscope.analysis.tsne_params.PARAMETERS`.
        """
        return {name: getattr(self, name) for name in _NAMES}

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
        check_known("tsne", params, _NAMES)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        changed = [
            f"{param.name}={getattr(self, param.name)!r}"
            for param in PARAMETERS
            if not _same(getattr(self, param.name), param.default)
        ]
        return f"TSNE({', '.join(changed)})"

    # -- validation ----------------------------------------------------------------------

    def _validate(self, n_samples: int) -> dict[str, Any]:
        """Check every parameter against its rule; return the resolved values."""
        resolved = validate(self.get_params(), n_samples)
        device, backend = resolved["device"], resolved["backend"]
        method = choose_gradient_method(
            self.negative_gradient_method,
            backend,
            self.n_components,
            n_samples,
            device,
            self.n_jobs,
        )
        if self.backend == "auto" and backend == "opentsne" and method == "fft" and numba_ok():
            backend = "numba"  # openTSNE's FFT engine compiled: as good a map, sooner
        elif backend == "numba" and not numba_ok():
            raise ParameterError(
                'The `backend` "numba" needs numba, which does not import here (see the log); '
                'pass backend="opentsne" or "auto"'
            )
        return {
            **resolved,
            "backend": backend,
            "neighbors": choose_neighbors(self.neighbors, self.metric, n_samples, device),
            "negative_gradient_method": method,
            "n_jobs": effective_n_jobs(self.n_jobs),
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
        X = check_samples(X)
        n_samples, n_features = X.shape
        resolved = self._validate(n_samples)
        n_jobs = resolved["n_jobs"]
        method = resolved["negative_gradient_method"]
        device = resolved["device"]
        backend = resolved["backend"]

        pca_dims = None
        if self.pca_dims and self.metric == "euclidean" and n_features > self.pca_dims:
            pca_dims = min(int(self.pca_dims), n_samples)
            X = reduce_dims(X, pca_dims, self.random_state)
            logger.info("PCA %d -> %d dimensions before t-SNE", n_features, pca_dims)

        P, self.neighbors_ = affinities(
            X,
            resolved["perplexity"],
            metric=self.metric,
            neighbors=resolved["neighbors"],
            backend=backend,
            device=device,
            n_jobs=n_jobs,
            random_state=self.random_state,
        )
        start = initial_positions(self.init, X, self.n_components, self.random_state)
        engine = make_engine(
            backend,
            P,
            start,
            device=device,
            method=method,
            n_jobs=n_jobs,
            random_state=self.random_state,
        )
        del P  # the engine holds its own copy (on the device); free ~1 GB per million points
        exaggeration = float(self.early_exaggeration)
        logger.info(
            "t-SNE: %d points on %s (%s, %s gradient), up to %d iterations (%d with early "
            "exaggeration %g)%s",
            n_samples,
            device,
            backend,
            method,
            self.n_iter,
            EXAGGERATION_ITER,
            exaggeration,
            "" if self.kl_rtol else ", convergence stop off",
        )
        phases = optimize(
            engine,
            n_samples=n_samples,
            n_iter=self.n_iter,
            exaggeration=exaggeration,
            learning_rate=resolved["learning_rate"],
            learning_rate_exaggeration=resolved["learning_rate_exaggeration"],
            kl_rtol=self.kl_rtol,
            n_iter_without_progress=self.n_iter_without_progress,
        )

        self.embedding_, self.kl_divergence_ = engine.result()
        self.n_iter_ = phases.n_iter
        self.n_iter_exaggeration_ = phases.n_iter_exaggeration
        self.learning_rate_ = resolved["learning_rate"]
        self.learning_rate_exaggeration_ = resolved["learning_rate_exaggeration"]
        self.perplexity_ = resolved["perplexity"]
        self.kl_divergence_history_ = phases.history
        self.params_ = {
            "n_components": int(self.n_components),
            "perplexity": self.perplexity_,
            "early_exaggeration": exaggeration,
            "early_exaggeration_iter": EXAGGERATION_ITER,
            "learning_rate": self.learning_rate_,
            "learning_rate_exaggeration": self.learning_rate_exaggeration_,
            "n_iter": int(self.n_iter),
            "n_iter_without_progress": self.n_iter_without_progress,
            "kl_rtol": self.kl_rtol,
            "n_iter_run": int(self.n_iter_),
            "n_iter_exaggeration_run": int(phases.n_iter_exaggeration),
            "n_iter_second_phase_run": int(phases.n_iter - phases.n_iter_exaggeration),
            "stop_reason": phases.stop_reason,
            "init": self.init if isinstance(self.init, str) else "array",
            "pca_dims": pca_dims,
            "metric": self.metric,
            "random_state": self.random_state,
            "n_jobs": n_jobs,
            "negative_gradient_method": method,
            "neighbors": resolved["neighbors"],
            "device": device,
            "backend": {"opentsne": "openTSNE"}.get(backend, backend),
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


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is b
    return bool(a == b) and type(a) is type(b)
