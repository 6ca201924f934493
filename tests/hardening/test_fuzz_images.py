"""Property tests: whatever bytes a file holds, open_rgb returns an RGB image or a DataError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from featscope.data import open_rgb
from featscope.errors import DataError

# small and without a deadline: decoding time varies on a loaded machine
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure here is a real regression
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    files = {}
    for fmt, kwargs in [
        ("PNG", {}),
        ("JPEG", {}),
        ("GIF", {"save_all": True, "append_images": [image.rotate(90)]}),
        ("WEBP", {"save_all": True, "append_images": [image.rotate(90)]}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("BMP", {}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        files[fmt] = buffer.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    files["JPEG+EXIF"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=np.uint16)).save(buffer, "PNG")
    files["PNG16"] = buffer.getvalue()
    return files


SEEDS = _seed_files()


def _read(path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        image = open_rgb(path)
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message
        assert path.name in message
    else:
        assert image.mode == "RGB"
        assert min(image.size) >= 1


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_read_or_data_error(tmp_path, data):
    _read(tmp_path / "random.png", data)


@FUZZ
@given(data=st.binary(max_size=512))
def test_random_bytes_after_a_real_magic_number(tmp_path, data):
    # past the magic number, every format plugin parses the rest
    for magic in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"II*\x00", b"RIFF"):
        _read(tmp_path / "magic.img", magic + data)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_prefix_of_a_valid_file(tmp_path, fmt, cut):
    data = SEEDS[fmt]
    _read(tmp_path / f"cut.{fmt.lower()}", data[: int(cut * len(data))])


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@FUZZ
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8)
)
def test_corrupted_bytes_of_a_valid_file(tmp_path, fmt, flips):
    data = bytearray(SEEDS[fmt])
    for where, value in flips:
        data[int(where * len(data))] = value
    _read(tmp_path / f"flip.{fmt.lower()}", bytes(data))
