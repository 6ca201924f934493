"""The interactive page at scale: file size and time to write it, and pan/zoom in a browser.

For each N, a synthetic two-map embedding (10 Gaussian clusters per map, ids ``synthetic:<i>``)
gets thumbnails for ``min(N, --thumbnails)`` samples (default 20,000, as ``featscope tsne``),
made from Fashion-MNIST images (28x28, the real data at hand) with
:func:`featscope.data.thumbnails.make_thumbnails`. Timed separately, in this process:

* ``thumbs``: making the thumbnail array (48 px) and encoding it as WebP data URIs;
* ``page``: :func:`featscope.render.page.build_page` (bokeh models + ``file_html``) and writing
  the file.

Then, for the sizes in ``--browser-sizes``, the page is opened in headless Chromium (system
``chromium``/``chromedriver``, network off) and driven with real input events (DevTools
``Input.dispatchMouseEvent``) on the first map: ``--steps`` wheel notches 50 ms apart (zoom in,
then out), then a drag of ``--steps`` 20-px moves 30 ms apart with the pan tool. An in-page
``requestAnimationFrame`` loop records every frame; the script reports the time until bokeh has
drawn the page (document idle), and the median and the longest gap between frames from the
first event until one second after the last (16.7 ms is a smooth 60 Hz; a long gap is a stall).
Setups (``--browser-setups``):

* ``nogpu``: a browser without a GPU. Current Chrome then offers no WebGL at all (it no longer
  emulates it on the CPU unless told to), and bokeh draws the page on a 2-D canvas rasterised on
  the CPU, thinning each class out to 1 point in 10 while the view moves. Emulated here with
  ``--disable-gpu`` and a copy of the page whose maps ask for the canvas back end (headless
  Chromium would otherwise still emulate WebGL);
* ``swiftshader``: the page as written, WebGL emulated on the CPU by SwiftShader (what the test
  suite uses; much slower than either a GPU or the canvas).

Neither is a GPU: on a machine with one, WebGL draws the points on it.

Usage::

    python benchmarks/page.py [--sizes 10000,100000,1000000] [--browser-sizes 100000]
        [--thumbnails 20000] [--steps 10]
        [--browser-setups nogpu,swiftshader]
        [--data-dir DIR] [--out FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "fashion-mnist"


def _fashion_images(data_dir: Path) -> np.ndarray:
    path = data_dir / "train-images-idx3-ubyte.gz"
    if not path.exists():
        path = data_dir / "train-images-idx3-ubyte"
        raw = path.read_bytes()
    else:
        raw = gzip.decompress(path.read_bytes())
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 28, 28)


def _results(n: int, seed: int = 0):
    from featscope.results import EmbeddingResult, Provenance

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    ids = tuple(f"synthetic:{i}" for i in range(n))
    names = tuple(f"class {i}" for i in range(10))
    out = []
    for k in range(2):
        angle = 2 * np.pi * (labels + 3 * k) / 10
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 30
        coords = centres + rng.normal(scale=4.0, size=(n, 2))
        out.append(
            EmbeddingResult(
                coords=coords,
                labels=labels,
                class_names=names,
                ids=ids,
                point=f"stage{k}",
                method="tsne",
                metrics={"knn_accuracy_map": 0.9},
                provenance=Provenance(model="synthetic", source="benchmark"),
            )
        )
    return out


def write_page_at(n: int, images: np.ndarray, cap: int, folder: Path) -> dict:
    from featscope.data.thumbnails import encode_thumbnails, make_thumbnails, thumbnail_indices
    from featscope.render.page import build_page, write_page

    results = _results(n)
    start = time.perf_counter()
    rows = thumbnail_indices(n, cap)
    thumbs = make_thumbnails(images, rows % len(images))
    uris = encode_thumbnails(thumbs)
    t_thumbs = time.perf_counter() - start
    start = time.perf_counter()
    text = build_page(results, uris, rows)
    path = write_page(folder / f"page_{n}.html", text)
    t_page = time.perf_counter() - start
    size = path.stat().st_size
    print(
        f"N={n:>9,}: thumbnails ({len(rows):,}) {t_thumbs:6.1f} s, page {t_page:6.1f} s, "
        f"{size / 2**20:7.1f} MiB",
        flush=True,
    )
    return {
        "n": n,
        "thumbnails": len(rows),
        "thumbs_s": t_thumbs,
        "page_s": t_page,
        "total_s": t_thumbs + t_page,
        "bytes": size,
        "path": str(path),
    }


FRAMES_JS = """
window.__frames = [];
(function loop(t) { window.__frames.push(t); requestAnimationFrame(loop); })(performance.now());
const doc = Bokeh.documents[0];
const pv = doc.views_manager.find_one(doc.get_model_by_name('map_0'));
const r = pv.canvas.el.getBoundingClientRect();
const f = pv.frame.bbox;
return [r.left + f.left + f.width / 2, r.top + f.top + f.height / 2, f.width,
        pv.canvas_view.webgl != null];
