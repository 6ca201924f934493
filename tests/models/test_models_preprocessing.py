"""Preprocessing: channels, per-channel normalisation, describe() with the origin of each value."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featscope.errors import ParameterError
from featscope.models import Preprocessing, describe_preprocessing, load_model
from featscope.models.handle import ModelHandle
from featscope.models.handle import Preprocessing as HandlePreprocessing
from featscope.models.preprocessing import (
    ASSUMED,
    GIVEN,
    IMAGENET_MEAN,
    OVERRIDE,
    as_preprocessing,
    image_mode,
)


def photo(width: int = 40, height: int = 30) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def test_describe_is_json_ready_with_every_value_and_origin() -> None:
    pre = Preprocessing(input_size=(224, 224), crop_pct=0.875, interpolation="bicubic")
    pre = pre.with_sources("timm data config", channels="model (conv1.in_channels)")
    described = pre.describe()
    assert json.loads(json.dumps(described)) == described
    assert described == {
        "input_size": [224, 224],
        "resize": [256, 256],
        "crop": "center",
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "mean": list(IMAGENET_MEAN),
        "std": [0.229, 0.224, 0.225],
        "channels": 3,
        "color": "RGB",
        "channel_order": "RGB",
        "source": {
            "input_size": "timm data config",
            "crop_pct": "timm data config",
            "interpolation": "timm data config",
            "mean": "timm data config",
            "std": "timm data config",
            "channels": "model (conv1.in_channels)",
            "channel_order": "timm data config",
        },
    }


def test_sources_are_not_compared_and_unknown_fields_refused() -> None:
    assert Preprocessing().with_sources(ASSUMED) == Preprocessing()
    source = Preprocessing().source
    assert source.pop("channel_order") == "default (RGB)"  # nobody states RGB; nobody assumes it
    assert source == dict.fromkeys(source, GIVEN)
    with pytest.raises(ParameterError, match=r"unknown fields \['size'\]"):
        Preprocessing(sources={"size": "x"})


@pytest.mark.parametrize(
    ("channels", "mean", "expected"),
    [
        (3, 0.5, (0.5, 0.5, 0.5)),
        (1, (0.5,), (0.5,)),
        (1, (0.3, 0.6, 0.9), (0.6,)),  # RGB values averaged for a grey model
        (4, (0.1,), (0.1,) * 4),
        (2, (0.1, 0.2), (0.1, 0.2)),
    ],
)
def test_mean_fitted_to_the_channels(channels: int, mean, expected) -> None:
    pre = Preprocessing(mean=mean, std=mean, channels=channels)
    assert pre.mean == pytest.approx(expected)
    assert pre.std == pytest.approx(expected)


def test_bad_channels_and_normalisation_are_one_line_errors() -> None:
    with pytest.raises(
        ParameterError, match=r"`mean` must be one float or one per input channel \(3\)"
    ):
        Preprocessing(mean=(0.1, 0.2))
    with pytest.raises(ParameterError, match=r"`in_chans` .* must be a positive integer; got 0"):
        Preprocessing(channels=0)
    with pytest.raises(ParameterError, match="`std` must be positive"):
        Preprocessing(std=(0.1, 0.0, 0.1))


def test_one_channel_model_gets_the_grey_conversion_of_rgb_photos() -> None:
    pre = Preprocessing(input_size=(30, 40), mean=(0.5,), std=(0.25,), crop_pct=1.0, channels=1)
    image = photo()
    x = pre(image)
    assert x.shape == (1, 30, 40)
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255
    np.testing.assert_allclose(x[0].numpy(), (grey - 0.5) / 0.25, atol=1e-5)
    assert pre.describe()["color"] == "L"


def test_three_channel_model_gets_rgb_even_from_grey_images() -> None:
    pre = Preprocessing(input_size=(30, 40), crop_pct=1.0)
    x = pre(photo().convert("L"))
    assert x.shape == (3, 30, 40)
    torch.testing.assert_close((x[0] * 0.229 + 0.485), (x[1] * 0.224 + 0.456))


@pytest.mark.parametrize("channels", [2, 4])
def test_channels_no_photo_converts_to_name_both_counts(channels: int) -> None:
    pre = Preprocessing(channels=channels)
    message = rf"takes {channels}-channel inputs but the images are RGB \(3 channels\)"
    with pytest.raises(ParameterError, match=message):
        pre(photo())
    with pytest.raises(ParameterError, match=r"my-net takes 4-channel inputs .*--in-chans"):
        image_mode(Preprocessing(channels=4), "RGB", "my-net")
    assert pre.describe()["color"] is None


def test_handle_preprocessing_of_the_old_kind_is_converted_as_given() -> None:
    old = HandlePreprocessing(input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0)
    new = as_preprocessing(old)
    assert isinstance(new, Preprocessing)
    assert (new.input_size, new.mean, new.crop_pct, new.channels) == ((16, 16), (0.5,) * 3, 1.0, 3)
    assert set(new.source.values()) == {GIVEN, "default (RGB)"}
    handle = ModelHandle(module=nn.Linear(2, 2), spec="mine", family="factory", preprocess=old)
    assert describe_preprocessing(handle)["input_size"] == [16, 16]
    # an old preprocessing object still drives the transform
    assert old(photo()).shape == (3, 16, 16)


def test_overrides_are_recorded_as_such_and_logged_once(caplog) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with caplog.at_level(logging.INFO, logger="featscope.models"):
        handle = load_model(net, input_size=64, mean=0.5)
    source = handle.preprocess.source
    assert source["input_size"] == source["mean"] == OVERRIDE
    assert source["std"] == source["crop_pct"] == ASSUMED
    assert source["channels"] == "model (0.in_channels)"
    logged = [r.getMessage() for r in caplog.records if "preprocessing of" in r.getMessage()]
    assert len(logged) == 1
    assert json.loads(logged[0].split(": ", 1)[1]) == handle.preprocess.describe()


def test_bgr_models_get_the_channels_reversed_and_normalised_in_their_order() -> None:
    from PIL import Image

    from featscope.models.preprocessing import Preprocessing

    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    pixels[..., 0], pixels[..., 2] = 200, 50  # red 200, blue 50
    image = Image.fromarray(pixels)
    kw = {"input_size": (4, 4), "crop_pct": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    rgb = Preprocessing(**kw)(image)
    bgr = Preprocessing(**kw, channel_order="BGR")(image)
    assert rgb[0, 0, 0].item() == pytest.approx(200 / 255)
    assert bgr[0, 0, 0].item() == pytest.approx(50 / 255)
    torch.testing.assert_close(bgr, rgb.flip(0))
    # mean and std are the model's, in its own (BGR) order
    shifted = Preprocessing(**{**kw, "mean": (50 / 255, 0.0, 0.0)}, channel_order="BGR")(image)
    assert shifted[0].abs().max().item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ParameterError, match="`channel_order` must be one of"):
        Preprocessing(channel_order="bgr")
