"""The W&B backend in offline mode, read back from the offline run's own files."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from backends_helpers import (
    NASTY_NAMES,
    thumbs,
    tiny_maps,
    wandb_history,
    wandb_records,
    wandb_run_file,
    wandb_table_artifacts,
)

from featscope.errors import MissingExtraError
from featscope.options import Output
from featscope.sinks import open_run
from featscope.sinks.wandb import WandbMirror


def test_figures_metrics_and_map_table_land_in_the_offline_run(tmp_path, wandb_offline):
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    fs, result = tiny_maps(n=6)
    sprites = thumbs(len(fs), size=8)
    options = {"wandb": {"project": "unit-test"}}
    with open_run(
        Output(work_dir=tmp_path, backends=["wandb"], backend_options=options), "tsne"
    ) as run:
        run.write_figure(fig, "tsne_neck", dpi=40)
        run.write_embedding(result, "neck")
        run.log_embedding(fs, result, sprites)
        run.add_metadata("options", {"perplexity": 5})
    path = wandb_run_file(tmp_path)
    assert path.parent.name.startswith("offline-run-")

    kinds = [r.WhichOneof("record_type") for r in wandb_records(path)]
    assert kinds[0] == "header"
    assert "exit" in kinds
    (run_record,) = [r.run for r in wandb_records(path) if r.WhichOneof("record_type") == "run"]
    assert run_record.project == "unit-test"
    assert run_record.display_name == run.final_path.name

    history = wandb_history(path)
    assert set(history) == {0}
    row = history[0]
    assert row["neck/knn_accuracy_map"] == 0.75
    assert row["neck/trustworthiness"] == 0.5
    assert "neck/broken" not in row  # NaN is not logged
    assert row["tsne_neck._type"] == "image-file"
    figure_file = path.parent / "files" / row["tsne_neck.path"]
    assert figure_file.is_file()
    from featscope.sinks.mirrors import png_to_rgb

    np.testing.assert_array_equal(
        png_to_rgb(figure_file.read_bytes()),
        png_to_rgb((run.final_path / "tsne_neck.png").read_bytes()),
    )
    assert row["neck/map._type"] == "table-file"
    assert row["neck/map.nrows"] == 6

    ((table, files),) = wandb_table_artifacts(path)
    assert table["columns"] == ["id", "class", "label", "x", "y", "thumbnail"]
    ids = [r[0] for r in table["data"]]
    assert ids == list(fs.ids)
    assert [r[1] for r in table["data"]][:4] == list(NASTY_NAMES)  # stored as text, unchanged
    assert [r[2] for r in table["data"]] == [str(v) for v in fs.labels]
    np.testing.assert_allclose([[r[3], r[4]] for r in table["data"]], result.coords)
    from PIL import Image

    for i, row in enumerate(table["data"]):
        cell = row[5]
        assert cell["_type"] == "image-file"
        with Image.open(files[cell["path"]]) as thumb:
            np.testing.assert_array_equal(np.asarray(thumb.convert("RGB")), sprites[i])

    config = [r.config for r in wandb_records(path) if r.WhichOneof("record_type") == "config"]
    keys = {u.key for c in config for u in c.update}
    assert "options" in keys


def test_steps_are_epochs_and_never_go_back(tmp_path, wandb_offline):
    with open_run(Output(work_dir=tmp_path, backends=["wandb"]), "monitor") as run:
        for epoch in (0, 2):
            run.log_metrics({"acc": epoch / 10}, step=epoch)
        run.log_metrics({"late": 1.0}, step=1)  # W&B would drop it: logged at step 2
    history = wandb_history(wandb_run_file(tmp_path))
    assert history[0]["acc"] == 0.0
    assert history[2]["acc"] == 0.2
    assert history[2]["late"] == 1.0
    assert 1 not in history


def test_failed_run_marks_the_wandb_run_failed(tmp_path, wandb_offline):
    with (
        pytest.raises(RuntimeError, match="boom"),
        open_run(Output(work_dir=tmp_path, backends=["wandb"]), "tsne"),
    ):
        raise RuntimeError("boom")
    exits = [
        r.exit.exit_code
        for r in wandb_records(wandb_run_file(tmp_path))
        if r.WhichOneof("record_type") == "exit"
    ]
    assert exits == [1]
    assert not any(p.name.startswith("tsne") for p in tmp_path.iterdir())


def test_missing_wandb_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'featscope\[wandb\]'"):
        WandbMirror()
    with pytest.raises(MissingExtraError, match="Weights & Biases backend"):
        open_run(Output(work_dir=tmp_path, backends=["tensorboard", "wandb"]), "tsne")


def test_monitor_logs_each_epoch_to_wandb(tmp_path, wandb_offline):
    from backends_helpers import tiny_net

    import featscope
    from featscope.options import Figures, Preprocess, Selection

    monitor = featscope.Monitor(
        tiny_net(),
        "demo:digits",
        points=["5"],
        preprocess=Preprocess(input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3),
        selection=Selection(max_num_samples=3),  # 10 classes x 3
        figures=Figures(dpi=30),
        output=Output(
            work_dir=tmp_path,
            backends=["wandb"],
            backend_options={"wandb": {"project": "monitor-test"}},
        ),
        thumbnails=8,
    )
    for epoch in range(2):
        monitor.step(epoch)
    monitor.close()
    history = wandb_history(wandb_run_file(tmp_path))
    assert sorted(history) == [0, 1]
    for epoch in (0, 1):
        row = history[epoch]
        assert row["pca/5._type"] == "image-file"
        assert row["5/map._type"] == "table-file"
        assert row["5/map.nrows"] == 30
        assert row["5/knn_accuracy_map"] == monitor.history[epoch].metrics["5"]["knn_accuracy_map"]
        assert "5/n_samples" not in row  # counts are not charted


def test_rows_without_thumbnail_have_an_empty_cell(tmp_path, wandb_offline):
    fs, result = tiny_maps(n=4)
    with open_run(Output(work_dir=tmp_path, backends=["wandb"]), "tsne") as run:
        run.log_embedding(fs, result, thumbs(2), thumbnail_indices=[0, 2])
    ((table, _files),) = wandb_table_artifacts(wandb_run_file(tmp_path))
    cells = [row[5] for row in table["data"]]
    assert [c is None for c in cells] == [False, True, False, True]
    assert cells[0]["_type"] == "image-file"


def test_tables_past_the_row_limit_go_into_an_artifact(tmp_path, wandb_offline, monkeypatch):
    import wandb

    monkeypatch.setattr(wandb.Table, "MAX_ROWS", 4)  # as 10,000, for six rows
    fs, result = tiny_maps(n=6)
    with open_run(Output(work_dir=tmp_path, backends=["wandb"]), "tsne") as run:
        run.log_embedding(fs, result)
    path = wandb_run_file(tmp_path)
    assert "neck/map._type" not in wandb_history(path).get(0, {})  # run.log would cut it
    ((table, _files),) = wandb_table_artifacts(path)
    assert [r[0] for r in table["data"]] == list(fs.ids)  # all six rows
    artifacts = [
        r.artifact for r in wandb_records(path) if r.WhichOneof("record_type") == "artifact"
    ]
    assert any(a.type == "featscope-map" for a in artifacts)


def test_tables_past_the_artifact_limit_are_sampled_with_a_warning(
    tmp_path, wandb_offline, monkeypatch
):
    import wandb

    monkeypatch.setattr(wandb.Table, "MAX_ARTIFACT_ROWS", 4)
    fs, result = tiny_maps(n=6)
    with (
        pytest.warns(UserWarning, match="seeded sample of 4 of the 6 samples of map 'neck'"),
        open_run(Output(work_dir=tmp_path, backends=["wandb"]), "tsne") as run,
    ):
        run.log_embedding(fs, result)
    ((table, _files),) = wandb_table_artifacts(wandb_run_file(tmp_path))
    assert len(table["data"]) == 4


def test_wandb_dir_is_respected(tmp_path, wandb_offline, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    fs, result = tiny_maps(n=6)
    with open_run(Output(work_dir=tmp_path / "w", backends=["wandb"]), "tsne") as run:
        run.log_embedding(fs, result)
    assert wandb_run_file(tmp_path / "elsewhere").is_file()
    assert not (tmp_path / "w" / "wandb").exists()
