"""The page in a real browser: headless Chromium, network off, driven with the mouse.

Point positions come from bokeh's own scales (``Bokeh.documents[0]``), so the mouse goes where a
point is drawn; checks read both the pixels of screenshots and the state of bokeh's models.
"""

from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import pytest
from _page_helpers import make_results, open_page, tile_thumbnails
from PIL import Image

from featscope.render.colors import class_color
from featscope.render.page import build_page

pytestmark = pytest.mark.browser

XSS_CLASS = "<script>alert(1)</script>"
NAMES = ["class zero", "class one", XSS_CLASS, "class three"]
N_PER_CLASS = 30
THUMB_ROWS = np.array([0, 1, 2, 3, 60, 61, 62])  # classes 0 and 2 have thumbnails

# JS helpers --------------------------------------------------------------------------------

POINT_XY = """
const [k, c, i] = arguments;
const doc = Bokeh.documents[0];
const pv = doc.views_manager.find_one(doc.get_model_by_name('map_' + k));
const src = doc.get_model_by_name('class_' + c);
const r = pv.canvas.el.getBoundingClientRect();
return [r.left + pv.frame.x_scale.compute(src.data['x' + k][i]),
        r.top + pv.frame.y_scale.compute(src.data['y' + k][i])];
"""

CLASS_XY = """
const [k, c] = arguments;
const doc = Bokeh.documents[0];
const pv = doc.views_manager.find_one(doc.get_model_by_name('map_' + k));
const src = doc.get_model_by_name('class_' + c);
const r = pv.canvas.el.getBoundingClientRect();
return Array.from(src.data['x' + k], (x, i) => [r.left + pv.frame.x_scale.compute(x),
        r.top + pv.frame.y_scale.compute(src.data['y' + k][i])]);
"""

FRAME_BOX = """
const doc = Bokeh.documents[0];
const pv = doc.views_manager.find_one(doc.get_model_by_name('map_' + arguments[0]));
const r = pv.canvas.el.getBoundingClientRect();
const f = pv.frame.bbox;
return [r.left + f.left, r.top + f.top, r.left + f.right, r.top + f.bottom];
"""

VISIBLE_IMAGES = """
const out = [];
function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.tagName === 'IMG' && el.offsetWidth > 0 && el.offsetHeight > 0) {
      out.push(el.getAttribute('src'));
    }
    if (el.shadowRoot) walk(el.shadowRoot);
  }
}
walk(document);
return out;
"""

TOOLTIP_TEXT = """
const out = [];
function walk(root) {
  for (const el of root.querySelectorAll('.fs-tip')) {
    if (el.offsetWidth > 0) out.push(el.textContent);
  }
  for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) walk(el.shadowRoot); }
}
walk(document);
return out;
"""

SELECTED = """
const doc = Bokeh.documents[0];
const out = [];
for (let c = 0; c < arguments[0]; c++) {
  out.push(Array.from(doc.get_model_by_name('class_' + c).selected.indices).sort((a, b) => a - b));
}
return out;
"""

ELEMENT_CENTER = """
const doc = Bokeh.documents[0];
const view = doc.views_manager.find_one(doc.get_model_by_name(arguments[0]));
const root = view.shadow_el || view.el;
const el = root.querySelector(arguments[1]) || view.el;
const r = el.getBoundingClientRect();
return [r.left + r.width / 2, r.top + r.height / 2];
"""

LEGEND_ENTRY = """
const doc = Bokeh.documents[0];
const view = doc.views_manager.find_one(doc.get_model_by_name('legend'));
const el = (view.shadow_el || view.el).querySelectorAll('input')[arguments[0]];
const r = el.getBoundingClientRect();
return [r.left + r.width / 2, r.top + r.height / 2];
"""


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    results = make_results(n_per_class=N_PER_CLASS, names=NAMES)
    html = build_page(results, tile_thumbnails(len(THUMB_ROWS), 32), THUMB_ROWS, map_size=360)
    path = tmp_path_factory.mktemp("page") / "embedding.html"
    path.write_text(html, encoding="utf-8")
    return path


RESET = """
const doc = Bokeh.documents[0];
for (const m of doc.all_models) {
  if (m.type === 'ColumnDataSource') { m.selected.indices = []; }
  if (m.name && m.name.startsWith('points_')) { m.visible = true; }
}
doc.get_model_by_name('legend').active = [0, 1, 2, 3];
doc.get_model_by_name('search').value = '';
"""

