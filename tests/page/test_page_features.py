"""The page's issue-16 features in a real browser (headless Chromium, network off).

A page of digits-like data (classes named "0".."3", ids ``digits:<i>``) with predictions,
correctness, confidence, clusters, a metadata column holding markup, feature-space neighbours
and a 3-D map: colour-by, the neighbour inspector, the gallery, exact/regex search, centroid
labels, the 3-D projections and the layout, driven with the mouse and keyboard where a user
would, checked in bokeh's models and in the pixels.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
from _page_helpers import make_results, open_page, tile_thumbnails
from test_page_browser import (
    ELEMENT_CENTER,
    POINT_XY,
    _click,
    _frame_pixels,
    _move,
    _wait_for,
)

from featscope.render._page_fields import class_hex
from featscope.render.page import build_page

pytestmark = pytest.mark.browser

N_PER_CLASS = 25
N = 4 * N_PER_CLASS
XSS_SITE = "<img src=x onerror=alert(3)>"
XSS_FIELD = "<b>scanner</b>"
RIGHT_RGB = (0x2B, 0xA1, 0x2B)
RING_RGB = (0xE6, 0x00, 0x7E)


def rich_results():
    """Two 2-D maps and one 3-D map of 100 digits-like samples, with fields and neighbours."""
    base = make_results(n_per_class=N_PER_CLASS, names=[str(i) for i in range(4)], maps=2)
    labels = base[0].labels
    ids = tuple(f"digits:{i}" for i in range(N))
    rng = np.random.default_rng(1)
    prediction = labels.copy()
    prediction[::9] = (labels[::9] + 1) % 4  # rows 0, 9, 18, ... are wrong
    fields = {
        "prediction": prediction,
        "correct": prediction == labels,
        "confidence": rng.uniform(0.3, 1.0, N).astype(np.float32),
        "cluster": np.where(np.arange(N) % 10 == 3, -1, labels),
        XSS_FIELD: np.array(["a", "b", XSS_SITE])[np.arange(N) % 3],
    }
    # each sample's neighbours: the 5 next samples of its class (a ring within the class)
    neighbors = np.stack(
        [
            [
                (i // N_PER_CLASS) * N_PER_CLASS + (i % N_PER_CLASS + j) % N_PER_CLASS
                for j in range(1, 6)
            ]
            for i in range(N)
        ]
    ).astype(np.int32)
    maps = [dataclasses.replace(m, ids=ids, fields=fields, neighbors=neighbors) for m in base]
    z = labels * 5.0 + rng.normal(scale=0.5, size=N)
    three = dataclasses.replace(
        maps[0], coords=np.c_[maps[0].coords, z], point="stage3", method="pca"
    )
    return [*maps, three]


@pytest.fixture(scope="module")
def rich_path(tmp_path_factory):
    html = build_page(rich_results(), tile_thumbnails(N, 32), np.arange(N), map_size=300)
    path = tmp_path_factory.mktemp("rich") / "embedding.html"
    path.write_text(html, encoding="utf-8")
    return path


RESET = """
const doc = Bokeh.documents[0];
for (const m of doc.all_models) {
  if (m.type === 'ColumnDataSource' && m.name && m.name.startsWith('class_')) {
    m.selected.indices = [];
  }
}
doc.get_model_by_name('search').value = '';
doc.get_model_by_name('search_mode').active = 0;
doc.get_model_by_name('search_scope').value = '0';
doc.get_model_by_name('color_by').value = '0';
"""

MODEL = "return Bokeh.documents[0].get_model_by_name(arguments[0])[arguments[1]]"
SHADOW_ELEMENT = """
const doc = Bokeh.documents[0];
const view = doc.views_manager.find_one(doc.get_model_by_name(arguments[0]));
return (view.shadow_el || view.el).querySelector(arguments[1]);
"""


@pytest.fixture(scope="module")
def rich_loaded(browser, rich_path):
    browser.get_log("performance")
    open_page(browser, rich_path)
    return browser


@pytest.fixture
def rich(rich_loaded):
    rich_loaded.execute_script(RESET)
    _move(rich_loaded, 1, 1)
    time.sleep(0.2)
    return rich_loaded


def _type(driver, name, text):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    x, y = driver.execute_script(ELEMENT_CENTER, name, "input")
    _click(driver, x, y)
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    ActionChains(driver).send_keys(Keys.BACKSPACE + text).perform()


def _choose(driver, name, label):
    from selenium.webdriver.support.ui import Select

    Select(driver.execute_script(SHADOW_ELEMENT, name, "select")).select_by_visible_text(label)


def _selected_rows(driver):
    return sorted(
        driver.execute_script(
            """const doc = Bokeh.documents[0]; const out = [];
            for (let c = 0; c < 4; c++) { const s = doc.get_model_by_name('class_' + c);
              for (const i of s.selected.indices) out.push(s.data.row[i]); }
            return out;"""
        )
    )


def _count_rgb(pixels, rgb, tol=30):
    return int((np.abs(pixels - np.asarray(rgb)).max(axis=-1) < tol).sum())


def test_exact_search_for_a_class_selects_that_class_only_not_ids_containing_it(rich):
    # the digits bug: "3" also selected every id with a 3 in it
    _type(rich, "search", "3")
    assert _wait_for(lambda: _selected_rows(rich) == list(range(75, 100)))
    _type(rich, "search", "digits:42")
    assert _wait_for(lambda: _selected_rows(rich) == [42])


def test_regex_search_and_field_scope(rich):
    x, y = rich.execute_script(ELEMENT_CENTER, "search_mode", "button:nth-child(2)")
    _click(rich, x, y)  # "regex"
    assert _wait_for(lambda: rich.execute_script(MODEL, "search_mode", "active") == 1)
    _type(rich, "search", r"^digits:1\d$")
    assert _wait_for(lambda: _selected_rows(rich) == list(range(10, 20)))
    _type(rich, "search", "digits:(")  # not a regular expression: said, nothing selected
    note = _wait_for(lambda: rich.execute_script(MODEL, "search_note", "text"))
    assert note.startswith("not a regular expression")
    assert _selected_rows(rich) == []
    # exact search in one field: the samples predicted wrong
    x, y = rich.execute_script(ELEMENT_CENTER, "search_mode", "button:nth-child(1)")
    _click(rich, x, y)
    _choose(rich, "search_scope", "correct")
    _type(rich, "search", "wrong")
    assert _wait_for(lambda: _selected_rows(rich) == list(range(0, N, 9)))
    # the metadata column whose values hold markup is searched as text
    _choose(rich, "search_scope", XSS_FIELD)
    _type(rich, "search", XSS_SITE)
    assert _wait_for(lambda: _selected_rows(rich) == list(range(2, N, 3)))


def test_colour_by_correct_paints_the_wrong_samples_red_and_shows_its_key(rich):
    right = 0.85 * np.asarray(RIGHT_RGB) + 0.15 * 255  # drawn at alpha 0.85 on white
    before = _count_rgb(_frame_pixels(rich, 0), right)
    _choose(rich, "color_by", "correct")
    assert _wait_for(lambda: rich.execute_script(MODEL, "color_by", "value") != "0")
    state = rich.execute_script(
        """const doc = Bokeh.documents[0]; const s = doc.get_model_by_name('class_0');
        return [Array.from(s.data.code0), doc.get_model_by_name('mapper').palette,
                doc.get_model_by_name('key_correct').visible,
                doc.get_model_by_name('key_confidence').visible];"""
    )
    codes, palette, key_visible, other_key_visible = state
    assert [palette[c] for c in codes[:10]] == ["#d62728"] + ["#2ba12b"] * 8 + ["#d62728"]
    assert key_visible is True
    assert other_key_visible is False
    time.sleep(0.4)
    after = _count_rgb(_frame_pixels(rich, 0), right)
    # before: class 2's points are (nearly) this green; after: the right samples of all four
    assert after > 2.5 * before, (before, after)
    # a continuous field: confidence on Viridis, the map recoloured from the same code column
    _choose(rich, "color_by", "confidence")
    conf = rich.execute_script(
        "const s = Bokeh.documents[0].get_model_by_name('class_1');"
        "return [Array.from(s.data.code1),"
        " Bokeh.documents[0].get_model_by_name('mapper').palette.length]"
    )
    assert conf[1] == 257
    assert max(conf[0]) <= 255
    assert len(set(conf[0])) > 5
    _choose(rich, "color_by", "label")
    assert _wait_for(lambda: not rich.execute_script(MODEL, "key_confidence", "visible"))
    assert rich.execute_script(MODEL, "mapper", "palette")[:4] == [class_hex(c) for c in range(4)]


def test_clicking_a_point_shows_its_neighbours_and_rings_them_in_every_map(rich):
    x, y = rich.execute_script(POINT_XY, 0, 1, 0)  # sample 25 (class 1, first row)
    ring_before = _count_rgb(_frame_pixels(rich, 1), RING_RGB)
    _click(rich, x, y)
    text = _wait_for(
        lambda: (t := rich.execute_script(MODEL, "inspector", "text")) and "digits:25" in t and t
    )
    assert "5 nearest neighbours" in text
    assert "5 of 5 of the same class" in text
    thumbs = rich.execute_script(
        "return Bokeh.documents[0].get_model_by_name('class_1').data.thumb"
    )
    for i in (1, 2, 3, 4, 5):  # samples 26..30 are its neighbours: their thumbnails are shown
        assert thumbs[i] in text
    ringed = rich.execute_script(
        "const d = Bokeh.documents[0].get_model_by_name('highlight').data;"
        "return [Array.from(d.x1), Array.from(d.y1)]"
    )
    xs = rich.execute_script(
        "return Array.from(Bokeh.documents[0].get_model_by_name('class_1').data.x1)"
    )
    np.testing.assert_allclose(ringed[0], xs[0:6], rtol=1e-6)
    time.sleep(0.4)
    assert _count_rgb(_frame_pixels(rich, 1), RING_RGB) > ring_before + 50  # drawn in map 1 too
    # a click on empty space clears it
    left, top = rich.execute_script(POINT_XY, 0, 0, 0)
    _click(rich, (x + left) / 2 + 3, (y + top) / 2 + 40)
    assert _wait_for(lambda: "Click a point" in rich.execute_script(MODEL, "inspector", "text"))


def test_gallery_shows_the_selection_thumbnails(rich):
    _type(rich, "search", "2")
    assert _wait_for(lambda: _selected_rows(rich) == list(range(50, 75)))
    gallery = _wait_for(
        lambda: (t := rich.execute_script(MODEL, "gallery", "text")) and "25 selected" in t and t
    )
    thumbs = rich.execute_script(
        "return Bokeh.documents[0].get_model_by_name('class_2').data.thumb"
    )
    assert all(t in gallery for t in thumbs)
    assert gallery.count("<img") == N_PER_CLASS
    shown = rich.execute_script(
        """const out = []; function walk(root) { for (const el of root.querySelectorAll('*')) {
          if (el.tagName === 'IMG' && el.classList.contains('fs-thumb') && el.offsetWidth > 0)
            out.push(el.getAttribute('title'));
          if (el.shadowRoot) walk(el.shadowRoot); } } walk(document); return out;"""
    )
    assert "2 · digits:50" in shown
    assert len(shown) == N_PER_CLASS


def test_centroid_labels_toggle(rich):
    visible = (
        "return [0, 1, 2].map((v) =>"
        " Bokeh.documents[0].get_model_by_name('class_labels_' + v).visible)"
    )
    assert rich.execute_script(visible) == [True, True, True]
    texts = rich.execute_script(
        "return Array.from(Bokeh.documents[0].get_model_by_name('class_centroids').data.text)"
    )
    assert texts == ["0", "1", "2", "3"]
    x, y = rich.execute_script(ELEMENT_CENTER, "label_toggles", "input")
    _click(rich, x, y)
    assert _wait_for(lambda: rich.execute_script(visible) == [False, False, False])
    x, y = rich.execute_script(ELEMENT_CENTER, "label_toggles", "label:nth-child(2) input")
    _click(rich, x, y)
    clusters = "return Bokeh.documents[0].get_model_by_name('cluster_labels_0').visible"
    assert _wait_for(lambda: rich.execute_script(clusters))
    _click(rich, *rich.execute_script(ELEMENT_CENTER, "label_toggles", "input"))
    # a class unticked in the legend loses its name too
    _click(rich, *rich.execute_script(ELEMENT_CENTER, "legend", "label:nth-of-type(3) input"))
    names = "return Array.from(Bokeh.documents[0].get_model_by_name('class_centroids').data.text)"
    assert _wait_for(lambda: rich.execute_script(names) == ["0", "1", "", "3"])
    assert rich.execute_script(MODEL, "points_0_2", "visible") is False
    _click(rich, *rich.execute_script(ELEMENT_CENTER, "legend", "label:nth-of-type(3) input"))
    assert _wait_for(lambda: rich.execute_script(names) == ["0", "1", "2", "3"])


def test_a_3d_map_is_three_linked_projections_and_maps_use_the_window(rich):
    titles = rich.execute_script(
        "return [2, 3, 4].map((v) => Bokeh.documents[0].get_model_by_name('map_' + v).title.text)"
    )
    assert titles == [f"stage3 · PCA (3-D) · {v} view" for v in ("x–y", "x–z", "y–z")]
    # the x-z view draws z on its vertical axis: the classes, 5 apart in z, are stacked
    pixels = _frame_pixels(rich, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 4
    # selection is shared with the projections (one source)
    _type(rich, "search", "1")
    assert _wait_for(lambda: _selected_rows(rich) == list(range(25, 50)))
    same = rich.execute_script(
        "const d = Bokeh.documents[0]; return d.get_model_by_name('points_3_1').data_source"
        " === d.get_model_by_name('points_0_1').data_source"
    )
    assert same
    # the maps take the window's width beside the sidebar
    boxes = rich.execute_script(
        """const doc = Bokeh.documents[0]; return [0, 1, 2].map((v) => {
          const pv = doc.views_manager.find_one(doc.get_model_by_name('map_' + v));
          const r = pv.canvas.el.getBoundingClientRect(); return [r.left, r.right]; });"""
    )
    width = rich.execute_script("return window.innerWidth")
    assert boxes[2][1] - boxes[0][0] > 0.6 * width
    assert boxes[0][1] <= boxes[1][0] + 1
    assert boxes[1][1] <= boxes[2][0] + 1


def test_rich_page_made_no_request_and_ran_no_injected_script(rich):
    x, y = rich.execute_script(POINT_XY, 0, 2, 0)
    _move(rich, x, y)  # tooltip with the field holding markup
    tip = _wait_for(
        lambda: rich.execute_script(
            """const out = []; function walk(root) {
              for (const el of root.querySelectorAll('.fs-tip'))
              if (el.offsetWidth > 0) out.push(el.textContent);
              for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot); }
            walk(document); return out.join(' ');"""
        )
    )
    assert XSS_FIELD in tip
    assert "prediction" in tip
    urls = []
    for entry in rich.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert [u for u in urls if not u.startswith(("file:", "data:", "blob:"))] == []
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        rich.switch_to.alert.text  # noqa: B018
    assert [e for e in rich.get_log("browser") if e["level"] == "SEVERE"] == []
