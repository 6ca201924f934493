"""Loose photos: the built-in demo photos and the image files, folders and arrays a user names.

The feature-map views (and reconstructions) take any number of images, each drawn on its own;
unlike the class folders of :func:`~featscope.data.image_folder` they carry no labels.
:func:`collect_photos` names them (ids and distinct file stems) without reading a pixel, and
:func:`read_photos` reads them one at a time, skipping unreadable ones on request.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from PIL import Image

from featscope._optional import require
from featscope.data.images import skip_reason
from featscope.data.py_sources import is_python_data
from featscope.data.sources import IMAGE_EXTENSIONS
from featscope.data.walk import check_name, walk_files
from featscope.errors import DataError, ParameterError

__all__ = [
    "DEMO_PHOTOS",
    "PhotoItem",
    "collect_photos",
    "demo_photos",
    "image_paths",
    "read_photos",
    "reject_model",
    "safe_name",
    "take_unique",
    "unique_stems",
]

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
            files = walk_files(item, _is_image_name)
            if not files:
                raise DataError(
                    f"folder '{item}' holds no image file ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                    "pass image files or a folder that has some"
                )
            found += sorted(files)
        elif item.is_file():
            check_name(item)
            found.append(item)
        else:
            what = "is not a regular file" if item.exists() else "does not exist"
            raise DataError(f"image '{item}' {what}; pass existing image files or folders")
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path, None)
    return list(unique)


# --------------------------------------------------------------------------- named photos


@dataclass(frozen=True)
class PhotoItem:
    """One photo of a run: its id, its distinct file stem, and how to read it (RGB PIL).

    Attributes
    ----------
    id : str
        The path as given, or the name of an in-memory or demo image.
    stem : str
        A file-name stem no other photo of the run has (see :func:`unique_stems`).
    load : callable
        ``() -> PIL.Image.Image`` in RGB; raises :class:`DataError` for an unreadable file.
        For a prepared sample, a picture of the model input (for display).
    prepared : callable or None
        ``() -> (C, H, W)`` array or tensor: the model input as the user's Dataset gives it
        (already transformed: used as it is); ``None`` for photos, which get the model's
        preprocessing.
    """

    id: str
    stem: str
    load: Callable[[], Any]
    prepared: Callable[[], Any] | None = None

    def model_input(self) -> Any:
        """Return the model input of a prepared sample, as given; ``None`` for a photo."""
        return None if self.prepared is None else self.prepared()


def safe_name(text: str) -> str:
    """Return ``text`` usable in a file name (module paths keep their dots), never hidden.

    Parameters
    ----------
    text : str
        Any text, e.g. an image name or a capture point.

    Returns
    -------
    str
        Letters, digits, ``.``, ``_`` and ``-`` only, no leading dot; ``"image"`` if nothing
        is left.
    """
    out = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(text)).lstrip(".")
    return out or "image"


def take_unique(base: str, used: set[str]) -> str:
    """Return ``base``, or ``base-2``, ``base-3``, ... if taken, and mark the result as used.

    Parameters
    ----------
    base : str
        The wanted name.
    used : set of str
        Names already taken; the result is added to it.

    Returns
    -------
    str
    """
    candidate, k = base, 1
    while candidate in used:
        k += 1
        candidate = f"{base}-{k}"
    used.add(candidate)
    return candidate


def unique_stems(ids: Sequence[str]) -> list[str]:
    """File-name stems for images, distinct even when file names repeat across folders.

    ``a/cat.jpg`` and ``b/cat.jpg`` become ``a_cat`` and ``b_cat``; names that still collide
    (``x/a/cat.jpg`` and ``y/a/cat.jpg``, or ``cat.jpg`` and ``cat.png``) get ``-2``, ``-3``, ...
    in order. Unique names are kept as they are (``coffee``).

    Parameters
    ----------
    ids : sequence of str
        Image paths or names.

    Returns
    -------
    list of str
        One stem per id, all distinct.
    """
    paths = [PurePath(i) for i in ids]
    stems = [safe_name(p.stem if p.suffix else p.name) for p in paths]
    counts = Counter(stems)
    stems = [
        safe_name(f"{p.parent.name}_{s}") if counts[s] > 1 and p.parent.name else s
        for p, s in zip(paths, stems, strict=True)
    ]
    used: set[str] = set()
    return [take_unique(stem, used) for stem in stems]


def reject_model(data: Any, usage: str) -> None:
    """Refuse a model passed where the images go: as ``data`` or among its items.

    The feature-map views take the images first and the model as a keyword; a call in the old
    order (model first) would otherwise fail later with a message about images.

    Parameters
    ----------
    data : Any
        What was passed as ``data``.
    usage : str
        The right call, shown in the message (``"feature_maps(data, model=...)"``).

    Raises
    ------
    ParameterError
        When ``data`` (or an item of a list or tuple) is a module or a model handle.
    """
    items = data if isinstance(data, (list, tuple)) else [data]
    if any(hasattr(item, "named_modules") or hasattr(item, "point_info") for item in items):
        raise ParameterError(
            f"`data` holds a model; the images come first, the model is a keyword: {usage}"
        )


def collect_photos(data: Any, *, name: str = "data") -> tuple[list[PhotoItem], str]:
    """Name the photos a user gives, without reading a pixel.

    Parameters
    ----------
    data : path, sequence, ImageSamples or None
        Image files and folders (every image below a folder, recursively), PIL images, uint8
        ``(H, W[, 3])`` arrays, ``(id, image)`` pairs, a mix of these in a sequence, or
        :class:`~featscope.data.ImageSamples`. ``None``: the demo photos
        (:func:`demo_photos`).
    name : str, default "data"
        How the argument is named in error messages.

    Returns
    -------
    photos : list of PhotoItem
        In the order given (folders expanded in path order), each with a distinct file stem.
    source : str
        A short description for provenance (``"demo:photos"``, the first ids, the sample
        source).

    Raises
    ------
    DataError
        When nothing is given, a path does not exist, a folder holds no image, or an item is
        neither a path, an image nor a pair (arrays are checked when read).
    """
    from featscope.data.samples import ImageSamples

    if data is None:
        photos = demo_photos()
        ids = [photo_id for photo_id, _ in photos]
        loads = [(lambda img=img: img) for _, img in photos]
        source = "demo:photos"
    elif is_python_data(data):
        from featscope.data.sources import load_samples

        return collect_photos(load_samples(data), name=name)
    elif isinstance(data, ImageSamples):
        ids = list(data.ids)
        loads = [(lambda i=i: data.load(i)) for i in range(len(data))]
        source = data.source
        if data.prepared:
            stems = unique_stems(ids)
            tensors = [(lambda i=i: data.load_prepared(i)) for i in range(len(data))]
            items = zip(ids, stems, loads, tensors, strict=True)
            return [PhotoItem(*item) for item in items], source
    else:
        ids, loads = _named_items(data, name)
        source = ", ".join(str(i) for i in ids[:3]) + (" ..." if len(ids) > 3 else "")
    if not ids:
        raise DataError(f"`{name}` is empty; pass one or more image files, folders or images")
    stems = unique_stems(ids)
    return [PhotoItem(i, s, f) for i, s, f in zip(ids, stems, loads, strict=True)], source


def _named_items(data: Any, name: str) -> tuple[list[str], list[Callable[[], Any]]]:
    items = [data] if isinstance(data, (str, os.PathLike, Image.Image, np.ndarray)) else data
    try:
        items = list(items)
    except TypeError:
        raise DataError(
            f"`{name}` must be image files or folders, PIL images or (id, image) pairs; got "
            f"{type(data).__name__}"
        ) from None
    ids: list[str] = []
    loads: list[Callable[[], Any]] = []
    paths: list[Any] = []

    def flush() -> None:  # keep the order given: expand the paths seen so far
        from featscope.data.images import open_rgb

        for path in image_paths(paths) if paths else ():
            ids.append(str(path))
            loads.append(lambda path=path: open_rgb(path))
        paths.clear()

    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            paths.append(item)
            continue
        flush()
        pair = isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        photo_id, picture = item if pair else (f"image{k}", item)
        ids.append(photo_id)
        loads.append(lambda picture=picture, photo_id=photo_id: _as_pil(picture, photo_id))
    flush()
    return ids, loads


def _as_pil(picture: Any, photo_id: str) -> Image.Image:
    if isinstance(picture, Image.Image):
        return picture.convert("RGB")
    array = np.asarray(picture)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise DataError(
            f"image {photo_id!r} is a {type(picture).__name__} of shape "
            f"{getattr(array, 'shape', '?')} and dtype {array.dtype}; pass a PIL image or a "
            "uint8 (H, W[, 3]) array"
        )
    return Image.fromarray(array).convert("RGB")


def read_photos(
    photos: Sequence[PhotoItem], *, skip_bad_images: bool = False, skipped: list | None = None
) -> Iterator[tuple[PhotoItem, Image.Image]]:
    """Read photos one at a time, in order.

    Parameters
    ----------
    photos : sequence of PhotoItem
        From :func:`collect_photos`.
    skip_bad_images : bool, default False
        Leave unreadable photos out, with a ``UserWarning``, instead of raising.
    skipped : list, optional
        Receives ``(id, reason)`` for every photo left out.

    Yields
    ------
    (PhotoItem, PIL.Image.Image)
        Each readable photo and its RGB image.

    Raises
    ------
    DataError
        For the first unreadable photo (without ``skip_bad_images``), or, once all were tried,
        when none could be read.
    """
    skipped = [] if skipped is None else skipped
    read = 0
    for item in photos:
        try:
            picture = item.load()
        except DataError as exc:
            if not skip_bad_images:
                raise
            skipped.append((item.id, skip_reason(exc)))
            warnings.warn(f"skipped image {item.id!r}: {skipped[-1][1]}", stacklevel=2)
            continue
        read += 1
        yield item, picture
    if photos and not read:
        raise DataError(
            f"none of the {len(photos)} image(s) could be read (first: {skipped[0][0]!r}: "
            f"{skipped[0][1]}); pass image files"
        )
