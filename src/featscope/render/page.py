"""One self-contained, offline HTML page of one or more embedding maps (bokeh).

The page holds everything inline: bokeh's JavaScript, the coordinates and the thumbnails (WebP
``data:`` URIs), so it opens from disk in any browser with no server and no network. It offers:

- points coloured as in the static figures (:mod:`featscope.render.colors`), drawn with WebGL;
- a legend whose entries hide and show a class (in every map at once);
- hover: the sample's thumbnail (for the samples that have one), class name and id;
- box and lasso selection, a search box (class name or id), and a button that downloads the
  selected samples as csv;
- several maps side by side (capture points of one run, or several runs) sharing one selection:
  each class has one ``ColumnDataSource`` holding every map's coordinates, so selecting samples in
  one map selects the same rows, hence the same samples, in the others;
- each map's quality metrics and parameters in a table.

Every user string (class names, ids, model names, titles) reaches the page either as data that
bokeh serialises as JSON and shows as text (tooltips, legend, titles) or through
:func:`html.escape` (tables and headers).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from featscope.errors import OutputError, ParameterError
from featscope.render._page_js import (
    CLEAR_JS,
    COUNT_JS,
    DOWNLOAD_JS,
    SEARCH_JS,
    VISIBLE_JS,
)
from featscope.render.colors import class_color
from featscope.results import EmbeddingResult

__all__ = ["build_page", "method_name", "page_point_size", "page_titles", "write_page"]

_METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
_MAPS_PER_ROW = 3
_LEGEND_ROW_HEIGHT = 21
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

# Shown at twice its stored size: a 48 px thumbnail is too small to read in a tooltip.
_TOOLTIP = """
<div class="fs-tip" style="max-width: 260px">
  <img src="@thumb" alt="" style="width: {img}px; image-rendering: pixelated; display: block">
  <div><b>@class_name</b> <span style="color: #666">(class @label)</span></div>
  <div style="font-family: monospace; font-size: 11px; word-break: break-all">@id</div>
