"""The files of an embedding run: maps, metrics, figures, thumbnails and the page."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from _sinks_helpers import entries, make_result

from featscope.options import Figures
from featscope.results import FeatureSet
from featscope.sinks import LocalRun
from featscope.sinks.embedding import write_maps, write_page, write_thumbnails


def _features(result):
    return FeatureSet(
        features=np.ones((4, 3), dtype=np.float32),
        labels=result.labels,
        class_names=result.class_names,
        ids=result.ids,
        point=result.point,
    )


def test_write_maps_writes_the_tsne_layout_and_returns_the_figures(tmp_path):
    from featscope.render import plot_embedding

    result = make_result(metrics={"trustworthiness": 0.9})
    drawn = {"tsne pre_logits": plot_embedding(result).figure}
    with LocalRun(tmp_path, "tsne") as run:
        figures = write_maps(
            run, [_features(result)], [result], drawn, Figures(formats=("png", "svg"))
        )
    assert [p.name for p in figures] == ["tsne_pre_logits.png", "tsne_pre_logits.svg"]
    folder = run.final_path
    assert entries(folder) == [
        "class_names.txt",
        "coords_pre_logits.csv",
        "feat_pre_logits.npy",
        "ids.txt",
        "labels.npy",
        "manifest.json",
        "metrics.json",
        "run.log",
        "tsne_pre_logits.png",
        "tsne_pre_logits.svg",
    ]
    assert json.loads((folder / "metrics.json").read_text()) == {
        "pre_logits": {"trustworthiness": 0.9}
    }
    assert list(json.loads((folder / "manifest.json").read_text())["results"]) == ["pre_logits"]


def test_write_thumbnails_keeps_them_with_their_rows(tmp_path):
    thumbs = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with LocalRun(tmp_path, "tsne") as run:
        paths = write_thumbnails(run, thumbs, np.array([1, 3]))
    assert [p.name for p in paths] == ["thumbnails.npy", "thumbnail_rows.npy"]
    assert np.load(run.final_path / "thumbnail_rows.npy").tolist() == [1, 3]


def test_write_page_and_its_absence_without_bokeh(tmp_path, monkeypatch):
    result = make_result()
    with LocalRun(tmp_path / "a", "tsne") as run:
        page = write_page(run, [result])
    assert page.name == "embedding.html"
    assert "<html" in (run.final_path / "embedding.html").read_text(encoding="utf-8").lower()
    monkeypatch.setitem(sys.modules, "bokeh", None)  # `import bokeh` now fails
    with (
        LocalRun(tmp_path / "b", "tsne") as run,
        pytest.warns(UserWarning, match=r"no embedding\.html: .*bokeh"),
    ):
        assert write_page(run, [result]) is None
    assert not (run.final_path / "embedding.html").exists()
