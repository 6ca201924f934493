"""One self-contained, offline HTML page of one or more embedding maps (bokeh).

The page holds everything inline: bokeh's JavaScript, the coordinates and the thumbnails (WebP
``data:`` URIs), so it opens from disk in any browser with no server and no network. It offers:

- points coloured as in the static figures (:mod:`featscope.render.colors`), drawn with WebGL,
  and a colour-by selector over the class and every entry of ``EmbeddingResult.fields``
  (prediction, correct, confidence, cluster, metadata; categories or a continuous scale);
- a legend whose entries hide and show a class (in every map at once);
- hover: the sample's thumbnail (for the samples that have one), class name, id and fields;
- box and lasso selection, exact or regex search (class, id or any field), a gallery of the
  selected samples' images, and a button that downloads the selected samples as csv;
- a neighbour inspector: clicking a point shows its nearest neighbours in feature space
  (``EmbeddingResult.neighbors``, computed upstream; no inspector without them) and rings them
  in every map;
- class (and cluster) names at their centroids, toggled;
- several maps side by side (capture points of one run, or several runs) sharing one selection:
  each class has one ``ColumnDataSource`` holding every map's coordinates, so selecting samples in
  one map selects the same rows, hence the same samples, in the others; a 3-D map is shown as
  three linked projections (x-y, x-z, y-z);
- each map's quality metrics and parameters in a table, each metric explained.

Every user string (class names, ids, field names and values, model names, titles) reaches the
page either as data that bokeh serialises as JSON and shows as text (tooltips, legend, titles),
through :func:`html.escape` (tables, headers, colour keys), or through the page script's ``esc``
(inspector and gallery).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from featscope.errors import OutputError, ParameterError
from featscope.render._page_fields import PageField, class_hex, page_fields
from featscope.render._page_js import (
    CLEAR_JS,
    COLOR_JS,
    COUNT_JS,
    DOWNLOAD_JS,
    LABELS_JS,
    SEARCH_JS,
    TAP_JS,
    VISIBLE_JS,
)
from featscope.results import EmbeddingResult

__all__ = ["build_page", "method_name", "page_point_size", "page_titles", "write_page"]

_METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
_MAPS_PER_ROW = 3
_SIDEBAR_WIDTH = 340
_GALLERY_MAX = 120
_MORE_CLASSES = "#7f7f7f"
_TOOLTIP_IMAGE_PX = 96
_ALPHA, _FADED_ALPHA = 0.85, 0.08
#: Legend entries (and renderers per map) at most; further classes share the last entry.
_MAX_CLASS_ENTRIES = 40
_METRIC_NAMES = {
    "knn_accuracy_map": "kNN accuracy, map",
    "knn_accuracy_features": "kNN accuracy, features",
    "trustworthiness": "trustworthiness",
    "silhouette_map": "silhouette, map",
    "knn_k": "k (of kNN)",
    "k": "k (of kNN)",
    "n_samples": "samples",
    "n_classes": "classes",
}
#: What each metric (and the alignment parameter) means, shown beside its value.
_METRIC_HELP = {
    "knn_accuracy_map": "share of samples whose k nearest neighbours in the map mostly have "
    "their class (leave-one-out vote): how well the map separates the classes",
    "knn_accuracy_features": "the same vote among the k nearest neighbours in the features "
    "themselves: what the layer separates, whatever the map shows",
    "trustworthiness": "1 when every map neighbour is also a neighbour in the features, lower "
    "when the map puts together samples the features keep apart (scikit-learn)",
    "silhouette_map": "how far classes sit from each other in the map relative to their own "
    "spread, -1 to 1 (higher: tighter, better separated classes)",
    "k": "neighbours counted by the kNN accuracies and trustworthiness",
    "knn_k": "neighbours counted by the kNN accuracies and trustworthiness",
    "n_samples": "samples in the map",
    "n_classes": "classes among them",
    "accuracy": "share of samples whose predicted class (the classifier output of the same "
    "forward pass) is their true class",
    "n_misclassified": "samples whose predicted class is not their class",
    "confused_pairs": "the class pairs the model mixes up most: true class, predicted class, count",
    "n_clusters": "clusters found in the features (noise not counted)",
    "cluster_purity": "share of samples whose cluster's most common class is their class",
    "aligned_to": "the map this one was turned onto (rotation/reflection on the shared "
    "samples, --align) so clusters stay in place; distances in the map are unchanged",
}
_QUALITY_HELP = (
    "k-NN acc. map / features: share of samples whose k nearest neighbours in the map / in the "
    "features mostly share their class; trust.: trustworthiness, 1 when the map invents no "
    "neighbours (see each map's table below)."
)

# Shown at twice its stored size: a 48 px thumbnail is too small to read in a tooltip.
_TOOLTIP = """
<div class="fs-tip" style="max-width: 260px">
  <img src="@thumb" alt="" style="width: {img}px; image-rendering: pixelated; display: block">
  <div><b>@class_name</b> <span style="color: #666">(class @label)</span></div>
  <div style="font-family: monospace; font-size: 11px; word-break: break-all">@id</div>
  {fields}
