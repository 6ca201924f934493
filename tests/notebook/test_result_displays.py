"""Every result shows itself: a short repr, a mime bundle, and its maps as a DataFrame."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _notebook_helpers import (
    EVIL,
    browse_result,
    decode_png,
    embedding,
    every_result,
    feature_map,
    html_images,
    iframe_page,
    recon_result,
    tsne_run,
)

from featscope.errors import MissingExtraError
from featscope.results import (
    REPR_MAX_CHARS,
    CompareRun,
    FeatmapRun,
    MonitorStep,
    ShapeBiasRun,
    TsneRun,
)

RESULTS = every_result()

# What each repr must say: the kind, the counts and the key numbers.
EXPECTED_REPR = {
    "FeatureSet": [
        "FeatureSet 'pre_logits'",
        "30 samples x 512 dims",
        "3 of 3 classes",
        "global_avg",
    ],
    "EmbeddingResult": [
        "t-SNE 2-D map of 30 samples",
        "knn_accuracy_map 0.875",
        "fields: prediction, confidence, site",
    ],
    "TsneRun": [
        "TsneRun: 2 maps of 30 samples",
        "layer3 (tsne, 2-D)",
        "trustworthiness 0.931",
        "in memory",
        "took 1.75 s",
    ],
    "CapturedMaps": ["CapturedMaps of 'a.png'", "layer3 layer3: 8x4x4"],
    "FeatureMap": ["a.png · layer3: values 256x14x14 -> picture 40x60"],
    "FeatmapRun": ["FeatmapRun featmap: 2 maps, 2 images", "timm:resnet18", "b.png · layer4"],
    "ReconstructedImage": ["img0.png: 32x32, 4 of 16 patches hidden, error 0.0125"],
    "ReconstructionResult": ["mae: 3 images, mask ratio 0.75, mean error 0.0125", "img2.png"],
    "ReconstructionRun": ["ReconstructionRun mae: 3 images", "in memory", "predict 0.20"],
    "ShapeBiasStats": ["resnet50: shape bias 0.364 (shape 8, texture 14, other 1; 2 categories)"],
    "ShapeBiasRun": ["ShapeBiasRun of 'resnet50': shape bias 0.364", "humans: shape bias"],
    "BrowsedSample": ["#0 cat/0.png", "Original 30x40, Resize(24) 24x24"],
    "BrowseResult": [
        "BrowseResult pipeline: 2 samples of val/",
        "1 steps: Resize(24)",
        "#1 cat/1.png",
    ],
    "CompareRun": ["CompareRun: 2 maps of 30 common samples", "run2 · b: knn_accuracy_map 0.875"],
    "MonitorStep": ["MonitorStep epoch 3: 1 maps of 30 samples", "pre_logits (tsne)"],
    "CamMap": ["CamMap('c.png', gradcam", "p=0.500, road=+0.250, 7x7"],
    "CamRun": ["CamRun(2 maps of 2 image(s), timm:resnet18 at 'layer4'", "gradcam"],
}


def test_every_result_type_is_covered():
    import featscope.results as results

    types = {name for name in results.__all__ if isinstance(getattr(results, name), type)}
    missing = types - {"Provenance"} - set(RESULTS)
    assert not missing, (
        f"{sorted(missing)} need a repr, a display in featscope/render/notebook.py and an "
        "entry in _notebook_helpers.every_result()"
    )


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_repr_is_short_and_says_what_it_holds(name):
    text = repr(RESULTS[name])
    assert len(text) < REPR_MAX_CHARS
    assert text.startswith((f"<{name}", f"{name}("))  # the CAM types keep their own form
    for part in EXPECTED_REPR[name]:
        assert part in text, (part, text)
    # no array dumps
    assert "array(" not in text
    assert "[[" not in text
    assert "mappingproxy" not in text


def test_repr_of_a_huge_run_stays_under_the_cap():
    run = tsne_run(points=tuple(f"blocks.{i}.{'x' * 80}" for i in range(300)), n=5)
    text = repr(run)
    assert len(text) < REPR_MAX_CHARS
    assert "... and 291 more" in text
    assert text.rstrip(">").endswith("reduce 0.50)")  # the tail survives the cut


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_mime_bundle_has_the_repr_and_a_rich_display(name):
    bundle = RESULTS[name]._repr_mimebundle_()
    assert bundle["text/plain"] == repr(RESULTS[name])
    assert {"text/html", "image/png"} & set(bundle)
    if "text/html" in bundle:
        again = RESULTS[name]._repr_html_()
        # a page rebuilt for a hand-made CompareRun differs in bokeh's element ids only
        assert again == bundle["text/html"] or name == "CompareRun"
        assert EVIL not in bundle["text/html"]  # every user string escaped
    else:  # a picture: IPython must not add a second, HTML copy
        assert RESULTS[name]._repr_html_() is None


@pytest.mark.parametrize("name", ["EmbeddingResult", "TsneRun", "CompareRun", "MonitorStep"])
def test_maps_show_the_interactive_page_inline_and_offline(name):
    page = iframe_page(RESULTS[name]._repr_mimebundle_()["text/html"])
    assert page.startswith("<!DOCTYPE html>")
    assert "Bokeh" in page  # bokeh's JavaScript is inline ...
    assert not re.search(r"<script[^>]+src=\"https?:", page)  # ... nothing is fetched
    assert "<script>alert" not in page  # the class name is data, not markup
    assert "img_29.png" in page  # the samples are on it


def test_the_page_of_a_run_has_its_thumbnails_and_titles():
    run = tsne_run()
    assert run.page_html is run.page_html  # built once
    assert run.page_html.count("data:image/webp;base64,") >= 30
    compare = RESULTS["CompareRun"]
    assert compare.page_html is None  # made by hand: the display builds it with the titles
    assert "run2 \\u00b7 b" in iframe_page(compare._repr_mimebundle_()["text/html"])
    kept = replace(compare, page_html="<!DOCTYPE html><p>kept</p>")
    assert iframe_page(kept._repr_mimebundle_()["text/html"]) == "<!DOCTYPE html><p>kept</p>"


def test_feature_map_shows_its_picture_at_its_size():
    fmap = feature_map(size=(40, 60))
    picture = decode_png(fmap._repr_mimebundle_()["image/png"])
    assert picture.shape == (40, 60, 3)
    np.testing.assert_array_equal(picture, fmap.drawn)


def test_featmap_run_shows_every_map_with_its_caption():
    run: FeatmapRun = RESULTS["FeatmapRun"]
    text = run._repr_mimebundle_()["text/html"]
    assert [p.shape for p in html_images(text)] == [(40, 60, 3), (20, 30, 3)]
    assert "a.png · layer3" in text
    assert "b.png · layer4" in text


def test_reconstruction_shows_the_four_panels_of_each_image():
    text = recon_result(3)._repr_mimebundle_()["text/html"]
    pictures = html_images(text)
    assert len(pictures) == 3 * 4
    assert {p.shape for p in pictures} == {(32, 32, 3)}
    assert "img1.png · error 0.0125" in text


def test_browse_shows_every_column_of_every_sample():
    text = browse_result(2)._repr_mimebundle_()["text/html"]
    assert [p.shape[:2] for p in html_images(text)] == [(30, 40), (24, 24)] * 2
    assert "Resize(24)" in text
    assert "&lt;script&gt;" in text


def test_shape_bias_shows_its_plot():
    run: ShapeBiasRun = RESULTS["ShapeBiasRun"]
    picture = decode_png(run._repr_mimebundle_()["image/png"])
    assert picture.ndim == 3
    assert picture.shape[0] > 200
    assert picture.shape[1] > 300
    assert len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 10  # drawn, not blank


def test_embedding_to_dataframe_has_coordinates_labels_and_fields():
    result = embedding(n=30)
    frame = result.to_dataframe()
    assert list(frame.columns) == [
        "id", "label", "class_name", "x", "y", "prediction", "confidence", "site",
    ]  # fmt: skip
    assert len(frame) == 30
    assert frame["class_name"].tolist()[:3] == ["cat", "dog", EVIL]
    np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(), result.coords)
    np.testing.assert_array_equal(frame["confidence"].to_numpy(), result.fields["confidence"])
    assert frame["site"].tolist()[:2] == ["site0", "site1"]


def test_run_frames_have_a_block_per_map_and_a_row_of_metrics_per_map():
    run: TsneRun = tsne_run(points=("a", "b", "c"), n=10)
    frame = run.to_dataframe()
    assert len(frame) == 30
    assert frame.columns[0] == "point"
    assert frame["point"].value_counts().to_dict() == {"a": 10, "b": 10, "c": 10}
    metrics = run.metrics_dataframe()
    assert metrics["point"].tolist() == ["a", "b", "c"]
    assert metrics["knn_accuracy_map"].tolist() == [0.875] * 3
    compare: CompareRun = RESULTS["CompareRun"]
    assert compare.to_dataframe()["map"].unique().tolist() == ["run1 · a", "run2 · b"]
    step = RESULTS["MonitorStep"].metrics_dataframe()
    assert step[["epoch", "point"]].values.tolist() == [[3, "pre_logits"]]


def test_unlabelled_maps_have_empty_class_names():
    result = replace(embedding(fields=False), labels=np.full(30, -1), class_names=())
    frame = result.to_dataframe()
    assert set(frame["class_name"]) == {""}
    assert list(frame.columns)[-1] == "y"
    assert "unlabelled" in repr(result)


def test_other_tables():
    recon = recon_result(2).to_dataframe()
    assert recon.columns.tolist() == ["image", "figure", "error", "hidden_patches", "patches"]
    assert recon["error"].tolist() == [0.0125, 0.0125]
    shape = RESULTS["ShapeBiasRun"].to_dataframe()
    row = shape[(shape.name == "resnet50") & (shape.category == "all")].iloc[0]
    assert (row.n_shape, row.n_texture) == (8, 14)
    assert set(shape.category) == {"all", "bear", "cat"}


def test_without_pandas_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'featscope\[pandas\]'"):
        embedding().to_dataframe()


def test_reprs_load_nothing_heavy():
    code = (
        "import sys, numpy as np\n"
        "from featscope.results import EmbeddingResult\n"
        "r = EmbeddingResult(np.zeros((3, 2)), np.zeros(3), ('a',), ('x', 'y', 'z'), 'p', 'pca')\n"
        "assert 'PCA 2-D map of 3 samples' in repr(r), repr(r)\n"
        "print(','.join(m for m in ('matplotlib', 'bokeh', 'pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_show_outside_a_notebook_opens_the_page_in_a_browser(monkeypatch, tmp_path):
    import featscope.render.notebook as notebook

    opened = []
    monkeypatch.setattr(notebook.webbrowser, "open", opened.append)
    monkeypatch.setattr(notebook.tempfile, "tempdir", str(tmp_path))
    run = tsne_run()
    run.show()
    [url] = opened
    assert url.startswith(f"file://{tmp_path}")
    assert Path(url[len("file://") :]).read_text(encoding="utf-8") == run.page_html


def test_show_outside_a_notebook_draws_pictures_in_a_window(monkeypatch):
    import matplotlib

    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    with pytest.warns(UserWarning, match="backend 'agg' is non-interactive"):
        feature_map().show()


def test_a_monitor_step_shows_its_maps_then_its_feature_maps():
    step = MonitorStep(epoch=2, results=(embedding(),), featmaps=(feature_map(size=(12, 18)),))
    text = step._repr_mimebundle_()["text/html"]
    frame, rest = text.split("</iframe>")
    assert iframe_page(frame + "</iframe>").startswith("<!DOCTYPE html>")
    assert [p.shape for p in html_images(rest)] == [(12, 18, 3)]
    assert "feature maps, epoch 2" in rest
    only_maps = MonitorStep(epoch=2, results=(), featmaps=(feature_map(),))
    assert "<iframe" not in only_maps._repr_mimebundle_()["text/html"]


def test_a_run_without_maps_shows_its_text():
    empty = TsneRun(results=(), features=(), run_dir=None)
    assert empty._repr_mimebundle_()["text/html"] == f"<pre>{html.escape(repr(empty))}</pre>"
    assert "no maps" in repr(empty)


def test_cam_runs_show_every_map_with_class_and_score():
    run = RESULTS["CamRun"]
    text = run._repr_mimebundle_()["text/html"]
    assert [p.shape for p in html_images(text)] == [(30, 20, 3), (16, 24, 3)]
    assert "gradcam · &lt;script&gt;" in text
    assert "p=0.500, road +0.250" in text
    assert decode_png(RESULTS["CamMap"]._repr_mimebundle_()["image/png"]).shape == (30, 20, 3)
    frame = run.to_dataframe()
    assert frame["image"].tolist() == ["c.png", "d.png"]
    assert frame["score"].tolist()[0] == 0.25
