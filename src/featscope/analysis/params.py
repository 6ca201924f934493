"""Parameter tables: each reducer's parameters, defaults and rules written once, as data.

A table is a tuple of :class:`Parameter` (name, default, rule, one-line description). One table
serves three readers: the estimator (its defaults and ``get_params`` names), the checks
(:func:`check_parameters` runs each rule and raises scikit-learn's error template, naming the
parameter, the rule and the value received) and anyone who lists the parameters (docs, the
``reduce`` dispatch, introspection): :data:`featscope.analysis.tsne_params.PARAMETERS`,
:data:`featscope.analysis.umap.PARAMETERS`, :data:`featscope.analysis.pca.PARAMETERS`.

Rules are small frozen objects in the spirit of scikit-learn's ``_parameter_constraints``
(:class:`Interval`, :class:`OneOf`, :class:`AnyOf`, :class:`ArrayLike`, :class:`Delegated`):
each says what it accepts and how the error message states it, so the message cannot drift
from the check. Rules that need the data (an ``init`` array's shape) or several parameters at
once stay beside the estimator they belong to.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.errors import ParameterError

__all__ = [
    "N_COMPONENTS",
    "AnyOf",
    "ArrayLike",
    "Delegated",
    "Interval",
    "OneOf",
    "Parameter",
    "check_known",
    "check_parameters",
    "check_samples",
    "parameter_error",
]

_CLOSED = ("left", "right", "both", "neither")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class _Rule:
    """What values a parameter accepts (``accepts``) and how a message says so (``describe``).

    ``text``, when set, is what the message says instead of the generated wording; it may name
    other parameters as format fields (``"an integer >= n_components ({n_components})"``).
    """

    text: str | None

    def accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        """Tell whether ``value`` keeps the rule, given the other parameters' values."""
        return self._accepts(value, params)

    def describe(self, params: Mapping[str, Any]) -> str:
        """Say the rule as an error message does: "must be <describe()>"."""
        return self.text.format(**params) if self.text else self._wording(params)

    def _accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def _wording(self, params: Mapping[str, Any]) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(_Rule):
    """Integers or real numbers (never bools) between ``low`` and ``high``.

    A bound is a number, ``None`` (unbounded) or the name of another parameter whose value
    bounds this one. Worded "an integer >= 1", "a number in [0, 1)", and for one-sided real
    bounds just "> 0" (the comparison already says it is a number).
    """

    kind: type[numbers.Number]
    low: float | str | None = None
    high: float | str | None = None
    closed: str = "left"
    text: str | None = None

    def __post_init__(self) -> None:
        if self.closed not in _CLOSED:  # a typo would silently open both ends
            raise ValueError(f"`closed` must be one of {_CLOSED}; got {self.closed!r}")

    def _accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        if not (_is_int(value) if self.kind is numbers.Integral else _is_real(value)):
            return False
        low, high = self._bound(self.low, params), self._bound(self.high, params)
        if low is not None and not (value >= low if self._closed_low else value > low):
            return False
        return high is None or bool(value <= high if self._closed_high else value < high)

    def _wording(self, params: Mapping[str, Any]) -> str:
        kind = "an integer" if self.kind is numbers.Integral else "a number"
        low, high = self._said(self.low, params), self._said(self.high, params)
        if low is not None and high is not None:
            left, right = "[" if self._closed_low else "(", "]" if self._closed_high else ")"
            return f"{kind} in {left}{low}, {high}{right}"
        if low is None and high is None:
            return kind
        if low is not None:
            comparison = f"{'>=' if self._closed_low else '>'} {low}"
        else:
            comparison = f"{'<=' if self._closed_high else '<'} {high}"
        return f"{kind} {comparison}" if self.kind is numbers.Integral else comparison

    @property
    def _closed_low(self) -> bool:
        return self.closed in ("left", "both")

    @property
    def _closed_high(self) -> bool:
        return self.closed in ("right", "both")

    @staticmethod
    def _bound(bound: Any, params: Mapping[str, Any]) -> Any:
        return params[bound] if isinstance(bound, str) else bound

    @staticmethod
    def _said(bound: Any, params: Mapping[str, Any]) -> str | None:
        if bound is None:
            return None
        return f"{bound} ({params[bound]})" if isinstance(bound, str) else str(bound)


