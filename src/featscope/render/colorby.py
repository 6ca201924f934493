"""What an embedding map is coloured by: the label, a prediction, a cluster or any metadata field.

:func:`field_colors` turns ``--color-by NAME`` into one RGBA colour per point and the legend or
colour bar that explains them, from :attr:`EmbeddingResult.fields`:

* categories (``label``, ``prediction``, ``cluster``, integer and text metadata): one palette
  colour per category, the same colour as the class of the same index, so that a map coloured by
  prediction reads like one coloured by label;
* ``correct``: green right, red wrong;
* numbers (``confidence``, float metadata): viridis from the smallest to the largest value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.errors import ParameterError
from featscope.render.colors import class_color, class_colors
from featscope.results import EmbeddingResult

__all__ = [
    "ColorBy",
    "available_fields",
    "check_color_by",
    "check_field_name",
    "default_color_by",
    "field_colors",
]

_RIGHT = (0.17, 0.63, 0.17, 1.0)
_WRONG = (0.84, 0.15, 0.16, 1.0)
_NOISE = (0.6, 0.6, 0.6, 1.0)
_PREDICTIONS = ("prediction", "confidence", "correct")
_NO_CLASSIFIER = "there is no classifier output (no 'logits' point, or saved features)"


@dataclass(frozen=True)
class ColorBy:
    """Colours of the points of one map and what explains them.

    Attributes
    ----------
    name : str
        The field coloured by.
    colors : numpy.ndarray
        ``(N, 4)`` RGBA per point.
    legend : tuple of (RGBA, str)
        Legend entries for categories (empty for numbers).
    scale : tuple of (float, float) or None
        ``(min, max)`` of a continuous field (viridis), else None.
    """

    name: str
    colors: np.ndarray
    legend: tuple[tuple[tuple[float, ...], str], ...] = ()
    scale: tuple[float, float] | None = None


def available_fields(result: EmbeddingResult) -> tuple[str, ...]:
    """Return the names a map can be coloured by: ``label`` and every field it holds."""
    return ("label", *result.fields)


def default_color_by(result: EmbeddingResult) -> str:
    """``label`` for labelled maps, ``cluster`` for unlabelled ones that have clusters."""
    if not result.labelled and "cluster" in result.fields:
        return "cluster"
    return "label"


def _missing(result: EmbeddingResult, name: str) -> ParameterError:
    if name in _PREDICTIONS:
        reason = dict(result.metrics.get("skipped") or {}).get("accuracy")
        if name == "correct" and "prediction" in result.fields:
            reason = "the samples have no labels to compare the predictions with"
        return ParameterError(
            f"--color-by {name}: the map at {result.point!r} has no predictions: "
            f"{reason or _NO_CLASSIFIER}; colour by {', '.join(available_fields(result))}"
        )
    return ParameterError(
        f"--color-by {name!r} is not a field of the map at {result.point!r}; fields there "
        f"are: {', '.join(available_fields(result))}"
    )


def field_colors(result: EmbeddingResult, name: str | None = None) -> ColorBy:
    """Colour the points of a map by one of its fields.

    Parameters
    ----------
    result : EmbeddingResult
        The map.
    name : str, optional
        ``label``, a field of ``result.fields`` (``prediction``, ``correct``, ``confidence``,
        ``cluster`` or metadata); default :func:`default_color_by`.

    Returns
    -------
    ColorBy

    Raises
    ------
    ParameterError
        When the map has no such field: one line listing the fields it has (or, for the
        prediction fields, why there are none).
    """
    name = default_color_by(result) if name is None else str(name)
    n = len(result.labels)
    if name == "label":
        if not result.labelled:
            return ColorBy(name, np.tile(class_color(0), (n, 1)))
        present = sorted({int(v) for v in np.unique(result.labels) if v >= 0})
        names = result.class_names
        legend = tuple(
            (class_color(i), str(names[i]) if i < len(names) else str(i)) for i in present
        )
        return ColorBy(name, class_colors(np.maximum(result.labels, 0)), legend)
    if name not in result.fields:
        raise _missing(result, name)
    values = np.asarray(result.fields[name])
    if name == "correct" or values.dtype == bool:
        wrong = ~values.astype(bool)
        colors = np.where(wrong[:, None], _WRONG, _RIGHT)
        names = ("wrong", "right") if name == "correct" else ("false", "true")
        return ColorBy(name, colors, ((_WRONG, names[0]), (_RIGHT, names[1])))
    if values.dtype.kind == "f":
        return _continuous(name, values)
    return _categories(result, name, values)


def _continuous(name: str, values: np.ndarray) -> ColorBy:
    from matplotlib import colormaps

    finite = np.isfinite(values)
    lo = float(values[finite].min()) if finite.any() else 0.0
    hi = float(values[finite].max()) if finite.any() else 1.0
    scaled = (values - lo) / (hi - lo) if hi > lo else np.full(len(values), 0.5)
    colors = colormaps["viridis"](np.where(finite, scaled, 0.0))
    colors[~finite] = _NOISE
    return ColorBy(name, colors, scale=(lo, hi))


def _categories(result: EmbeddingResult, name: str, values: np.ndarray) -> ColorBy:
    if values.dtype.kind in "iu":
        codes = values.astype(np.int64)
        present = sorted({int(v) for v in np.unique(codes)})
        if name == "prediction":
            names = result.class_names
            label = {i: str(names[i]) if 0 <= i < len(names) else str(i) for i in present}
        elif name == "cluster":
            label = {i: "noise" if i < 0 else f"cluster {i}" for i in present}
        else:
            label = {i: str(i) for i in present}
        # negative codes (noise, no prediction) are grey; the others keep their palette colour
        colors = np.where((codes < 0)[:, None], _NOISE, class_colors(np.maximum(codes, 0)))
        legend = tuple((class_color(i) if i >= 0 else _NOISE, label[i]) for i in present)
        return ColorBy(name, colors, legend)
    text = values.astype(str)
    categories, codes = np.unique(text, return_inverse=True)
    legend = tuple((class_color(i), str(c) or "(empty)") for i, c in enumerate(categories))
    return ColorBy(name, class_colors(codes), legend)


def check_field_name(name: str | None, metadata: Any, classifier: bool) -> None:
    """Fail early, before any image is read, on a ``--color-by`` name no map can have.

    Parameters
    ----------
    name : str or None
        The field asked for.
    metadata : iterable of str
        The metadata columns of the data.
    classifier : bool
        Whether the model has a classifier output (``logits``); predictions can still be
        refused later, when its width is not the number of classes.

    Raises
    ------
    ParameterError
        For a prediction field without a classifier, or a name that is neither one of
        featscope's fields nor a metadata column (the fields there will be are listed).
    """
    if name is None or name in ("label", "cluster"):
        return
    if name in _PREDICTIONS:
        if not classifier:
            raise ParameterError(
                f"--color-by {name}: there are no predictions: {_NO_CLASSIFIER}; colour by "
                "label, cluster or a metadata field"
            )
        return
    metadata = list(metadata)
    if name not in metadata:
        there = ["label", *(_PREDICTIONS if classifier else ()), "cluster", *metadata]
        raise ParameterError(
            f"--color-by {name!r} is not a field of these maps; fields there are: "
            f"{', '.join(there)}"
        )


def check_color_by(results: Any, name: str | None) -> None:
    """Fail when any of the maps cannot be coloured by ``name`` (see :func:`field_colors`)."""
    for result in results:
        if name is not None and name != "label" and name not in result.fields:
            raise _missing(result, name)