REQUESTS: list[str] = []


def _record_requests(driver):
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            REQUESTS.append(message["params"]["request"]["url"])


@pytest.fixture(scope="module")
def loaded(browser, page_path):
    """The page, opened once for the module (a reload costs seconds on a busy machine)."""
    browser.get_log("performance")  # drop the events of other modules' pages
    REQUESTS.clear()
    open_page(browser, page_path)
    return browser


@pytest.fixture
def page(loaded):
    """The open page with no selection, every class visible and the mouse off the maps."""
    loaded.execute_script(RESET)
    _move(loaded, 1, 1)
    time.sleep(0.2)
    yield loaded
    _record_requests(loaded)


def _move(driver, x, y):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(x), round(y))
    actions.perform()


def _click(driver, x, y):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(x), round(y))
    actions.pointer_action.click()
    actions.perform()


def _frame_pixels(driver, k):
    left, top, right, bottom = driver.execute_script(FRAME_BOX, k)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    crop = shot.crop((int(left) + 2, int(top) + 2, int(right) - 2, int(bottom) - 2))
    return np.asarray(crop).astype(int)


def _count_colour(pixels, c, alpha=0.85, tol=40):
    """Pixels close to class c's colour drawn at ``alpha`` over white."""
    rgb = np.asarray(class_color(c)[:3]) * 255
    drawn = alpha * rgb + (1 - alpha) * 255
    return int((np.abs(pixels - drawn).max(axis=-1) < tol).sum())


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def test_canvas_draws_every_class_with_webgl(page):
    for k in (0, 1):
        pixels = _frame_pixels(page, k)
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 4  # not blank
        for c in range(4):
            assert _count_colour(pixels, c) > 50, (k, c)
    uses_webgl = page.execute_script(
        """const doc = Bokeh.documents[0];
        const pv = doc.views_manager.find_one(doc.get_model_by_name('map_0'));
        const rv = pv.views.find_one(doc.get_model_by_name('points_0_0'));
        return [pv.canvas_view.webgl != null, rv.glyph.has_webgl()];"""
    )
    assert uses_webgl == [True, True]


def test_hover_shows_the_thumbnail_class_and_id(page):
    x, y = page.execute_script(POINT_XY, 0, 2, 0)  # class 2, row 60: has a thumbnail
    _move(page, x, y)
    images = _wait_for(lambda: page.execute_script(VISIBLE_IMAGES))
    expected = page.execute_script(
        "return Bokeh.documents[0].get_model_by_name('class_2').data.thumb[0]"
    )
    assert expected.startswith("data:image/webp;base64,")
    assert expected in images
    texts = page.execute_script(TOOLTIP_TEXT)
    # the hostile class name is shown as text, not run (no alert, the text is in the tooltip)
    assert any(XSS_CLASS in t and "img/0060.png" in t for t in texts), texts
    # a sample beyond the thumbnail cap: class and id, no picture
    x, y = page.execute_script(POINT_XY, 1, 3, 5)  # class 3 has no thumbnails
    _move(page, x, y)
    assert _wait_for(lambda: any("class three" in t for t in page.execute_script(TOOLTIP_TEXT)))
    shown = page.execute_script(VISIBLE_IMAGES)
    assert not any(src.startswith("data:image/webp") for src in shown)
    assert any("img/0095.png" in t for t in page.execute_script(TOOLTIP_TEXT))


def test_unticking_a_class_in_the_legend_hides_it_in_every_map(page):
    before = [_count_colour(_frame_pixels(page, k), 1) for k in (0, 1)]
    assert min(before) > 50
    x, y = page.execute_script(LEGEND_ENTRY, 1)
    _click(page, x, y)
    visible = _wait_for(
        lambda: page.execute_script(
            "const d = Bokeh.documents[0]; const v = [d.get_model_by_name('points_0_1').visible,"
            " d.get_model_by_name('points_1_1').visible]; return v.every(x => !x) && v;"
        )
    )
    assert visible == [False, False]
    time.sleep(0.3)
    after = [_count_colour(_frame_pixels(page, k), 1) for k in (0, 1)]
    assert max(after) < 0.05 * min(before), (before, after)
    # the other classes are still drawn
    assert _count_colour(_frame_pixels(page, 0), 0) > 50


