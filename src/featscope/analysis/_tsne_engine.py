"""Gradient descent of featscope's t-SNE: the engines, the gradient they use, the schedule.

Three engines run the same update rule (openTSNE's ``gradient_descent``: gradient without
scikit-learn's factor 4, momentum, gains, clipped steps):

* :class:`OpenTSNEEngine`, openTSNE's compiled Barnes-Hut / FFT gradients, on the CPU;
* :class:`NumbaEngine`, featscope's compiled version of openTSNE's FFT gradient descent
  (:mod:`._tsne_numba`), on the CPU: the default for 2-D FFT maps there;
* :class:`TorchEngine`, featscope's torch port of it (:mod:`._tsne_torch`), on any device.

:func:`optimize` runs any of them through the same two phases (early exaggeration, then the
rest) and stops the second by the same rules (:class:`ProgressMonitor`), so the estimator's
parameters mean the same whichever engine runs. The constants below were measured;
docs/benchmarks.md, "t-SNE defaults: the measurements behind the constants", has the numbers.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.analysis._cpu_load import effective_n_jobs, torch_threads
from featscope.analysis._tsne_order import locality_order, renumber
from featscope.analysis.tsne_params import EXAGGERATION_ITER, on_cpu
from featscope.progress import Progress

__all__ = [
    "Engine",
    "Phases",
    "ProgressMonitor",
    "choose_gradient_method",
    "make_engine",
    "optimize",
]

logger = logging.getLogger(__name__)

#: openTSNE's "auto": FFT from this many samples per thread, Barnes-Hut below (Barnes-Hut
#: gains from threads, openTSNE's FFT does not; docs/benchmarks.md: "Gradient method").
FFT_SAMPLES_PER_THREAD = 2_500
#: openTSNE's FFT ``ints_in_interval`` (default 1): a 4 times smaller grid, same map quality
#: (docs/benchmarks.md: "FFT grid").
FFT_INTS_IN_INTERVAL = 2
#: Points are renumbered by :func:`~._tsne_order.locality_order` from this many samples on the
#: CPU: the map (16 bytes a point) then outgrows a core's cache; at 20,000 points the order
#: made no difference, at 70,000 openTSNE's attractive forces ran 1.7x faster with it (33.7
#: against 20.0 ms an iteration; docs/benchmarks.md: "Point order").
LOCALITY_ORDER_FROM = 40_000
#: Box width (map units) of the numba engine's FFT grid: finer than openTSNE's engine's 2, as
#: its compiled interpolation and reused spectra make the grid cheaper; at 20,000 points the
#: map's 10-NN accuracy was 0.8210 at 1.5 against 0.8195 at 2 (4 starts), the fit 6.2 s
#: against 5.7 s (docs/benchmarks.md: "numba engine").
NUMBA_FFT_BOX_WIDTH = 1.5
#: torch's "auto": exact (all pairs) up to this many samples on a GPU, FFT above; exact is as
#: cheap there and not approximate (docs/benchmarks.md: "Torch engine").
TORCH_EXACT_MAX_GPU = 20_000
#: ... and on the CPU, where all pairs cost far more than openTSNE's Barnes-Hut.
TORCH_EXACT_MAX_CPU = 1_000
#: torch FFT box width (map units) on a GPU: half openTSNE's, for a lower final KL divergence
#: where the grid is cheap (docs/benchmarks.md: "Torch engine").
TORCH_FFT_BOX_WIDTH_GPU = 0.5
#: ... and on the CPU, where the grid's FFT costs as much as the rest: openTSNE's width.
TORCH_FFT_BOX_WIDTH_CPU = 1.0
#: ``kl_rtol`` shrinks as ``1 / N`` above this many samples: larger maps keep improving at a
#: given relative KL decrease (docs/benchmarks.md: "Convergence stop").
KL_RTOL_FULL_UP_TO = 10_000
#: Momentum of the early-exaggeration phase, which always runs its 250 iterations: openTSNE
#: 1.0's 0.8 (scikit-learn and the original t-SNE: 0.5). On six 20,000-point subsets of
#: Fashion-MNIST the map's 10-NN accuracy rose in every one against 0.5 with the phase stopped
#: on a converged KL divergence (mean +0.0010, 51 more iterations); with that stop, 0.8 ended
#: the phase sooner and no better (docs/benchmarks.md: "numba engine").
EE_MOMENTUM = 0.8
#: KL divergence is checked this often (as in sklearn): for the second phase's stop rules, and
#: in both phases for the progress bar.
CHECK_EVERY = 50


def choose_gradient_method(
    method: str, backend: str, n_components: int, n_samples: int, device: str, n_jobs: int
) -> str:
    """Resolve ``negative_gradient_method="auto"`` for the engine; warn of a costly "exact".

    Parameters
    ----------
    method : {"auto", "bh", "fft", "exact"}
        The parameter, as given.
    backend : {"opentsne", "numba", "torch"}
        The engine.
    n_components : int
        Map dimension (the FFT gradient is 2-D only).
    n_samples : int
        Points of the map.
    device : str
        Where the torch engine runs.
    n_jobs : int
        The ``n_jobs`` parameter, as given: openTSNE's choice counts the machine's cores, not
        the idle ones, so that the method (hence the map) does not depend on the load.

    Returns
    -------
    str
        "bh" or "fft" for openTSNE, "fft" for numba, "exact" or "fft" for torch.
    """
    if backend == "numba":
        return "fft" if method == "auto" else method
    if backend == "torch":
        exact_max = TORCH_EXACT_MAX_CPU if on_cpu(device) else TORCH_EXACT_MAX_GPU
        if method == "auto":
            fft = n_components == 2 and n_samples > exact_max
            method = "fft" if fft else "exact"
        if method == "exact" and n_samples > 5 * exact_max:
            warnings.warn(
                f"the exact t-SNE gradient costs n_samples^2 = {n_samples**2:.1e} pair "
                f"evaluations an iteration; for {n_samples} points use a 2-D map (FFT "
                "gradient), or for 3-D maps openTSNE's Barnes-Hut on the CPU "
                '(backend="opentsne", device="cpu")',
                UserWarning,
                stacklevel=4,  # the caller of TSNE.fit (fit -> TSNE._validate -> here)
            )
    elif method == "auto":
        cores = effective_n_jobs(n_jobs, load_aware=False)
        fft = n_components == 2 and n_samples >= FFT_SAMPLES_PER_THREAD * cores
        method = "fft" if fft else "bh"
    return method


class ProgressMonitor:
    """Engine callback: stop when the KL divergence has not decreased for ``patience`` steps.

    The engine calls it every ``every`` iterations with ``(iteration, kl, embedding)``
    (openTSNE's callback signature); returning True interrupts the optimisation (before that
    iteration's update).
    """

    def __init__(
        self,
        patience: int | None,
        offset: int,
        rtol: float | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.progress = progress
        self.patience = patience
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
        if self.progress is not None:
            done = self.offset + iteration - self.progress.n
            self.progress.update(max(0, done), note=f"KL {error:.3f}")
        previous = self.best
        if error < self.best:
            self.best, self.best_iteration = error, iteration
            # Converged: the last check interval gained less than rtol (relative).
            converged = math.isfinite(previous) and previous - error < self.rtol * previous
            if self.rtol > 0 and converged:
                self.stopped_at = iteration
                self.reason = f"KL divergence fell by less than {self.rtol:g} (relative)"
                return True
            return False
        if self.patience is not None and iteration - self.best_iteration >= self.patience:
            self.stopped_at = iteration
            self.reason = f"no KL progress for {self.patience} iterations"
            return True
        return False


class Engine:
    """A t-SNE optimiser: runs phases of gradient descent, then hands back the map."""

    def run(
        self,
        n_iter: int,
        exaggeration: float,
        momentum: float,
        learning_rate: float,
        monitor: ProgressMonitor,
        every: int,
    ) -> None:
        """Run one phase (up to ``n_iter`` iterations; ``monitor`` may stop it)."""
        raise NotImplementedError

    def result(self) -> tuple[np.ndarray, float]:
        """Return the map (float64) and its KL divergence."""
        raise NotImplementedError


class _Reordered:
    """Mixin: the points optimised in a cache-friendly order, handed back in the caller's.

    From :data:`LOCALITY_ORDER_FROM` samples, :func:`~._tsne_order.locality_order`.
    """

    order: np.ndarray | None = None

    def _reorder(self, P: Any, start: np.ndarray) -> tuple[Any, np.ndarray]:
        """Return ``P`` and the start renumbered (unchanged below the size)."""
        if start.shape[0] < LOCALITY_ORDER_FROM:
            return P, start
        self.order = locality_order(P)
        return renumber(P, self.order), start[self.order]

    def _restore(self, embedding: np.ndarray) -> np.ndarray:
        """Return a float64 copy of the map, in the caller's order."""
        if self.order is None:
            return np.array(embedding, dtype=np.float64)
        out = np.empty(embedding.shape, dtype=np.float64)
        out[self.order] = embedding
        return out


class OpenTSNEEngine(_Reordered, Engine):
    """openTSNE's compiled Barnes-Hut / FFT gradient descent on the CPU."""

    def __init__(
        self, P: Any, start: np.ndarray, method: str, n_jobs: int, random_state: int | None
    ) -> None:
        from openTSNE import TSNEEmbedding, affinity

        P, start = self._reorder(P, start)
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
        return self._restore(self.embedding), float(self.embedding.kl_divergence)


class NumbaEngine(_Reordered, Engine):
    """On the CPU, 2-D maps: openTSNE's FFT gradient descent compiled (numba), all cores.

    See :mod:`._tsne_numba`.
    """

    def __init__(self, P: Any, start: np.ndarray, n_jobs: int) -> None:
        from featscope.analysis._tsne_numba import NumbaTSNE

        P, start = self._reorder(P, start)
        self.state = NumbaTSNE(P, start, NUMBA_FFT_BOX_WIDTH, n_jobs)

    def run(self, n_iter, exaggeration, momentum, learning_rate, monitor, every) -> None:
        self.state.optimize(n_iter, exaggeration, momentum, learning_rate, [monitor], every)

    def result(self) -> tuple[np.ndarray, float]:
        return self._restore(self.state.Y), self.state.kl_divergence()


class TorchEngine(Engine):
    """featscope's torch gradient descent (:mod:`._tsne_torch`), on any torch device."""

    def __init__(self, P: Any, start: np.ndarray, device: str, method: str, n_jobs: int) -> None:
        from featscope.analysis._tsne_torch import TorchTSNE

        self.n_jobs = n_jobs
        width = TORCH_FFT_BOX_WIDTH_CPU if on_cpu(device) else TORCH_FFT_BOX_WIDTH_GPU
        self.state = TorchTSNE(P, start, device, method, box_width=width)

    def run(self, n_iter, exaggeration, momentum, learning_rate, monitor, every) -> None:
        with torch_threads(self.n_jobs):
            self.state.optimize(n_iter, exaggeration, momentum, learning_rate, [monitor], every)

    def result(self) -> tuple[np.ndarray, float]:
        with torch_threads(self.n_jobs):
            return self.state.embedding(), self.state.kl_divergence()


def make_engine(
    backend: str,
    P: Any,
    start: np.ndarray,
    *,
    device: str,
    method: str,
    n_jobs: int,
    random_state: int | None,
) -> Engine:
    """Build the engine ``backend`` names ("opentsne", "numba" or "torch") on ``P``."""
    if backend == "torch":
        return TorchEngine(P, start, device, method, n_jobs)
    if backend == "numba":
        return NumbaEngine(P, start, n_jobs)
    return OpenTSNEEngine(P, start, method, n_jobs, random_state)


@dataclass(frozen=True)
class Phases:
    """What :func:`optimize` ran.

    Attributes
    ----------
    n_iter_exaggeration : int
        Iterations of the early-exaggeration phase.
    n_iter : int
        Iterations of both phases together.
    history : list of (int, float)
        ``(iteration, KL divergence)`` at each check of the second phase.
    stop_reason : str
        Why the second phase stopped early; "" when it ran all its iterations.
    """

    n_iter_exaggeration: int
    n_iter: int
    history: list[tuple[int, float]]
    stop_reason: str


def optimize(
    engine: Engine,
    *,
    n_samples: int,
    n_iter: int,
    exaggeration: float,
    learning_rate: float,
    learning_rate_exaggeration: float,
    kl_rtol: float | None,
    n_iter_without_progress: int | None,
) -> Phases:
    """Run the t-SNE's two phases on ``engine``, the second until its stop rule.

    Early exaggeration for :data:`EXAGGERATION_ITER` iterations (momentum
    :data:`EE_MOMENTUM`), then the rest of ``n_iter`` without exaggeration (momentum 0.8)
    until ``kl_rtol`` or ``n_iter_without_progress`` stops it.

    Parameters
    ----------
    engine : Engine
        The optimiser, holding the affinities and the start.
    n_samples : int
        Points of the map (``kl_rtol`` tightens above :data:`KL_RTOL_FULL_UP_TO`).
    n_iter : int
        Iterations of both phases together, ``> EXAGGERATION_ITER``.
    exaggeration : float
        Factor on the attractive forces in the first phase.
    learning_rate, learning_rate_exaggeration : float
        Step sizes of the second and first phase, in scikit-learn's units.
    kl_rtol : float or None
        Relative KL decrease per :data:`CHECK_EVERY` iterations below which the second phase
        stops; None or 0: no convergence stop.
    n_iter_without_progress : int or None
        Stop the second phase after this many iterations without a lower KL divergence.

    Returns
    -------
    Phases
        Iterations run and the second phase's KL history.
    """
    # Every engine's gradient lacks sklearn's factor 4 (openTSNE's, bhtsne's and FIt-SNE's
    # convention), so the same step in sklearn's units is 4 times larger for them.
    step, step_ee = 4.0 * learning_rate, 4.0 * learning_rate_exaggeration
    bar = Progress(n_iter, "t-SNE optimisation", "iterations")
    with bar:
        # The exaggerated phase has no stop rule: cutting it short cost 10-NN accuracy (its
        # monitor only moves the progress bar).
        ee_monitor = ProgressMonitor(None, offset=0, progress=bar)
        engine.run(EXAGGERATION_ITER, exaggeration, EE_MOMENTUM, step_ee, ee_monitor, CHECK_EVERY)
        n_ee = EXAGGERATION_ITER
        logger.info("t-SNE early exaggeration: %d iterations", n_ee)
        rtol = kl_rtol
        if rtol:
            rtol = rtol * min(1.0, KL_RTOL_FULL_UP_TO / n_samples)
        monitor = ProgressMonitor(n_iter_without_progress, offset=n_ee, rtol=rtol, progress=bar)
        n_normal = n_iter - EXAGGERATION_ITER
        engine.run(n_normal, 1.0, 0.8, step, monitor, every=CHECK_EVERY)
    n_second = monitor.stopped_at - 1 if monitor.stopped_at is not None else n_normal
    logger.info(
        "t-SNE second phase: %d of %d iterations%s",
        n_second,
        n_normal,
        f" (stopped: {monitor.reason})" if monitor.reason else "",
    )
    return Phases(n_ee, n_ee + n_second, list(monitor.history), monitor.reason)
