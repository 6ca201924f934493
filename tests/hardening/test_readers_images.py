"""Hostile and unusual image files: each reads correctly or fails with one clear DataError line.

Covers what :func:`featscope.data.images.open_rgb` (the reader behind every view: file lists,
class folders, loose photos, cue-conflict stimuli, browse) does with damaged files, decompression
bombs and every pixel mode, and what the command line makes of an unreadable image.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from featscope.cli import main
from featscope.data import open_rgb
from featscope.data.sources import file_list, image_folder
from featscope.errors import DataError


def _png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int, pixels: bytes = b"\0" * 10) -> bytes:
    """A PNG whose header claims ``width x height`` RGB pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))  # by default: the pixel data ends mid-row
        + chunk(b"IEND", b"")
    )


def _noise(h: int = 24, w: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1, err
    assert not any("Traceback" in line for line in err)
    return errors[0]


# --------------------------------------------------------------------------- damaged files


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"])
def test_truncated_image_is_a_data_error_naming_the_file(tmp_path, fmt):
    buffer = io.BytesIO()
    _noise().save(buffer, fmt)
    data = buffer.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cannot read image '.*cut\.\w+': .*--skip-bad-images"):
        open_rgb(path)


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"'.*empty\.png': empty file \(0 bytes\)"):
        open_rgb(tmp_path / "empty.png")


def test_wrong_extension_is_read_by_content(tmp_path):
    # a PNG saved as .jpg (common in scraped folders) is read by its content, not its name
    (tmp_path / "really_png.jpg").write_bytes(_png_bytes(_noise()))
    np.testing.assert_array_equal(np.asarray(open_rgb(tmp_path / "really_png.jpg")), _noise())


def test_text_file_with_image_extension(tmp_path):
    (tmp_path / "notes.png").write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match=r"'.*notes\.png': not an image file Pillow recognises"):
        open_rgb(tmp_path / "notes.png")


def test_folder_named_like_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match=r"'.*dir\.png': it is a folder"):
        open_rgb(tmp_path / "dir.png")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"'.*gone\.png': no such file; check the path"):
        open_rgb(tmp_path / "gone.png")


# --------------------------------------------------------------------------- decompression bombs


@pytest.mark.parametrize(
    ("side", "what"),
    [(100_000, "above twice the limit: Pillow's error"), (10_000, "above the limit: a warning")],
)
def test_decompression_bomb_header_is_refused_before_decoding(tmp_path, side, what):
    # a real bomb: a tiny file whose header claims side x side pixels (no monkeypatched limit)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    assert path.stat().st_size < 200
    with pytest.raises(DataError, match=r"'.*bomb\.png': it is larger than Pillow's decompression"):
        open_rgb(path)


def test_huge_dimensions_below_the_limit_but_no_data_is_truncated(tmp_path):
    path = tmp_path / "tall.png"
    path.write_bytes(_png_header_only(1, 1_000_000))
    with pytest.raises(DataError, match=r"'.*tall\.png': truncated file"):
        open_rgb(path)


def test_png_whose_data_ends_on_a_row_boundary_is_padded_by_pillow(tmp_path):
    # a known limitation, pinned here: when the compressed stream ends cleanly after whole rows,
    # Pillow reports nothing and the missing rows read as black (no reader can tell)
    path = tmp_path / "short.png"
    path.write_bytes(_png_header_only(1, 50, pixels=b"\0\xff\xff\xff" * 4))
    out = np.asarray(open_rgb(path))
    assert out.shape == (50, 1, 3)
    assert (out[:4] == 255).all()
    assert (out[4:] == 0).all()


def test_cue_conflict_stimuli_read_through_open_rgb(tmp_path):
    from featscope.data.cue_conflict import read_stimuli

    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "cat1-bear2.png").write_bytes(_png_bytes(_noise())[:100])
    stimuli = read_stimuli(tmp_path)
    with pytest.raises(DataError, match=r"cannot read image '.*cat1-bear2\.png': truncated"):
        stimuli.load(0)


# --------------------------------------------------------------------------- pixel modes


def test_16bit_png_scales_to_8bit_instead_of_clipping(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as raw:
        assert raw.mode.startswith("I")
    out = np.asarray(open_rgb(tmp_path / "deep.png"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / "cyan.jpg", quality=95)
    with Image.open(tmp_path / "cyan.jpg") as raw:
        assert raw.mode == "CMYK"
    r, g, b = np.asarray(open_rgb(tmp_path / "cyan.jpg"))[4, 4].astype(int)
    assert r < 10
    assert g > 245
    assert b > 245


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    image.putdata([0, 1])
    image.save(tmp_path / "pal.png", transparency=0)
    out = np.asarray(open_rgb(tmp_path / "pal.png"))
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [200, 0, 0]])


