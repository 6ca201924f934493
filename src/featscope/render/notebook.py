"""How results show themselves in a notebook: the rich displays behind ``_repr_mimebundle_``.

Every result type of :mod:`featscope.results` delegates its display here, so drawing stays in
``render/`` and ``results.py`` imports nothing heavy. What each shows:

- embedding maps (:class:`~featscope.results.TsneRun`, ``EmbeddingResult``, ``CompareRun``,
  ``MonitorStep``): the interactive page of :func:`featscope.render.page.build_page`, inline in
  an ``<iframe srcdoc>``: bokeh's JavaScript and the thumbnails are inside the page, so it
  works offline, and the iframe keeps the page's scripts and styles apart from the notebook's;
- feature maps, reconstructions and browsed samples: the pictures as base64 PNG at their own
  size (one picture: ``image/png``; several: an HTML grid with captions);
- shape bias: the figure as PNG;
- features and statistics: a small HTML table.

Every user string (ids, class names, titles) goes through :func:`html.escape`, and the page
through it once more as the ``srcdoc`` attribute.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import tempfile
import webbrowser
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from featscope.errors import ParameterError
from featscope.results import (
    BrowsedSample,
    BrowseResult,
    CamMap,
    CamRun,
    CapturedMaps,
    CompareRun,
    EmbeddingResult,
    FeatmapRun,
    FeatureMap,
    FeatureSet,
    MonitorStep,
    ReconstructedImage,
    ReconstructionResult,
    ReconstructionRun,
    ShapeBiasRun,
    ShapeBiasStats,
    TsneRun,
)

__all__ = [
    "figure_png",
    "html_display",
    "mimebundle",
    "page_html",
    "page_iframe",
    "picture_html",
    "pictures_html",
    "png_base64",
    "show",
]

#: Height of one row of maps on the page (map, title, toolbar) and of the page's header.
_ROW_PX, _HEADER_PX, _TABLES_PX = 540, 120, 220
_MAPS_PER_ROW = 3
_SHAPE_BIAS_DPI = 72


# --------------------------------------------------------------------------- building blocks


def png_base64(picture: Any) -> str:
    """Return an RGB (or grey) uint8 picture as base64 PNG text (what ``image/png`` holds)."""
    from featscope.render.figures import png_bytes

    return base64.b64encode(png_bytes(picture)).decode("ascii")


def figure_png(figure: Any, dpi: float = _SHAPE_BIAS_DPI) -> bytes:
    """Return a matplotlib figure as PNG bytes (tight bounding box)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def picture_html(picture: Any, caption: str | None = None) -> str:
    """Return one picture as an inline ``<img>`` at its own size, with an escaped caption."""
    height, width = np.shape(picture)[:2]
    img = (
        f'<img src="data:image/png;base64,{png_base64(picture)}" width="{width}" '
        f'height="{height}" alt="{html.escape(caption or "", quote=True)}" '
        'style="image-rendering: pixelated; display: block">'
    )
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        '<figure style="display: inline-block; margin: 4px; vertical-align: top; '
        f'font-size: 12px">{img}{text}</figure>'
    )


def pictures_html(pictures: Iterable[tuple[str, Any]], heading: str | None = None) -> str:
    """Return captioned pictures side by side (wrapping), under an escaped heading."""
    body = "".join(picture_html(picture, caption) for caption, picture in pictures)
    top = f"<div><b>{html.escape(heading)}</b></div>" if heading else ""
    return f'<div class="featscope">{top}<div>{body}</div></div>'


def page_iframe(page: str, n_maps: int = 1) -> str:
    """Return a page (a whole HTML document) inline in an ``<iframe srcdoc>``, escaped.

    Parameters
    ----------
    page : str
        The document (:func:`featscope.render.page.build_page`).
    n_maps : int, default 1
        Maps on the page, for the iframe's height (three per row).

    Returns
    -------
    str
        The ``<iframe>`` element.
    """
    rows = max(1, math.ceil(n_maps / _MAPS_PER_ROW))
    height = _HEADER_PX + rows * _ROW_PX + _TABLES_PX
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" title="featscope embedding page" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ddd" '
        'loading="lazy"></iframe>'
    )


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values)

    head = f"<tr>{cells('th', header)}</tr>" if header else ""
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<table class="featscope">{head}{body}</table>'