</div>
"""

_CSS = """
:host { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
.fs-header h1 { font-size: 20px; margin: 0 0 4px 0; }
.fs-header p { margin: 2px 0; color: #444; font-size: 13px; }
table.fs-metrics { border-collapse: collapse; font-size: 12px; margin: 4px 16px 8px 0; }
table.fs-metrics th, table.fs-metrics td { border-bottom: 1px solid #ddd; padding: 2px 8px;
  text-align: left; vertical-align: top; }
table.fs-metrics td.fs-help { color: #666; max-width: 420px; }
table.fs-metrics caption { text-align: left; font-weight: bold; padding: 2px 0; }
.fs-tables { display: flex; flex-wrap: wrap; }
.fs-muted { color: #666; font-size: 12px; margin: 2px 0; }
.fs-gallery { display: flex; flex-wrap: wrap; gap: 3px; max-height: 360px; overflow-y: auto; }
.fs-thumb { width: 48px; height: 48px; image-rendering: pixelated; border: 1px solid #ddd; }
.fs-noimg { display: inline-block; font-size: 9px; overflow: hidden; word-break: break-all; }
.fs-big { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #999; }
.fs-query { display: flex; gap: 8px; align-items: center; font-size: 12px; }
.fs-id { font-family: monospace; font-size: 11px; word-break: break-all; }
.fs-nb { font-size: 10px; text-align: center; width: 52px; overflow: hidden; }
.fs-nb.fs-other .fs-thumb { border: 2px solid #d62728; }
.fs-key { font-size: 12px; max-height: 260px; overflow-y: auto; }
.fs-sw { display: inline-block; width: 12px; height: 12px; margin-right: 5px;
  vertical-align: middle; }
.fs-ramp { height: 12px; width: 100%; margin-top: 4px; }
.fs-ramp-ends { display: flex; justify-content: space-between; }
"""


def page_point_size(n_points: int) -> float:
    """Return the marker diameter in screen pixels for a map of ``n_points`` samples.

    Parameters
    ----------
    n_points : int
        Number of points in one map.

    Returns
    -------
    float
        8 px up to 1,000 points, then ``8 * sqrt(1000 / n)`` (constant total ink), never below
        2 px so that every point stays visible and hoverable.
    """
    if n_points <= 1000:
        return 8.0
    return max(2.0, 8.0 * math.sqrt(1000.0 / n_points))


def build_page(
    results: EmbeddingResult | Sequence[EmbeddingResult],
    thumbnails: np.ndarray | Sequence[str] | None = None,
    thumbnail_rows: Sequence[int] | np.ndarray | None = None,
    *,
    map_titles: Sequence[str] | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    map_size: int = 440,
    point_size: float | None = None,
    thumbnail_format: str = "webp",
) -> str:
    """Return the interactive page of one or more maps as one self-contained HTML string.

    Parameters
    ----------
    results : EmbeddingResult or sequence of EmbeddingResult
        The maps, shown side by side (three per row). All must hold the same samples in the same
        order (same ``ids``): align them first when they come from different runs (see
        :func:`featscope.views.compare.compare`). Only the first two coordinates are drawn.
    thumbnails : numpy.ndarray or sequence of str, optional
        ``(K, s, s, 3)`` uint8 thumbnails (:func:`featscope.data.thumbnails.make_thumbnails`) or
        ``K`` ready ``data:`` URIs; sample ``thumbnail_rows[k]`` gets thumbnail ``k``. Samples
        without one show their class and id only.
    thumbnail_rows : sequence of int, optional
        Row of each thumbnail in the results (default: the first ``K`` rows).
    map_titles : sequence of str, optional
        One title per map (default: ``"<point> · <method>"``, prefixed by the model when the maps
        come from different models).
    title : str, optional
        Page heading (default: the model and data source of the first map).
    subtitle : str, optional
        A line under the heading (default: sample and class counts, seed, creation time).
    map_size : int, default=440
        Width and height of each map's plotting area in pixels.
    point_size : float, optional
        Marker diameter in pixels (default: :func:`page_point_size`).
    thumbnail_format : {"webp", "jpeg", "png"}, default="webp"
        Encoding of array thumbnails.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ParameterError
        When there is no map, the maps hold different samples, or the thumbnails do not match
        the samples.
    MissingExtraError
        When bokeh is not installed.
    """
    _require_bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    maps = _as_list(results)
    n = len(maps[0].ids)
    uris = _thumbnail_uris(thumbnails, thumbnail_rows, n, thumbnail_format)
    titles = list(map_titles) if map_titles is not None else page_titles(maps)
    if len(titles) != len(maps):
        raise ParameterError(
            f"`map_titles` has {len(titles)} titles for {len(maps)} maps; give one per map"
        )
    first = maps[0]
    doc_title = title if title is not None else _default_title(first)
    layout = _layout(
        maps,
        titles,
        uris,
        doc_title=doc_title,
        subtitle=subtitle if subtitle is not None else _default_subtitle(maps, uris),
        map_size=int(map_size),
        point_size=float(point_size) if point_size is not None else page_point_size(n),
    )
    text = file_html(layout, resources=INLINE, title=doc_title)
    return _neutralise_urls(text)


def write_page(path: str | os.PathLike[str], html_text: str) -> Path:
    """Write a page made by :func:`build_page` to ``path`` (UTF-8).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.html`` file to write; its folder must exist.
    html_text : str
        The document.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    OutputError
        When the file cannot be written.
    """
    path = Path(path)
    try:
        path.write_text(html_text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(
            f"cannot write page '{path}': {exc.strerror or exc}; check the folder exists and is "
            "writable, or pass another --out"
        ) from exc
    return path


# --------------------------------------------------------------------------- checks


def _require_bokeh() -> Any:
    try:
        import bokeh
    except ImportError as exc:
        from featscope.errors import MissingExtraError

        raise MissingExtraError(
            f"`bokeh` is needed for the interactive page but is not installed ({exc}); "
            "install it with: pip install 'bokeh>=3.4' (or skip the page with --no-html)"
        ) from exc
    return bokeh


def _as_list(results: Any) -> list[EmbeddingResult]:
    maps = [results] if isinstance(results, EmbeddingResult) else list(results)
    if not maps:
        raise ParameterError("`results` is empty; pass at least one EmbeddingResult")
    for k, result in enumerate(maps):
        if not isinstance(result, EmbeddingResult):
            raise ParameterError(
                f"`results[{k}]` is a {type(result).__name__}, not an EmbeddingResult"
            )
        if result.coords.ndim != 2 or result.coords.shape[1] < 2:
            raise ParameterError(
                f"map {k} ({result.point!r}) has coordinates of shape {result.coords.shape}; "
                "the page draws maps with at least 2 components"
            )
    first = maps[0]
    if len(first.ids) == 0:
        raise ParameterError("the maps hold no sample; there is nothing to draw")
    for k, result in enumerate(maps[1:], start=1):
        if result.ids != first.ids:
            raise ParameterError(
                f"map {k} ({result.point!r}) holds other samples than map 0 "
                f"({len(result.ids)} vs {len(first.ids)} ids, or another order); linked maps "
                "need the same samples in the same order: align them by id first"
            )
    return maps


def _thumbnail_uris(thumbnails: Any, rows: Any, n: int, image_format: str) -> list[str] | None:
    """Return one data URI (``""`` for none) per sample, or None when there are no thumbnails."""
    if thumbnails is None:
        return None
    if isinstance(thumbnails, np.ndarray):
        from featscope.data.thumbnails import encode_thumbnails

        encoded = encode_thumbnails(thumbnails, image_format)
    else:
        encoded = [str(u) for u in thumbnails]
    for k, uri in enumerate(encoded):
        if uri and not uri.startswith("data:image/"):
            raise ParameterError(
                f"thumbnail {k} is not a data:image/ URI ({uri[:30]!r}...); the page loads "
                "nothing from files or the network: pass thumbnail arrays or data URIs"
            )
    positions = (
        np.arange(len(encoded), dtype=np.int64)
        if rows is None
        else np.asarray(rows, dtype=np.int64).reshape(-1)
    )
    if len(positions) != len(encoded):
        raise ParameterError(
            f"{len(encoded)} thumbnails but {len(positions)} `thumbnail_rows`; give one row per "
            "thumbnail"
        )
    if positions.size and (positions.min() < 0 or positions.max() >= n):
        raise ParameterError(
            f"`thumbnail_rows` holds {int(positions.max())} (or a negative row), out of range "
            f"for {n} samples"
        )
    uris = [""] * n
    for row, uri in zip(positions.tolist(), encoded, strict=True):
        uris[row] = uri
    return uris


# --------------------------------------------------------------------------- texts


def _model_name(result: EmbeddingResult) -> str:
    return result.provenance.model or "saved features"


def method_name(method: str) -> str:
    """Return how a page names a reducer: ``"t-SNE"``, ``"UMAP"``, ``"PCA"`` (else as given)."""
    return _METHOD_NAMES.get(method, method)


def page_titles(maps: Sequence[EmbeddingResult]) -> list[str]:
    """Return the default title of each map on the page.

    Parameters
    ----------
    maps : sequence of EmbeddingResult
        The maps of one page.

    Returns
    -------
    list of str
        ``"<point> · <method>"``, prefixed by the model when the maps come from different
        models, with ``" (3-D)"`` for 3-D maps (drawn as three linked projections).
    """
    several_models = len({_model_name(m) for m in maps}) > 1
    titles = []
    for m in maps:
        text = f"{m.point} · {method_name(m.method)}"
        if m.n_components > 2:
            text += " (3-D)"
        titles.append(f"{_model_name(m)} · {text}" if several_models else text)
    return titles


def _default_title(first: EmbeddingResult) -> str:
    source = first.provenance.source
    return f"featscope · {_model_name(first)}" + (f" on {source}" if source else "")


def _default_subtitle(maps: Sequence[EmbeddingResult], uris: list[str] | None) -> str:
    first = maps[0]
    n = len(first.ids)
    n_classes = len(np.unique(first.labels))
    n_thumbs = 0 if uris is None else sum(1 for u in uris if u)
    parts = [
        f"{n:,} samples of {n_classes} classes" if first.labelled else f"{n:,} unlabelled samples",
        f"{len(maps)} map{'s' if len(maps) > 1 else ''}",
        "no thumbnails"
        if n_thumbs == 0
        else (f"thumbnails for {n_thumbs:,}" if n_thumbs < n else "thumbnails for all"),
        f"seed {first.provenance.seed}",
        f"made {first.provenance.created}",
    ]
    return " · ".join(parts)


def _quality_line(result: EmbeddingResult) -> str:
    """Return the metrics line of the static figure's title ("10-NN acc. map 0.912 · ...")."""
    from featscope.render.embedding import embedding_title

    lines = embedding_title(result).split("\n")
    return lines[1] if len(lines) > 1 else ""


def _format_value(value: Any) -> str:
    if isinstance(value, Mapping):
        if {"true", "predicted", "count"} <= set(value):  # a confused class pair
            return f"{value['true']} → {value['predicted']} ({value['count']})"
        return ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    return str(value)


def _table_html(caption: str, rows: Sequence[tuple[str, Any]], helps: Sequence[str] = ()) -> str:
    helps = list(helps) or [""] * len(rows)
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_format_value(v))}</td>"
        + (f'<td class="fs-help">{html.escape(h)}</td>' if h else "<td></td>")
        + "</tr>"
        for (k, v), h in zip(rows, helps, strict=True)
    )
    return f'<table class="fs-metrics"><caption>{html.escape(caption)}</caption>{body}</table>'


def _tables_html(maps: Sequence[EmbeddingResult], titles: Sequence[str]) -> str:
    tables = []
    for m, map_title in zip(maps, titles, strict=True):
        # metrics that need labels are left out of unlabelled maps, with the reason
        skipped = dict(m.metrics.get("skipped") or {})
        keys = [k for k in sorted(m.metrics) if k != "skipped"]
        metrics = [
            (_METRIC_NAMES.get(k, k), f"left out: {skipped[k]}" if k in skipped else m.metrics[k])
            for k in keys
        ]
        params = sorted(m.params.items())
        prov = m.provenance
        about = [
            ("model", _model_name(m)),
            ("checkpoint", prov.checkpoint or "none"),
            ("capture point", m.point),
            ("pooling", m.pooling),
            ("method", method_name(m.method)),
            ("data", prov.source or "n/a"),
        ]
        metrics_table = (
            _table_html(f"{map_title}: metrics", metrics, [_METRIC_HELP.get(k, "") for k in keys])
            if metrics
            else ""
        )
        param_helps = [""] * len(about) + [_METRIC_HELP.get(k, "") for k, _ in params]
        tables.append(
            "<div>"
            + metrics_table
            + _table_html(f"{map_title}: parameters", [*about, *params], param_helps)
            + "</div>"
        )
    return f'<div class="fs-tables">{"".join(tables)}</div>'


def _neutralise_urls(text: str) -> str:
    r"""Write every ``http(s)://`` in the page as ``http(s):\/\/``, which means the same in JS.

    The page loads nothing from the network (bokeh's INLINE resources put every script in the
    file), but bokeh's bundled JavaScript spells out web addresses in licence comments, in XML
    namespace names (``http://www.w3.org/2000/svg``) and in code paths a standalone page never
    runs (map tiles, MathJax). Inside JavaScript strings, template literals, comments and JSON,
    ``\/`` is just ``/``, so this changes no behaviour, and it lets a test assert that the file
    holds no network address at all.
    """
    return text.replace("https://", "https:\\/\\/").replace("http://", "http:\\/\\/")


# --------------------------------------------------------------------------- layout


def _views(
    maps: Sequence[EmbeddingResult], titles: Sequence[str]
) -> list[tuple[int, str, str, str]]:
    """Return ``(map, x column, y column, title)`` per figure: 3-D maps get three projections."""
    views = []
    for k, (m, map_title) in enumerate(zip(maps, titles, strict=True)):
        if m.n_components >= 3:
            for a, b in (("x", "y"), ("x", "z"), ("y", "z")):
                views.append((k, f"{a}{k}", f"{b}{k}", f"{map_title} · {a}–{b} view"))
        else:
            views.append((k, f"x{k}", f"y{k}", map_title))
    return views


def _coord_columns(maps: Sequence[EmbeddingResult]) -> list[str]:
    return [f"{axis}{k}" for k, m in enumerate(maps) for axis in "xyz"[: min(m.n_components, 3)]]


def _groups(first: EmbeddingResult) -> list[tuple[str, str, np.ndarray]]:
    """Return ``[(key, legend label, rows)]``: one per class present.

    Beyond :data:`_MAX_CLASS_ENTRIES` classes, the classes from the last entry on share one
    source (and so one legend entry, "N more classes"), each point still in its class colour:
    every renderer is a bokeh model of its own, and a thousand classes times several maps would
    make the page slow to write and to draw, with a legend nobody can read.
    """
    labels = first.labels
    present = np.unique(labels).tolist()
    if not first.labelled:
        # one group in the first class colour; its legend entry still toggles the points
        return [("0", "samples", np.arange(len(labels)))]
    if len(present) > _MAX_CLASS_ENTRIES:
        kept, rest = present[: _MAX_CLASS_ENTRIES - 1], present[_MAX_CLASS_ENTRIES - 1 :]
    else:
        kept, rest = present, []
    names = first.class_names
    groups = [
        (str(c), names[c] if 0 <= c < len(names) else str(c), np.flatnonzero(labels == c))
        for c in kept
    ]
    if rest:
        groups.append(("other", f"{len(rest)} more classes", np.flatnonzero(np.isin(labels, rest))))
    return groups


def _class_sources(
    maps: Sequence[EmbeddingResult], uris: list[str] | None, columns: dict[str, Any]
) -> list:
    """Return ``[(key, legend label, ColumnDataSource)]``, one per legend entry."""
    from bokeh.models import ColumnDataSource

    first = maps[0]
    names = first.class_names
    sources = []
    for key, label, rows in _groups(first):
        row_labels = first.labels[rows]  # -1 for unlabelled samples, as in the csv
        data: dict[str, Any] = {
            "row": rows.astype(np.int32),
            "label": row_labels.astype(np.int32),
            "class_name": [
                names[c] if 0 <= c < len(names) else ("" if c < 0 else str(c))
                for c in row_labels.tolist()
            ],
            "id": [first.ids[i] for i in rows],
            "thumb": [""] * len(rows) if uris is None else [uris[i] for i in rows],
        }
        for name, column in columns.items():
            data[name] = (
                np.asarray(column)[rows]
                if isinstance(column, np.ndarray)
                else [column[i] for i in rows.tolist()]
            )
        for k, m in enumerate(maps):
            # float32 halves the file; a screen needs far less precision than that
            for j, axis in enumerate("xyz"[: min(m.n_components, 3)]):
                data[f"{axis}{k}"] = m.coords[rows, j].astype(np.float32)
            data[f"code{k}"] = data["label_code"]
        sources.append((key, label, ColumnDataSource(data=data, name=f"class_{key}")))
    return sources


def _centroid_source(maps: Sequence[EmbeddingResult], groups: list, name: str) -> Any:
    """Labels at the median of each group's points in every map (one row per group)."""
    from bokeh.models import ColumnDataSource

    data: dict[str, list[Any]] = {"text": [label for label, _ in groups]}
    for k, m in enumerate(maps):
        for j, axis in enumerate("xyz"[: min(m.n_components, 3)]):
            data[f"{axis}{k}"] = [float(np.median(m.coords[rows, j])) for _, rows in groups]
    return ColumnDataSource(data=data, name=name)


def _neighbor_columns(maps: Sequence[EmbeddingResult]) -> dict[str, np.ndarray]:
    """Each map's neighbour rows, flattened and padded with -1 to one width (one bokeh source)."""
    arrays = {
        k: np.asarray(m.neighbors, dtype=np.int32)
        for k, m in enumerate(maps)
        if m.neighbors is not None and np.asarray(m.neighbors).ndim == 2
    }
    width = max((a.shape[1] for a in arrays.values()), default=0)
    out = {}
    for k, a in arrays.items():
        padded = np.full((a.shape[0], width), -1, dtype=np.int32)
        padded[:, : a.shape[1]] = a
        out[f"n{k}"] = padded.reshape(-1)
    return out


def _figure(name: str, map_title: str, map_size: int, quality: str) -> Any:
    from bokeh.models import (
        BoxSelectTool,
        HoverTool,
        LassoSelectTool,
        PanTool,
        ResetTool,
        SaveTool,
        Title,
        WheelZoomTool,
    )
    from bokeh.plotting import figure

    k = name.removeprefix("map_")
    lasso = LassoSelectTool(name=f"lasso_{k}", continuous=False)
    box = BoxSelectTool(name=f"box_{k}")
    wheel = WheelZoomTool(name=f"zoom_{k}")
    fig = figure(
        name=name,
        title=map_title,
        width=map_size,
        height=map_size + (40 if quality else 20),
        sizing_mode="scale_width",
        output_backend="webgl",
        tools=[lasso, box, PanTool(), wheel, ResetTool(), SaveTool()],
        active_drag=lasso,
        active_scroll=wheel,
        toolbar_location="above",
        match_aspect=True,
        # where a browser has no WebGL, bokeh draws on a 2-D canvas; there it thins a renderer
        # out to 1 point in 10 while the view moves
        lod_threshold=1000,
    )
    # one sample per tooltip: in a dense cluster a list of every hit point is taller than the map
    fig.add_tools(HoverTool(name=f"hover_{k}", tooltips=None, limit=1))
    # t-SNE/UMAP axes have no meaning: keep the frame, drop the numbers
    for axis in (fig.xaxis, fig.yaxis):
        axis.visible = False
    fig.grid.visible = False
    fig.title.text_font_size = "13px"
    if quality:
        fig.add_layout(
            Title(text=quality, text_font_size="11px", text_font_style="normal"), "above"
        )
    return fig


def _tooltip(fields: Sequence[PageField], k: int) -> str:
    lines = "".join(
        f"<div><span style='color: #666'>{html.escape(f.name)}:</span> @{{{f.text_columns[k]}}}"
        "</div>"
        for f in fields[1:]
        if f.text_columns[k] is not None
    )
    return _TOOLTIP.format(img=_TOOLTIP_IMAGE_PX, fields=lines)


def _labels(fig: Any, source: Any, xcol: str, ycol: str, name: str, visible: bool) -> Any:
    from bokeh.models import LabelSet

    labels = LabelSet(
        x=xcol,
        y=ycol,
        text="text",
        source=source,
        name=name,
        visible=visible,
        text_font_size="12px",
        text_font_style="bold",
        text_color="#222222",
        text_align="center",
        text_baseline="middle",
        background_fill_color="white",
        background_fill_alpha=0.7,
    )
    fig.add_layout(labels)
    return labels


def _layout(
    maps: Sequence[EmbeddingResult],
    titles: Sequence[str],
    uris: list[str] | None,
    *,
    doc_title: str,
    subtitle: str,
    map_size: int,
    point_size: float,
) -> Any:
    from bokeh.layouts import column, row
    from bokeh.models import (
        Button,
        CheckboxGroup,
        ColumnDataSource,
        CustomJS,
        Div,
        InlineStyleSheet,
        LinearColorMapper,
        RadioButtonGroup,
        Select,
        Spacer,
        TextInput,
    )
    from bokeh.transform import transform

    first = maps[0]
    label_codes = np.where(first.labels >= 0, first.labels, 0) if first.labelled else (
        np.zeros(len(first.ids), dtype=np.int64)
    )  # fmt: skip
    fields, columns = page_fields(maps, label_codes)
    sources = _class_sources(maps, uris, columns)
    all_sources = [src for _, _, src in sources]
    mapper = LinearColorMapper(
        palette=list(fields[0].palette), low=-0.5, high=len(fields[0].palette) - 0.5, name="mapper"
    )
    css = InlineStyleSheet(css=_CSS)
    coord_columns = _coord_columns(maps)

    # highlight rings of the neighbour inspector, one source drawn in every map
    neighbor_cols = _neighbor_columns(maps)
    has_neighbors = bool(neighbor_cols)
    k_max = max((len(c) // len(first.ids) for c in neighbor_cols.values()), default=0)
    neighbor_source = ColumnDataSource(data=neighbor_cols, name="neighbors")
    highlight = ColumnDataSource(
        data={c: [] for c in [*coord_columns, "size", "line"]}, name="highlight"
    )
    class_groups = [(name, rows) for (_, name, rows) in _groups(first)] if first.labelled else []
    if len(class_groups) and sources[-1][0] == "other":
        class_groups = class_groups[:-1]
    class_centroids = _centroid_source(maps, class_groups, "class_centroids")
    show_class_labels = first.labelled and len(class_groups) <= _MAX_CLASS_ENTRIES

    figures, class_label_sets, cluster_label_sets = [], [], []
    renderers: dict[str, list[Any]] = {c: [] for c, _, _ in sources}
    tap_hint = (
        '<div class="fs-muted">Click a point to see its nearest neighbours in the features.</div>'
    )
    inspector = Div(text=tap_hint, name="inspector", stylesheets=[css], visible=has_neighbors)
    for v, (k, xcol, ycol, map_title) in enumerate(_views(maps, titles)):
        fig = _figure(f"map_{v}", map_title, map_size, _quality_line(maps[k]))
        color = transform(f"code{k}", mapper)
        own = []
        for c, _name, src in sources:
            r = fig.scatter(
                xcol,
                ycol,
                source=src,
                size=point_size,
                fill_color=color,
                line_color=None,
                fill_alpha=_ALPHA,
                selection_fill_alpha=1.0,
                selection_fill_color=color,
                nonselection_fill_alpha=_FADED_ALPHA,
                nonselection_fill_color=color,
                name=f"points_{v}_{c}",
            )
            renderers[c].append(r)
            own.append(r)
        fig.scatter(
            xcol, ycol, source=highlight, size="size", fill_color=None, line_color="line",
            line_width=2.5, name=f"rings_{v}",
        )  # fmt: skip
        for tool in fig.tools:
            if (getattr(tool, "name", None) or "").startswith(("lasso_", "box_")):
                tool.renderers = own  # the rings are not samples: never select them
        hover = fig.select_one({"name": f"hover_{v}"})
        hover.tooltips = _tooltip(fields, k)
        hover.renderers = own
        class_label_sets.append(
            _labels(fig, class_centroids, xcol, ycol, f"class_labels_{v}", show_class_labels)
        )
        if "cluster" in maps[k].fields:
            clusters = np.asarray(maps[k].fields["cluster"])
            groups = [
                (f"c{c}", np.flatnonzero(clusters == c)) for c in np.unique(clusters) if c >= 0
            ]
            src = _centroid_source(maps, groups, f"cluster_centroids_{v}")
            cluster_label_sets.append(_labels(fig, src, xcol, ycol, f"cluster_labels_{v}", False))
        if f"n{k}" in neighbor_cols:
            fig.js_on_event(
                "tap",
                CustomJS(
                    args={
                        "fig": fig, "sources": all_sources, "renderers": own, "xcol": xcol,
                        "ycol": ycol, "k": k, "kn": [k_max] * len(maps),
                        "neighbors": neighbor_source, "highlight": highlight,
                        "inspector": inspector, "hint": tap_hint,
                        "coord_columns": coord_columns, "titles": list(titles),
                        "radius": point_size / 2 + 4, "ring": point_size + 6,
                        "labelled": bool(first.labelled),
                        "field_names": [f.name for f in fields[1:]],
                        "field_columns": [
                            [f.text_columns[m] for f in fields[1:]] for m in range(len(maps))
                        ],
                    },
                    code=TAP_JS,
                ),
            )  # fmt: skip
        figures.append(fig)

    # The class legend: one checkbox per class (ticked: shown in every map), each in its
    # class colour. A plain widget rather than a bokeh Legend in a plot of its own: bokeh 3.9
    # forgets to repaint such a legend's swatches when the page is laid out again.
    legend_css = "".join(
        f".bk-input-group label:nth-of-type({j + 1}) input {{ accent-color: {col}; }}"
        f".bk-input-group label:nth-of-type({j + 1}) span::before {{ background: {col}; }}"
        for j, col in enumerate(
            class_hex(int(c)) if c != "other" else _MORE_CLASSES for c, _, _ in sources
        )
    )
    legend_css += (
        ".bk-input-group span::before { content: ''; display: inline-block; width: 10px;"
        " height: 10px; border-radius: 5px; margin-right: 5px; }"
        ".bk-input-group { font-size: 12px; max-height: 420px; overflow-y: auto; }"
    )
    legend = CheckboxGroup(
        labels=[name for _, name, _ in sources],
        active=list(range(len(sources))),
        name="legend",
        stylesheets=[InlineStyleSheet(css=legend_css)],
        width=_SIDEBAR_WIDTH - 20,
    )
    legend.js_on_change(
        "active",
        CustomJS(
            args={
                "renderers": [renderers[c] for c, _, _ in sources],
                "centroids": class_centroids,
                "names": [name for name, _ in class_groups],
            },
            code=VISIBLE_JS,
        ),
    )
    legend_box = column(
        Div(text="<i>classes (untick to hide)</i>", stylesheets=[css]),
        legend,
        name="legend_box",
    )

    # colour-by: the field's key (classes: the legend itself)
    keys = [
        Div(text=f.key_html, name=f"key_{f.name}", stylesheets=[css], visible=False) for f in fields
    ]
    color_by = Select(
        title="colour by",
        value="0",
        options=[(str(j), f.name) for j, f in enumerate(fields)],
        name="color_by",
        width=_SIDEBAR_WIDTH - 20,
        visible=len(fields) > 1,
    )
    color_by.js_on_change(
        "value",
        CustomJS(
            args={
                "sources": all_sources, "mapper": mapper, "n_maps": len(maps),
                "palettes": [list(f.palette) for f in fields],
                "code_columns": [list(f.code_columns) for f in fields],
                "keys": keys,
            },
            code=COLOR_JS,
        ),
    )  # fmt: skip

    # search: exact or regex, over class or id (default) or one field
    status = Div(text="no selection", name="status", styles={"padding-top": "4px"})
    note = Div(text="", name="search_note", render_as_text=True, styles={"color": "#555"})
    search = TextInput(
        placeholder="e.g. 7, cat, img/0042.png", title="search", name="search",
        width=_SIDEBAR_WIDTH - 20,
    )  # fmt: skip
    mode = RadioButtonGroup(labels=["exact", "regex"], active=0, name="search_mode")
    scope = Select(
        title="in",
        value="0",
        options=[("0", "class or id"), ("1", "class"), ("2", "id")]
        + [(str(3 + j), f.name) for j, f in enumerate(fields[1:])],
        name="search_scope",
        width=_SIDEBAR_WIDTH - 20,
    )

    def searcher(prop: str) -> Any:
        return CustomJS(
            args={
                "sources": all_sources, "search": search, "mode": mode, "scope_select": scope,
                "note": note, "prop": prop,
                "field_columns": [next((c for c in f.text_columns if c), None) for f in fields[1:]],
            },
            code=SEARCH_JS,
        )  # fmt: skip

    search.js_on_change("value_input", searcher("value_input"))
    search.js_on_change("value", searcher("value"))
    mode.js_on_change("active", searcher("mode"))
    scope.js_on_change("value", searcher("scope"))
    clear = Button(label="clear selection", name="clear", width=130)
    clear.js_on_event(
        "button_click",
        CustomJS(args={"sources": all_sources, "search": search, "note": note}, code=CLEAR_JS),
    )
    download = Button(label="download selected (csv)", name="download", width=180)
    csv_titles = [
        f"{axis}_{_csv_safe(t)}"
        for t, m in zip(titles, maps, strict=True)
        for axis in "xyz"[: min(m.n_components, 3)]
    ]
    field_heads = [f"{f.name}_{k}" if len(maps) > 1 else f.name for f in fields[1:] for k in
                   range(len(maps))]  # fmt: skip
    download.js_on_event(
        "button_click",
        CustomJS(
            args={
                "sources": all_sources,
                "header": ["id", "label", "class_name", *csv_titles, *field_heads],
                "coord_columns": coord_columns,
                "text_columns": [c for f in fields[1:] for c in f.text_columns],
                "filename": "selected_samples.csv",
            },
            code=DOWNLOAD_JS,
        ),
    )
    gallery = Div(text="", name="gallery", stylesheets=[css])
    count = CustomJS(
        args={
            "sources": all_sources,
            "renderers": [renderers[c] for c, _, _ in sources],
            "status": status,
            "total": len(first.ids),
            "normal": _ALPHA,
            "faded": _FADED_ALPHA,
            "gallery": gallery,
            "gallery_max": _GALLERY_MAX,
        },
        code=COUNT_JS,
    )
    for src in all_sources:
        src.selected.js_on_change("indices", count)
    gallery.text = (
        '<div class="fs-muted">Select samples (lasso, box or search) to see their images '
        "here.</div>"
    )

    label_options = ["class names at centroids"] + (
        ["cluster numbers at centroids"] if cluster_label_sets else []
    )
    toggles = CheckboxGroup(
        labels=label_options, active=[0] if show_class_labels else [], name="label_toggles",
        visible=first.labelled or bool(cluster_label_sets),
    )  # fmt: skip
    toggles.js_on_change(
        "active",
        CustomJS(
            args={"class_labels": class_label_sets, "cluster_labels": cluster_label_sets},
            code=LABELS_JS,
        ),
    )

    header = Div(
        text=(
            f'<div class="fs-header"><h1>{html.escape(doc_title)}</h1>'
            f"<p>{html.escape(subtitle)}</p><p>Drag to lasso-select (box select and pan in the "
            "toolbar), scroll to zoom, hover for the image"
            + (", click a point for its nearest neighbours" if has_neighbors else "")
            + ". Selections are shared by all maps. The line under each map title: "
            + _QUALITY_HELP
            + "</p></div>"
        ),
        name="header",
        stylesheets=[css],
        sizing_mode="stretch_width",
    )
    per_row = _MAPS_PER_ROW if len(figures) >= _MAPS_PER_ROW else max(2, len(figures))
    # the last row is filled with spacers so that every map has the same size
    cells = figures + [
        Spacer(width=map_size, height=map_size, sizing_mode="scale_width")
        for _ in range(-len(figures) % per_row)
    ]
    grid = column(
        *[
            row(*cells[i : i + per_row], sizing_mode="stretch_width")
            for i in range(0, len(cells), per_row)
        ],
        sizing_mode="stretch_width",
    )
    tables = Div(
        text=_tables_html(maps, titles), name="tables", stylesheets=[css],
        sizing_mode="stretch_width",
    )  # fmt: skip
    sidebar = column(
        color_by,
        *keys,
        legend_box,
        toggles,
        search,
        row(mode, clear),
        scope,
        note,
        download,
        status,
        Div(text="<b>nearest neighbours</b>", stylesheets=[css], visible=has_neighbors),
        inspector,
        Div(text="<b>selection</b>", stylesheets=[css]),
        gallery,
        width=_SIDEBAR_WIDTH,
        name="sidebar",
    )
    main = column(header, grid, tables, sizing_mode="stretch_width")
    return row(main, sidebar, sizing_mode="stretch_width")


def _csv_safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)[:40] or "map"