"""

ACTIVATE_PAN_JS = """
const fig = Bokeh.documents[0].get_model_by_name('map_0');
for (const t of fig.toolbar.tools) { if (t.type === 'PanTool') { t.active = true; } }
"""


def _gaps(driver, start: float) -> list[float]:
    frames = [t for t in driver.execute_script("return window.__frames") if t >= start]
    return [b - a for a, b in itertools.pairwise(frames)]


def browse(path: Path, steps: int, setup: str) -> dict:
    """Open the page and scroll (zoom) and drag (pan) the first map with real input events."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    nogpu = setup == "nogpu"
    if nogpu:
        # what a browser without a GPU (so without WebGL: current Chrome no longer emulates it)
        # does with the page: bokeh draws on a 2-D canvas, rasterised on the CPU
        text = path.read_text(encoding="utf-8")
        path = path.with_name(f"{path.stem}_canvas.html")
        path.write_text(
            text.replace('"output_backend":"webgl"', '"output_backend":"canvas"'),
            encoding="utf-8",
        )
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    base = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000")
    swiftshader = ("--enable-unsafe-swiftshader", "--use-angle=swiftshader")
    for arg in (
        *base,
        "--proxy-server=127.0.0.1:9",
        *(("--disable-gpu",) if nogpu else swiftshader),
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        service=Service(executable_path="/usr/bin/chromedriver"), options=options
    )
    try:
        driver.set_page_load_timeout(600)
        start = time.perf_counter()
        driver.get(path.resolve().as_uri())
        while not driver.execute_script(
            "return !!(window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle)"
        ):
            time.sleep(0.05)
        load_s = time.perf_counter() - start
        cx, cy, _width, webgl = driver.execute_script(FRAMES_JS)
        time.sleep(0.5)

        def mouse(kind: str, x: float, y: float, **extra) -> None:
            driver.execute_cdp_cmd(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, **extra}
            )

        t0 = driver.execute_script("return performance.now()")
        wall = time.perf_counter()
        for i in range(steps):  # a scroll: wheel notches 50 ms apart, in then out
            mouse("mouseWheel", cx, cy, deltaX=0, deltaY=-120 if i < steps // 2 else 120)
            time.sleep(0.05)
        time.sleep(1.0)
        zoom = _gaps(driver, t0)
        # each dispatch returns once the page has taken the event: a busy page delays them
        zoom_wall = time.perf_counter() - wall - 1.0

        driver.execute_script(ACTIVATE_PAN_JS)
        t0 = driver.execute_script("return performance.now()")
        mouse("mousePressed", cx, cy, button="left", clickCount=1)
        for i in range(1, steps + 1):  # a drag: 20 px moves 30 ms apart
            mouse("mouseMoved", cx + 20 * i, cy, button="left", buttons=1)
            time.sleep(0.03)
        mouse("mouseReleased", cx + 20 * steps, cy, button="left", clickCount=1)
        time.sleep(1.0)
        pan = _gaps(driver, t0)
    finally:
        driver.quit()
    row = {
        "setup": setup,
        "backend": "webgl" if webgl else "canvas",
        "load_s": load_s,
        "zoom_frame_median_ms": statistics.median(zoom),
        "zoom_longest_frame_ms": max(zoom),
        "zoom_events_s": zoom_wall,
        "pan_frame_median_ms": statistics.median(pan),
        "pan_longest_frame_ms": max(pan),
    }
    print(
        f"  {setup} -> drawn with {row['backend']}: idle after {load_s:.1f} s; "
        f"{steps} wheel notches taken in {zoom_wall:.1f} s; "
        f"while zooming frames median {row['zoom_frame_median_ms']:.0f} ms, longest "
        f"{row['zoom_longest_frame_ms']:.0f} ms; while panning median "
        f"{row['pan_frame_median_ms']:.0f} ms, longest {row['pan_longest_frame_ms']:.0f} ms",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--browser-sizes", default="100000")
    parser.add_argument("--thumbnails", type=int, default=20_000)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "page.json")
    parser.add_argument("--keep", type=Path, help="keep the pages in this folder")
    parser.add_argument("--steps", type=int, default=10, help="wheel notches and drag moves")
    parser.add_argument(
        "--browser-setups",
        default="nogpu,swiftshader",
        help="nogpu: Chromium with --disable-gpu; swiftshader: WebGL emulated on the CPU",
    )
    args = parser.parse_args(argv)

    import bokeh

    load_at_start = list(os.getloadavg())
    images = _fashion_images(args.data_dir)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    browser_sizes = {int(s) for s in args.browser_sizes.split(",") if s}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            row = write_page_at(n, images, args.thumbnails, folder)
            if n in browser_sizes:
                row["browser"] = [
                    browse(Path(row["path"]), args.steps, setup)
                    for setup in args.browser_setups.split(",")
                ]
            rows.append(row)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_average_at_start": load_at_start,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "bokeh": bokeh.__version__,
        "machine": platform.machine(),
        "argv": sys.argv[1:],
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
