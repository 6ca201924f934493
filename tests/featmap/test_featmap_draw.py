"""draw_featmap: modes, grid layout, dtypes, NaN policy, shared scale and every error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featscope.analysis.channels import reduce_channels
from featscope.errors import ParameterError
from featscope.render.featmap import (
    draw_featmap,
    featmap_value_range,
    heatmap_rgb,
    overlay_heatmap,
    resize_bilinear,
)

RNG = np.random.default_rng(0)
# Eight channels with distinct patterns; offsets fix the ranking by signed spatial sum:
# channel order by sum = 3, 1, 7, 5, 4, 0, 6, 2.
OFFSETS = np.array([0.0, 5.0, -3.0, 7.0, 1.0, 2.0, -1.0, 4.0], np.float32)
X8 = (RNG.random((8, 4, 6)) + OFFSETS[:, None, None]).astype(np.float32)
ORDER = [3, 1, 7, 5, 4, 0, 6, 2]


def tile(grid: np.ndarray, i: int, cols: int, h: int, w: int) -> np.ndarray:
    r, c = divmod(i, cols)
    return grid[r * h : (r + 1) * h, c * w : (c + 1) * w]


def test_single_map_shape_and_colours():
    out = draw_featmap(X8)
    assert out.shape == (4, 6, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, heatmap_rgb(X8.max(axis=0)))


def test_topk_6_in_2x3_grid_order_and_size():
    grid = draw_featmap(X8, None, None, topk=6, arrangement=(2, 3), tile_labels=False)
    assert grid.shape == (2 * 4, 3 * 6, 3)
    for i, channel in enumerate(ORDER[:6]):
        np.testing.assert_array_equal(tile(grid, i, 3, 4, 6), heatmap_rgb(X8[channel]))


def test_topk_larger_than_channels_leaves_white_cells():
    grid = draw_featmap(X8[:4], None, None, topk=20, arrangement=(2, 3), tile_labels=False)
    assert grid.shape == (8, 18, 3)
    for i, channel in enumerate([3, 1, 0, 2]):
        np.testing.assert_array_equal(tile(grid, i, 3, 4, 6), heatmap_rgb(X8[channel]))
    assert (tile(grid, 4, 3, 4, 6) == 255).all()
    assert (tile(grid, 5, 3, 4, 6) == 255).all()


def test_arrangement_check_counts_tiles_drawn():
    # the reference rejected topk=9 with 4 channels in a 2x2 grid; 4 tiles fit
    grid = draw_featmap(X8[:4], None, None, topk=9, arrangement=(2, 2), tile_labels=False)
    assert grid.shape == (8, 12, 3)
    with pytest.raises(ParameterError, match=r"2x2 has 4 cells but 6 tiles are drawn \(topk=9"):
        draw_featmap(X8[:6], None, None, topk=9, arrangement=(2, 2))


def test_tile_labels_only_touch_the_label_corner():
    big = resize_bilinear(X8[:2], (32, 64))
    plain = draw_featmap(big, None, None, topk=2, arrangement=(1, 2), tile_labels=False)
    labelled = draw_featmap(big, None, None, topk=2, arrangement=(1, 2))
    changed = np.argwhere((plain != labelled).any(axis=2))
    assert len(changed) > 20  # text was drawn in both tiles
    assert changed[:, 0].max() < 20  # only in the top rows
    assert {int(c) // 64 for c in changed[:, 1]} == {0, 1}


def test_channel_names_replace_the_label_text():
    from featscope.render.featmap import _label_tile

    big = resize_bilinear(X8[:2], (32, 64))  # channel 0 ranks second, channel 1 first
    plain = draw_featmap(big, None, None, topk=2, arrangement=(1, 2), tile_labels=False)
    named = draw_featmap(big, None, None, topk=2, arrangement=(1, 2), channel_names=[40, 17])
    np.testing.assert_array_equal(
        tile(named, 0, 2, 32, 64), _label_tile(tile(plain, 0, 2, 32, 64).copy(), "channel: 17")
    )
    np.testing.assert_array_equal(
        tile(named, 1, 2, 32, 64), _label_tile(tile(plain, 1, 2, 32, 64).copy(), "channel: 40")
    )
    with pytest.raises(ParameterError, match=r"`channel_names` has 3 entries but `featmap` has 2"):
        draw_featmap(big, None, None, topk=2, arrangement=(1, 2), channel_names=[1, 2, 3])


def test_no_reduction_needs_one_or_three_channels():
    np.testing.assert_array_equal(draw_featmap(X8[:1], None, None, topk=0), heatmap_rgb(X8[0]))
    assert draw_featmap(X8[:3], None, None, topk=-1).shape == (4, 6, 3)
    with pytest.raises(ParameterError, match=r"has 8 channels; with channel_reduction=None and"):
        draw_featmap(X8, None, None, topk=0)


def test_overlay_resizes_featmap_to_image():
    image = RNG.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    out = draw_featmap(X8, image, "squeeze_mean", alpha=0.4)
    assert out.shape == (8, 12, 3)
    heat = heatmap_rgb(reduce_channels(resize_bilinear(X8, (8, 12)), "squeeze_mean"))
    np.testing.assert_array_equal(out, overlay_heatmap(heat, image, 0.4))


def test_crop_keeps_top_left_of_padded_map():
    x = np.zeros((1, 4, 4), np.float32)
    x[0, :2] = [[0, 1, 2, 3], [4, 5, 6, 7]]
    x[0, 2:] = 100.0  # padding rows: cropped away for a 2x4 image
    image = np.zeros((2, 4, 3), np.uint8)
    cropped = draw_featmap(x, image, "pixel_wise_max", alpha=1.0)
    np.testing.assert_array_equal(cropped, heatmap_rgb(x[0, :2]))
    resized = draw_featmap(x, image, "pixel_wise_max", alpha=1.0, crop_to_image=False)
    assert not np.array_equal(resized, cropped)


def test_resize_shape_sizes_output_and_image():
    image = RNG.integers(0, 256, (8, 12), dtype=np.uint8)  # gray
    out = draw_featmap(X8, image, "select_max", resize_shape=(5, 9))
    assert out.shape == (5, 9, 3)


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.uint8])
def test_fp16_and_integer_inputs(dtype):
    values = np.round(X8 * 10).astype(dtype)
    out = draw_featmap(values, None, "squeeze_mean")
    np.testing.assert_array_equal(
        out, draw_featmap(values.astype(np.float32), None, "squeeze_mean")
    )


def test_torch_half_and_bfloat16_tensors():
    t = torch.from_numpy(X8)
    for dtype in (torch.float16, torch.bfloat16):
        low = t.to(dtype)
        expected = draw_featmap(low.float().numpy(), None, "squeeze_mean")
        np.testing.assert_array_equal(draw_featmap(low, None, "squeeze_mean"), expected)


def test_batch_of_one_is_squeezed_and_other_shapes_fail():
    np.testing.assert_array_equal(draw_featmap(X8[None]), draw_featmap(X8))
    with pytest.raises(ParameterError, match=r"a batch of 2; expected \(C, H, W\)"):
        draw_featmap(np.stack([X8, X8]))
    with pytest.raises(ParameterError, match=r"\(1-D\); expected \(C, H, W\)"):
        draw_featmap(np.zeros(5))


def test_nan_raise_and_mask():
    x = X8.copy()
    x[2, 1, 1] = np.nan
    with pytest.raises(ParameterError, match=r"1 non-finite values .* nan_policy='mask'"):
        draw_featmap(x)
    filled = X8.copy()
    filled[2, 1, 1] = np.nanmin(x)
    np.testing.assert_array_equal(draw_featmap(x, nan_policy="mask"), draw_featmap(filled))


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_raise_and_mask(bad):
    # the reference let one inf flatten the whole colour scale into a single colour
    x = X8.copy()
    x[5, 0, 2] = bad
    x[1, 3, 3] = np.nan
    with pytest.raises(ParameterError, match=r"`featmap` has 2 non-finite values \(NaN or inf\)"):
        draw_featmap(x, None, "squeeze_mean")
    filled = x.copy()
    filled[5, 0, 2] = filled[1, 3, 3] = x[np.isfinite(x)].min()  # the smallest finite value
    masked = draw_featmap(x, None, "squeeze_mean", nan_policy="mask")
    np.testing.assert_array_equal(masked, draw_featmap(filled, None, "squeeze_mean"))
    assert len(np.unique(masked.reshape(-1, 3), axis=0)) > 2  # the scale is not flattened


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 2.0}, r"`alpha` 2.0 is outside \[0, 1\]"),
        ({"alpha": "0.8"}, r"`alpha` '0.8' is not a number"),
        ({"channel_reduction": "max"}, r"`channel_reduction` 'max' is not one of"),
        ({"channel_reduction": None, "topk": 2.5}, r"`topk` 2.5 is not an integer"),
        ({"arrangement": (4,)}, r"`arrangement` \(4,\) is not two positive integers"),
        ({"resize_shape": (0, 5)}, r"`resize_shape` \(0, 5\) is not two positive integers"),
        ({"nan_policy": "drop"}, r"`nan_policy` 'drop' is not one of"),
        ({"overlaid_image": np.zeros((4, 6, 3))}, r"`overlaid_image` has dtype float64"),
        ({"overlaid_image": np.zeros((4, 6, 2), np.uint8)}, r"expected an RGB image \(H, W, 3\)"),
        ({"value_range": (1.0, np.inf)}, r"`value_range` .* must be two finite numbers"),
    ],
)
def test_parameter_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        draw_featmap(X8, **kwargs)


def test_shared_scale_puts_tiles_on_one_scale():
    x = np.stack([np.linspace(0, 1, 12), np.linspace(0, 10, 12)]).reshape(2, 3, 4)
    x = x.astype(np.float32)
    own = draw_featmap(x, None, None, topk=2, arrangement=(1, 2), tile_labels=False)
    shared = draw_featmap(
        x, None, None, topk=2, arrangement=(1, 2), tile_labels=False, shared_scale=True
    )
    # tile 1 is channel 0 (smaller sum): own scale reaches dark red, the shared one stays blue
    np.testing.assert_array_equal(tile(own, 1, 2, 3, 4), heatmap_rgb(x[0]))
    np.testing.assert_array_equal(tile(shared, 1, 2, 3, 4), heatmap_rgb(x[0], (0.0, 10.0)))
    assert tuple(tile(own, 1, 2, 3, 4)[-1, -1]) == (128, 0, 0)
    assert tile(shared, 1, 2, 3, 4)[..., 0].max() == 0  # no red at all
    np.testing.assert_array_equal(tile(shared, 0, 2, 3, 4), heatmap_rgb(x[1]))


def test_value_range_across_calls():
    a, b = X8[:3], X8[3:6] * 3
    lo_a, hi_a = featmap_value_range(a, channel_reduction="squeeze_mean")
    lo_b, hi_b = featmap_value_range(b, channel_reduction="squeeze_mean")
    scale = (min(lo_a, lo_b), max(hi_a, hi_b))
    out = draw_featmap(a, None, "squeeze_mean", value_range=scale)
    reduced = a.sum(axis=0) / np.float32(3)
    np.testing.assert_array_equal(out, heatmap_rgb(reduced, scale))
    assert lo_a == pytest.approx(float(reduced.min()))