def _with_text(obj: Any, **bundle: str) -> dict[str, Any]:
    return {"text/plain": repr(obj), **bundle}


# --------------------------------------------------------------------------- pages


def _maps_of(obj: Any) -> tuple[list[EmbeddingResult], dict[str, Any]]:
    """Return the maps of a result and the keywords of its page."""
    if isinstance(obj, EmbeddingResult):
        return [obj], {}
    if isinstance(obj, TsneRun):
        return list(obj.results), {
            "thumbnails": obj.thumbnails,
            "thumbnail_rows": obj.thumbnail_rows,
        }
    if isinstance(obj, CompareRun):
        return list(obj.results), {"map_titles": list(obj.titles)}
    if isinstance(obj, MonitorStep):
        first = obj.results[0] if obj.results else None
        model = first.provenance.model if first is not None else None
        return list(obj.results), {"title": f"featscope · {model or 'model'} · epoch {obj.epoch}"}
    raise ParameterError(f"{type(obj).__name__} has no embedding page; pass a map or a run")


def page_html(obj: Any) -> str:
    """Return the interactive page of a map or a run of maps, built in memory.

    Parameters
    ----------
    obj : EmbeddingResult, TsneRun, CompareRun or MonitorStep
        The maps (a ``TsneRun`` brings its thumbnails, a ``CompareRun`` its titles).

    Returns
    -------
    str
        The self-contained document (nothing is written).
    """
    from featscope.render.page import build_page

    maps, keywords = _maps_of(obj)
    if not maps:
        raise ParameterError(f"{type(obj).__name__} holds no map; there is no page to show")
    thumbs = keywords.pop("thumbnails", None)
    rows = keywords.pop("thumbnail_rows", None)
    return build_page(maps, thumbs, rows, **keywords)


def _page_bundle(obj: Any) -> dict[str, Any]:
    n = 1 if isinstance(obj, EmbeddingResult) else len(obj.results)
    if n == 0:  # a run of a torchrun rank that mapped nothing: there is no page to show
        return _with_text(obj, **{"text/html": f"<pre>{html.escape(repr(obj))}</pre>"})
    text = obj.page_html or page_html(obj)  # a CompareRun made by hand holds no page
    return _with_text(obj, **{"text/html": page_iframe(text, n)})


def _monitor_bundle(obj: MonitorStep) -> dict[str, Any]:
    """Show the step's maps (its page), then the feature maps it drew."""
    parts = [page_iframe(obj.page_html, len(obj.results))] if obj.results else []
    pictures = [(f"{m.image_id} · {m.name}", m.drawn) for m in obj.featmaps]
    if pictures:
        parts.append(pictures_html(pictures, f"feature maps, epoch {obj.epoch}"))
    body = "".join(parts) or f"<div>{html.escape(repr(obj))}</div>"
    return _with_text(obj, **{"text/html": body})


# --------------------------------------------------------------------------- pictures


def _featmap_bundle(obj: FeatureMap) -> dict[str, Any]:
    return _with_text(obj, **{"image/png": png_base64(obj.drawn)})


def _featmap_run_bundle(obj: FeatmapRun) -> dict[str, Any]:
    pictures = [(f"{m.image_id} · {m.name}", m.drawn) for m in obj.maps]
    heading = f"{obj.view}: {', '.join(obj.models)}" if obj.models else obj.view
    return _with_text(obj, **{"text/html": pictures_html(pictures, heading)})


def _cam_caption(m: CamMap) -> str:
    score = "" if m.score is None else f", {m.metric} {m.score:+.3f}"
    return f"{m.image_id} · {m.method} · {m.class_name} p={m.probability:.3f}{score}"


