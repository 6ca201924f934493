"""The page file: self-contained, escaped, thumbnails capped, maps checked."""

from __future__ import annotations

import dataclasses
import html
import json
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


def _with_fields(n_per_class=5, neighbors=True):
    (a, b) = make_results(n_per_class=n_per_class)
    n = len(a.ids)
    labels = a.labels
    prediction = labels.copy()
    prediction[0] = 3
    prediction[1] = -1
    fields = {
        "prediction": prediction,
        "correct": prediction == labels,
        "confidence": np.linspace(0.25, 1.0, n).astype(np.float32),
        "</script><b>field</b>": np.array(["<i>x</i>", "y"])[np.arange(n) % 2],
        "depth": np.arange(n, dtype=np.float64),
    }
    clusters_a = np.where(np.arange(n) % 4 == 0, -1, labels)
    nb = np.tile(np.arange(1, 4, dtype=np.int32), (n, 1)) if neighbors else None
    a = dataclasses.replace(a, fields={**fields, "cluster": clusters_a}, neighbors=nb)
    b = dataclasses.replace(b, fields={**fields, "cluster": clusters_a % 2}, neighbors=nb)
    return a, b


def test_colour_by_fields_codes_palettes_and_shared_columns():
    from featscope.render._page_fields import MISSING, page_fields

    a, b = _with_fields()
    fields, columns = page_fields([a, b], a.labels)
    names = [f.name for f in fields]
    # label first, reserved fields in their order, then metadata as given
    assert names == [
        "label",
        "prediction",
        "correct",
        "confidence",
        "cluster",
        "</script><b>field</b>",
        "depth",
    ]
    by = {f.name: f for f in fields}
    pred = by["prediction"]
    assert pred.kind == "categorical"
    assert pred.code_columns[0] == pred.code_columns[1]  # one column for identical values
    codes = columns[pred.code_columns[0]]
    assert codes[:3].tolist() == [3, 4, 0]  # -1 ("none") -> the grey entry after 4 classes
    assert pred.palette[3] == by["label"].palette[3]  # predicted class 3 in class 3's colour
    assert pred.palette[4] == MISSING
    assert columns[pred.text_columns[0]][:3] == ["class 3", "none", "class 0"]
    correct = columns[by["correct"].code_columns[0]]
    assert [by["correct"].palette[c] for c in correct[:3]] == ["#d62728", "#d62728", "#2ba12b"]
    conf = by["confidence"]
    assert conf.kind == "continuous"
    assert len(conf.palette) == 257
    assert columns[conf.code_columns[0]][[0, -1]].tolist() == [64, 255]  # 0.25 and 1.0 on 0..1
    depth = by["depth"]
    assert depth.kind == "continuous"
    assert columns[depth.code_columns[0]][[0, -1]].tolist() == [0, 255]  # own min..max
    cluster = by["cluster"]
    assert cluster.code_columns[0] != cluster.code_columns[1]  # clusters differ per map
    assert columns[cluster.code_columns[0]][0] == len(cluster.palette) - 1  # noise: grey
    assert "noise" in cluster.key_html


def test_fields_reach_the_page_escaped_with_selector_search_and_inspector():
    a, b = _with_fields()
    page = build_page([a, b])
    assert "</script><b>field</b>" not in page
    assert "<i>x</i>" not in page
    assert "&lt;/script&gt;&lt;b&gt;field&lt;/b&gt;" in page  # key and tooltip: escaped
    assert "http://" not in page
    assert "https://" not in page  # still one offline file
    assert page.lower().count("<script") == build_page(make_results()).lower().count("<script")
    models = _named_models(page)
    assert models["inspector"].get("visible", True) is True
    assert [o[1] for o in models["color_by"]["options"]][:3] == ["label", "prediction", "correct"]
    assert "depth" in [o[1] for o in models["search_scope"]["options"]]
    assert "tap" in json.dumps(models["map_0"].get("js_event_callbacks"))  # maps answer clicks
    # the inspector is shown only when neighbours were computed upstream
    plain = build_page(make_results(n_per_class=5))
    plain_models = _named_models(plain)
    assert plain_models["inspector"]["visible"] is False
    assert plain_models["color_by"]["visible"] is False  # nothing else to colour by
    assert "tap" not in json.dumps(plain_models["map_0"].get("js_event_callbacks"))


def _named_models(page):
    """Bokeh's document JSON in the page -> {model name: its attributes}."""
    text = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S).group(1)
    found = {}

    def walk(node):
        if isinstance(node, dict):
            attrs = node.get("attributes")
            if isinstance(attrs, dict) and isinstance(attrs.get("name"), str):
                found.setdefault(attrs["name"], attrs)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(text))
    return found


def test_every_metric_is_explained_beside_its_value():
    (a,) = make_results(n_per_class=5, maps=1)
    a = dataclasses.replace(
        a,
        metrics={
            **a.metrics,
            "silhouette_map": 0.4,
            "k": 10,
            "accuracy": 0.9,
            "confused_pairs": [{"true": "3", "predicted": "9", "count": 2}],
        },
        params={**a.params, "aligned_to": "stage0"},
    )
    page = build_page(a)
    for text in (
        "share of samples whose k nearest neighbours in the map mostly have",
        "1 when every map neighbour is also a neighbour in the features",
        "how far classes sit from each other in the map",
        "predicted class (the classifier output",
        "the map this one was turned onto",
        "trust.: trustworthiness",  # the line under each map title, explained in the header
    ):
        assert text in page, text
    tables = html.unescape(_named_models(page)["tables"]["text"])  # bokeh escapes it in the file
    assert "<th>confused_pairs</th><td>3 → 9 (2)</td>" in tables


def test_csv_download_has_a_column_per_field_and_map():
    a, b = _with_fields()
    page = build_page([a, b])
    assert '"prediction_0","prediction_1"' in page.replace(", ", ",")
