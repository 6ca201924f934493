"""Thumbnails: square uint8 arrays from samples, paths and arrays; data URIs; the cap."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from featscope.data.sources import demo_digits
from featscope.data.thumbnails import encode_thumbnails, make_thumbnails, thumbnail_indices
from featscope.errors import DataError, ParameterError


def test_digits_samples_become_square_rgb_thumbnails_enlarged_without_blur():
    samples = demo_digits()
    thumbs = make_thumbnails(samples, [0, 5], size=48)
    assert thumbs.shape == (2, 48, 48, 3)
    assert thumbs.dtype == np.uint8
    # 8x8 digits enlarged 6x with NEAREST: every 6x6 block is one flat value of the original
    original = np.asarray(samples.load(5))
    np.testing.assert_array_equal(thumbs[1][::6, ::6], original)
    assert len(np.unique(thumbs[1][:6, :6].reshape(-1, 3), axis=0)) == 1


def test_letterbox_pads_and_crop_cuts_a_wide_image():
    wide = np.zeros((1, 20, 80, 3), dtype=np.uint8)  # black 20x80
    boxed = make_thumbnails(wide, size=40, fit="letterbox")[0]
    # 80 -> 40 wide, 20 -> 10 high, centred: white bands above and below
    assert (boxed[:15] == 255).all()
    assert (boxed[25:] == 255).all()
    assert (boxed[15:25] == 0).all()
    cropped = make_thumbnails(wide, size=40, fit="crop")[0]
    assert (cropped == 0).all()


def test_grey_float_and_rgba_arrays_and_paths(tmp_path):
    grey = np.linspace(0, 1, 16 * 16).reshape(1, 16, 16)
    thumb = make_thumbnails(grey, size=32)[0]
    assert thumb[0, 0, 0] == 0
    assert thumb[-1, -1, 0] == 255
    rgba = np.zeros((1, 10, 10, 4), dtype=np.uint8)  # fully transparent
    assert (make_thumbnails(rgba, size=10, background=(0, 128, 0))[0] == (0, 128, 0)).all()
    path = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(path)
    from_path = make_thumbnails([path], size=32)
    assert (from_path[0] == (255, 0, 0)).all()


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(ParameterError, match=r"size.*out of range"):
        make_thumbnails(np.zeros((1, 8, 8), dtype=np.uint8), size=4)
    with pytest.raises(ParameterError, match="fit"):
        make_thumbnails(np.zeros((1, 8, 8), dtype=np.uint8), fit="stretch")
    with pytest.raises(ParameterError, match="index 3 is out of range for 2 samples"):
        make_thumbnails(np.zeros((2, 8, 8), dtype=np.uint8), [0, 3])
    with pytest.raises(ParameterError, match="shape"):
        make_thumbnails(np.zeros((2, 8), dtype=np.uint8))
    with pytest.raises(ParameterError, match="single path"):
        make_thumbnails("one.png")
    with pytest.raises(DataError, match=r"missing\.png"):
        make_thumbnails([tmp_path / "missing.png"])


def test_cap_picks_a_seeded_sorted_subset():
    assert thumbnail_indices(5, None).tolist() == [0, 1, 2, 3, 4]
    assert thumbnail_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert thumbnail_indices(5, 0).tolist() == []
    picked = thumbnail_indices(1000, 20, seed=3)
    assert len(picked) == 20
    assert len(set(picked.tolist())) == 20
    assert (np.diff(picked) > 0).all()
    np.testing.assert_array_equal(picked, thumbnail_indices(1000, 20, seed=3))
    assert picked.max() > 500  # spread over the samples, not the first 20
    with pytest.raises(ParameterError, match="negative"):
        thumbnail_indices(5, -1)


@pytest.mark.parametrize(("fmt", "mime"), [("webp", "WEBP"), ("jpeg", "JPEG"), ("png", "PNG")])
def test_encoded_thumbnails_decode_back(fmt, mime):
    thumbs = np.full((2, 48, 48, 3), (10, 200, 30), dtype=np.uint8)
    uris = encode_thumbnails(thumbs, fmt)
    assert all(u.startswith(f"data:image/{fmt};base64,") for u in uris)
    image = Image.open(io.BytesIO(base64.b64decode(uris[0].split(",", 1)[1])))
    assert image.format == mime
    assert image.size == (48, 48)
    assert np.abs(np.asarray(image.convert("RGB")).astype(int) - (10, 200, 30)).max() < 12
    with pytest.raises(ParameterError, match="uint8"):
        encode_thumbnails(thumbs.astype(np.float32))
    with pytest.raises(ParameterError, match="gif"):
        encode_thumbnails(thumbs, "gif")


def test_sample_thumbnails_caps_with_a_seeded_subset_and_checks_the_count():
    from featscope.data import demo_digits
    from featscope.data.thumbnails import check_max_thumbnails, sample_thumbnails

    samples = demo_digits().subset(np.arange(30))
    thumbs, rows = sample_thumbnails(samples, 5, seed=2, size=16)
    np.testing.assert_array_equal(rows, thumbnail_indices(30, 5, seed=2))
    np.testing.assert_array_equal(thumbs, make_thumbnails(samples, rows, size=16))
    every, rows = sample_thumbnails(samples, None, size=8)
    assert every.shape == (30, 8, 8, 3)
    assert rows.tolist() == list(range(30))
    assert check_max_thumbnails(None) is None
    assert check_max_thumbnails(0) == 0
    for bad in (-3, 2.5, True, "10"):
        with pytest.raises(ParameterError, match=r"`--thumbnails` \(thumbnails=\) must be a count"):
            check_max_thumbnails(bad)


def test_check_thumbnail_side_takes_pixels_or_zero():
    from featscope.data.thumbnails import check_thumbnail_side

    assert check_thumbnail_side(0) == 0  # no thumbnails
    assert check_thumbnail_side(32) == 32
    for bad in (-1, 2.5, True, "32", None):
        with pytest.raises(ParameterError, match=r"`thumbnails` is the thumbnail side in pixels"):
            check_thumbnail_side(bad)
