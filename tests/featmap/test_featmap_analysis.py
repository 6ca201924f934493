"""The stages the feature-map views compose: style, differences, geometry, preparation, drawing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from featscope.analysis import featmap as analysis
from featscope.analysis.featmap import (
    FeatmapStyle,
    crop_padding,
    feature_map_differences,
    fit_photo,
    prepare_feature_maps,
    reduce_for_drawing,
)
from featscope.analysis.resize import resize_bilinear
from featscope.errors import CaptureError, ParameterError
from featscope.render.featmap import draw_featmap, draw_feature_maps, encode_picture
from featscope.results import CapturedMaps, Provenance

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 5, 7)).astype(np.float32)


# --------------------------------------------------------------------------- FeatmapStyle


def test_style_defaults_follow_the_reference_and_none_means_no_reduction():
    style = FeatmapStyle()
    assert (style.channel_reduction, style.topk, style.arrangement) == (
        "pixel_wise_max",
        20,
        (4, 5),
    )
    assert (style.alpha, style.overlaid, style.shared_scale, style.max_size) == (
        0.5,
        None,
        None,
        1024,
    )
    grid = FeatmapStyle(channel_reduction="None", arrangement=[2, 3], resize_shape=[8, 9])
    assert grid.channel_reduction is None
    assert grid.grid
    assert (grid.arrangement, grid.resize_shape) == ((2, 3), (8, 9))
    assert not FeatmapStyle(channel_reduction=None, topk=0).grid
    assert FeatmapStyle(max_size=0).max_size is None  # 0: keep the photo's size
    assert grid.to_dict()["arrangement"] == [2, 3]
    assert grid.to_dict()["resize_shape"] == [8, 9]


def test_style_resolves_the_view_defaults_only_where_unset():
    assert FeatmapStyle().resolved(overlaid=True, shared_scale=False).overlaid is True
    kept = FeatmapStyle(overlaid=False, shared_scale=True).resolved(
        overlaid=True, shared_scale=False
    )
    assert (kept.overlaid, kept.shared_scale) == (False, True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"topk": True}, r"`topk` True is not an integer"),
        ({"use_norm": "yes"}, r"`use_norm` 'yes' is not True or False"),
        ({"shared_scale": 1}, r"`shared_scale` 1 is not True or False"),
        ({"max_size": 2.5}, r"`max_size` 2\.5 is not an integer >= 0"),
        ({"alpha": True}, r"`alpha` True is not a number"),
        ({"resize_shape": (8,)}, r"`resize_shape` \(8,\) is not two positive integers"),
    ],
)
def test_style_refuses_bad_values_naming_the_option(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        FeatmapStyle(**kwargs)


# --------------------------------------------------------------------------- differences


def _captured(spec: str, **maps: dict) -> CapturedMaps:
    return CapturedMaps("img", maps, (0, 0, 7, 5), (0.8, 1.0), Provenance(model=spec))


def test_differences_pair_outputs_by_name_in_model_a_geometry():
    a = _captured("A", neck={"neck.p3": X, "neck.p4": X[:, :2]})
    b = _captured("B", neck={"neck.p4": X[:, :2] * 2, "neck.p3": X + 1})
    diff = feature_map_differences(a, b)
    np.testing.assert_array_equal(diff.maps["neck"]["neck.p3"], np.abs(X - (X + 1)))
    np.testing.assert_allclose(diff.maps["neck"]["neck.p4"], np.abs(X[:, :2]))
    assert list(diff.maps["neck"]) == ["neck.p3", "neck.p4"]  # model A's order
    assert (diff.region, diff.valid, diff.provenance.model) == ((0, 0, 7, 5), (0.8, 1.0), "A")


def test_differences_warn_about_unpaired_outputs_and_refuse_other_shapes():
    a = _captured("A", neck={"neck.p3": X, "neck.p4": X})
    b = _captured("B", neck={"neck.p3": X})
    with pytest.warns(UserWarning, match=r"outputs \['neck.p4'\] exist only in model A \(A\)"):
        assert list(feature_map_differences(a, b).maps["neck"]) == ["neck.p3"]
    with pytest.raises(CaptureError, match=r"model A \(A\) gives \(C, H, W\) = \(6, 5, 7\) and"):
        feature_map_differences(a, _captured("B", neck={"neck.p3": X[:3], "neck.p4": X}))
    other = _captured("B", neck={"neck.0": X})
    with (
        pytest.warns(UserWarning, match="only in model B"),
        pytest.raises(CaptureError, match=r"none has the same name in both"),
    ):
        feature_map_differences(a, other)


# --------------------------------------------------------------------------- geometry


def test_crop_padding_keeps_the_top_left_image_part():
    x = np.arange(2 * 8 * 10, dtype=np.float32).reshape(2, 8, 10)
    assert crop_padding(x, None) == (x, None)
    kept, size = crop_padding(x, (0.75, 0.45))
    assert size == [6, 4]  # round(4.5) is 4: Python's half to even, as MMRazor
    np.testing.assert_array_equal(kept, x[:, :6, :4])
    assert crop_padding(x, (0.01, 0.01))[1] == [1, 1]  # never empty


def test_fit_photo_cuts_the_region_and_caps_the_long_side():
    photo = Image.fromarray((RNG.random((60, 100, 3)) * 255).astype(np.uint8))
    np.testing.assert_array_equal(fit_photo(photo, (0, 0, 100, 60), None), np.asarray(photo))
    part = fit_photo(photo, (20, 10, 60, 50), None)
    np.testing.assert_array_equal(part, np.asarray(photo)[10:50, 20:60])
    assert fit_photo(photo, (0, 0, 100, 60), 50).shape == (30, 50, 3)
    assert fit_photo(photo, (20, 10, 60, 50), 100).shape == (40, 40, 3)  # never enlarged


# --------------------------------------------------------------------------- preparation


@pytest.mark.parametrize(
    ("reduction", "topk"), [("pixel_wise_max", 20), ("select_max", 20), (None, 3)]
)
def test_blockwise_reduction_draws_the_same_pixels(monkeypatch, reduction, topk):
    style = FeatmapStyle(channel_reduction=reduction, topk=topk, arrangement=(1, 3))
    whole = reduce_for_drawing(X, (20, 28), style, crop=False)
    assert whole.values is X  # small enough: drawn as it is
    monkeypatch.setattr(analysis, "RESIZE_BUDGET", 20 * 28 * 2)  # blocks of 2 channels
    blocks = reduce_for_drawing(X, (20, 28), style, crop=False)
    args = (style.arrangement, (20, 28), 0.5)
    expected = draw_featmap(X, None, reduction, topk, *args)
    got = draw_featmap(
        blocks.values,
        None,
        blocks.reduction,
        blocks.topk,
        *args,
        channel_names=blocks.channel_names,
    )
    np.testing.assert_array_equal(got, expected)


def test_pixel_wise_max_in_blocks_is_the_max_of_the_resized_channels(monkeypatch):
    monkeypatch.setattr(analysis, "RESIZE_BUDGET", 20 * 28 * 2)
    done = reduce_for_drawing(X, (20, 28), FeatmapStyle(), crop=False)
    assert (done.reduction, done.topk) == (None, 0)
    np.testing.assert_array_equal(done.values[0], resize_bilinear(X, (20, 28)).max(axis=0))
    grid = reduce_for_drawing(X, (20, 28), FeatmapStyle(channel_reduction=None, topk=2), crop=False)
    sums = resize_bilinear(X, (20, 28)).sum(axis=(1, 2))
    np.testing.assert_array_equal(grid.channel_names, np.argsort(-sums)[:2])


def test_prepare_crops_padding_checks_values_and_standardises():
    levels = {"p3": X, "p4": X[:, :2, :2]}
    prepared = prepare_feature_maps(levels, (10, 14), FeatmapStyle(), valid=(0.6, 1.0))
    assert list(prepared) == ["p3", "p4"]
    assert dict(prepared["p3"].params) == {
        "shape": [6, 5, 7],
        "drawn_shape": [6, 3, 7],
        "padding_cropped_to": [3, 7],
    }
    normed = prepare_feature_maps(levels, (10, 14), FeatmapStyle(use_norm=True))
    channel = normed["p3"].values[0]
    assert abs(float(channel.mean())) < 1e-5
    assert float(channel.std(ddof=1)) == pytest.approx(1.0, abs=1e-4)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ParameterError, match=r"`p3` has 1 non-finite values"):
        prepare_feature_maps({"p3": bad}, (10, 14), FeatmapStyle())
    masked = prepare_feature_maps({"p3": bad}, (10, 14), FeatmapStyle(nan_policy="mask"))
    assert np.isfinite(masked["p3"].values).all()


# --------------------------------------------------------------------------- drawing


def _photo(height: int = 10, width: int = 14) -> np.ndarray:
    return (RNG.random((height, width, 3)) * 255).astype(np.uint8)


def test_draw_feature_maps_at_the_photo_size_with_or_without_it():
    prepared = prepare_feature_maps({"p3": X}, (10, 14), FeatmapStyle())
    photo = _photo()
    plain = FeatmapStyle(overlaid=False, shared_scale=False)
    ((picture, params),) = draw_feature_maps(prepared, photo, plain).values()
    assert picture.shape == (10, 14, 3)
    assert params["value_range"] is None
    np.testing.assert_array_equal(picture, draw_featmap(X, None, resize_shape=(10, 14)))
    over = FeatmapStyle(overlaid=True, shared_scale=False, alpha=0.3)
    ((picture, _),) = draw_feature_maps(prepared, photo, over).values()
    np.testing.assert_array_equal(picture, draw_featmap(X, photo, alpha=0.3))
    sized = FeatmapStyle(overlaid=True, shared_scale=False, resize_shape=(4, 6))
    assert draw_feature_maps(prepared, photo, sized)["p3"][0].shape == (4, 6, 3)


def test_a_shared_scale_spans_all_levels_and_starts_at_zero_for_differences():
    levels = {"a": np.abs(X) + 1, "b": np.abs(X[:, :2]) + 3}
    prepared = prepare_feature_maps(levels, (10, 14), FeatmapStyle())
    shared = FeatmapStyle(overlaid=False, shared_scale=True)
    drawn = draw_feature_maps(prepared, _photo(), shared)
    low, high = drawn["a"][1]["value_range"]
    assert drawn["b"][1]["value_range"] == [low, high]
    assert low >= 1
    diff = draw_feature_maps(prepared, _photo(), shared, difference=True)
    assert diff["a"][1]["value_range"] == [0.0, high]


def test_encode_picture_formats():
    picture = _photo(6, 9)
    png = encode_picture(picture, "png", 300)
    decoded = Image.open(io.BytesIO(png))
    np.testing.assert_array_equal(np.asarray(decoded), picture)  # pixel-exact
    assert decoded.info["dpi"] == pytest.approx((300, 300), abs=0.01)  # stored per metre
    assert Image.open(io.BytesIO(encode_picture(picture, ".JPEG"))).size == (9, 6)
    pdf = encode_picture(picture, "pdf")
    assert pdf.startswith(b"%PDF")
    assert pdf == encode_picture(picture, "pdf")  # no dates: the same file every time
    assert b"<svg" in encode_picture(picture, "svg")
    with pytest.raises(ParameterError, match="figure format 'gif' is not supported"):
        encode_picture(picture, "gif")
