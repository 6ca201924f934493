"""Read any image file into an 8-bit RGB :class:`PIL.Image.Image`, or fail with a clear reason.

Every mode Pillow opens is turned into RGB by a rule a user can predict:

- ``RGB``: as is; ``L``, ``1``, ``CMYK``, ``YCbCr``: Pillow's own conversion.
- Transparent images (``LA``, ``RGBA``, ``PA``, ``P`` with a ``transparency`` entry) are
  composited on **white**. Dropping the alpha channel would show whatever colour the fully
  transparent pixels happen to store (often black), which is not what any viewer shows.
- 16-bit grey (``I;16``, ``I;16B``, ...) is scaled by its bit depth: ``v * 255 / 65535``, so 65535
  becomes 255 (Pillow's own ``convert("L")`` would clip everything above 255 to white).
- 32-bit integer ``I``: scaled by the declared bit depth (TIFF ``BitsPerSample`` and
  ``SampleFormat``: the largest value of that type becomes 255) or, when the file
  declares none, as 16-bit data (what Pillow gives for 16-bit PGM/PPM), or 32-bit when a value
  exceeds 65535. Images with negative values are stretched from their minimum to their maximum.
- float ``F``: values in ``[0, 1]`` are multiplied by 255; any other range is stretched from its
  minimum to its maximum. NaN becomes 0, infinities the largest or smallest finite value.

The EXIF orientation is applied (a portrait photo stored sideways comes out upright), and only
the first frame of an animated image (GIF, APNG, WebP, multi-page TIFF) is read.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from featscope.errors import DataError

__all__ = ["open_rgb", "pil_to_rgb", "skip_reason"]

_FIX = "remove it or pass --skip-bad-images"
_ALPHA_MODES = frozenset({"LA", "La", "RGBA", "RGBa", "PA"})
_UINT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def skip_reason(exc: BaseException) -> str:
    """Return why an image could not be read, without the hint to skip it.

    Views that were asked to skip unreadable images warn with this text: the reader's advice
    to pass ``--skip-bad-images`` is moot there.

    Parameters
    ----------
    exc : BaseException
        The error raised by :func:`open_rgb` (or any reader).

    Returns
    -------
    str
        The message up to the hint.
    """
    return str(exc).split(f"; {_FIX}")[0]


def open_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Read an image file as an 8-bit RGB image, with its pixels fully loaded.

    Parameters
    ----------
    path : str or os.PathLike
        The image file. Any format and mode Pillow reads (see the module docstring for how each
        mode becomes RGB).

    Returns
    -------
    PIL.Image.Image
        A new ``RGB`` image, EXIF orientation applied, first frame only, not tied to the file.

    Raises
    ------
    DataError
        When the file is missing, empty, not an image, truncated or corrupt, when its mode cannot
        be turned into RGB, or when it is larger than ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's
        decompression-bomb guard). The message names the file and the reason.

    Notes
    -----
    Pillow's decompression-bomb warning is turned into an error with
    :func:`warnings.catch_warnings`, which changes the process-wide warning filters while the file
    is opened; call this from worker processes rather than threads when that matters.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"cannot read image '{path}': no such file; check the path") from None
    except OSError as exc:
        raise DataError(f"cannot read image '{path}': {exc.strerror or exc}; {_FIX}") from exc
    if path.is_dir():
        raise DataError(f"cannot read image '{path}': it is a folder, not an image file")
    if not path.is_file():  # reading a FIFO or /dev/zero would block or never end
        raise DataError(
            f"cannot read image '{path}': not a regular file (a device, FIFO or socket); {_FIX}"
        )
    if size == 0:
        raise DataError(f"cannot read image '{path}': empty file (0 bytes); {_FIX}")

    with warnings.catch_warnings():
        # A pixel count between MAX_IMAGE_PIXELS and twice it only warns in Pillow; such a file
        # would then be decoded in full, so treat it like the hard limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                image.seek(0)  # first frame of an animation; a no-op for still images
                image.load()
                # exif_transpose returns a plain copy: read the format's metadata first
                declared_max = _declared_max(image)
                upright = ImageOps.exif_transpose(image)
                return _to_rgb(upright, path, declared_max)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise DataError(
                f"cannot read image '{path}': it is larger than Pillow's decompression-bomb limit "
                f"of {Image.MAX_IMAGE_PIXELS} pixels ({exc}); {_FIX}, or raise "
                "PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
            ) from exc
        except UnidentifiedImageError as exc:
            raise DataError(
                f"cannot read image '{path}': not an image file Pillow recognises; {_FIX}"
            ) from exc
        except DataError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
            # Pillow signals damaged files with any of these, depending on the format plugin.
            raise DataError(f"cannot read image '{path}': {_reason(exc)}; {_FIX}") from exc


def pil_to_rgb(image: Image.Image, name: str = "image") -> Image.Image:
    """Turn an image already in memory into RGB by the rules :func:`open_rgb` applies to files.

    Parameters
    ----------
    image : PIL.Image.Image
        Any mode (see the module docstring).
    name : str, default "image"
        Names the image in the error message.

    Returns
    -------
    PIL.Image.Image
        An ``RGB`` image (``image`` itself when it is RGB already).

    Raises
    ------
    DataError
        When the mode cannot be turned into RGB.
    """
    return _to_rgb(image, Path(name), _declared_max(image))


def _reason(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    lowered = message.lower()
    if isinstance(exc, EOFError) or "truncated" in lowered or "broken data stream" in lowered:
        return f"truncated file ({message})"
    return f"corrupt or unsupported file ({message})"


def _to_rgb(image: Image.Image, path: Path, declared_max: int | None) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image  # already a copy detached from the file (exif_transpose returns one)
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
        return _on_white(image.convert("RGBA"))
    if mode in _UINT16_MODES:
        grey = np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
        return _grey_to_rgb(grey)
    if mode == "I":
        return _grey_to_rgb(_scale_int32(image, declared_max))
    if mode == "F":
        return _grey_to_rgb(_scale_float(np.asarray(image, dtype=np.float64)))
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise DataError(
            f"cannot read image '{path}': Pillow cannot convert its mode {mode!r} to RGB; "
            f"convert it to RGB first, {_FIX}"
        ) from exc


def _on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_int32(image: Image.Image, declared_max: int | None) -> np.ndarray:
    values = np.asarray(image, dtype=np.float64)
    if values.size == 0:
        return values
    if values.min() < 0:
        return _stretch(values)
    top = declared_max
    if top is None:
        # Files without a declared depth that Pillow opens as "I" hold 16-bit data (PGM/PPM
        # with maxval > 255 are rescaled to 0-65535, older Pillow's 16-bit PNG)
        top = 65535 if values.max() <= 65535 else 2**32 - 1
    return values * (255.0 / top)


def _declared_max(image: Image.Image) -> int | None:
    """Largest value the file's declared sample format can hold (TIFF tags), if it says."""
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return None
    bits, sample_format = _first(tags.get(258)), _first(tags.get(339))  # BitsPerSample, format
    if not bits or not 1 <= int(bits) <= 32:
        return None
    signed = sample_format == 2
    return 2 ** (int(bits) - 1) - 1 if signed else 2 ** int(bits) - 1


def _first(value: object) -> object:
    if isinstance(value, tuple):
        return value[0] if value else None
    return value


def _scale_float(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values)
    # NaN -> 0, +/-inf -> the largest / smallest finite value, so one bad pixel cannot hide the rest
    values = np.nan_to_num(values, nan=0.0, posinf=finite.max(), neginf=finite.min())
    if finite.min() >= 0.0 and finite.max() <= 1.0:
        return values * 255.0
    return _stretch(values)


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high == low:
        return np.zeros_like(values)
    return (values - low) * (255.0 / (high - low))


def _grey_to_rgb(grey: np.ndarray) -> Image.Image:
    grey8 = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey8[:, :, None], 3, axis=2))
