"""The reference's error table as it applies to the view, and bad inputs: clear messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from featmap_view_helpers import photo, save_photo, tiny_handle

from featscope.analysis.featmap import FeatmapStyle
from featscope.errors import CaptureError, DataError, ParameterError
from featscope.models.handle import ModelHandle, PointRef, Preprocessing
from featscope.options import Output
from featscope.views.featmap import feature_maps

IMAGES = [("p", photo(0))]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channel_reduction": "max"}, r"`channel_reduction` 'max' is not one of 'pixel_wise_max'"),
        ({"topk": "3"}, r"`topk` '3' is not an integer"),
        ({"arrangement": (0, 5)}, r"`arrangement` \(0, 5\) is not two positive integers"),
        ({"arrangement": (4,)}, r"`arrangement` \(4,\) is not two positive integers"),
        ({"resize_shape": (10, -1)}, r"`resize_shape` \(10, -1\) is not two positive integers"),
        ({"alpha": "0.8"}, r"`alpha` '0.8' is not a number; it is the weight of the heat map"),
        ({"alpha": 1.5}, r"`alpha` 1.5 is outside \[0, 1\]"),
        ({"nan_policy": "drop"}, r"`nan_policy` 'drop' is not one of 'raise', 'mask'"),
        ({"max_size": -3}, r"`max_size` -3 is not an integer >= 0"),
        ({"overlaid": "yes"}, r"`overlaid` 'yes' is not True or False"),
    ],
)
def test_bad_options_fail_before_the_model_is_loaded(kwargs, match):
    # the model spec is invalid too: the options are checked first, when the style is made
    output = Output(work_dir=None)
    with pytest.raises(ParameterError, match=match):
        feature_maps(
            IMAGES, "nonsense:model", ["stage"], style=FeatmapStyle(**kwargs), output=output
        )


def test_grid_needs_as_many_cells_as_tiles_drawn():
    # 6 channels, topk 4: 4 tiles do not fit 1x2 ...
    with pytest.raises(ParameterError, match=r"`arrangement` 1x2 has 2 cells but 4 tiles"):
        feature_maps(
            IMAGES,
            tiny_handle(),
            ["stage"],
            style=FeatmapStyle(channel_reduction=None, topk=4, arrangement=(1, 2)),
            output=Output(work_dir=None),
        )
    # ... but topk 9 on a 4-channel map fits 2x2: the reference checked the requested topk
    run = feature_maps(
        IMAGES,
        tiny_handle(),
        ["stem"],
        style=FeatmapStyle(channel_reduction=None, topk=9, arrangement=(2, 2)),
        output=Output(work_dir=None),
    )
    assert run["p", "stem"].drawn.shape == (2 * 24, 2 * 24, 3)


def test_no_reduction_without_grid_needs_one_or_three_channels():
    with pytest.raises(ParameterError, match=r"has 4 channels; with channel_reduction=None and"):
        feature_maps(
            IMAGES,
            tiny_handle(),
            ["stem"],
            style=FeatmapStyle(channel_reduction="none", topk=0),
            output=Output(work_dir=None),
        )


def test_unknown_point_lists_the_nearest_names_before_reading_images(tmp_path):
    missing = tmp_path / "never-read.png"
    with pytest.raises(CaptureError, match=r"'neckk' is not in this model.*nearest: neck"):
        feature_maps([missing], tiny_handle(), ["neckk"], output=Output(work_dir=None))
    with pytest.raises(CaptureError, match=r"'backbone' is an alias this model .* does not"):
        feature_maps([missing], tiny_handle(), ["backbone"], output=Output(work_dir=None))


def test_vector_outputs_are_not_feature_maps():
    with pytest.raises(CaptureError, match=r"'logits' has shape \(1, 3\), one vector per image"):
        feature_maps(IMAGES, tiny_handle(), ["logits"], output=Output(work_dir=None))


def test_missing_images_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match=r"image '.*nope.png' does not exist"):
        feature_maps(
            [tmp_path / "nope.png"], tiny_handle(), ["stage"], output=Output(work_dir=None)
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"folder '.*empty' holds no image file"):
        feature_maps(tmp_path / "empty", tiny_handle(), ["stage"], output=Output(work_dir=None))
    with pytest.raises(DataError, match=r"`data` is empty"):
        feature_maps([], tiny_handle(), ["stage"], output=Output(work_dir=None))
    with pytest.raises(DataError, match=r"image 'f' is a ndarray .* dtype float64"):
        feature_maps(
            [("f", np.zeros((8, 8, 3)))], tiny_handle(), ["stage"], output=Output(work_dir=None)
        )


def test_a_broken_image_file_leaves_no_finished_run(tmp_path):
    good = save_photo(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bad\.png"):
        feature_maps([good, bad], tiny_handle(), ["stage"], output=Output(work_dir=tmp_path / "wd"))
    assert not list((tmp_path / "wd").glob("*/manifest.json"))


class _Nan(torch.nn.Module):
    def forward(self, x):
        out = x[:, :2].clone()
        out[:, :, 0, 0] = float("nan")
        return out


def _nan_handle():
    pre = Preprocessing(input_size=(8, 8), mean=(0,) * 3, std=(1,) * 3, crop_pct=1.0)
    return ModelHandle(_Nan(), "nan", "factory", pre, aliases={"logits": PointRef("")})


def test_nan_maps_raise_or_are_masked():
    with pytest.raises(ParameterError, match=r"`logits` has 2 non-finite values .* nan_policy"):
        feature_maps(IMAGES, _nan_handle(), ["logits"], output=Output(work_dir=None))
    run = feature_maps(
        IMAGES,
        _nan_handle(),
        ["logits"],
        style=FeatmapStyle(nan_policy="mask"),
        output=Output(work_dir=None),
    )
    assert run["p", "logits"].drawn.dtype == np.uint8
    assert np.isnan(run["p", "logits"].values).sum() == 2  # raw maps stay as captured


def test_half_precision_models_are_drawn_in_float32():
    handle = tiny_handle()
    reference = feature_maps(IMAGES, handle, ["stage"], output=Output(work_dir=None))
    handle.module.to(torch.bfloat16)
    run = feature_maps(IMAGES, handle, ["stage"], output=Output(work_dir=None))
    assert run["p", "stage"].values.dtype == np.float32
    np.testing.assert_allclose(
        run["p", "stage"].values, reference["p", "stage"].values, atol=0.1, rtol=0.05
    )


def test_wrong_input_size_for_a_fixed_size_model_is_a_clear_error():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            assert x.shape[-1] == 32, f"Input width ({x.shape[-1]}) doesn't match model (32)."
            return x

    handle = ModelHandle(Fixed(), "fixed", "factory", aliases={"logits": PointRef("")})
    with pytest.raises(CaptureError, match=r"failed on the input \(1, 3, 224, 224\).*input_size"):
        feature_maps(IMAGES, handle, ["logits"], output=Output(work_dir=None))