@dataclass(frozen=True)
class OneOf(_Rule):
    """One of a few values: strings match strings, numbers match equal numbers, None is None.

    Worded with the values' reprs: "None", "one of 'euclidean', 'cosine', 'manhattan'".
    """

    values: tuple[Any, ...]
    text: str | None = None

    def _accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return any(_matches(value, choice) for choice in self.values)

    def _wording(self, params: Mapping[str, Any]) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return f"one of {', '.join(map(repr, self.values))}"


def _matches(value: Any, choice: Any) -> bool:
    if choice is None:
        return value is None
    if isinstance(choice, str):
        return isinstance(value, str) and value == choice
    return isinstance(value, numbers.Number) and value == choice


@dataclass(frozen=True)
class AnyOf(_Rule):
    """Any value one of ``rules`` accepts; worded as their wordings joined with "or"."""

    rules: tuple[_Rule, ...]
    text: str | None = None

    def _accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return any(rule.accepts(value, params) for rule in self.rules)

    def _wording(self, params: Mapping[str, Any]) -> str:
        return " or ".join(rule.describe(params) for rule in self.rules)


@dataclass(frozen=True)
class ArrayLike(_Rule):
    """Any value but a string; its shape is the estimator's to check against the data."""

    text: str | None = None

    def _accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return not isinstance(value, str)

    def _wording(self, params: Mapping[str, Any]) -> str:
        return "an array"


@dataclass(frozen=True)
class Delegated(_Rule):
    """Accepted here as given: ``by`` (the library the value is passed to) checks it."""

    by: str
    text: str | None = None

    def _accepts(self, value: Any, params: Mapping[str, Any]) -> bool:
        return True

    def _wording(self, params: Mapping[str, Any]) -> str:
        return f"a value {self.by} accepts"


@dataclass(frozen=True)
class Parameter:
    """One row of a parameter table.

    Attributes
    ----------
    name : str
        The keyword, as the estimator and ``get_params`` spell it.
    default : object
        Its default value.
    rule : Interval, OneOf, AnyOf, ArrayLike or Delegated
        The values it accepts (``rule.describe(params)`` says which).
    doc : str
        One line saying what it does.
    """

    name: str
    default: Any
    rule: _Rule
    doc: str


#: The map's dimension: the one parameter every reducer's table shares.
N_COMPONENTS = Parameter(
    "n_components",
    2,
    Interval(numbers.Integral, 2, 3, closed="both", text="2 or 3"),
    "dimension of the map",
)


def parameter_error(name: str, rule: str, value: Any) -> ParameterError:
    """Build a :class:`~featscope.errors.ParameterError` in scikit-learn's template.

    Parameters
    ----------
    name : str
        The parameter.
    rule : str
        What it must be, as the sentence continues after "must be".
    value : object
        The value received.

    Returns
    -------
    ParameterError
        "The `name` parameter must be <rule>; got <value>."
    """
    return ParameterError(f"The `{name}` parameter must be {rule}; got {value!r}.")


def check_parameters(table: Sequence[Parameter], values: Mapping[str, Any]) -> None:
    """Check every value against its rule, in table order.

    Parameters
    ----------
    table : sequence of Parameter
        The parameters to check (each must be in ``values``).
    values : mapping
        Parameter name to value; rules may read the other values (a bound named after another
        parameter), which come earlier in the table and so are checked already.

    Raises
    ------
    ParameterError
        The first value that breaks its rule, naming the parameter, the rule and the value.
    """
    for param in table:
        value = values[param.name]
        if not param.rule.accepts(value, values):
            raise parameter_error(param.name, param.rule.describe(values), value)


def check_known(method: str, params: Mapping[str, Any], valid: Sequence[str]) -> None:
    """Refuse keywords that are not parameters of ``method``, listing the valid ones.

    Parameters
    ----------
    method : str
        The method the keywords are for, as the message names it.
    params : mapping
        The keywords received.
    valid : sequence of str
        The method's parameter names.

    Raises
    ------
    ParameterError
        Some keyword is not in ``valid``.
    """
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) for method {method!r}: {', '.join(unknown)}; "
            f"valid ones are: {', '.join(sorted(valid))}"
        )


def check_samples(X: Any, what: str = "t-SNE", min_samples: int = 4) -> np.ndarray:
    """Return ``X`` as a finite, non-constant float32 (N, D) array or raise ParameterError.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature vectors, one row per sample.
    what : str, default "t-SNE"
        The method, as the message names it.
    min_samples : int, default 4
        Fewest rows the method can map.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        ``X`` as float32.

    Raises
    ------
    ParameterError
        ``X`` is not numeric, not 2-D, too short, has no features, holds NaN or infinite
        values, or all its rows are identical.
    """
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
