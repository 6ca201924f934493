"""``work_dir=None`` keeps everything in memory, the page included, and writes nothing; a run
folder loads back into objects that show themselves like fresh ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _notebook_helpers import decode_png, html_images, iframe_page
from PIL import Image

import featscope
from featscope.data.browse import BrowseOptions
from featscope.errors import DataError
from featscope.options import Extraction, Output, Selection
from featscope.results import TsneRun

NOWHERE = Output(work_dir=None)
QUIET = Extraction(progress=False)
FEW = Selection(max_num_samples=6, seed=0)
CSV_DIR = Path("/work/shared/data/model-vs-human-cue-conflict")


class _Photos:
    """A user's own torch-style Dataset: (PIL image, label) items."""

    def __init__(self, n: int = 3) -> None:
        rng = np.random.default_rng(0)
        self.images = [
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(n)
        ]
        self.classes = ["cat", "dog"]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], i % 2


def _everything_under(folder: Path) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
    )


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_tsne_without_work_dir_keeps_the_page_in_memory_and_writes_nothing(empty_cwd):
    run = featscope.tsne(selection=FEW, extraction=QUIET, output=NOWHERE)
    assert run.run_dir is None
    assert run.page is None
    assert run.thumbnails is not None
    assert len(run.thumbnails) == len(run.results[0].ids)
    page = run.page_html
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/webp;base64,") >= len(run.results[0].ids)  # hover pictures
    assert iframe_page(run._repr_mimebundle_()["text/html"]) == page
    assert len(run.to_dataframe()) == 3 * len(run.results[0].ids)
    assert _everything_under(empty_cwd) == []
    assert "in memory (work_dir=None: nothing written)" in repr(run)


def test_every_other_view_without_work_dir_writes_nothing(empty_cwd):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    fmaps = featscope.feature_maps(_Photos(2), net, ["0"], extraction=QUIET, output=NOWHERE)
    assert [p.shape for p in html_images(fmaps._repr_mimebundle_()["text/html"])] == [
        m.drawn.shape for m in fmaps.maps
    ]
    recon = featscope.reconstruct(extraction=QUIET, output=NOWHERE)
    assert len(html_images(recon._repr_mimebundle_()["text/html"])) == 4 * len(recon)
    browsed = featscope.browse(_Photos(2), options=BrowseOptions(n=2), output=NOWHERE)
    assert len(html_images(browsed._repr_mimebundle_()["text/html"])) >= 2 * 2
    shape = featscope.shape_bias_from_csv(CSV_DIR, models=["resnet50"], output=NOWHERE)
    assert decode_png(shape._repr_mimebundle_()["image/png"]).shape[0] > 200
    for run in (fmaps, recon, browsed, shape):
        assert "in memory (work_dir=None: nothing written)" in repr(run)
    assert _everything_under(empty_cwd) == []


def test_a_loaded_tsne_run_shows_itself_like_the_fresh_one(tmp_path):
    run = featscope.tsne(selection=FEW, extraction=QUIET, output=Output(work_dir=tmp_path))
    record = featscope.load_run(run.run_dir)
    text = repr(record)
    assert text.startswith(f"<RunRecord tsne at {run.run_dir}")
    assert "pre_logits (tsne, 60 samples): " in text
    assert "knn_accuracy_map 0.9" in text
    assert len(text) < 2000
    loaded = record.as_run()
    assert isinstance(loaded, TsneRun)
    assert [r.point for r in loaded.results] == [r.point for r in run.results]
    assert [f.features.shape for f in loaded.features] == [f.features.shape for f in run.features]
    np.testing.assert_array_equal(loaded.thumbnails, run.thumbnails)
    assert loaded.page_html == run.page_html == (run.run_dir / "embedding.html").read_text()
    fresh, back = run.to_dataframe(), record.to_dataframe()
    assert back[["point", "id", "label", "class_name"]].equals(
        fresh[["point", "id", "label", "class_name"]]
    )
    np.testing.assert_allclose(back[["x", "y"]].to_numpy(), fresh[["x", "y"]].to_numpy(), rtol=1e-6)
    assert record.metrics_dataframe()["point"].tolist() == [r.point for r in run.results]
    assert iframe_page(record._repr_mimebundle_()["text/html"]) == run.page_html
    # compare without a work dir: the page stays in memory too
    before = _everything_under(tmp_path)
    both = featscope.compare([run.run_dir, run.run_dir], points=["pre_logits"], output=NOWHERE)
    assert both.page is None
    assert iframe_page(both._repr_mimebundle_()["text/html"]) == both.page_html
    assert len(both.to_dataframe()) == 2 * 60
    assert _everything_under(tmp_path) == before


def test_a_loaded_featmap_run_shows_its_pictures(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    run = featscope.feature_maps(
        _Photos(2), net, ["0"], extraction=QUIET, output=Output(work_dir=tmp_path)
    )
    record = featscope.load_run(run.run_dir)
    pictures = html_images(record._repr_mimebundle_()["text/html"])
    shapes = [p.shape for p in pictures]
    assert len(shapes) == len([f for f in record.files if f.endswith(".png")])  # every figure
    for fmap in run.maps:  # the maps among them, at their size (beside any overview sheet)
        assert fmap.drawn.shape in shapes
    with pytest.raises(DataError, match=r"written by featscope featmap; only tsne runs load back"):
        record.as_run()