def _cam_bundle(obj: CamMap) -> dict[str, Any]:
    return _with_text(obj, **{"image/png": png_base64(obj.drawn)})


def _cam_run_bundle(obj: CamRun) -> dict[str, Any]:
    pictures = [(_cam_caption(m), m.drawn) for m in obj.maps]
    return _with_text(obj, **{"text/html": pictures_html(pictures, f"{obj.model} at {obj.point}")})


def _recon_rows(images: Iterable[ReconstructedImage]) -> str:
    from featscope.render.recon import panels

    return "".join(
        pictures_html(panels(image), f"{image.image_id} · error {image.error:.4g}")
        for image in images
    )


def _recon_image_bundle(obj: ReconstructedImage) -> dict[str, Any]:
    return _with_text(obj, **{"text/html": _recon_rows([obj])})


def _recon_bundle(obj: ReconstructionResult | ReconstructionRun) -> dict[str, Any]:
    result = obj.result if isinstance(obj, ReconstructionRun) else obj
    title = f"{result.family}: {result.model or ''}"
    heading = f"<div><b>{html.escape(title)}</b></div>"
    return _with_text(obj, **{"text/html": heading + _recon_rows(result.images)})


def _browsed(sample: BrowsedSample) -> str:
    label = "" if sample.label is None else f" · class {sample.label} {sample.class_name or ''}"
    pictures = [
        (title if len(images) == 1 else f"{title} {k}", image)
        for title, images in zip(sample.columns, sample.images, strict=False)
        for k, image in enumerate(images)
    ]
    return pictures_html(pictures, f"#{sample.index} {sample.id}{label}")


def _browsed_bundle(obj: BrowsedSample) -> dict[str, Any]:
    return _with_text(obj, **{"text/html": _browsed(obj)})


def _browse_bundle(obj: BrowseResult) -> dict[str, Any]:
    title = f"{obj.mode} · {obj.transform}"
    heading = f"<div><b>{html.escape(title)}</b></div>"
    return _with_text(obj, **{"text/html": heading + "".join(map(_browsed, obj.samples))})


# --------------------------------------------------------------------------- tables and plots


def _shape_bias_bundle(obj: ShapeBiasRun) -> dict[str, Any]:
    from featscope.render.shape_bias import plot_shape_bias

    names = [n for n in obj.shown if n in obj.stats] or list(obj.stats)
    figure = plot_shape_bias({n: obj.stats[n] for n in names}).figure
    data = base64.b64encode(figure_png(figure)).decode("ascii")
    return _with_text(obj, **{"image/png": data})


def _shape_stats_bundle(obj: ShapeBiasStats) -> dict[str, Any]:
    rows = [("all", f"{obj.shape_bias:.3f}", obj.n_shape, obj.n_texture, obj.n_other)]
    rows += [
        (c, f"{float(e['shape_bias']):.3f}", e["n_shape"], e["n_texture"], e["n_other"])
        for c, e in obj.per_category.items()
    ]
    header = ("category", "shape bias", "shape", "texture", "other")
    top = f"<div><b>{html.escape(obj.name)}</b></div>"
    return _with_text(obj, **{"text/html": top + _table(rows, header)})


def _feature_set_bundle(obj: FeatureSet) -> dict[str, Any]:
    values, counts = np.unique(obj.labels, return_counts=True)
    names = obj.class_names
    rows = [
        (int(v), names[v] if 0 <= v < len(names) else "", int(c))
        for v, c in zip(values.tolist(), counts.tolist(), strict=True)
    ]
    n, d = obj.features.shape
    title = f"{obj.point}: {n} samples x {d} dims, {obj.pooling}"
    top = f"<div><b>{html.escape(title)}</b></div>"
    return _with_text(obj, **{"text/html": top + _table(rows, ("label", "class", "samples"))})


def _captured_bundle(obj: CapturedMaps) -> dict[str, Any]:
    rows = [
        (point, name, "x".join(str(v) for v in np.shape(array)))
        for point, levels in obj.maps.items()
        for name, array in levels.items()
    ]
    top = f"<div><b>{html.escape(obj.image_id)}</b></div>"
    return _with_text(obj, **{"text/html": top + _table(rows, ("point", "output", "shape"))})