def test_exif_rotation_is_applied(tmp_path):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0)  # red at the top-left of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "phone.png", exif=exif.tobytes())
    out = np.asarray(open_rgb(tmp_path / "phone.png"))
    assert out.shape == (3, 2, 3)  # upright: portrait
    np.testing.assert_array_equal(out[0, 1], [255, 0, 0])  # top-left moved to top-right


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_its_first_frame(tmp_path, fmt):
    first, second = Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (0, 0, 255))
    path = tmp_path / f"anim.{fmt.lower()}"
    first.save(path, fmt, save_all=True, append_images=[second], lossless=True)
    with Image.open(path) as raw:
        assert raw.n_frames == 2
    r, _g, b = np.asarray(open_rgb(path))[2, 2].astype(int)
    assert r > 240
    assert b < 15


def test_grey_with_alpha_is_composited_on_white(tmp_path):
    Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), "LA").save(tmp_path / "la.png")
    out = np.asarray(open_rgb(tmp_path / "la.png"))
    np.testing.assert_array_equal(out[0, :, 0], [255, 0])


def test_one_bit_image(tmp_path):
    Image.fromarray(np.array([[True, False]])).convert("1").save(tmp_path / "bw.png")
    out = np.asarray(open_rgb(tmp_path / "bw.png"))
    np.testing.assert_array_equal(out[0, :, 1], [255, 0])


# --------------------------------------------------------------------------- readers and the CLI


def test_class_folder_and_file_list_read_through_open_rgb(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(_png_bytes(_noise())[:50])
    (tmp_path / "list.csv").write_text("a/x.png,0\n")
    for samples in (image_folder(tmp_path), file_list(tmp_path / "list.csv")):
        with pytest.raises(DataError, match=r"cannot read image '.*x\.png': truncated"):
            samples.load(0)


def _class_folder(tmp_path, bad: bytes) -> None:
    for label, names in {"a": ["1", "2", "3"], "b": ["4", "5", "6"]}.items():
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        for name in names:
            _noise(8, 8, seed=int(name)).save(tmp_path / "data" / label / f"{name}.png")
    (tmp_path / "data" / "b" / "bad.png").write_bytes(bad)


def test_cli_bad_image_is_one_error_line_exit_2(tmp_path, capsys):
    _class_folder(tmp_path, b"")
    argv = ["tsne", "--data", str(tmp_path / "data"), "--model", "demo:digits-cnn"]
    argv += ["--method", "pca", "--no-html", "--quiet", "--work-dir", str(tmp_path / "wd")]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert "bad.png" in line
    assert "empty file" in line
    assert "--skip-bad-images" in line
    assert not list((tmp_path / "wd").rglob("manifest.json"))


def test_cli_skip_bad_images_recovers_and_lists_the_file(tmp_path, capsys):
    _class_folder(tmp_path, _png_header_only(100_000, 100_000))
    argv = ["tsne", "--data", str(tmp_path / "data"), "--model", "demo:digits-cnn"]
    argv += ["--method", "pca", "--no-html", "--quiet", "--work-dir", str(tmp_path / "wd")]
    assert main([*argv, "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable image(s) of 7" in err
    assert "bad.png" in err
    assert len(list((tmp_path / "wd").rglob("manifest.json"))) == 1


def test_browse_skip_bad_images(tmp_path):
    # the Python call behind `featscope browse --skip-bad-images` (a plain callable transform
    # keeps timm out of this test)
    from featscope.data.browse import BrowseOptions
    from featscope.options import Extraction, Output
    from featscope.views.browse import browse

    (tmp_path / "data" / "a").mkdir(parents=True)
    _noise(8, 8).save(tmp_path / "data" / "a" / "good.png")
    (tmp_path / "data" / "a" / "bad.png").write_bytes(b"GIF89a" + b"\0" * 5)
    options = {
        "transform": lambda image: image,
        "options": BrowseOptions(mode="original"),
        "output": Output(work_dir=None),
    }
    with pytest.raises(DataError, match=r"cannot read image '.*bad\.png'"):
        browse(tmp_path / "data", **options)
    with pytest.warns(UserWarning, match="bad.png"):
        result = browse(tmp_path / "data", extraction=Extraction(skip_bad_images=True), **options)
    assert [s.id for s in result.samples] == ["a/good.png"]
