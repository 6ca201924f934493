"""feature_maps(): one file per image, point and level, never overwritten; raw maps; geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from featmap_view_helpers import photo, save_photo, tiny_handle
from PIL import Image

from featscope.analysis import featmap as featmap_analysis
from featscope.analysis.featmap import FeatmapStyle
from featscope.capture.hooks import capture
from featscope.data.photos import safe_name, take_unique, unique_stems
from featscope.options import Output
from featscope.render.featmap import draw_featmap, featmap_value_range
from featscope.views.featmap import FeatmapRun, feature_maps


def _run_dir_files(run: FeatmapRun) -> list[str]:
    return sorted(p.name for p in run.run_dir.iterdir())


def test_same_file_name_in_two_folders_gives_two_files(tmp_path):
    a = save_photo(tmp_path / "a" / "cat.jpg", seed=1)
    b = save_photo(tmp_path / "b" / "cat.jpg", seed=2)
    run = feature_maps([a, b], tiny_handle(), ["stage"], output=Output(work_dir=tmp_path / "wd"))
    files = _run_dir_files(run)
    assert "a_cat_stage.png" in files
    assert "b_cat_stage.png" in files
    assert "a_cat_stage.npy" in files
    assert "b_cat_stage.npy" in files
    # different photos -> different maps, each written to its own file
    first = np.load(run.run_dir / "a_cat_stage.npy")
    second = np.load(run.run_dir / "b_cat_stage.npy")
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, run[str(a), "stage"].values)
    png = np.asarray(Image.open(run.run_dir / "b_cat_stage.png"))
    np.testing.assert_array_equal(png, run[str(b), "stage"].drawn)


def test_unique_stems_rules():
    assert unique_stems(["x/coffee.jpg", "y/tea.png"]) == ["coffee", "tea"]
    assert unique_stems(["a/cat.jpg", "b/cat.jpg"]) == ["a_cat", "b_cat"]
    # same parent name too, and same stem with two extensions: numbered in order
    assert unique_stems(["x/a/cat.jpg", "y/a/cat.jpg", "cat.png"]) == ["a_cat", "a_cat-2", "cat"]
    assert unique_stems(["p/cat.jpg", "p/cat.png"]) == ["p_cat", "p_cat-2"]
    assert unique_stems([".hidden.png"]) == ["hidden"]


def test_tuple_levels_drawn_per_level_and_folder_input(tmp_path):
    save_photo(tmp_path / "imgs" / "one.png", seed=1)
    save_photo(tmp_path / "imgs" / "sub" / "two.png", seed=2)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    run = feature_maps(
        tmp_path / "imgs", tiny_handle(), ["neck", "stem"], output=Output(work_dir=tmp_path / "w")
    )
    assert [m.name for m in run.maps] == ["neck.0", "neck.1", "stem"] * 2
    assert [m.level for m in run.maps[:3]] == ["0", "1", None]
    files = _run_dir_files(run)
    for stem in ("one", "two"):
        for name in ("neck.0", "neck.1", "stem"):
            assert f"{stem}_{name}.png" in files
    assert "manifest.json" in files
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["view"] == "featmap"
    assert manifest["results"]["one_neck.1"]["point"] == "neck"
    assert manifest["results"]["one_neck.1"]["params"]["shape"] == [6, 4, 4]
    # levels keep their own resolution in the raw maps
    assert run.maps[0].values.shape == (6, 8, 8)
    assert run.maps[1].values.shape == (6, 4, 4)


def test_file_names_never_collide_between_image_and_point_names(tmp_path):
    handle = tiny_handle()
    images = [("x_neck", photo(1)), ("x", photo(2))]
    # "x_neck" + "0"... and "x" + "neck.0": distinct; force a real clash with point names
    run = feature_maps(images, handle, ["neck"], output=Output(work_dir=tmp_path))
    names = [m.file for m in run.maps]
    assert len(set(names)) == len(names) == 4
    clash = [("a_stem", photo(1)), ("a", photo(2))]
    used: set[str] = set()  # the run's stems are <image stem>_<output name>, never twice
    assert take_unique("a_stem_x", used) == "a_stem_x"
    assert take_unique(f"a_{safe_name('stem_x')}", used) == "a_stem_x-2"
    run = feature_maps(clash, handle, ["stem"], output=Output(work_dir=tmp_path))
    assert len({m.file for m in run.maps}) == 2


def test_raw_maps_are_the_captured_outputs_and_drawing_matches_draw_featmap():
    handle = tiny_handle()
    picture = photo(3, size=(16, 16))
    run = feature_maps(
        [("p", picture)],
        handle,
        ["stage"],
        style=FeatmapStyle(overlaid=True),
        output=Output(work_dir=None),
    )
    x = handle.preprocess(picture)[None]
    with capture(handle, ["stage"]) as tap:
        expected = tap.run(x)["stage"][0].numpy()
    np.testing.assert_array_equal(run["p", "stage"].values, expected)
    np.testing.assert_array_equal(
        run["p", "stage"].drawn, draw_featmap(expected, np.asarray(picture))
    )
    assert run.run_dir is None
    assert run.files == {}


def test_maps_line_up_with_the_original_photo():
    # The model's map is its input's channel 0: a bright square in the photo must come out
    # as the hottest place at the same pixels of the drawn picture, through resize and crop.
    class Through(torch.nn.Module):
        def forward(self, x):
            return x[:, :1]

    from featscope.models.handle import ModelHandle, PointRef, Preprocessing

    handle = ModelHandle(
        Through(),
        "through",
        "factory",
        Preprocessing(input_size=(32, 32), mean=(0,) * 3, std=(1,) * 3, crop_pct=0.8),
        aliases={"logits": PointRef("")},
    )
    array = np.zeros((60, 100, 3), np.uint8)
    array[20:30, 60:70] = 255  # right of centre, inside the centre crop
    run = feature_maps(
        [("sq", Image.fromarray(array))], handle, ["logits"], output=Output(work_dir=None)
    )
    item = run["sq", "logits"]
    left, top, right, bottom = item.params["region"]
    # the centre 80 % of the short side (48 px), left edge through timm's integer crop offset
    assert (left, top, right, bottom) == (25, 6, 73, 54)
    heat = item.drawn.astype(int)
    hot = (heat[..., 0] > 100) & (heat[..., 2] < 100)  # red end of JET
    ys, xs = np.nonzero(hot)
    assert ys.min() + top >= 20 - 2
    assert ys.max() + top < 30 + 2
    assert xs.min() + left >= 60 - 2
    assert xs.max() + left < 70 + 2
    assert item.drawn.shape == (48, 48, 3)  # the photo's own resolution, not the input's


def test_non_overlaid_has_the_overlaid_size_and_max_size_caps_it():
    picture = photo(4, size=(60, 80))
    plain = feature_maps([("p", picture)], tiny_handle(), ["stage"], output=Output(work_dir=None))
    over = feature_maps(
        [("p", picture)],
        tiny_handle(),
        ["stage"],
        style=FeatmapStyle(overlaid=True),
        output=Output(work_dir=None),
    )
    assert plain["p", "stage"].drawn.shape == over["p", "stage"].drawn.shape == (60, 60, 3)
    small = feature_maps(
        [("p", picture)],
        tiny_handle(),
        ["stage"],
        style=FeatmapStyle(max_size=30),
        output=Output(work_dir=None),
    )
    assert small["p", "stage"].drawn.shape == (30, 30, 3)
    sized = feature_maps(
        [("p", picture)],
        tiny_handle(),
        ["stage"],
        style=FeatmapStyle(resize_shape=(10, 20)),
        output=Output(work_dir=None),
    )
    assert sized["p", "stage"].drawn.shape == (10, 20, 3)


def test_topk_grid_and_shared_scale():
    picture = photo(5, size=(16, 16))
    run = feature_maps(
        [("p", picture)],
        tiny_handle(),
        ["neck"],
        style=FeatmapStyle(channel_reduction="none", topk=4, arrangement=(2, 2), shared_scale=True),
        output=Output(work_dir=None),
    )
    assert run["p", "neck.0"].drawn.shape == (32, 32, 3)
    low, high = run["p", "neck.0"].params["value_range"]
    assert run["p", "neck.1"].params["value_range"] == [low, high]
    ranges = [
        featmap_value_range(run["p", n].values, None, None, 4, (2, 2), (16, 16))
        for n in ("neck.0", "neck.1")
    ]
    assert (low, high) == pytest.approx((min(r[0] for r in ranges), max(r[1] for r in ranges)))
    separate = feature_maps(
        [("p", picture)],
        tiny_handle(),
        ["neck"],
        style=FeatmapStyle(shared_scale=False),
        output=Output(work_dir=None),
    )
    assert separate["p", "neck.1"].params["value_range"] is None


@pytest.mark.parametrize(
    ("reduction", "topk"), [("pixel_wise_max", 20), ("select_max", 20), (None, 3)]
)
def test_large_outputs_reduced_in_blocks_give_the_same_pixels(monkeypatch, reduction, topk):
    picture = photo(6, size=(40, 40))
    style = FeatmapStyle(channel_reduction=reduction, topk=topk, arrangement=(1, 3), overlaid=True)
    kwargs = dict(style=style, output=Output(work_dir=None))
    whole = feature_maps([("p", picture)], tiny_handle(), ["stage"], **kwargs)
    monkeypatch.setattr(featmap_analysis, "RESIZE_BUDGET", 40 * 40 * 2)  # blocks of 2 channels
    blocks = feature_maps([("p", picture)], tiny_handle(), ["stage"], **kwargs)
    np.testing.assert_array_equal(whole["p", "stage"].drawn, blocks["p", "stage"].drawn)


def test_squeeze_mean_in_blocks_is_within_one_level(monkeypatch):
    picture = photo(6, size=(40, 40))
    style = FeatmapStyle(channel_reduction="squeeze_mean", overlaid=False)
    kwargs = dict(style=style, output=Output(work_dir=None))
    whole = feature_maps([("p", picture)], tiny_handle(), ["stage"], **kwargs)
    monkeypatch.setattr(featmap_analysis, "RESIZE_BUDGET", 40 * 40 * 2)
    blocks = feature_maps([("p", picture)], tiny_handle(), ["stage"], **kwargs)
    diff = np.abs(whole["p", "stage"].drawn.astype(int) - blocks["p", "stage"].drawn.astype(int))
    assert diff.max() <= 4  # one gray level moves a JET colour by at most 4


def test_use_norm_standardises_each_channel():
    run = feature_maps(
        [("p", photo(7))],
        tiny_handle(),
        ["stage"],
        style=FeatmapStyle(use_norm=True, shared_scale=True),
        output=Output(work_dir=None),
    )
    # the shared scale is taken on the standardised maps: around 0, not the raw range
    low, high = run["p", "stage"].params["value_range"]
    assert low < 0 < high