_BUNDLES: dict[type, Callable[[Any], dict[str, Any]]] = {
    EmbeddingResult: _page_bundle,
    TsneRun: _page_bundle,
    CompareRun: _page_bundle,
    MonitorStep: _monitor_bundle,
    FeatureMap: _featmap_bundle,
    FeatmapRun: _featmap_run_bundle,
    CamMap: _cam_bundle,
    CamRun: _cam_run_bundle,
    ReconstructedImage: _recon_image_bundle,
    ReconstructionResult: _recon_bundle,
    ReconstructionRun: _recon_bundle,
    BrowsedSample: _browsed_bundle,
    BrowseResult: _browse_bundle,
    ShapeBiasRun: _shape_bias_bundle,
    ShapeBiasStats: _shape_stats_bundle,
    FeatureSet: _feature_set_bundle,
    CapturedMaps: _captured_bundle,
}


def mimebundle(obj: Any) -> dict[str, Any]:
    """Return the display of a result: ``{mime type: data}`` as IPython expects it.

    Parameters
    ----------
    obj : a result of :mod:`featscope.results`
        What to show.

    Returns
    -------
    dict
        Always ``text/plain`` (the repr), plus ``text/html`` (a page in an iframe, pictures,
        a table) or ``image/png`` (base64 text).

    Raises
    ------
    ParameterError
        For an object featscope does not know how to show.
    """
    for kind in type(obj).__mro__:
        draw = _BUNDLES.get(kind)
        if draw is not None:
            return draw(obj)
    raise ParameterError(f"featscope cannot display a {type(obj).__name__}; pass a result")


def html_display(obj: Any) -> str | None:
    """Return the HTML display of a result, or None for one shown as a picture (PNG)."""
    if isinstance(obj, (FeatureMap, CamMap, ShapeBiasRun)):
        return None
    return mimebundle(obj).get("text/html")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(obj: Any) -> None:
    """Show a result: inline in a notebook, else its page in a browser or its pictures in windows.

    Outside a notebook a page goes to a temporary ``.html`` file opened in the browser (the one
    file this writes), and pictures and plots to matplotlib windows
    (:func:`featscope.render.show`).
    """
    if _in_notebook():
        from IPython.display import display

        display(obj)
        return
    if isinstance(obj, (EmbeddingResult, TsneRun, CompareRun, MonitorStep)):
        text = obj.page_html
        handle, path = tempfile.mkstemp(prefix="featscope_", suffix=".html")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text or page_html(obj))
        webbrowser.open(f"file://{path}")
        return
    from featscope.render.featmap import picture_figure
    from featscope.render.figures import show as show_figure

    if isinstance(obj, ShapeBiasRun):
        from featscope.render.shape_bias import plot_shape_bias

        names = [n for n in obj.shown if n in obj.stats] or list(obj.stats)
        show_figure(plot_shape_bias({n: obj.stats[n] for n in names}).figure)
        return
    for picture in _pictures_of(obj):
        show_figure(picture_figure(picture))


def _pictures_of(obj: Any) -> list[Any]:
    from featscope.render.recon import panels

    if isinstance(obj, (FeatureMap, CamMap)):
        return [obj.drawn]
    if isinstance(obj, (FeatmapRun, CamRun)):
        return [m.drawn for m in obj.maps]
    if isinstance(obj, (ReconstructionResult, ReconstructionRun, ReconstructedImage)):
        images = [obj] if isinstance(obj, ReconstructedImage) else list(obj)
        return [np.hstack([picture for _, picture in panels(image)]) for image in images]
    if isinstance(obj, (BrowseResult, BrowsedSample)):
        samples = [obj] if isinstance(obj, BrowsedSample) else list(obj)
        return [image for s in samples for column in s.images for image in column]
    raise ParameterError(f"{type(obj).__name__} has no pictures to show; display it in a notebook")
