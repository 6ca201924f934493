from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from featscope.data import open_rgb
from featscope.errors import DataError


def _rgb(path) -> np.ndarray:
    image = open_rgb(path)
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def test_rgb_png_is_unchanged(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    Image.fromarray(pixels).save(tmp_path / "a.png")
    np.testing.assert_array_equal(_rgb(tmp_path / "a.png"), pixels)


def test_pixels_are_loaded_and_file_is_released(tmp_path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "a.png")
    image = open_rgb(tmp_path / "a.png")
    (tmp_path / "a.png").unlink()
    assert image.getpixel((0, 0)) == (1, 2, 3)


def test_grey_l(tmp_path):
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8)).save(tmp_path / "l.png")
    out = _rgb(tmp_path / "l.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_la_composites_on_white(tmp_path):
    # (grey, alpha): fully transparent black, opaque black, half-transparent grey 100
    la = np.array([[[0, 0], [0, 255], [100, 128]]], dtype=np.uint8)
    Image.fromarray(la).save(tmp_path / "la.png")
    out = _rgb(tmp_path / "la.png")[0, :, 0]
    expected_half = 100 * 128 / 255 + 255 * (1 - 128 / 255)  # ~177.2
    assert out[0] == 255
    assert out[1] == 0
    assert abs(out[2] - expected_half) <= 1


def test_rgba_composites_on_white(tmp_path):
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255]]], dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    out = _rgb(tmp_path / "rgba.png")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent red -> white
    np.testing.assert_array_equal(out[0, 1], [0, 0, 255])


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = _rgb(tmp_path / "cmyk.jpg")
    np.testing.assert_allclose(out[8, 8], [255, 0, 0], atol=4)


def test_uint16_png_scales_by_bit_depth(tmp_path):
    values = np.array([[0, 65535], [32768, 257]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode == "I;16"
    out = _rgb(tmp_path / "16.png")[..., 0]
    # 65535 -> 255 (not clipped to white from 255 up), 257 -> 1
    np.testing.assert_array_equal(out, [[0, 255], [128, 1]])


def test_16bit_pgm_without_declared_depth(tmp_path):
    # Pillow opens 16-bit PGM as mode "I" rescaled to 0-65535
    header = b"P5\n3 1\n4095\n"
    (tmp_path / "a.pgm").write_bytes(header + np.array([0, 2048, 4095], ">u2").tobytes())
    assert Image.open(tmp_path / "a.pgm").mode == "I"
    out = _rgb(tmp_path / "a.pgm")[0, :, 0]
    np.testing.assert_allclose(out, [0, 128, 255], atol=1)


def test_int32_tiff_uses_declared_bits(tmp_path):
    # signed 32-bit TIFF: the largest int32 becomes 255
    Image.fromarray(np.array([[0, 2**24, 2**31 - 1]], dtype=np.int32)).save(tmp_path / "i.tif")
    out = _rgb(tmp_path / "i.tif")[0, :, 0]
    np.testing.assert_array_equal(out, [0, 2, 255])  # 2**24 / (2**31 - 1) * 255 = 1.99


def test_int_with_negative_values_is_stretched(tmp_path):
    Image.fromarray(np.array([[-10, 0, 10]], dtype=np.int32)).save(tmp_path / "neg.tif")
    np.testing.assert_array_equal(_rgb(tmp_path / "neg.tif")[0, :, 0], [0, 128, 255])


def test_float_in_unit_range_and_outside(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(_rgb(tmp_path / "f.tif")[0, :, 0], [0, 128, 255])
    Image.fromarray(np.array([[10.0, 15.0, 20.0]], dtype=np.float32)).save(tmp_path / "g.tif")
    np.testing.assert_array_equal(_rgb(tmp_path / "g.tif")[0, :, 0], [0, 128, 255])


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "p.png", transparency=0)
    out = _rgb(tmp_path / "p.png")
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [255, 0, 0]])


def test_palette_without_transparency(tmp_path):
    image = Image.new("P", (1, 1))
    image.putpalette([10, 20, 30])
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(_rgb(tmp_path / "p.png")[0, 0], [10, 20, 30])


def test_one_bit(tmp_path):
    image = Image.new("1", (2, 1))
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "b.png")
    assert Image.open(tmp_path / "b.png").mode == "1"
    np.testing.assert_array_equal(_rgb(tmp_path / "b.png")[0, :, 0], [0, 255])


def test_exif_orientation_is_applied(tmp_path):
    # stored 40 wide x 20 high, left half red, right half blue; orientation 6 = rotate 90° CW
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif, quality=95)
    image = open_rgb(tmp_path / "r.jpg")
    assert image.size == (20, 40)
    out = np.asarray(image).astype(int)
    np.testing.assert_allclose(out[5, 10], [255, 0, 0], atol=10)  # left side is now on top
    np.testing.assert_allclose(out[35, 10], [0, 0, 255], atol=10)


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(tmp_path / "a.gif").n_frames == 2
    np.testing.assert_array_equal(_rgb(tmp_path / "a.gif")[0, 0], [255, 0, 0])


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "t.png"), ("JPEG", "t.jpg")])
def test_truncated_file(tmp_path, fmt, name):
    data = _encoded(fmt)
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(
        DataError, match=rf"cannot read image '.*{name}': truncated file.*--skip-bad-images"
    ):
        open_rgb(tmp_path / name)


def test_zero_byte_file(tmp_path):
    (tmp_path / "z.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"'.*z\.jpg': empty file \(0 bytes\); remove it"):
        open_rgb(tmp_path / "z.jpg")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello, not an image\n")
    with pytest.raises(DataError, match=r"'.*notes\.jpg': not an image file"):
        open_rgb(tmp_path / "notes.jpg")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"'.*nope\.png': no such file"):
        open_rgb(tmp_path / "nope.png")
    with pytest.raises(DataError, match="it is a folder"):
        open_rgb(tmp_path)


@pytest.mark.parametrize("side", [12, 20])  # 144 px: Pillow warns; 400 px: Pillow errors
def test_decompression_bomb_becomes_data_error(tmp_path, monkeypatch, side):
    Image.new("RGB", (side, side)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DataError, match=r"'.*big\.png'.*decompression-bomb limit of 100 pixels"):
        open_rgb(tmp_path / "big.png")
