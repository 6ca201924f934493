"""Loose photos: the built-in demo photos and the image files or folders a user names.

The feature-map views take any number of images, each drawn on its own; unlike the class
folders of :func:`~featscope.data.image_folder` they carry no labels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from featscope._optional import require
from featscope.data.sources import IMAGE_EXTENSIONS
from featscope.errors import DataError

__all__ = ["DEMO_PHOTOS", "demo_photos", "image_paths"]

#: The ``skimage.data`` photos of the built-in feature-map demo (CC0 / public domain).
DEMO_PHOTOS = ("coffee", "chelsea", "astronaut")


def demo_photos(names: Iterable[str] = DEMO_PHOTOS) -> list[tuple[str, Image.Image]]:
    """Return photos from ``skimage.data`` as ``(id, RGB image)`` pairs.

    Parameters
    ----------
    names : iterable of str, optional
        ``skimage.data`` photo names; default :data:`DEMO_PHOTOS` (a cup of coffee, a cat, an
        astronaut).

    Returns
    -------
    list of (str, PIL.Image.Image)
        The name and the photo, in RGB.

    Raises
    ------
    MissingExtraError
        When scikit-image is not installed (the ``demo`` extra).
    DataError
        When a name is not a photo of ``skimage.data``.
    """
    skdata = require("skimage.data", "demo", "the built-in demo photos")
    photos = []
    for name in names:
        loader = getattr(skdata, str(name), None)
        if not callable(loader):
            raise DataError(
                f"{name!r} is not a photo of skimage.data; pass names such as "
                f"{', '.join(DEMO_PHOTOS)}"
            )
        photos.append((str(name), Image.fromarray(loader()).convert("RGB")))
    return photos


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def image_paths(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand image files and folders into a list of image files.

    Parameters
    ----------
    inputs : path or iterable of paths
        Image files (taken as given, whatever their extension) and folders (every image file
        below them, recursively, hidden files and folders skipped, sorted by path).

    Returns
    -------
    list of pathlib.Path
        The files, in the order given, each folder's files sorted; a file named twice is kept
        once.

    Raises
    ------
    DataError
        When no path is given, a path does not exist, or a folder holds no image file.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    items = [Path(p) for p in inputs]
    if not items:
        raise DataError("no image given; pass one or more image files or folders")
    found: list[Path] = []
    for item in items:
        if item.is_dir():
            files = []
            for folder, dirnames, filenames in os.walk(item, followlinks=True):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                files += [Path(folder) / n for n in filenames if _is_image_name(n)]
            if not files:
                raise DataError(
                    f"folder '{item}' holds no image file ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                    "pass image files or a folder that has some"
                )
            found += sorted(files)
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"image '{item}' does not exist; pass existing image files or folders")
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path, None)
    return list(unique)
