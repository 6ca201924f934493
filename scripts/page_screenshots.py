"""The screenshots of docs/page.md: the built-in digits demo's page in headless Chromium.

Run: ``python scripts/page_screenshots.py docs/images`` (needs chromium + chromedriver; the
network is not used). It maps the demo CNN's ``neck``, ``pre_logits`` and ``logits`` points on
1,000 digits, builds the page and drives it like a user: colour by correctness, click a point
for its neighbours, search a class, and a 3-D PCA map as three projections.

Predictions and neighbours come from the run when it holds them (``EmbeddingResult.fields``,
``neighbors``); for a run that does not, this script adds them itself from the same forward
pass: the arg-max of the ``logits`` point and its softmax probability, and scikit-learn's
10 nearest neighbours in each point's features.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import featscope
from featscope.options import EmbeddingOptions, Extraction, Output
from featscope.render.page import build_page

POINTS = ["neck", "pre_logits", "logits"]


def _with_fields(run):
    from sklearn.neighbors import NearestNeighbors

    logits = run.features[POINTS.index("logits")].features.astype(np.float64)
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    prediction = prob.argmax(axis=1)
    out = []
    for r, fs in zip(run.results, run.features, strict=True):
        fields = dict(r.fields) or {
            "prediction": prediction.astype(np.int64),
            "confidence": prob.max(axis=1).astype(np.float32),
            "correct": prediction == r.labels,
        }
        neighbors = r.neighbors
        if neighbors is None:
            index = NearestNeighbors(n_neighbors=11).fit(fs.features)
            neighbors = index.kneighbors(return_distance=False)[:, :10].astype(np.int32)
        out.append(replace(r, fields=fields, neighbors=neighbors))
    return out


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1150",
        "--force-device-scale-factor=1", "--proxy-server=127.0.0.1:9",
        "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    ):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _open(driver, path):
    driver.get(Path(path).resolve().as_uri())
    for _ in range(400):
        if driver.execute_script(
            "return !!(window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle)"
        ):
            break
        time.sleep(0.05)
    time.sleep(1.0)


#: Select every point of map ``k`` within ``r`` of class ``c``'s median, as the box tool does.
BOX_SELECT = """
const [k, c, r] = arguments; const doc = Bokeh.documents[0];
const own = doc.get_model_by_name('class_' + c).data;
const med = (a) => Array.from(a).sort((p, q) => p - q)[Math.floor(a.length / 2)];
const cx = med(own['x' + k]), cy = med(own['y' + k]);
for (const m of doc.all_models) {
  if (m.type !== 'ColumnDataSource' || !/^class_(\\d+|other)$/.test(m.name || '')) continue;
  const d = m.data; const hits = [];
  for (let i = 0; i < d.row.length; i++) {
    if (Math.abs(d['x' + k][i] - cx) < r && Math.abs(d['y' + k][i] - cy) < r) hits.push(i);
  }
  m.selected.indices = hits;
}
const ring = doc.get_model_by_name('highlight');  // no rings from an earlier click
ring.data = Object.fromEntries(Object.keys(ring.data).map((c) => [c, []]));
doc.get_model_by_name('inspector').text =
  '<div class="fs-muted">Click a point to see its nearest neighbours in the features.</div>';
"""


def _set(driver, name, attr, value):
    driver.execute_script(
        "Bokeh.documents[0].get_model_by_name(arguments[0])[arguments[1]] = arguments[2]",
        name, attr, value,
    )  # fmt: skip
    time.sleep(0.8)


def _click_point(driver, view, cls, i):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    x, y = driver.execute_script(
        """const [k, c, i] = arguments; const doc = Bokeh.documents[0];
        const pv = doc.views_manager.find_one(doc.get_model_by_name('map_' + k));
        const src = doc.get_model_by_name('class_' + c);
        const r = pv.canvas.el.getBoundingClientRect();
        const f = pv.model.renderers.find((x) => x.data_source === src).glyph;
        return [r.left + pv.frame.x_scale.compute(src.data[f.x.field][i]),
                r.top + pv.frame.y_scale.compute(src.data[f.y.field][i])];""",
        view, cls, i,
    )  # fmt: skip
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(round(x), round(y))
    actions.pointer_action.click()
    actions.pointer_action.move_to_location(1, 1)  # no tooltip over the maps
    actions.perform()
    time.sleep(1.0)


def main(out_dir: str) -> None:
    out = Path(out_dir)
    quiet = Extraction(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        run = featscope.tsne(points=POINTS, extraction=quiet, output=Output(work_dir=tmp))
        thumbs = np.load(run.run_dir / "thumbnails.npy")
        rows = np.load(run.run_dir / "thumbnail_rows.npy")
        three = featscope.tsne(
            points=["pre_logits"], extraction=quiet, output=Output(work_dir=None),
            embedding=EmbeddingOptions(method="pca", n_components=3),
        )  # fmt: skip
        maps = _with_fields(run)
        page = Path(tmp) / "embedding.html"
        page.write_text(build_page(maps, thumbs, rows), encoding="utf-8")
        page3 = Path(tmp) / "embedding3d.html"
        page3.write_text(build_page(_with_fields_3d(three, maps), thumbs, rows), encoding="utf-8")
        driver = _driver()
        try:
            _open(driver, page)
            driver.save_screenshot(str(out / "page_overview.png"))
            _set(driver, "color_by", "value", "2")  # correct
            driver.save_screenshot(str(out / "page_color_correct.png"))
            _set(driver, "color_by", "value", "0")
            _set(driver, "search", "value", "7")
            driver.save_screenshot(str(out / "page_search_gallery.png"))
            _set(driver, "search", "value", "")
            wrong = int(np.flatnonzero(~maps[0].fields["correct"])[0])
            cls = int(maps[0].labels[wrong])
            index = int(np.flatnonzero(np.flatnonzero(maps[0].labels == cls) == wrong)[0])
            _click_point(driver, 1, cls, index)
            driver.save_screenshot(str(out / "page_neighbours.png"))
            driver.execute_script(BOX_SELECT, 0, 4, 2.5)
            time.sleep(1.0)
            driver.save_screenshot(str(out / "page_linked_selection.png"))
            _open(driver, page3)
            driver.save_screenshot(str(out / "page_3d.png"))
        finally:
            driver.quit()
    print("screenshots written to", out)


def _with_fields_3d(three, maps):
    (r,) = three.results
    return [replace(r, fields=maps[1].fields, neighbors=maps[1].neighbors)]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images")
