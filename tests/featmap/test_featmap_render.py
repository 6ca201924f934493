"""Drawing primitives: JET table, min-max scaling, blend rounding, resizing, MMRazor's crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featscope.errors import ParameterError
from featscope.render.featmap import (
    JET_LUT,
    crop_to_aspect,
    heatmap_rgb,
    jet_colormap,
    normalize_to_uint8,
    overlay_heatmap,
    resize_bilinear,
    resize_image,
)


def test_jet_end_points_and_mid_point():
    assert JET_LUT.shape == (256, 3)
    assert JET_LUT.dtype == np.uint8
    assert tuple(JET_LUT[0]) == (0, 0, 128)  # min: dark blue
    assert tuple(JET_LUT[255]) == (128, 0, 0)  # max: dark red
    assert tuple(JET_LUT[128]) == (130, 255, 126)


@pytest.mark.parametrize(
    ("level", "rgb"),
    [
        (31, (0, 0, 252)),
        (32, (0, 0, 255)),
        (33, (0, 4, 255)),
        (95, (0, 252, 255)),
        (96, (2, 255, 254)),
        (127, (126, 255, 130)),
        (158, (250, 255, 6)),
        (159, (254, 255, 1)),
        (160, (255, 252, 0)),
        (223, (255, 0, 0)),
        (224, (252, 0, 0)),
    ],
)
def test_jet_table_breakpoints(level, rgb):
    # values read off cv2.applyColorMap(np.arange(256, dtype=np.uint8), cv2.COLORMAP_JET)
    assert tuple(JET_LUT[level]) == rgb


def test_jet_colormap_shape_and_dtype_check():
    out = jet_colormap(np.array([[0, 255]], np.uint8))
    assert out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out[0], [[0, 0, 128], [128, 0, 0]])
    with pytest.raises(ParameterError, match=r"dtype float64; jet_colormap takes uint8"):
        jet_colormap(np.zeros(3))


def test_normalize_truncates_instead_of_rounding():
    # scale 127.5: 1 -> 127.5 -> 127 (truncated), 2 -> 255
    np.testing.assert_array_equal(normalize_to_uint8(np.array([0.0, 1.0, 2.0])), [0, 127, 255])


def test_normalize_constant_map_is_all_zero():
    np.testing.assert_array_equal(normalize_to_uint8(np.full((2, 3), 7.5)), np.zeros((2, 3)))


def test_normalize_with_value_range_clips_outside():
    out = normalize_to_uint8(np.array([0.0, 5.0, 10.0, 30.0, -1.0]), value_range=(0, 20))
    np.testing.assert_array_equal(out, [0, 63, 127, 255, 0])  # 63.75 and 127.5 truncated
    with pytest.raises(ParameterError, match=r"`value_range` \(3, 1\) must be two finite"):
        normalize_to_uint8(np.zeros(2), value_range=(3, 1))
    with pytest.raises(ParameterError, match=r"is not a pair of numbers"):
        normalize_to_uint8(np.zeros(2), value_range="0-1")


def test_normalize_rejects_nan():
    with pytest.raises(ParameterError, match=r"`values` has 1 non-finite values"):
        normalize_to_uint8(np.array([0.0, np.nan]))


def test_heatmap_rgb_min_and_max_colours():
    out = heatmap_rgb(np.array([[0.0, 1.0]], np.float32))
    np.testing.assert_array_equal(out[0], [[0, 0, 128], [128, 0, 0]])
    with pytest.raises(ParameterError, match=r"heatmap_rgb takes \(H, W\), \(1, H, W\) or"):
        heatmap_rgb(np.zeros((2, 3, 3)))


@pytest.mark.parametrize(
    ("image", "heat", "alpha", "expected"),
    [
        (1, 2, 0.5, 2),  # 1.5 -> 2 (half to even)
        (3, 2, 0.5, 2),  # 2.5 -> 2 (half to even, not up)
        (0, 255, 0.5, 128),  # 127.5 -> 128
        (255, 0, 0.5, 128),
        (0, 1, 0.5, 0),  # 0.5 -> 0
        (10, 20, 0.25, 12),  # 7.5 + 5 = 12.5 -> 12
        (11, 20, 0.25, 13),  # 8.25 + 5 = 13.25 -> 13
        (200, 17, 0.0, 200),  # alpha 0: the image
        (200, 17, 1.0, 17),  # alpha 1: the heat map
    ],
)
def test_blend_rounding_by_hand(image, heat, alpha, expected):
    img = np.full((1, 1, 3), image, np.uint8)
    hot = np.full((1, 1, 3), heat, np.uint8)
    assert overlay_heatmap(hot, img, alpha)[0, 0, 0] == expected


def test_blend_alpha_weights_the_heat_map():
    img = np.zeros((1, 1, 3), np.uint8)
    hot = np.full((1, 1, 3), 200, np.uint8)
    assert overlay_heatmap(hot, img, 0.8)[0, 0, 0] == 160


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan")])
def test_alpha_out_of_range(alpha):
    hot = np.zeros((1, 1, 3), np.uint8)
    with pytest.raises(ParameterError, match=r"`alpha` .* is outside \[0, 1\]; it is the weight"):
        overlay_heatmap(hot, hot, alpha)


@pytest.mark.parametrize("alpha", ["0.8", True, None])
def test_alpha_not_a_number(alpha):
    hot = np.zeros((1, 1, 3), np.uint8)
    with pytest.raises(ParameterError, match=r"`alpha` .* is not a number"):
        overlay_heatmap(hot, hot, alpha)


def test_blend_image_checks():
    hot = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ParameterError, match=r"`image_rgb` has dtype float32; expected uint8"):
        overlay_heatmap(hot, np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ParameterError, match=r"`image_rgb` is \(3, 2\) but `heat_rgb` is \(2, 2\)"):
        overlay_heatmap(hot, np.zeros((3, 2, 3), np.uint8))
    gray = np.full((2, 2), 100, np.uint8)
    rgba = np.dstack([np.full((2, 2, 3), 100, np.uint8), np.zeros((2, 2), np.uint8)])
    expected = overlay_heatmap(hot, np.full((2, 2, 3), 100, np.uint8))
    np.testing.assert_array_equal(overlay_heatmap(hot, gray), expected)
    np.testing.assert_array_equal(overlay_heatmap(hot, rgba), expected)


@pytest.mark.parametrize(
    ("feat", "image", "kept"),
    [
        ((20, 25), (100, 200), (12, 25)),  # 25 * 0.5 = 12.5 -> 12 (half to even)
        ((20, 27), (100, 200), (14, 27)),  # 13.5 -> 14 (half to even)
        ((20, 23), (100, 200), (12, 23)),  # 11.5 -> 12
        ((10, 40), (100, 200), (10, 20)),  # wider than the image: keep 10 * 2 = 20 columns
        ((25, 42), (800, 1333), (25, 42)),  # 25 * 1333 / 800 = 41.66 -> 42: nothing cropped
        ((8, 8), (8, 8), (8, 8)),  # same aspect
        ((22, 1), (162, 189), (1, 1)),  # round(0.857) = 1; never 0
        ((40, 1), (10, 100), (1, 1)),  # round(0.1) = 0 would crash the reference
    ],
)
def test_mmrazor_crop_rule(feat, image, kept):
    assert crop_to_aspect(feat, image) == kept


@pytest.mark.parametrize(
    ("c", "h", "w", "size"),
    [
        (2, 3, 3, (7, 7)),  # small output: torch's channels-last kernel
        (16, 4, 5, (37, 50)),  # small output, channels in whole SIMD vectors
        (3, 7, 7, (100, 90)),  # large output: generic kernel
        (5, 14, 14, (60, 70)),  # downscale-ish small
        (1, 1, 1, (130, 20)),  # single pixel
        (4, 6, 9, (6, 9)),  # identity
    ],
)
def test_resize_bilinear_is_bit_identical_to_torch(c, h, w, size):
    x = np.random.default_rng(h * w).standard_normal((c, h, w)).astype(np.float32) * 10
    expected = F.interpolate(torch.from_numpy(x)[None], size, mode="bilinear", align_corners=False)[
        0
    ].numpy()
    np.testing.assert_array_equal(resize_bilinear(x, size), expected)


def test_resize_image_by_hand():
    row = np.array([[0, 255]], np.uint8)
    # 2 -> 4 columns: source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
    np.testing.assert_array_equal(resize_image(row, (1, 4)), [[0, 64, 191, 255]])
    block = np.array([[10, 20], [30, 41]], np.uint8)
    # exact 2x downscale averages 2x2: (10 + 20 + 30 + 41 + 2) >> 2 = 25
    assert resize_image(block, (1, 1))[0, 0] == 25
    const = np.full((3, 5, 3), 77, np.uint8)
    assert (resize_image(const, (11, 4)) == 77).all()


def test_resize_argument_checks():
    with pytest.raises(ParameterError, match=r"`size` \(0, 4\) is not two positive integers"):
        resize_image(np.zeros((2, 2, 3), np.uint8), (0, 4))
    with pytest.raises(ParameterError, match=r"`image` has dtype float32 .* takes uint8"):
        resize_image(np.zeros((2, 2, 3), np.float32), (4, 4))
    with pytest.raises(ParameterError, match=r"resize_bilinear takes \(C, h, w\)"):
        resize_bilinear(np.zeros((2, 2)), (4, 4))
