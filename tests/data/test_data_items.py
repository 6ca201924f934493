"""The rules that turn one item into an image or a prepared input, and labels into indices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featscope.data.items import display_image, is_prepared, labels_from_values, to_image
from featscope.errors import DataError


def test_pixel_kinds():
    assert to_image(np.array([[0, 65535]], np.uint16), "x").getpixel((1, 0)) == (255, 255, 255)
    assert to_image(np.array([[True, False]]), "x").getpixel((0, 0)) == (255, 255, 255)
    assert to_image(np.full((2, 2, 3), 200.0), "x").getpixel((0, 0)) == (200, 200, 200)
    assert to_image(np.full((2, 2, 1), 7, np.int32), "x").getpixel((0, 0)) == (7, 7, 7)
    chw = torch.zeros(3, 2, 5, dtype=torch.uint8)
    chw[0] = 255
    assert to_image(chw, "x").size == (5, 2)
    assert to_image(chw, "x").getpixel((0, 0)) == (255, 0, 0)
    assert to_image(Image.new("LA", (1, 1), (0, 0)), "x").getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(DataError, match=r"x is an array of complex128, not an image"):
        to_image(np.zeros((2, 2), complex), "x")
    with pytest.raises(DataError, match=r"x is a uint8 array of shape \(2, 5, 5, 3\), not an"):
        to_image(np.zeros((2, 5, 5, 3), np.uint8), "x")


def test_what_counts_as_prepared():
    assert is_prepared(torch.zeros(3, 8, 8))
    assert is_prepared(torch.zeros(1, 8, 8, dtype=torch.bfloat16))
    assert is_prepared(torch.zeros(3, 8, 3))  # tensors are channels-first
    assert not is_prepared(np.zeros((3, 8, 3)))  # a numpy (H, W, 3) float image
    assert is_prepared(np.zeros((3, 8, 8), np.float32))
    assert not is_prepared(torch.zeros(3, 8, 8, dtype=torch.uint8))
    assert not is_prepared(torch.zeros(8, 8))
    assert not is_prepared(Image.new("RGB", (2, 2)))


def test_display_image_stretches_the_input():
    value = torch.tensor([[[-2.0, 0.0], [1.0, 2.0]]])  # (1, 2, 2)
    picture = np.asarray(display_image(value))
    assert picture.shape == (2, 2, 3)
    np.testing.assert_array_equal(picture[..., 0], [[0, 128], [191, 255]])
    assert np.asarray(display_image(torch.zeros(3, 2, 2))).max() == 0


def test_labels_from_values():
    labels, names = labels_from_values(np.array([2, 0]), "src")
    assert labels.tolist() == [2, 0]
    assert names == ("0", "1", "2")
    with pytest.raises(DataError, match=r"src: label 1000000 \(item 1\) is too large"):
        labels_from_values(np.array([0, 1_000_000]), "src")
    with pytest.raises(DataError, match=r"src: label 'emu' \(item 1\) is not one of the 2 class"):
        labels_from_values(np.array(["cat", "emu"], dtype=object), "src", ("cat", "dog"))
    assert labels_from_values(np.array([None, None], dtype=object), "src")[1] == ()
