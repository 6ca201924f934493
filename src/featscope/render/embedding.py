"""Embedding maps (t-SNE, UMAP, PCA) as matplotlib figures.

Renderers are pure functions of an :class:`~featscope.results.EmbeddingResult`: they compute
nothing but the picture, return the :class:`~matplotlib.axes.Axes` they drew on, and leave saving
(:func:`featscope.render.save_figure`) and showing (:func:`featscope.render.show`) to the caller.
Figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot state, so nothing leaks
between calls and nothing needs ``plt.close``.

Differences from the reference tool (``vis_tsne.py``), on purpose:

- a class keeps its colour whatever subset is shown (:mod:`featscope.render.colors`);
- the legend pairs each colour with the name of *that* class index (the reference paired sorted
  labels with the unsorted ``--class-idx`` order and mislabelled classes);
- 3-component maps are drawn in 3-D instead of silently dropping the third axis;
- points are drawn in a fixed shuffled order, so no class is always painted on top;
- the title says what the map is (model, capture point, method) and how good it is (kNN accuracy,
  trustworthiness), and the meaningless t-SNE tick labels are left out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.errors import ParameterError
from featscope.render.colors import class_color
from featscope.results import EmbeddingResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "default_point_size",
    "embedding_title",
    "plot_embedding",
    "plot_embedding_figures",
    "plot_embeddings",
]

_METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
# Above this many classes the legend moves outside the axes; above _LEGEND_ROWS it gets columns.
_LEGEND_INSIDE_MAX = 10
_LEGEND_ROWS = 25
# One text per point is slow to draw and unreadable beyond this.
_ANNOTATE_WARN = 5000
#: From this many points a 2-D map is drawn as a density image (each pixel: the mean colour of
#: the classes of the points in it, opacity growing with their count) instead of one marker per
#: point: matplotlib needs tens of seconds for a million markers, which overlap into a blur
#: anyway, while the image takes well under a second and shows where each class is dense.
#: 3-D maps keep their markers, rasterised.
DENSITY_FROM = 100_000
#: Pixels per side of the density image.
_DENSITY_BINS = 800


def default_point_size(n_points: int) -> float:
    """Return the marker area (points^2) used for a map of ``n_points`` samples.

    Parameters
    ----------
    n_points : int
        Number of points drawn.

    Returns
    -------
    float
        15 (the reference tool's size) up to 2,000 points, then shrinking as
        ``15 * sqrt(2000 / n)`` so the total ink stays roughly constant, never below 1.
    """
    if n_points <= 2000:
        return 15.0
    return max(1.0, 15.0 * math.sqrt(2000.0 / n_points))


def _format_metric(value: Any, digits: int) -> str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return f"{number:.{digits}f}"


def embedding_title(result: EmbeddingResult) -> str:
    """Return the two-line title drawn above an embedding map.

    Parameters
    ----------
    result : EmbeddingResult
        The map.

    Returns
    -------
    str
        ``"<model or 'features'> · <point> · <method>"`` and, when ``result.metrics`` holds any of
        ``knn_accuracy_map``, ``knn_accuracy_features``, ``trustworthiness``, a second line such
        as ``"10-NN acc. map 0.912 · features 0.934 · trust. 0.95"`` (missing or non-finite
        metrics are left out; ``k`` comes from ``metrics["knn_k"]`` or ``params["knn_k"]``,
        default 10).
    """
    model = result.provenance.model or "features"
    if result.provenance.weights == "random":
        model += " (random weights)"  # an untrained network's map must not pass for a trained one
    method = _METHOD_NAMES.get(result.method.lower(), result.method)
    lines = [f"{model} · {result.point} · {method}"]

    metrics = result.metrics
    k = metrics.get("knn_k", result.params.get("knn_k", 10))
    try:
        k = int(k)
    except (TypeError, ValueError):
        k = 10
    knn = [
        f"{label} {text}"
        for label, key in (("map", "knn_accuracy_map"), ("features", "knn_accuracy_features"))
        if (text := _format_metric(metrics.get(key), 3)) is not None
    ]
    parts = [f"{k}-NN acc. " + " · ".join(knn)] if knn else []
    trust = _format_metric(metrics.get("trustworthiness"), 2)
    if trust is not None:
        parts.append(f"trust. {trust}")
    if parts:
        lines.append(" · ".join(parts))
    return "\n".join(lines)


def _check_result(result: Any) -> EmbeddingResult:
    if not isinstance(result, EmbeddingResult):
        raise TypeError(
            f"plot_embedding takes an EmbeddingResult; got {type(result).__name__}; "
            "make one with featscope.embed(...) or featscope.TSNE(...).fit(...)"
        )
    if result.coords.ndim != 2 or result.n_components not in (2, 3):
        raise ParameterError(
            f"result.coords has shape {result.coords.shape}; an embedding map needs 2 or 3 "
            "components; embed with n_components=2 or 3"
        )
    if len(result.labels) != len(result.coords):
        raise ParameterError(
            f"result has {len(result.coords)} coordinates but {len(result.labels)} labels; "
            "they must have one row per sample"
        )
    return result


def _class_name(result: EmbeddingResult, index: int) -> str:
    names = result.class_names
    return str(names[index]) if 0 <= index < len(names) else str(index)


def _legend_handles(indices: Iterable[int], names: Mapping[int, str]) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for index in indices:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="",
                marker="o",
                markersize=6,
                markerfacecolor=class_color(index),
                markeredgewidth=0,
            )
        )
        labels.append(names[index])
    return handles, labels


def _entries(entries: Iterable[tuple[Any, str]]) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for color, name in entries:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="",
                marker="o",
                markersize=6,
                markerfacecolor=color,
                markeredgewidth=0,
            )
        )
        labels.append(name)
    return handles, labels


def _legend_layout(n_entries: int) -> dict[str, Any]:
    """Return legend keywords placing ``n_entries`` classes outside the axes, on the right."""
    return {
        "loc": "upper left",
        "bbox_to_anchor": (1.02, 1.0),
        "borderaxespad": 0.0,
        "ncols": max(1, math.ceil(n_entries / _LEGEND_ROWS)),
        "fontsize": "small" if n_entries <= _LEGEND_ROWS else "x-small",
        "frameon": False,
    }


def _style_axes(ax: Axes, three_d: bool) -> None:
    # t-SNE/UMAP coordinates have no units: tick labels would suggest a scale that isn't there.
    if three_d:
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        ax.set_aspect("equal", adjustable="datalim")
        return
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)
        spine.set_color("0.6")
    ax.set_aspect("equal", adjustable="datalim")


def plot_embedding(
    result: EmbeddingResult,
    ax: Axes | None = None,
    *,
    legend: bool = False,
    annotate: bool = False,
    point_size: float | None = None,
    title: bool | str = True,
    alpha: float = 0.9,
    color_by: str | None = None,
) -> Axes:
    """Draw an embedding map as a scatter plot coloured by class (or by any field).

    Parameters
    ----------
    result : EmbeddingResult
        A 2- or 3-component map.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a 3-component result needs a 3-D axes (``projection="3d"``). By default
        a new 8 x 8 inch :class:`~matplotlib.figure.Figure` (not managed by pyplot) is made.
    legend : bool, default False
        Add one legend entry per class present, in class-index order, named by
        ``result.class_names``. More than 10 classes go outside the axes on the right, in several
        columns beyond 25. Unlabelled maps (no class names, labels -1) are drawn in one colour,
        without legend or annotations.
    annotate : bool, default False
        Write the class index of every point at the point, in the class colour (the scikit-learn
        digits recipe); the dots are then drawn faint beneath the numbers. Slow and unreadable
        beyond a few thousand points (a ``UserWarning`` says so above 5,000).
    point_size : float, optional
        Marker area in points^2; default :func:`default_point_size` of the number of points.
        Unused for 2-D maps of :data:`DENSITY_FROM` (100,000) points or more, which are drawn
        as a density image (mean class colour per pixel, opacity by count) so that a million
        points draw in about a second; 3-D maps that large keep rasterised markers.
    title : bool or str, default True
        ``True`` draws :func:`embedding_title`; a string is used as the title; ``False`` draws
        none.
    alpha : float, default 0.9
        Marker opacity in ``[0, 1]``.
    color_by : str, optional
        ``"label"``, ``"prediction"``, ``"correct"``, ``"confidence"``, ``"cluster"`` or a
        metadata field of ``result.fields`` (:func:`featscope.render.colorby.field_colors`);
        default the label, or the cluster for unlabelled maps. Numbers get a colour bar.
        When the map has predictions and is coloured by label or prediction, misclassified
        samples are marked with a black cross.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on (``ax.figure`` is the figure to save).

    Raises
    ------
    TypeError
        If ``result`` is not an :class:`~featscope.results.EmbeddingResult`.
    ParameterError
        If the result does not have 2 or 3 components, a 3-component result is given a 2-D
        ``ax``, or ``alpha``/``point_size`` is out of range.
    """
    result = _check_result(result)
    three_d = result.n_components == 3
    if not 0.0 <= float(alpha) <= 1.0:
        raise ParameterError(f"`alpha` {alpha} is outside [0, 1]; pass an opacity such as 0.9")
    n_points = len(result.labels)
    size = default_point_size(n_points) if point_size is None else float(point_size)
    if not size > 0:
        raise ParameterError(
            f"`point_size` {point_size} must be > 0 (marker area in points^2); pass e.g. 15"
        )

    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 8), layout="constrained")
        ax = fig.add_subplot(projection="3d" if three_d else None)
    elif three_d and getattr(ax, "name", "") != "3d":
        raise ParameterError(
            f"a 3-component embedding needs a 3-D axes but `ax` is a {getattr(ax, 'name', ax)!r} "
            "axes; create it with fig.add_subplot(projection='3d') or pass ax=None"
        )

    from featscope.render.colorby import field_colors

    coords = result.coords
    painted = field_colors(result, color_by)
    if not result.labelled:  # no class index to write at the points
        annotate = False
    colors = painted.colors
    # Samples usually arrive sorted by class: drawing them in that order would paint the last
    # class over all others. A fixed permutation keeps figures deterministic and fair.
    order = np.random.default_rng(0).permutation(n_points)
    if painted.name == "correct":  # the few wrong ones on top, where they can be seen
        wrong_first = ~np.asarray(result.fields["correct"], dtype=bool)[order]
        order = order[np.argsort(wrong_first, kind="stable")]
    xyz = [coords[order, d] for d in range(result.n_components)]
    # With annotate=True the class numbers are the marks (as in the scikit-learn digits recipe);
    # the dots stay, faint, so the axes still autoscale to the data (texts do not).
    dot_alpha = float(alpha) * (0.2 if annotate else 1.0)
    if n_points >= DENSITY_FROM and not three_d:
        _draw_density(ax, coords, colors, float(alpha))
    else:
        ax.scatter(
            *xyz,
            c=colors[order],
            s=size,
            alpha=dot_alpha,
            linewidths=0,
            rasterized=n_points >= DENSITY_FROM,
        )

    if annotate:
        if n_points > _ANNOTATE_WARN:
            warnings.warn(
                f"annotate=True writes one label per point ({n_points} points): slow to draw and "
                f"unreadable above {_ANNOTATE_WARN}; pass annotate=False or fewer samples",
                UserWarning,
                stacklevel=2,
            )
        for row, label in enumerate(result.labels):
            point = [float(v) for v in coords[row]]
            ax.text(
                *point,
                str(int(label)),
                color=colors[row],
                fontsize=6,
                ha="center",
                va="center",
            )

    correct = result.fields.get("correct")
    if correct is not None and painted.name in ("label", "prediction") and not annotate:
        wrong = ~np.asarray(correct, dtype=bool)
        if wrong.any():
            ax.scatter(
                *[coords[wrong, d] for d in range(result.n_components)],
                marker="x", c="black", s=size * 1.5, linewidths=0.7, alpha=float(alpha),
            )  # fmt: skip

    if legend and n_points and painted.legend:
        handles, labels = _entries(painted.legend)
        if len(labels) > _LEGEND_INSIDE_MAX:
            ax.legend(handles, labels, **_legend_layout(len(labels)))
        else:
            ax.legend(handles, labels, loc="best", fontsize="small", framealpha=0.8)
    if painted.scale is not None:
        from matplotlib import cm
        from matplotlib import colors as mcolors

        norm = mcolors.Normalize(*painted.scale)
        bar = ax.figure.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, shrink=0.6)
        bar.set_label(painted.name, fontsize="small")

    if title is True:
        by = "" if painted.name == "label" else f" · by {painted.name}"
        ax.set_title(embedding_title(result) + by, fontsize="medium")
    elif isinstance(title, str) and title:
        ax.set_title(title, fontsize="medium")

    _style_axes(ax, three_d)
    return ax


def _draw_density(ax: Axes, coords: np.ndarray, colors: np.ndarray, alpha: float) -> None:
    """Draw a large 2-D map as an RGBA image: mean class colour per pixel, log-count opacity."""
    x, y = coords[:, 0], coords[:, 1]
    lo = np.array([x.min(), y.min()])
    hi = np.array([x.max(), y.max()])
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - 0.02 * span, hi + 0.02 * span  # the same margin as matplotlib's autoscale
    bins = _DENSITY_BINS
    ix = np.clip(((x - lo[0]) / (hi[0] - lo[0]) * bins).astype(np.int64), 0, bins - 1)
    iy = np.clip(((y - lo[1]) / (hi[1] - lo[1]) * bins).astype(np.int64), 0, bins - 1)
    flat = iy * bins + ix
    count = np.bincount(flat, minlength=bins * bins).astype(np.float64)
    rgba = np.zeros((bins * bins, 4))
    filled = count > 0
    for channel in range(3):
        total = np.bincount(flat, weights=colors[:, channel], minlength=bins * bins)
        rgba[filled, channel] = total[filled] / count[filled]
    # Opacity from 0.35 (one point) to 1 (the densest pixel), on a log scale so that sparse
    # outskirts stay visible next to dense cluster cores.
    density = np.log1p(count) / math.log1p(count.max())
    rgba[filled, 3] = alpha * (0.35 + 0.65 * density[filled])
    ax.imshow(
        rgba.reshape(bins, bins, 4),
        origin="lower",
        extent=(lo[0], hi[0], lo[1], hi[1]),
        interpolation="nearest",
        aspect="auto",
    )


def plot_embeddings(
    results: Iterable[EmbeddingResult] | Mapping[str, EmbeddingResult],
    *,
    ncols: int | None = None,
    **kw: Any,
) -> Figure:
    """Draw several embedding maps side by side in one figure.

    Typical use: the same samples mapped at several capture points (``backbone``, ``neck``,
    ``pre_logits``) or by several methods.

    Parameters
    ----------
    results : iterable of EmbeddingResult, or mapping of name to EmbeddingResult
        The maps, drawn left to right, top to bottom (a mapping's values in its order).
    ncols : int, optional
        Number of columns; default ``min(len(results), 3)``.
    **kw
        Passed to :func:`plot_embedding` for every map (``annotate``, ``point_size``, ``title``,
        ``alpha``). ``legend=True`` draws one shared legend for the figure, on the right, with
        every class present in any map.

    Returns
    -------
    matplotlib.figure.Figure
        A new figure (not managed by pyplot) with one axes per result.

    Raises
    ------
    ParameterError
        If ``results`` is empty, ``ncols`` is not a positive integer, or ``kw`` holds ``ax``.
    TypeError
        If an element is not an :class:`~featscope.results.EmbeddingResult`.
    """
    from matplotlib.figure import Figure

    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    if not items:
        raise ParameterError("`results` is empty; pass at least one EmbeddingResult")
    if "ax" in kw:
        raise ParameterError(
            "plot_embeddings makes its own axes; call plot_embedding(result, ax=...) to draw "
            "on an existing one"
        )
    for item in items:
        _check_result(item)
    if ncols is None:
        ncols = min(len(items), 3)
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ParameterError(f"`ncols` {ncols!r} must be a positive integer; pass e.g. 3")
    ncols = min(ncols, len(items))
    nrows = math.ceil(len(items) / ncols)
    legend = bool(kw.pop("legend", False))
    own_legend = False  # other fields than the label: each map gets its own legend
    if kw.get("color_by") not in (None, "label"):
        own_legend, legend = legend, False

    fig = Figure(
        figsize=(5.0 * ncols + (2.0 if legend else 0.0), 5.0 * nrows), layout="constrained"
    )
    for i, item in enumerate(items):
        ax = fig.add_subplot(
            nrows, ncols, i + 1, projection="3d" if item.n_components == 3 else None
        )
        plot_embedding(item, ax=ax, legend=own_legend, **kw)

    if legend:
        names: dict[int, str] = {}
        for item in (item for item in items if item.labelled):
            for index in np.unique(item.labels):
                names.setdefault(int(index), _class_name(item, int(index)))
        present = sorted(names)
        if present:
            handles, labels = _legend_handles(present, names)
            fig.legend(
                handles,
                labels,
                loc="outside right upper",
                ncols=max(1, math.ceil(len(present) / _LEGEND_ROWS)),
                fontsize="small",
                frameon=False,
            )
    return fig


def plot_embedding_figures(
    results: Iterable[EmbeddingResult],
    *,
    legend: bool = False,
    annotate: bool = False,
    point_size: float | None = None,
    color_by: str | None = None,
) -> dict[str, Figure]:
    """Draw the figures of an embedding-map run: each map alone, and all side by side.

    Parameters
    ----------
    results : iterable of EmbeddingResult
        The maps (one per capture point, usually).
    legend, annotate, point_size, color_by
        As for :func:`plot_embedding`; the overview takes ``legend``, ``point_size`` and
        ``color_by``.

    Raises
    ------
    ParameterError
        When a map has no field ``color_by`` (before anything is drawn).

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        ``"<method>_<point>"`` per map, in order, then ``"overview"`` (from
        :func:`plot_embeddings`) when there are several maps.
    """
    from featscope.render.colorby import check_color_by

    items = list(results)
    check_color_by(items, color_by)
    figures: dict[str, Figure] = {}
    for result in items:
        ax = plot_embedding(
            result, legend=legend, annotate=annotate, point_size=point_size, color_by=color_by
        )
        figures[f"{result.method}_{result.point}"] = ax.figure
    if len(items) > 1:
        figures["overview"] = plot_embeddings(
            items, legend=legend, point_size=point_size, color_by=color_by
        )
    return figures
