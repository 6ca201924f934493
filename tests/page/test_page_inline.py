"""The page as a notebook shows it: inside an ``<iframe srcdoc>``, drawn offline in Chromium.

The notebook display of a map (:mod:`featscope.render.notebook`) escapes the whole page into
the iframe's ``srcdoc``; this checks, in a real browser with the network off, that bokeh runs
inside it and draws every map and class, and that a hostile class name stays text.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from _page_helpers import make_results, tile_thumbnails

from featscope.results import TsneRun

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.top.__pwned = 1">'

IN_FRAME = """
if (!(window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle)) { return null; }
const doc = Bokeh.documents[0];
const names = [];
for (const m of doc.all_models) { if (m.name && m.name.startsWith('points_')) names.push(m.name); }
const legend = doc.get_model_by_name('legend');
let canvases = 0;
function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) canvases += 1;
    if (el.shadowRoot) walk(el.shadowRoot);
  }
}
walk(document);
return {points: names.length, labels: Array.from(legend.labels), canvases: canvases,
        pwned: window.top.__pwned || null};
"""


def test_the_inline_page_draws_in_its_iframe_offline(browser, tmp_path):
    names = ("cat", "dog", HOSTILE)
    results = make_results(n_per_class=10, names=names, maps=2)
    n = len(results[0].ids)
    run = TsneRun(
        results=tuple(results),
        features=(),
        run_dir=None,
        thumbnails=tile_thumbnails(n, 16),
        thumbnail_rows=np.arange(n),
    )
    cell = run._repr_mimebundle_()["text/html"]
    assert cell.startswith("<iframe srcdoc=")
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!DOCTYPE html><html><body>{cell}</body></html>", encoding="utf-8")
    browser.get(notebook.resolve().as_uri())
    frame = browser.find_element("css selector", "iframe")
    browser.switch_to.frame(frame)
    try:
        state = None
        deadline = time.monotonic() + 30
        while state is None and time.monotonic() < deadline:
            state = browser.execute_script(IN_FRAME)
            time.sleep(0.1)
        assert state is not None, "bokeh did not draw the page inside the iframe"
        assert state["points"] == 2 * len(names)  # one renderer per class and map
        assert state["labels"] == list(names)  # the hostile name is a class label ...
        assert state["canvases"] >= 2
        assert state["pwned"] is None  # ... and never markup
    finally:
        browser.switch_to.default_content()
    assert browser.execute_script("return window.__pwned || null") is None
