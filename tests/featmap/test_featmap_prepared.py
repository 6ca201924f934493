"""A Dataset of prepared tensors: featmap runs the model on them as given, not re-preprocessed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import featscope
from featscope.capture import capture, resolve_points
from featscope.errors import CaptureError
from featscope.models import load_model
from featscope.options import Output


def test_prepared_tensors_are_the_model_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32) * 3  # far outside what a photo's normalisation gives
    run = featscope.feature_maps(
        TensorDataset(x, torch.tensor([0, 1])), "demo:digits-cnn", ["backbone"],
        output=Output(work_dir=None),
    )  # fmt: skip
    handle = load_model("demo:digits-cnn")
    with torch.no_grad(), capture(handle, resolve_points(handle, ["backbone"])) as tap:
        expected = tap.run(x)["backbone"].numpy()
    got = np.stack([m.values for m in run.maps])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert run.maps[0].drawn.shape[:2] == (32, 32)


def test_prepared_input_of_the_wrong_rank_is_one_line() -> None:
    from featscope.capture.maps import model_input

    handle = load_model("demo:digits-cnn")
    from PIL import Image

    picture = Image.new("RGB", (4, 4))
    with pytest.raises(CaptureError, match=r"must be \(channels, height, width\); got shape"):
        model_input(handle, picture, np.zeros((4, 4)))