def test_lasso_in_one_map_selects_the_same_samples_in_the_other(page):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    points = page.execute_script(CLASS_XY, 0, 0)
    assert len(points) == N_PER_CLASS
    cx = float(np.mean([p[0] for p in points]))
    cy = float(np.mean([p[1] for p in points]))
    # a 16-gon inside this circle still holds every point
    radius = (max(math.dist((cx, cy), p) for p in points) + 6) / math.cos(math.pi / 16)
    map1_before = _count_colour(_frame_pixels(page, 1), 3)

    actions = ActionBuilder(page)
    pointer = actions.pointer_action
    pointer.move_to_location(int(cx + radius), int(cy))
    pointer.pointer_down()
    for step in range(1, 17):
        angle = 2 * math.pi * step / 16
        pointer.move_to_location(
            int(cx + radius * math.cos(angle)), int(cy + radius * math.sin(angle))
        )
    pointer.pointer_up()
    actions.perform()

    selected = _wait_for(lambda: (lambda sel: sel[0] and sel)(page.execute_script(SELECTED, 4)))
    assert selected[0] == list(range(N_PER_CLASS))  # the whole class-0 cluster
    assert selected[1:] == [[], [], []]  # and nothing else
    # map 1 draws from the same source: its class-0 points are the selected ones, others fade
    linked = page.execute_script(
        "const d = Bokeh.documents[0]; const r = d.get_model_by_name('points_1_0');"
        "return [r.data_source === d.get_model_by_name('points_0_0').data_source,"
        " Array.from(r.data_source.selected.indices).length];"
    )
    assert linked == [True, N_PER_CLASS]
    time.sleep(0.3)
    map1_after = _count_colour(_frame_pixels(page, 1), 3)
    assert map1_after < 0.2 * map1_before  # class 3 faded in the *other* map
    status = page.execute_script("return Bokeh.documents[0].get_model_by_name('status').text")
    assert status == f"{N_PER_CLASS} of {4 * N_PER_CLASS} samples selected"


def test_search_highlights_and_download_writes_the_selection(page, tmp_path):
    page.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    x, y = page.execute_script(ELEMENT_CENTER, "search", "input")
    _click(page, x, y)
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(page).send_keys("img/0042.png").perform()  # a sample id, exactly
    assert _wait_for(lambda: page.execute_script(SELECTED, 4) == [[], [12], [], []])
    ActionChains(page).send_keys("\b" * 12 + "0042").perform()  # part of an id: no match
    assert _wait_for(lambda: page.execute_script(SELECTED, 4) == [[], [], [], []])
    note = "return Bokeh.documents[0].get_model_by_name('search_note').text"
    assert page.execute_script(note) == "no sample matches"
    ActionChains(page).send_keys("\b" * 4 + "CLASS THREE").perform()  # a class name, any case
    assert _wait_for(lambda: page.execute_script(SELECTED, 4)[3] == list(range(N_PER_CLASS)))

    x, y = page.execute_script(ELEMENT_CENTER, "download", "button")
    _click(page, x, y)
    target = tmp_path / "selected_samples.csv"
    assert _wait_for(lambda: target.is_file() and target.stat().st_size > 0, timeout=10)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,label,class_name,x_stage0___t-SNE,y_stage0___t-SNE," + (
        "x_stage1___t-SNE,y_stage1___t-SNE"
    )
    assert len(lines) == 1 + N_PER_CLASS
    first = lines[1].split(",")
    assert first[:3] == ["img/0090.png", "3", "class three"]
    coords = page.execute_script(
        "const d = Bokeh.documents[0].get_model_by_name('class_3').data;"
        "return [d.x0[0], d.y0[0], d.x1[0], d.y1[0]];"
    )
    np.testing.assert_allclose([float(v) for v in first[3:]], coords, rtol=1e-6)

    x, y = page.execute_script(ELEMENT_CENTER, "clear", "button")
    _click(page, x, y)
    assert _wait_for(lambda: page.execute_script(SELECTED, 4) == [[], [], [], []])


def test_the_page_makes_no_network_request_and_runs_no_injected_script(page):
    x, y = page.execute_script(POINT_XY, 0, 0, 1)
    _move(page, x, y)  # a tooltip with an image
    _wait_for(lambda: page.execute_script(VISIBLE_IMAGES))
    _record_requests(page)  # every request since the page was opened, by all the tests here
    urls = list(REQUESTS)
    assert any(u.startswith("file:") for u in urls), "the log did not even record the page"
    assert [u for u in urls if not u.startswith(("file:", "data:", "blob:"))] == []
    # an injected <script> would have opened an alert; the page answers scripts normally
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018
    errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
