"""write_monitor_step: one monitored epoch's figures, coordinates, scalars and feature maps."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
from _sinks_helpers import make_result

from featscope.options import Figures
from featscope.results import FeatureSet, MonitorStep
from featscope.sinks import LocalRun, Mirror
from featscope.sinks.layout import SCALARS_NAME
from featscope.sinks.monitor import write_monitor_step


class Recorder(Mirror):
    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def log_image(self, tag, image, step):
        self.calls.append(("image", tag, image.shape, step))

    def log_scalars(self, scalars, step):
        self.calls.append(("scalars", dict(scalars), step))

    def log_embedding(self, tag, features, result, thumbnails, step, present=None):
        self.calls.append(("embedding", tag, thumbnails, step))


def _step(epoch=3):
    result = make_result(metrics={"trustworthiness": 0.9, "n_samples": 4, "k": 5})
    features = FeatureSet(
        features=np.ones((4, 3), dtype=np.float32),
        labels=result.labels,
        class_names=result.class_names,
        ids=result.ids,
        point=result.point,
    )
    fmap = types.SimpleNamespace(
        image_id="a/1.png", name="layer1", drawn=np.zeros((6, 5, 3), dtype=np.uint8)
    )
    return MonitorStep(epoch=epoch, results=(result,), featmaps=(fmap,)), [features]


def test_an_epoch_gives_epoch_named_files_and_one_series_per_map(tmp_path):
    step, feature_sets = _step()
    recorder = Recorder()
    thumbs = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with LocalRun(tmp_path, "monitor", mirrors=[recorder]) as run:
        written = write_monitor_step(
            run, step, feature_sets, Figures(formats=("png", "svg"), dpi=30), thumbnails=thumbs
        )
        assert run.step == 3
        assert [p.name for p in written] == [
            "tsne_pre_logits_e0003.png",
            "tsne_pre_logits_e0003.svg",
            "coords_pre_logits_e0003.csv",
            "featmap_a_1.png_layer1_e0003.png",
        ]
    folder = run.final_path
    coords = (folder / "coords_pre_logits_e0003.csv").read_text().splitlines()
    assert coords[0] == "id,label,class_name,x,y"
    assert len(coords) == 1 + 4
    # the map is not a manifest result: every epoch would add one
    assert json.loads((folder / "manifest.json").read_text())["results"] == {}
    rows = [json.loads(line) for line in (folder / SCALARS_NAME).read_text().splitlines()]
    assert rows == [{"step": 3, "pre_logits/trustworthiness": pytest.approx(0.9)}]  # no counts
    images = [(c[1], c[3]) for c in recorder.calls if c[0] == "image"]
    assert images == [("tsne/pre_logits", 3), ("featmap/a_1.png_layer1", 3)]
    embeddings = [c for c in recorder.calls if c[0] == "embedding"]
    assert [(c[1], c[3]) for c in embeddings] == [("pre_logits", 3)]
    assert embeddings[0][2] is thumbs


def test_thumbnails_of_other_rows_are_left_out(tmp_path):
    step, feature_sets = _step()
    recorder = Recorder()
    thumbs = np.zeros((5, 8, 8, 3), dtype=np.uint8)  # five samples, one of them unreadable
    with LocalRun(tmp_path, "monitor", mirrors=[recorder]) as run:
        write_monitor_step(run, step, feature_sets, Figures(dpi=30), thumbnails=thumbs)
    ((_, tag, logged, _),) = [c for c in recorder.calls if c[0] == "embedding"]
    assert tag == "pre_logits"
    assert logged is None


def test_without_embeddings_nothing_reaches_the_projector(tmp_path):
    step, feature_sets = _step(epoch=0)
    recorder = Recorder()
    with LocalRun(tmp_path, "monitor", mirrors=[recorder]) as run:
        write_monitor_step(run, step, feature_sets, Figures(dpi=30), embeddings=False)
    assert not [c for c in recorder.calls if c[0] == "embedding"]
    assert (run.final_path / "tsne_pre_logits_e0000.png").is_file()


def test_feature_sets_must_match_the_maps(tmp_path):
    step, feature_sets = _step()
    with LocalRun(tmp_path, "monitor") as run, pytest.raises(ValueError, match="zip"):
        write_monitor_step(run, step, feature_sets * 2, Figures(dpi=30))
