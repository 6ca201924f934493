"""User strings (class names, ids, options) never become markup in SVG, HTML or TensorBoard."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest

from featscope.cli import main

NAMES = (
    "<script>alert(1)</script>",
    "Tom & \"Jerry\" 'x'",
    "</svg><img src=x onerror=alert(2)>",
)
RAW_MARKUP = ("<script>alert(1)</script>", "<img src=x onerror=alert(2)>")


@pytest.fixture
def nasty_features(tmp_path):
    """Saved features whose class names are markup; returns the tsne arguments for them."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "f.npy", rng.normal(size=(30, 6)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(30) % 3)
    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return [
        "tsne",
        *("--features", str(tmp_path / "f.npy"), "--labels", str(tmp_path / "y.npy")),
        *("--class-names", str(tmp_path / "names.txt"), "--method", "pca", "--legend"),
        *("--quiet", "--work-dir", str(tmp_path / "work")),
    ]


def _no_active_svg(root: ET.Element) -> None:
    for element in root.iter():
        assert not element.tag.endswith(("script", "foreignObject")), element.tag
        assert not [a for a in element.attrib if a.lower().startswith("on")], element.attrib


@pytest.mark.parametrize("fonttype", ["none", "path"])
def test_class_names_in_svg_are_text_not_markup(tmp_path, nasty_features, fonttype):
    with matplotlib.rc_context({"svg.fonttype": fonttype}):
        assert main([*nasty_features, "--format", "svg", "--no-html"]) == 0
    (svg,) = (tmp_path / "work").glob("*/pca_f.svg")
    text = svg.read_text(encoding="utf-8")
    for raw in RAW_MARKUP:
        assert raw not in text
    root = ET.fromstring(text)  # well-formed: no name broke out of its element
    _no_active_svg(root)
    if fonttype == "none":  # text kept as text: the legend shows each name exactly
        shown = {"".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")}
        assert set(NAMES) <= shown


def test_class_names_in_the_interactive_page_are_escaped(tmp_path, nasty_features):
    assert main([*nasty_features, "--thumbnails", "0"]) == 0
    (page,) = (tmp_path / "work").glob("*/embedding.html")
    html = page.read_text(encoding="utf-8")
    for raw in RAW_MARKUP:
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # present, as text


@pytest.mark.filterwarnings("ignore:html5lib's sanitizer is deprecated:DeprecationWarning")
def test_tensorboard_text_of_options_renders_as_inert_text(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.text.text_plugin import text_array_to_html
    from tensorboard.util import tensor_util

    from featscope.options import Output
    from featscope.sinks import open_run

    with open_run(Output(work_dir=tmp_path, backends=["tensorboard"]), "tsne") as run:
        run.add_metadata("class_names", list(NAMES))
        run.add_metadata("note", "line one\n    </code></pre><script>alert(3)</script>")
    events = EventAccumulator(str(tmp_path / "tensorboard" / run.final_path.name))
    events.Reload()
    tags = [t for t in events.Tags()["tensors"] if t.startswith("metadata/")]
    assert sorted(tags) == ["metadata/class_names/text_summary", "metadata/note/text_summary"]
    for tag in tags:
        (event,) = events.Tensors(tag)
        html = text_array_to_html(tensor_util.make_ndarray(event.tensor_proto), True)
        assert "<script" not in html
        assert "<img" not in html
        assert "&lt;script&gt;" in html  # shown to the user, inert
