"""The TensorBoard backend, read back with TensorBoard's own event loader and projector plugin."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from backends_helpers import (
    NASTY_NAMES,
    ProjectorClient,
    photo,
    tb_events,
    thumbs,
    tiny_handle,
    tiny_maps,
)

from featscope.errors import MissingExtraError
from featscope.options import Output
from featscope.sinks import open_run
from featscope.sinks.mirrors import escape_field
from featscope.sinks.tensorboard import TensorBoardMirror, sprite_image


def _figure():
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_scalars_images_and_projector_are_readable_by_tensorboard(tmp_path):
    fs, result = tiny_maps(n=12)
    sprites = thumbs(len(fs), size=8)
    with open_run(Output(work_dir=tmp_path, backends=["local", "tensorboard"]), "tsne") as run:
        run.write_figure(_figure(), "tsne_neck", dpi=40)
        run.write_embedding(result, "neck")
        run.log_embedding(fs, result, sprites)
        run.log_metrics({"loss": 0.5}, step=2)
    log_dir = tmp_path / "tensorboard" / run.final_path.name
    assert run.mirrors == ()  # closed

    events = tb_events(log_dir)
    assert set(events.Tags()["scalars"]) == {
        "neck/knn_accuracy_map",
        "neck/trustworthiness",
        "loss",
    }
    assert [(s.step, s.value) for s in events.Scalars("neck/knn_accuracy_map")] == [(0, 0.75)]
    assert [(s.step, s.value) for s in events.Scalars("loss")] == [(2, 0.5)]
    (image,) = events.Images("tsne_neck")
    from featscope.sinks.mirrors import png_to_rgb

    expected = png_to_rgb((run.final_path / "tsne_neck.png").read_bytes())
    assert (image.height, image.width) == expected.shape[:2]
    np.testing.assert_array_equal(png_to_rgb(image.encoded_image_string), expected)

    client = ProjectorClient(tmp_path / "tensorboard")
    assert client.runs() == [run.final_path.name]
    info = client.info(run.final_path.name)
    names = [e["tensorName"] for e in info["embeddings"]]
    assert names == ["neck/pca@0", "neck/features@0"]  # the projector opens on the map
    np.testing.assert_allclose(
        client.tensor(run.final_path.name, "neck/features@0", (12, 5)), fs.features, rtol=1e-6
    )
    np.testing.assert_allclose(
        client.tensor(run.final_path.name, "neck/pca@0", (12, 2)), result.coords, rtol=1e-6
    )
    rows = client.metadata(run.final_path.name, "neck/features@0")
    assert rows[0] == ["label", "class_name", "id"]
    assert len(rows) == 13
    assert all(len(r) == 3 for r in rows)
    assert rows[2] == ["1", "tab\\there", "img\\t1.png"]
    assert [r[1] for r in rows[1:5]] == [escape_field(n) for n in NASTY_NAMES]
    sprite = client.sprite(run.final_path.name, "neck/features@0")
    assert sprite.shape == (4 * 8, 4 * 8, 3)  # ceil(sqrt(12)) = 4 tiles a side
    np.testing.assert_array_equal(sprite[8:16, 16:24], sprites[6])  # row 1, column 2
    assert info["embeddings"][1]["sprite"]["singleImageDim"] == [8, 8]


def test_projector_keeps_one_entry_per_step(tmp_path):
    fs, _result = tiny_maps(n=6)
    with open_run(Output(work_dir=tmp_path, backends=["tensorboard"]), "monitor") as run:
        for epoch in (0, 3):
            run.step = epoch
            run.log_embedding(fs, None)  # features only, no sprite
    client = ProjectorClient(tmp_path / "tensorboard")
    info = client.info(run.final_path.name)
    assert [e["tensorName"] for e in info["embeddings"]] == ["neck/features@0", "neck/features@3"]
    assert all("sprite" not in e for e in info["embeddings"])


def test_sprite_shrinks_tiles_to_stay_within_the_limit():
    tiles = thumbs(10, size=32)
    sprite, tile = sprite_image(tiles, max_side=64)  # 4 x 4 grid -> 16-pixel tiles
    assert tile == 16
    assert sprite.size == (64, 64)
    sprite, tile = sprite_image(tiles)
    assert tile == 32
    assert sprite.size == (128, 128)


def test_featmap_view_logs_its_pictures_to_tensorboard(tmp_path):
    import featscope
    from featscope.options import Output

    done = featscope.feature_maps(
        [photo(0), photo(1)],
        tiny_handle(),
        ["0"],
        output=Output(work_dir=tmp_path, backends=["tensorboard"]),
    )
    events = tb_events(tmp_path / "tensorboard" / done.run_dir.name)
    pngs = sorted(p.stem for p in done.run_dir.glob("*.png"))
    assert len(pngs) == 3  # two maps and the sheet of both
    assert sorted(events.Tags()["images"]) == pngs
    for fmap in done.maps:
        (image,) = events.Images(fmap.file)
        assert (image.height, image.width) == fmap.drawn.shape[:2]


def test_tsne_view_fills_the_projector_with_features_map_and_sprite(tmp_path):
    import featscope
    from featscope.options import EmbeddingOptions, Extraction, Selection

    done = featscope.tsne(
        points=["pre_logits"],
        embedding=EmbeddingOptions(method="pca"),
        selection=Selection(max_num_class=3, max_num_samples=5),
        extraction=Extraction(progress=False),
        output=Output(work_dir=tmp_path, backends=["tensorboard"]),
        thumbnails=10,
    )
    name = done.run_dir.name
    client = ProjectorClient(tmp_path / "tensorboard")
    info = client.info(name)
    assert [e["tensorName"] for e in info["embeddings"]] == [
        "pre_logits/pca@0",
        "pre_logits/features@0",
    ]
    fs, result = done.features[0], done.results[0]
    np.testing.assert_allclose(
        client.tensor(name, "pre_logits/pca@0", result.coords.shape), result.coords, rtol=1e-6
    )
    rows = client.metadata(name, "pre_logits/features@0")
    assert [r[2] for r in rows[1:]] == [escape_field(i) for i in fs.ids]
    # 15 samples, 10 with thumbnails (the run folder's own): the sprite holds 4 x 4 tiles
    kept = np.load(done.run_dir / "thumbnail_rows.npy")
    tiles = np.load(done.run_dir / "thumbnails.npy")
    size = tiles.shape[1]
    sprite = client.sprite(name, "pre_logits/features@0")
    assert sprite.shape == (4 * size, 4 * size, 3)
    first = int(kept.min())
    row, col = divmod(first, 4)
    np.testing.assert_array_equal(
        sprite[row * size : (row + 1) * size, col * size : (col + 1) * size],
        tiles[int(np.argmin(kept))],
    )


def test_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'featscope\[tensorboard\]'"):
        TensorBoardMirror()
    with pytest.raises(MissingExtraError, match="TensorBoard backend"):
        open_run(Output(work_dir=tmp_path, backends=["tensorboard"]), "tsne")
    assert not any(tmp_path.iterdir())  # failed before anything was written


def test_projector_opens_on_the_map_coloured_by_class_with_the_fields(tmp_path):
    import json
    from dataclasses import replace

    fs, result = tiny_maps(n=6)
    result = replace(
        result, fields={"cluster": np.array([0, 0, 1, 1, 2, -1]), "site": np.array(list("abcabc"))}
    )
    with open_run(Output(work_dir=tmp_path, backends=["tensorboard"]), "tsne") as run:
        run.log_embedding(fs, result)
    name = run.final_path.name
    log_dir = tmp_path / "tensorboard" / name
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    assert manifest["metadata"]["backends"]["tensorboard"]["command"] == (
        f"tensorboard --logdir {log_dir}"
    )
    client = ProjectorClient(tmp_path / "tensorboard")
    first = client.info(name)["embeddings"][0]
    assert first["tensorName"] == "neck/pca@0"
    (state,) = json.loads((log_dir / first["bookmarksPath"]).read_text())
    assert state["selectedColorOptionName"] == "class_name"
    assert state["selectedProjection"] == "pca"
    assert state["projections"][3] == pytest.approx(
        {"pca-0": result.coords[3, 0], "pca-1": result.coords[3, 1]}
    )
    rows = client.metadata(name, "neck/pca@0")
    assert rows[0] == ["label", "class_name", "id", "cluster", "site"]
    assert [r[3:] for r in rows[1:3]] == [["0", "a"], ["0", "b"]]


def test_tsne_cli_prints_the_command_that_opens_tensorboard(tmp_path, capsys):
    from featscope.cli import main

    args = ["tsne", "--method", "pca", "--max-num-samples", "2", "--max-num-class", "3"]
    args += ["--quiet", "--no-html", "--backend", "tensorboard", "--work-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.name.startswith("tsne_")]
    assert (
        f"open it in TensorBoard: tensorboard --logdir {tmp_path / 'tensorboard' / run_dir.name}"
        in out
    )
