"""The t-SNE's parameters: one table of defaults, rules and descriptions, and joint checks.

:class:`~featscope.analysis.tsne.TSNE` takes its defaults and ``get_params`` names from
:data:`PARAMETERS`, and ``fit`` runs :func:`validate`: every row's rule first (the message names
the parameter, the rule and the value received), then what no single row can say: an ``init``
array's shape, the FFT gradient's 2-D limit, and which engine runs on which device. The table is
also what :func:`featscope.analysis.reduce` accepts for ``method="tsne"`` and what docs or the
command line can list.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from featscope.analysis.params import (
    N_COMPONENTS,
    AnyOf,
    ArrayLike,
    Delegated,
    Interval,
    OneOf,
    Parameter,
    check_parameters,
)
from featscope.errors import ParameterError

__all__ = ["EXAGGERATION_ITER", "KL_RTOL", "PARAMETERS", "check_device", "on_cpu", "validate"]

#: Iterations of the early-exaggeration phase (as in sklearn and openTSNE).
EXAGGERATION_ITER = 250
#: Default ``kl_rtol``: relative KL decrease per 50 iterations below which the second phase
#: stops, as the map's 10-NN accuracy barely changes after it (docs/benchmarks.md:
#: "Convergence stop").
KL_RTOL = 0.05

INITS = ("pca", "random")
GRADIENT_METHODS = ("auto", "bh", "fft", "exact")
BACKENDS = ("auto", "opentsne", "numba", "torch")
NEIGHBOR_METHODS = ("auto", "exact", "annoy", "pynndescent")
METRICS = ("euclidean", "cosine", "manhattan")

_OR_NONE = OneOf((None,))

#: Every parameter of :class:`~featscope.analysis.tsne.TSNE`, in the constructor's order (the
#: order the checks run in). The class docstring explains each at length.
PARAMETERS: tuple[Parameter, ...] = (
    N_COMPONENTS,
    Parameter(
        "perplexity",
        30.0,
        Interval(numbers.Real, 0, closed="neither"),
        "effective number of neighbours of each point, lowered to (n_samples - 1) / 3",
    ),
    Parameter(
        "early_exaggeration",
        12.0,
        Interval(numbers.Real, 1),
        f"factor on the attractive forces during the first {EXAGGERATION_ITER} iterations",
    ),
    Parameter(
        "learning_rate",
        "auto",
        AnyOf(
            (OneOf(("auto",)), Interval(numbers.Real, 0, closed="neither")),
            text='"auto" or a number > 0',
        ),
        "step size in scikit-learn's units; \"auto\" follows openTSNE's schedule",
    ),
    Parameter(
        "n_iter",
        750,
        Interval(
            numbers.Integral,
            EXAGGERATION_ITER,
            closed="neither",
            text=f"> {EXAGGERATION_ITER} ({EXAGGERATION_ITER} iterations are early exaggeration)",
        ),
        "total iterations, early exaggeration included",
    ),
    Parameter(
        "n_iter_without_progress",
        300,
        AnyOf((Interval(numbers.Integral, 1), _OR_NONE)),
        "stop after this many iterations without a lower KL divergence; None: never",
    ),
    Parameter(
        "kl_rtol",
        KL_RTOL,
        AnyOf((Interval(numbers.Real, 0, 1), _OR_NONE)),
        "stop once the KL divergence falls by less than this fraction; None or 0: never",
    ),
    Parameter(
        "init",
        "pca",
        AnyOf(
            (OneOf(INITS), ArrayLike()),
            text='"pca", "random" or an array (n_samples, n_components)',
        ),
        "start positions",
    ),
    Parameter(
        "pca_dims",
        50,
        AnyOf(
            (OneOf((0, None)), Interval(numbers.Integral, "n_components")),
            text="0, None or an integer >= n_components ({n_components})",
        ),
        "reduce wider (Euclidean) features to this many dimensions by PCA first; 0/None: never",
    ),
    Parameter("metric", "euclidean", OneOf(METRICS), "distance between feature vectors"),
    Parameter(
        "random_state",
        0,
        AnyOf((Interval(numbers.Integral), _OR_NONE)),
        "seed of every random choice; None: not reproducible",
    ),
    Parameter(
        "n_jobs",
        -1,
        AnyOf(
            (
                Interval(numbers.Integral, high=0, closed="neither"),
                Interval(numbers.Integral, 0, closed="neither"),
            ),
            text="a non-zero integer (-1 = all cores)",
        ),
        "threads; -1: the cores other processes leave idle, -2: one fewer",
    ),
    Parameter(
        "negative_gradient_method",
        "auto",
        OneOf(GRADIENT_METHODS),
        "repulsive forces by Barnes-Hut, FFT interpolation or all pairs",
    ),
    Parameter("neighbors", "auto", OneOf(NEIGHBOR_METHODS), "nearest-neighbour search"),
    Parameter(
        "device",
        "cpu",
        Delegated("featscope.models.resolve_device", text='"cpu", "cuda" or "cuda:N"'),
        "where the map is computed",
    ),
    Parameter("backend", "auto", OneOf(BACKENDS), "gradient-descent engine"),
)


def check_device(device: Any) -> str:
    """Check the ``device`` parameter; return it as a string ("cpu", "cuda:0", ...).

    "cpu" is accepted without importing torch: a CPU fit below 5,000 samples never needs it.
    """
    if device == "cpu":
        return "cpu"
    from featscope.models import resolve_device

    return str(resolve_device(device))


def on_cpu(device: str) -> bool:
    """Whether the device string (as :func:`check_device` returns it) is the CPU."""
    return device.split(":")[0] == "cpu"


def validate(values: Mapping[str, Any], n_samples: int) -> dict[str, Any]:
    """Check the t-SNE's parameters for ``n_samples`` samples; resolve what needs no stage.

    Parameters
    ----------
    values : mapping
        Every parameter of :data:`PARAMETERS` (``TSNE.get_params()``).
    n_samples : int
        Rows of the data (an ``init`` array must have as many).

    Returns
    -------
    dict
        ``device`` as a string ("cpu", "cuda:0", ...); ``backend``, "auto" resolved (torch when
        ``device`` is not the CPU or the gradient is "exact", openTSNE otherwise; the
        estimator then prefers numba for an FFT map on the CPU);
        ``perplexity``, lowered to ``(n_samples - 1) / 3`` with a warning when larger (each
        point needs ``3 * perplexity`` neighbours); ``learning_rate`` and
        ``learning_rate_exaggeration``, "auto" resolved by openTSNE's schedule:
        ``max(n_samples / 4, 50)`` and ``max(n_samples / early_exaggeration / 4, 50)``.

    Raises
    ------
    ParameterError
        A value breaks its rule, or two values do not go together.
    """
    check_parameters(PARAMETERS, values)
    n_components = values["n_components"]
    if not isinstance(values["init"], str):
        init = np.asarray(values["init"])
        if init.shape != (n_samples, n_components):
            raise ParameterError(
                f"The `init` array must have shape (n_samples, n_components) = "
                f"({n_samples}, {n_components}); got {init.shape}."
            )
        if not np.isfinite(init).all():
            raise ParameterError("The `init` array contains NaN or infinite values.")
    method = values["negative_gradient_method"]
    if method == "fft" and n_components != 2:
        raise ParameterError(
            f'The `negative_gradient_method` "fft" supports 2-D maps only; got '
            f'n_components={n_components}; use "bh" or "auto" for 3-D maps.'
        )
    device = check_device(values["device"])
    if device.startswith("mps"):
        raise ParameterError(
            f"The t-SNE does not run on {device!r}: its affinities and sums need float64, "
            'which MPS lacks; pass device="cpu" (the model can still run on MPS)'
        )
    backend = values["backend"]
    if backend == "auto":
        backend = "torch" if not on_cpu(device) or method == "exact" else "opentsne"
    if backend in ("opentsne", "numba") and not on_cpu(device):
        raise ParameterError(
            f'The `backend` "{backend}" runs on the CPU only; got device={values["device"]!r}; '
            'pass backend="torch" (or "auto") for a GPU, or device="cpu"'
        )
    if backend in ("opentsne", "numba") and method == "exact":
        raise ParameterError(
            'The `negative_gradient_method` "exact" is the torch engine\'s; got '
            f'backend="{backend}"; pass backend="torch" or "auto"'
        )
    if backend == "numba" and (method == "bh" or n_components != 2):
        raise ParameterError(
            'The `backend` "numba" runs the FFT gradient, for 2-D maps only; got '
            f"negative_gradient_method={method!r}, n_components={n_components}; pass "
            'backend="opentsne" (or "auto") for Barnes-Hut and 3-D maps'
        )
    if backend == "torch" and method == "bh":
        raise ParameterError(
            'The `negative_gradient_method` "bh" (Barnes-Hut) is openTSNE\'s and runs on '
            'the CPU only; pass "exact", "fft" or "auto" with the torch engine'
        )
    perplexity = float(values["perplexity"])
    limit = (n_samples - 1) / 3
    if perplexity > limit:
        warnings.warn(
            f"`perplexity` {perplexity:g} is too large for {n_samples} samples: it must be at "
            f"most (n_samples - 1) / 3 = {limit:.4g}, because each point needs 3 x "
            f"perplexity neighbours; using perplexity {limit:.4g}",
            UserWarning,
            stacklevel=4,  # the caller of TSNE.fit (fit -> TSNE._validate -> here)
        )
        perplexity = limit
    if values["learning_rate"] == "auto":
        learning_rate_ee = max(n_samples / float(values["early_exaggeration"]) / 4, 50.0)
        learning_rate = max(n_samples / 4, 50.0)
    else:
        learning_rate = learning_rate_ee = float(values["learning_rate"])
    return {
        "device": device,
        "backend": backend,
        "perplexity": perplexity,
        "learning_rate": learning_rate,
        "learning_rate_exaggeration": learning_rate_ee,
    }
