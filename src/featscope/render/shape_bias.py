"""The shape-bias figure of Geirhos et al.: texture vs. shape decisions per category.

The 16 categories are the rows, ordered by the humans' texture fraction (most shape-biased at
the bottom); the bottom axis is the fraction of texture decisions, the top axis the fraction of
shape decisions (1 - x). Each decision maker has one marker per category and a vertical line at
its overall value. Humans are always shown.

Differences from the reference script (mmpretrain ``tools/analysis_tools/shape_bias.py``), on
purpose: category names are drawn as text (the reference downloads icon PNGs at run time);
the default font is used (the reference asks for Times New Roman and floods the log with
``findfont`` warnings where it is missing); the figure size asked for is the size drawn (the
reference's 12x12 request is ignored by matplotlib); no pandas; the legend says each decision
maker's overall shape bias and sits beside the plot, where it hides no marker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.analysis.shape_bias import HUMANS, human_order, reference_humans
from featscope.errors import ParameterError
from featscope.results import ShapeBiasStats

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

__all__ = ["HUMAN_COLOR", "HUMAN_MARKER", "parse_color", "plot_shape_bias"]

#: The humans' colour and marker in the reference figure (RGB 165, 30, 55; diamonds).
HUMAN_COLOR = (165 / 255, 30 / 255, 55 / 255)
HUMAN_MARKER = "D"
# tab10 without its red, which is too close to the humans' colour
_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
)
_MARKERS = ("o", "s", "^", "v", "P", "X", "p", "h", "<", ">", "*", "d")


def parse_color(value: Any) -> Any:
    """Return a matplotlib colour from a name, a hex string, or ``"R,G,B"`` in 0-255.

    Parameters
    ----------
    value : str or tuple
        ``"tab:blue"``, ``"#1f77b4"``, ``"165,30,55"`` (the reference's 0-255 triplets) or an
        RGB(A) tuple in 0-1.

    Returns
    -------
    str or tuple
        A value matplotlib accepts as a colour.

    Raises
    ------
    ParameterError
        When the value is not a colour.
    """
    from matplotlib.colors import is_color_like

    if isinstance(value, str) and value.count(",") == 2:
        try:
            rgb = tuple(float(v) / 255.0 for v in value.split(","))
        except ValueError:
            rgb = ()
        if len(rgb) == 3 and all(0.0 <= v <= 1.0 for v in rgb):
            return rgb
    if is_color_like(value):
        return value
    raise ParameterError(
        f"colour {value!r} is not a colour; pass a name (tab:blue), a hex string (#1f77b4) or "
        "R,G,B with values 0-255 (165,30,55)"
    )


def _check_marker(value: str) -> str:
    from matplotlib.markers import MarkerStyle

    try:
        MarkerStyle(value)
    except (ValueError, TypeError):
        raise ParameterError(
            f"marker {value!r} is not a matplotlib marker; pass e.g. o, s, ^, v, D, P, X"
        ) from None
    return value


def _styles(
    names: Sequence[str],
    given: Sequence[Any] | Mapping[str, Any] | None,
    default: Sequence[Any],
    what: str,
) -> dict[str, Any]:
    """Pair each decision maker with a style: given per name or in order, else the defaults."""
    out: dict[str, Any] = {}
    others = [n for n in names if n != HUMANS]
    if isinstance(given, Mapping):
        given_map = dict(given)
    elif given is not None:
        given = list(given)
        if len(given) != len(names) and len(given) != len(others):
            raise ParameterError(
                f"{len(given)} {what} given for {len(others)} decision makers "
                f"({', '.join(others)}); give one per decision maker, in the same order"
            )
        keys = names if len(given) == len(names) else others
        given_map = dict(zip(keys, given, strict=True))
    else:
        given_map = {}
    for i, name in enumerate(others):
        out[name] = given_map.get(name, default[i % len(default)])
    return {**out, HUMANS: given_map.get(HUMANS)}


def plot_shape_bias(
    stats: Sequence[ShapeBiasStats] | Mapping[str, ShapeBiasStats],
    *,
    colors: Sequence[Any] | Mapping[str, Any] | None = None,
    markers: Sequence[str] | Mapping[str, str] | None = None,
    labels: Sequence[str] | Mapping[str, str] | None = None,
    humans: ShapeBiasStats | None = None,
    title: str | None = "Shape bias on the cue-conflict stimuli",
    ax: Axes | None = None,
) -> Axes:
    """Draw the shape-bias figure: per category, the fraction of texture vs. shape decisions.

    Parameters
    ----------
    stats : sequence or mapping of ShapeBiasStats
        The decision makers to draw, in legend order. A ``"humans"`` entry is the humans;
        without one the shipped reference humans (:func:`reference_humans`) are drawn.
    colors : sequence or mapping, optional
        One colour per decision maker (names, hex, ``"R,G,B"`` in 0-255), in ``stats`` order
        (with or without the humans) or by name. Humans default to RGB 165,30,55.
    markers : sequence or mapping of str, optional
        One matplotlib marker per decision maker, likewise. Humans default to ``"D"``.
    labels : sequence or mapping of str, optional
        Legend names, likewise (default: the decision makers' names; humans: "Humans").
    humans : ShapeBiasStats, optional
        The humans, when not in ``stats``; they set the category order.
    title : str or None, optional
        Axes title.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new 10 x 7 inch figure (not managed by pyplot).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ParameterError
        When ``stats`` is empty, a colour or marker is invalid, or the number of colours,
        markers or labels does not match the decision makers.
    """
    items = list(stats.values()) if isinstance(stats, Mapping) else list(stats)
    if not items:
        raise ParameterError("`stats` is empty; pass the shape-bias statistics to draw")
    if not all(isinstance(s, ShapeBiasStats) for s in items):
        raise ParameterError("`stats` must hold ShapeBiasStats (from featscope.analysis)")
    by_name = {s.name: s for s in items}
    if HUMANS not in by_name:
        by_name[HUMANS] = humans if humans is not None else reference_humans()
    # styles given as sequences pair with the order of `stats`; the legend lists the humans
    # first, as the reference every model is compared against
    given = [s.name for s in items]
    names = [HUMANS, *[n for n in given if n != HUMANS]]
    color_of = _styles(given, colors, _COLORS, "colours")
    marker_of = _styles(given, markers, _MARKERS, "markers")
    label_of = _styles(given, labels, names[1:] or [""], "labels")
    color_of[HUMANS] = color_of[HUMANS] or HUMAN_COLOR
    marker_of[HUMANS] = marker_of[HUMANS] or HUMAN_MARKER
    label_of = {n: (label_of[n] if label_of[n] is not None else "Humans") for n in names}
    color_of = {n: parse_color(c) for n, c in color_of.items()}
    marker_of = {n: _check_marker(m) for n, m in marker_of.items()}

    order = human_order(by_name[HUMANS])
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 7), layout="constrained")
        ax = fig.add_subplot()
    y = np.arange(len(order))
    # draw the models first and the humans last, so the reference markers stay on top
    for z, name in enumerate(reversed(names)):
        s = by_name[name]
        color, marker = color_of[name], marker_of[name]
        x = np.array([s.texture_fraction(c) for c in order], dtype=np.float64)
        overall = s.texture_fraction()
        ax.axvline(overall, color=color, linewidth=1.6, alpha=0.9, zorder=2 + z)
        ax.scatter(
            x,
            y,
            s=110,
            marker=marker,
            color=color,
            edgecolors=(0.4, 0.4, 0.4),
            linewidths=0.6,
            zorder=20 + z,
            clip_on=False,  # markers at 0 or 1 are drawn whole, not cut at the frame
            label=f"{label_of[name]} ({100 * s.shape_bias:.1f} %)",
        )
    for sep in y[:-1] + 0.5:
        ax.axhline(sep, color="grey", linestyle=":", linewidth=0.8, alpha=0.4, zorder=1)
    ax.set_ylim(-0.5, len(order) - 0.5)
    ax.set_yticks(y, labels=list(order), fontsize=11)
    # room between the names and the markers at x = 0, which are drawn over the frame
    ax.tick_params(axis="y", length=0, pad=12)
    ax.set_xlim(0.0, 1.0)
    ticks = np.round(np.arange(0.0, 1.0001, 0.1), 1)
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.set_xlabel("Fraction of texture decisions  \u2192", fontsize=12)
    top = ax.secondary_xaxis("top", functions=(lambda v: 1.0 - v, lambda v: 1.0 - v))
    top.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    top.set_xlabel("\u2190  Fraction of shape decisions", fontsize=12)
    if title:
        ax.set_title(title, fontsize=13, pad=10)
    handles, texts = ax.get_legend_handles_labels()
    # scatter was drawn in reverse (humans last): list the legend humans first
    ax.legend(
        handles[::-1],
        texts[::-1],
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
        title="shape bias",
        fontsize=10,
        borderaxespad=0.5,
    )
    return ax
