"""Pixel equality with the reference: golden outputs of MMEngine, MMRazor and OpenCV.

featmap_golden.npz was written by make_featmap_golden.py with mmengine 0.10.7, MMRazor 1.0.0's
``modify`` and opencv-python-headless 4.14 (x86-64, torch 2.14, 2 threads); none of them is
needed to run these tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from featmap_golden_inputs import deterministic_featmap, deterministic_image

from featscope.analysis.channels import topk_channels
from featscope.render.featmap import (
    draw_featmap,
    normalize_to_uint8,
    overlay_heatmap,
    resize_image,
)

GOLDEN = np.load(Path(__file__).with_name("featmap_golden.npz"))
X = deterministic_featmap(6, 5, 7)
IMG = deterministic_image(9, 11)


def test_mmengine_squeeze_mean_over_larger_image():
    out = draw_featmap(X, IMG, "squeeze_mean", crop_to_image=False)
    np.testing.assert_array_equal(out, GOLDEN["mmengine_squeeze_mean_overlay"])


def test_mmengine_select_max_with_resize_shape():
    out = draw_featmap(X, IMG, "select_max", resize_shape=(6, 13), alpha=0.3, crop_to_image=False)
    np.testing.assert_array_equal(out, GOLDEN["mmengine_select_max_resize"])


def test_mmengine_squeeze_mean_without_image():
    out = draw_featmap(X, None, "squeeze_mean", crop_to_image=False)
    np.testing.assert_array_equal(out, GOLDEN["mmengine_squeeze_mean_alone"])


def test_mmrazor_pixel_wise_max_crops_padded_map():
    padded = deterministic_featmap(4, 8, 6)  # 8/6 > 9/11: keep round(6 * 9 / 11) = 5 rows
    out = draw_featmap(padded, IMG, "pixel_wise_max", alpha=0.7, crop_to_image=True)
    np.testing.assert_array_equal(out, GOLDEN["mmrazor_pixel_wise_max_crop"])
    uncropped = draw_featmap(padded, IMG, "pixel_wise_max", alpha=0.7, crop_to_image=False)
    assert not np.array_equal(uncropped, out)


def test_three_channel_map_drawn_as_luminance():
    out = draw_featmap(deterministic_featmap(3, 5, 7), None, None, topk=0)
    np.testing.assert_array_equal(out, GOLDEN["mmengine_three_channels"])


def test_topk_tiles_and_order_match_reference():
    _, idx = topk_channels(X, 4)
    np.testing.assert_array_equal(idx, GOLDEN["topk_indices"])
    grid = draw_featmap(X, None, None, topk=4, arrangement=(2, 2), tile_labels=False)
    tiles = GOLDEN["topk_tiles"]
    h, w = tiles.shape[1:3]
    assert grid.shape == (2 * h, 2 * w, 3)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, 2)
        np.testing.assert_array_equal(grid[r * h : (r + 1) * h, c * w : (c + 1) * w], tile)


@pytest.mark.parametrize(
    ("key", "size"), [("cv2_resize_up", (13, 17)), ("cv2_resize_down", (3, 4))]
)
def test_resize_image_matches_opencv(key, size):
    np.testing.assert_array_equal(resize_image(IMG, size), GOLDEN[key])


@pytest.mark.parametrize("alpha", [0.3, 0.25, 0.7, 0.1])
def test_blend_matches_cv2_addweighted_on_all_levels(alpha):
    heat = np.arange(256, dtype=np.uint8)[::-1].reshape(16, 16, 1) * np.ones(3, np.uint8)
    base = np.arange(256, dtype=np.uint8).reshape(16, 16, 1) * np.ones(3, np.uint8)
    out = overlay_heatmap(heat, base, alpha)
    np.testing.assert_array_equal(out, GOLDEN[f"cv2_addweighted_{alpha}"])


def test_normalize_matches_cv2_including_truncated_maximum():
    ramp = np.linspace(-1.3, 2.9, 40, dtype=np.float32).reshape(5, 8)
    np.testing.assert_array_equal(normalize_to_uint8(ramp), GOLDEN["cv2_normalize_ramp"])
    three = np.linspace(0, 0.7, 3, dtype=np.float32).reshape(1, 3)
    np.testing.assert_array_equal(normalize_to_uint8(three), GOLDEN["cv2_normalize_linspace3"])
    np.testing.assert_array_equal(normalize_to_uint8(three), [[0, 127, 254]])  # not 255
