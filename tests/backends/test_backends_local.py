"""LocalRun mirrors: what reaches a backend, and that a failing backend never costs the run."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from backends_helpers import thumbs, tiny_maps
from PIL import Image

from featscope.errors import ParameterError
from featscope.options import Output
from featscope.sinks import LocalRun, Mirror, open_run
from featscope.sinks.layout import SCALARS_NAME
from featscope.sinks.mirrors import escape_field, png_to_rgb


class Recorder(Mirror):
    name = "recorder"

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_on = fail_on

    def _record(self, *call):
        if call[0] == self.fail_on:
            raise OSError("disk of the backend is gone")
        self.calls.append(call)

    def start(self, run):
        self._record("start", run.run_name)

    def location(self):
        return {"where": "memory"}

    def log_image(self, tag, image, step):
        self._record("image", tag, image, step)

    def log_scalars(self, scalars, step):
        self._record("scalars", dict(scalars), step)

    def log_embedding(self, tag, features, result, thumbnails, step, present=None):
        self._record("embedding", tag, features, result, thumbnails, step, present)

    def log_config(self, config):
        self._record("config", dict(config))

    def close(self, success):
        self._record("close", success)

    def kinds(self, kind):
        return [c for c in self.calls if c[0] == kind]


def _png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_files_metrics_and_embeddings_reach_the_mirror(tmp_path):
    import matplotlib.figure

    rec = Recorder()
    fig = matplotlib.figure.Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    fs, result = tiny_maps()
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    with LocalRun(tmp_path, "tsne", mirrors=[rec]) as run:
        assert run.mirrors == ("recorder",)
        run.write_figure(fig, "tsne_neck", dpi=50)
        run.write_bytes("map.png", _png_bytes(pixels))
        run.write_bytes("raw.png", _png_bytes(pixels), tag="featmap/raw")
        run.write_bytes("sheet.png", _png_bytes(pixels), mirror=False)
        run.write_text("notes.txt", "not an image")
        run.write_embedding(result, "neck")
        run.step = 4
        run.log_metrics({"loss": 0.25, "bad": float("nan"), "name": "x", "flag": True})
        run.log_metrics({"acc": 1}, step=5, prefix="val/")
        run.log_embedding(fs, result, thumbs(len(fs)))
        run.add_metadata("options", {"dpi": 50})
    assert rec.calls[0] == ("start", run.final_path.name)
    images = rec.kinds("image")
    assert [(c[1], c[3]) for c in images] == [("tsne_neck", 0), ("map", 0), ("featmap/raw", 0)]
    # the mirror gets exactly the pixels of the png in the folder
    np.testing.assert_array_equal(
        images[0][2], png_to_rgb((run.final_path / "tsne_neck.png").read_bytes())
    )
    np.testing.assert_array_equal(images[1][2], pixels)
    assert rec.kinds("scalars") == [
        ("scalars", {"neck/knn_accuracy_map": 0.75, "neck/trustworthiness": 0.5}, 0),
        ("scalars", {"loss": 0.25}, 4),
        ("scalars", {"val/acc": 1.0}, 5),
    ]
    (embedding,) = rec.kinds("embedding")
    assert embedding[1] == "neck"
    assert embedding[2] is fs
    assert embedding[3] is result
    assert embedding[4].shape == (len(fs), 8, 8, 3)
    assert embedding[5] == 4
    assert ("config", {"options": {"dpi": 50}}) in rec.calls
    assert rec.calls[-1] == ("close", True)
    rows = [json.loads(line) for line in (run.final_path / SCALARS_NAME).read_text().splitlines()]
    assert rows == [{"loss": 0.25, "step": 4}, {"step": 5, "val/acc": 1.0}]
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    assert manifest["metadata"]["backends"] == {"recorder": {"where": "memory"}}
    assert SCALARS_NAME in {f["path"] for f in manifest["files"]}


def test_failing_mirror_warns_and_the_run_still_finishes(tmp_path):
    bad, good = Recorder(fail_on="scalars"), Recorder()
    with LocalRun(tmp_path, "tsne", mirrors=[bad, good]) as run:
        with pytest.warns(
            RuntimeWarning, match=r"recorder backend failed in log_scalars .*OSError"
        ):
            run.log_metrics({"a": 1.0})
        assert run.mirrors == ("recorder",)  # the failed one is dropped, the other goes on
        run.log_metrics({"b": 2.0})
    assert run.finished
    assert (run.final_path / "manifest.json").is_file()
    assert [c[1] for c in good.kinds("scalars")] == [{"a": 1.0}, {"b": 2.0}]
    assert bad.kinds("close") == []  # dropped before the end: never called again
    assert "log_scalars" in (run.final_path / "run.log").read_text()


def test_mirror_failing_to_start_is_dropped(tmp_path):
    run = LocalRun(tmp_path, "tsne", mirrors=[Recorder(fail_on="start")])
    with pytest.warns(RuntimeWarning, match="failed in start"):
        run.open()
    assert run.mirrors == ()
    run.log_metrics({"a": 1.0})
    run.finish()
    assert run.finished


def test_failed_run_closes_mirrors_as_failed(tmp_path):
    rec = Recorder()
    with pytest.raises(KeyError), LocalRun(tmp_path, "tsne", mirrors=[rec]):
        raise KeyError("boom")
    assert rec.calls[-1] == ("close", False)


def test_log_embedding_and_image_check_their_inputs(tmp_path):
    fs, result = tiny_maps(n=12)
    other_fs, _ = tiny_maps(n=8)
    with LocalRun(tmp_path, "tsne", mirrors=[Recorder()]) as run:
        with pytest.raises(ParameterError, match="needs `features`, `result` or both"):
            run.log_embedding(None, None)
        with pytest.raises(ParameterError, match="`result` has 12 samples but `features` has 8"):
            run.log_embedding(other_fs, result)
        with pytest.raises(ParameterError, match=r"\(12, size, size, 3\) uint8 .* \(5, 8, 8, 3\)"):
            run.log_embedding(fs, result, thumbs(5))
        with pytest.raises(ParameterError, match="must be a uint8 array"):
            run.log_image("x", np.zeros((4, 4, 3), dtype=np.float32))
        with pytest.raises(ParameterError, match="`step` must be an integer >= 0"):
            run.log_metrics({"a": 1.0}, step=-1)
        with pytest.raises(ParameterError, match="mapping of names to numbers"):
            run.log_metrics([1.0])


def test_open_run_rejects_bad_backend_requests(tmp_path):
    with pytest.raises(ParameterError, match=r"`--backend` must be one of .*; got 'mlflow'"):
        open_run(Output(work_dir=tmp_path, backends=["mlflow"]), "tsne")
    with pytest.raises(ParameterError, match="work_dir is None"):
        open_run(Output(work_dir=None, backends=["tensorboard"]), "tsne")
    with pytest.raises(ParameterError, match="entry for 'wandb', which is not among"):
        open_run(
            Output(work_dir=tmp_path, backends=["tensorboard"], backend_options={"wandb": {}}),
            "tsne",
        )
    assert open_run(Output(work_dir=tmp_path, backends=["local"]), "tsne").mirrors == ()
    with open_run(Output(work_dir=None), "tsne") as nothing:
        assert nothing is None


def test_escape_field_and_png_to_rgb():
    assert escape_field("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert escape_field(3) == "3"
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest transparent -> white
    out = png_to_rgb(_png_bytes(rgba))
    assert out.shape == (2, 3, 3)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[1, 2]) == (255, 255, 255)


def test_figure_without_png_is_rendered_for_the_mirror(tmp_path):
    import matplotlib.figure

    rec = Recorder()
    fig = matplotlib.figure.Figure(figsize=(1, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    with LocalRun(tmp_path, "tsne", mirrors=[rec]) as run:
        run.write_figure(fig, "only_svg", formats=("svg",), dpi=20, tag="maps/svg")
    assert [p.name for p in run.final_path.glob("only_svg.*")] == ["only_svg.svg"]
    ((_, tag, image, step),) = rec.kinds("image")
    assert tag == "maps/svg"
    assert step == 0
    assert image.dtype == np.uint8
    assert image.shape[2] == 3
    assert image.shape[0] > image.shape[1]  # a 1 x 2 inch figure is taller than wide


def test_thumbnails_for_some_samples_only(tmp_path):
    rec = Recorder()
    fs, result = tiny_maps(n=5)
    some = thumbs(2)
    with LocalRun(tmp_path, "tsne", mirrors=[rec]) as run:
        run.log_embedding(fs, result, some, thumbnail_indices=[3, 1])
        with pytest.raises(ParameterError, match=r"positions in 0\.\.4; got values from 1 to 5"):
            run.log_embedding(fs, result, some, thumbnail_indices=[1, 5])
        with pytest.raises(ParameterError, match="without `thumbnails`"):
            run.log_embedding(fs, result, thumbnail_indices=[1])
    ((*_, full, _step, present),) = rec.kinds("embedding")
    assert full.shape == (5, 8, 8, 3)
    np.testing.assert_array_equal(full[3], some[0])
    np.testing.assert_array_equal(full[1], some[1])
    assert not full[[0, 2, 4]].any()  # black tiles for the others
    assert present.tolist() == [False, True, False, True, False]