</div>
"""

_CSS = """
:host { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
.fs-header h1 { font-size: 20px; margin: 0 0 4px 0; }
.fs-header p { margin: 2px 0; color: #444; font-size: 13px; }
table.fs-metrics { border-collapse: collapse; font-size: 12px; margin: 4px 16px 8px 0; }
table.fs-metrics th, table.fs-metrics td { border-bottom: 1px solid #ddd; padding: 2px 8px;
  text-align: left; vertical-align: top; }
table.fs-metrics caption { text-align: left; font-weight: bold; padding: 2px 0; }
.fs-tables { display: flex; flex-wrap: wrap; }
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
        models, with ``" (first 2 of 3 components)"`` for 3-D maps (the page draws 2-D).
    """
    several_models = len({_model_name(m) for m in maps}) > 1
    titles = []
    for m in maps:
        text = f"{m.point} · {method_name(m.method)}"
        if m.n_components > 2:
            text += f" (first 2 of {m.n_components} components)"
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
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "n/a"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    return str(value)


def _table_html(caption: str, rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_format_value(v))}</td></tr>"
        for k, v in rows
    )
    return f'<table class="fs-metrics"><caption>{html.escape(caption)}</caption>{body}</table>'


def _tables_html(maps: Sequence[EmbeddingResult], titles: Sequence[str]) -> str:
    tables = []
    for m, map_title in zip(maps, titles, strict=True):
        # metrics that need labels are left out of unlabelled maps, with the reason
        skipped = dict(m.metrics.get("skipped") or {})
        metrics = [
            (_METRIC_NAMES.get(k, k), f"left out: {skipped[k]}" if k in skipped else v)
            for k, v in sorted(m.metrics.items())
            if k != "skipped"
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
        metrics_table = _table_html(f"{map_title}: metrics", metrics) if metrics else ""
        tables.append(
            "<div>"
            + metrics_table
            + _table_html(f"{map_title}: parameters", [*about, *params])
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


def _hex(index: int) -> str:
    r, g, b, _ = class_color(index)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _class_sources(maps: Sequence[EmbeddingResult], uris: list[str] | None) -> list:
    """Return ``[(key, legend label, ColumnDataSource)]``: one per class present.

    Beyond :data:`_MAX_CLASS_ENTRIES` classes, the classes from the last entry on share one
    source (and so one legend entry, "N more classes") with a colour per point: every renderer
    is a bokeh model of its own, and a thousand classes times several maps would make the page
    slow to write and to draw, with a legend nobody can read.
    """
    from bokeh.models import ColumnDataSource

    first = maps[0]
    labels = first.labels
    names = first.class_names
    present = np.unique(labels).tolist()
    groups: list[tuple[str, str, np.ndarray]] = []
    if not first.labelled:
        # one group in the first class colour; its legend entry still toggles the points
        present, labels = [0], np.zeros_like(labels)
    if len(present) > _MAX_CLASS_ENTRIES:
        kept, rest = present[: _MAX_CLASS_ENTRIES - 1], present[_MAX_CLASS_ENTRIES - 1 :]
        rest_rows = np.flatnonzero(np.isin(labels, rest))
    else:
        kept, rest, rest_rows = present, [], np.empty(0, dtype=np.int64)
    for c in kept:
        name = names[c] if 0 <= c < len(names) else str(c)
        groups.append((str(c), name if first.labelled else "samples", np.flatnonzero(labels == c)))
    if rest:
        groups.append(("other", f"{len(rest)} more classes", rest_rows))
    sources = []
    for key, label, rows in groups:
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
        if key == "other":
            data["color"] = [_hex(c) for c in row_labels.tolist()]
        for k, m in enumerate(maps):
            # float32 halves the file; a screen needs far less precision than that
            data[f"x{k}"] = m.coords[rows, 0].astype(np.float32)
            data[f"y{k}"] = m.coords[rows, 1].astype(np.float32)
        sources.append((key, label, ColumnDataSource(data=data, name=f"class_{key}")))
    return sources


def _figure(k: int, map_title: str, map_size: int, quality: str) -> Any:
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

    lasso = LassoSelectTool(name=f"lasso_{k}", continuous=False)
    box = BoxSelectTool(name=f"box_{k}")
    wheel = WheelZoomTool(name=f"zoom_{k}")
    fig = figure(
        name=f"map_{k}",
        title=map_title,
        frame_width=map_size,
        frame_height=map_size,
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
    from bokeh.core.properties import field
    from bokeh.layouts import column, row
    from bokeh.models import (
        Button,
        CustomJS,
        Div,
        InlineStyleSheet,
        Legend,
        LegendItem,
        TextInput,
    )

    sources = _class_sources(maps, uris)
    all_sources = [src for _, _, src in sources]
    figures = []
    renderers: dict[str, list[Any]] = {c: [] for c, _, _ in sources}
    for k, map_title in enumerate(titles):
        fig = _figure(k, map_title, map_size, _quality_line(maps[k]))
        for c, _name, src in sources:
            color = field("color") if c == "other" else _hex(int(c))
            r = fig.scatter(
                f"x{k}",
                f"y{k}",
                source=src,
                size=point_size,
                fill_color=color,
                line_color=None,
                fill_alpha=_ALPHA,
                selection_fill_alpha=1.0,
                selection_fill_color=color,
                nonselection_fill_alpha=_FADED_ALPHA,
                nonselection_fill_color=color,
                name=f"points_{k}_{c}",
            )
            renderers[c].append(r)
        hover = fig.select_one({"name": f"hover_{k}"})
        hover.tooltips = _TOOLTIP.format(img=_TOOLTIP_IMAGE_PX)
        hover.renderers = [r for rs in renderers.values() for r in rs[k : k + 1]]
        figures.append(fig)

    # One legend (right of the last map of the first row); hiding a class hides it everywhere.
    legend_fig = figures[min(len(figures), _MAPS_PER_ROW) - 1]
    legend_k = figures.index(legend_fig)
    items = [LegendItem(label=name, renderers=[renderers[c][legend_k]]) for c, name, _ in sources]
    rows_fit = max(1, (map_size + 40) // _LEGEND_ROW_HEIGHT)
    legend = Legend(
        items=items,
        click_policy="hide",
        location="top_left",
        title="classes (click to hide)",
        label_text_font_size="11px",
        glyph_height=14,
        glyph_width=14,
        spacing=1,
        nrows=min(len(items), rows_fit),
        name="legend",
    )
    legend_fig.add_layout(legend, "right")
    for rs in renderers.values():
        for r in rs:
            others = [o for o in rs if o is not r]
            if others:
                r.js_on_change("visible", CustomJS(args={"others": others}, code=VISIBLE_JS))

    # bokeh puts every widget in its own shadow DOM: page styles must be attached to each Div
    css = InlineStyleSheet(css=_CSS)
    header = Div(
        text=(
            f'<div class="fs-header"><h1>{html.escape(doc_title)}</h1>'
            f"<p>{html.escape(subtitle)}</p><p>Drag to lasso-select (box select and pan in the "
            "toolbar), scroll to zoom, hover for the image, click a legend entry to hide a "
            "class. Selections are shared by all maps.</p></div>"
        ),
        name="header",
        stylesheets=[css],
    )
    status = Div(text="no selection", name="status", styles={"padding-top": "6px"})
    search = TextInput(
        placeholder="class name or sample id", title="highlight", name="search", width=260
    )
    clear = Button(label="clear selection", name="clear", width=130)
    download = Button(label="download selected (csv)", name="download", width=200)
    coord_columns = [f"{axis}{k}" for k in range(len(maps)) for axis in "xy"]
    header_cols = ["id", "label", "class_name"] + [
        f"{axis}_{_csv_safe(t)}" for t in titles for axis in "xy"
    ]
    download.js_on_event(
        "button_click",
        CustomJS(
            args={
                "sources": all_sources,
                "header": header_cols,
                "coord_columns": coord_columns,
                "filename": "selected_samples.csv",
            },
            code=DOWNLOAD_JS,
        ),
    )
    search.js_on_change("value_input", CustomJS(args={"sources": all_sources}, code=SEARCH_JS))
    clear.js_on_event(
        "button_click", CustomJS(args={"sources": all_sources, "search": search}, code=CLEAR_JS)
    )
    count = CustomJS(
        args={
            "sources": all_sources,
            "renderers": [renderers[c] for c, _, _ in sources],
            "status": status,
            "total": len(maps[0].ids),
            "normal": _ALPHA,
            "faded": _FADED_ALPHA,
        },
        code=COUNT_JS,
    )
    for src in all_sources:
        src.selected.js_on_change("indices", count)

    controls = row(search, column(Div(text="&nbsp;"), row(clear, download, status)))
    grid = column(
        *[row(*figures[i : i + _MAPS_PER_ROW]) for i in range(0, len(figures), _MAPS_PER_ROW)]
    )
    tables = Div(text=_tables_html(maps, titles), name="tables", stylesheets=[css])
    return column(header, controls, grid, tables)


def _csv_safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)[:40] or "map"
