"""capture_maps(): one photo through the model, every output as a (C, h, w) map by the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featscope.capture.hooks import capture
from featscope.capture.maps import TRANSFORM_POINT, capture_maps, map_points, model_input
from featscope.errors import CaptureError
from featscope.models.handle import ModelHandle, PointRef, Preprocessing
from featscope.results import CapturedMaps, Provenance


class _Batch:
    """Like torchvision's ImageList: the padded batch and each image's size inside it."""

    def __init__(self, tensors: torch.Tensor, image_sizes: list[tuple[int, int]]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes


class _PadTo8(nn.Module):
    """A detector's input transform: pad at the bottom/right to a multiple of 8."""

    size_divisible = 8
    image_mean = (0.0, 0.0, 0.0)
    min_size = (16,)

    def forward(self, x: torch.Tensor) -> tuple[_Batch, None]:
        h, w = x.shape[-2:]
        padded = nn.functional.pad(x, (0, -w % 8, 0, -h % 8))
        return _Batch(padded, [(h, w)]), None


class _Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transform = _PadTo8()
        self.body = nn.Conv2d(3, 2, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _ = self.transform(x)
        return self.body(batch.tensors)


def _photo(height: int, width: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def _cnn() -> ModelHandle:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 6, 3, stride=2, padding=1))
    pre = Preprocessing(input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=0.8)
    return ModelHandle(net.eval(), "cnn", "factory", pre, aliases={"logits": PointRef("")})


def test_classifier_maps_are_the_captured_outputs_over_the_centre_crop() -> None:
    handle = _cnn()
    photo = _photo(30, 40)
    points = map_points(handle, ["0", "1"])
    found = capture_maps(handle, photo, points, image_id="p")
    assert isinstance(found, CapturedMaps)
    assert found.image_id == "p"
    assert found.valid is None
    x, region = model_input(handle, photo)
    assert region == found.region
    left, top, right, bottom = region
    # the centre 80 % of the short side (30 px): a 24 x 24 square in the middle
    assert (right - left, bottom - top) == (24, 24)
    with capture(handle, ["0", "1"]) as tap:
        expected = tap.run(x)
    for name in ("0", "1"):
        np.testing.assert_array_equal(found.maps[name][name], expected[name][0].numpy())
    assert found.maps["1"]["1"].shape == (6, 8, 8)
    assert found.maps["1"]["1"].dtype == np.float32
    assert found.provenance.model == "cnn"
    mine = Provenance(model="mine")
    assert capture_maps(handle, photo, points, provenance=mine).provenance is mine


def test_detector_gets_the_whole_photo_and_reports_its_padding() -> None:
    torch.manual_seed(0)
    handle = ModelHandle(_Detector().eval(), "det", "factory", aliases={"logits": PointRef("")})
    points = map_points(handle, ["body"])
    assert [p.name for p in points] == ["body", TRANSFORM_POINT]
    photo = _photo(20, 30)
    found = capture_maps(handle, photo, points)
    assert found.region == (0, 0, 30, 20)
    assert found.valid == pytest.approx((20 / 24, 30 / 32))  # padded to 24 x 32
    assert found.maps["body"]["body"].shape == (2, 12, 16)
    assert list(found.maps) == ["body"]  # the transform point is not a map
    # its stride is measured against the padded batch the detector made, not its input
    assert handle.point_info("body").stride == 2


def test_tokens_are_laid_out_by_the_contract() -> None:
    class Tokens(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            patches = x[:, :2, ::4, ::4].flatten(2).transpose(1, 2)  # (N, 16, 2)
            return torch.cat([torch.full_like(patches[:, :1], -1.0), patches], dim=1)

    pre = Preprocessing(input_size=(16, 16), mean=(0.0,) * 3, std=(1.0,) * 3, crop_pct=1.0)
    handle = ModelHandle(
        Tokens(), "tok", "factory", pre, aliases={"logits": PointRef("")}, num_prefix_tokens=1
    )
    info = handle.point_info("logits")
    assert (info.layout, info.grid, info.num_prefix_tokens) == ("NLC", (4, 4), 1)
    photo = _photo(16, 16)
    found = capture_maps(handle, photo, map_points(handle, ["logits"]))
    values = found.maps["logits"]["logits"]
    assert values.shape == (2, 4, 4)
    assert (values >= 0).all()  # the class token (-1) is not in the map
    x, _ = model_input(handle, photo)
    np.testing.assert_allclose(values, x[0, :2, ::4, ::4].numpy())


def test_outputs_without_a_batch_axis_of_one_are_refused() -> None:
    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(3, 16, 16)

    pre = Preprocessing(input_size=(16, 16), crop_pct=1.0)
    handle = ModelHandle(Flat(), "flat", "factory", pre, aliases={"logits": PointRef("")})
    with pytest.raises(CaptureError, match=r"'logits' has shape \(3, 16, 16\), which is not batch"):
        capture_maps(handle, _photo(16, 16), map_points(handle, ["logits"]))
