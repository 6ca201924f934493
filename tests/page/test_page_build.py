"""The page file: self-contained, escaped, thumbnails capped, maps checked."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from _page_helpers import make_results, tile_thumbnails

from featscope.errors import ParameterError
from featscope.render.page import build_page, page_point_size, write_page
from featscope.results import Provenance

XSS_CLASS = "</script><script>alert(1)</script>"
XSS_MODEL = "<img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def page():
    results = make_results(n_per_class=10, names=["cat", XSS_CLASS, "dog", "a,b"])
    results = [
        dataclasses.replace(r, provenance=Provenance(model=XSS_MODEL, source="<b>data</b>"))
        for r in results
    ]
    rows = np.array([0, 11, 25])
    return build_page(
        results, tile_thumbnails(3), rows, title="<i>my title</i>", subtitle="<u>sub</u>"
    )


def test_page_is_one_file_with_everything_inline(page):
    assert page.lstrip().lower().startswith("<!doctype html>")
    # bokeh's own scripts are in the file: no <script src>, no stylesheet link, no network URL
    assert re.search(r"<script[^>]*\bsrc=", page, re.IGNORECASE) is None
    assert re.search(r"<link\b", page, re.IGNORECASE) is None
    assert "http://" not in page
    assert "https://" not in page
    assert "Bokeh.set_log_level" in page or "bokeh" in page.lower()
    assert len(page) > 1_000_000  # the JS bundle itself is inline
    # the WebGL back end is requested for every map
    assert page.count('"output_backend":"webgl"') == 2


def test_every_user_string_is_escaped(page):
    for raw in (XSS_CLASS, "<script>alert(1)", XSS_MODEL, "<i>my title</i>", "<b>data</b>"):
        assert raw not in page, raw
    # the <title> of the document is escaped too
    assert "<title>&lt;i&gt;my title&lt;/i&gt;</title>" in page
    # the hostile names add no script element: same count as a page of harmless names
    plain = build_page(make_results(n_per_class=10))
    assert page.lower().count("<script") == plain.lower().count("<script")
    assert page.lower().count("</script") == plain.lower().count("</script")


def test_thumbnails_are_capped_data_uris(page):
    uris = re.findall(r"data:image/webp;base64,[A-Za-z0-9+/=]+", page)
    assert len(uris) == 3


def test_write_page_and_point_size(tmp_path, page):
    path = write_page(tmp_path / "p.html", page)
    assert path.read_text(encoding="utf-8") == page
    assert page_point_size(100) == 8.0
    assert page_point_size(10_000) == pytest.approx(8 * np.sqrt(0.1))
    assert page_point_size(10_000_000) == 2.0
    from featscope.errors import OutputError

    with pytest.raises(OutputError, match="cannot write page"):
        write_page(tmp_path / "missing" / "p.html", page)


def test_maps_must_hold_the_same_samples():
    a, b = make_results(n_per_class=3)
    shuffled = dataclasses.replace(b, ids=tuple(reversed(b.ids)))
    with pytest.raises(ParameterError, match="other samples than map 0"):
        build_page([a, shuffled])
    with pytest.raises(ParameterError, match="empty"):
        build_page([])
    empty = dataclasses.replace(a, coords=a.coords[:0], labels=a.labels[:0], ids=())
    with pytest.raises(ParameterError, match="no sample"):
        build_page(empty)
    with pytest.raises(ParameterError, match="2 titles for 1 maps"):
        build_page(a, map_titles=["x", "y"])
    with pytest.raises(ParameterError, match="2 thumbnails but 1"):
        build_page(a, tile_thumbnails(2), [0])
    with pytest.raises(ParameterError, match="out of range for 12 samples"):
        build_page(a, tile_thumbnails(1), [12])
    with pytest.raises(ParameterError, match="not a data:image/ URI"):
        build_page(a, ["http://example.com/a.png"], [0])


def test_many_classes_share_the_last_legend_entry():
    from featscope.render.colors import class_color

    (result,) = make_results(n_per_class=2, names=[f"c{i}" for i in range(50)], maps=1)
    page = build_page(result)
    renderers = set(re.findall(r'"name":"points_0_(\w+)"', page))
    assert len(renderers) == 40
    assert "other" in renderers
    assert "11 more classes" in page
    # the shared entry still colours each point by its own class
    r, g, b, _ = class_color(49)
    assert f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}" in page


def test_page_titles_name_point_method_model_and_3d():
    from featscope.render.page import page_titles

    a, b = make_results(n_per_class=2)
    assert page_titles([a, b]) == ["stage0 · t-SNE", "stage1 · t-SNE"]
    other = dataclasses.replace(b, provenance=Provenance(model="timm:resnet18"))
    assert page_titles([a, other]) == [
        "demo:digits-cnn · stage0 · t-SNE",
        "timm:resnet18 · stage1 · t-SNE",
    ]
    three = dataclasses.replace(a, coords=np.zeros((len(a.ids), 3)), method="pca")
    assert page_titles([three]) == ["stage0 · PCA (3-D)"]


def test_method_names_as_the_page_writes_them():
    from featscope.render.page import method_name

    assert [method_name(m) for m in ("tsne", "umap", "pca")] == ["t-SNE", "UMAP", "PCA"]
    assert method_name("isomap") == "isomap"  # an unknown reducer keeps its own name
