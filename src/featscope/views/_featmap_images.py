"""The photos of a feature-map run: reading them lazily, naming them, and lining maps up with them.

Split from :mod:`featscope.views.featmap`: everything here is about the input side (which photos,
their file stems, and the region of each photo the model sees), nothing about drawing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from featscope.errors import DataError

__all__ = [
    "Geometry",
    "PhotoItem",
    "collect_images",
    "is_detector",
    "model_input",
    "safe_name",
    "take_unique",
    "unique_stems",
]


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class PhotoItem:
    """One photo of a run: its id, its distinct file stem, and how to read it (RGB PIL)."""

    id: str
    stem: str
    load: Callable[[], Any]  # () -> RGB PIL image


def safe_name(text: str) -> str:
    """Return ``text`` usable in a file name (module paths keep their dots), never hidden."""
    out = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(text)).lstrip(".")
    return out or "image"


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


def take_unique(base: str, used: set[str]) -> str:
    """Return ``base``, or ``base-2``, ``base-3``, ... if taken, and mark the result as used."""
    candidate, k = base, 1
    while candidate in used:
        k += 1
        candidate = f"{base}-{k}"
    used.add(candidate)
    return candidate


def collect_images(images: Any) -> tuple[list[PhotoItem], str]:
    """Turn the ``images`` argument into named, lazily read images (no pixel read yet)."""
    from PIL import Image

    from featscope.data.photos import demo_photos, image_paths
    from featscope.data.samples import ImageSamples

    if images is None:
        photos = demo_photos()
        ids = [name for name, _ in photos]
        loads = [(lambda img=img: img) for _, img in photos]
        source = "demo:photos"
    elif isinstance(images, ImageSamples):
        ids = list(images.ids)
        loads = [(lambda i=i: images.load(i)) for i in range(len(images))]
        source = images.source
    else:
        items = [images] if isinstance(images, (str, os.PathLike, Image.Image)) else images
        if isinstance(items, np.ndarray):
            items = [items]
        try:
            items = list(items)
        except TypeError:
            raise DataError(
                f"`images` must be image files or folders, PIL images or (id, image) pairs; got "
                f"{type(images).__name__}"
            ) from None
        ids, loads = [], []
        paths: list[Any] = []
        for k, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                paths.append(item)
                continue
            if paths:  # keep the order given: expand the paths seen so far
                _add_paths(ids, loads, image_paths(paths))
                paths = []
            name, picture = (
                item
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                else (f"image{k}", item)
            )
            ids.append(name)
            loads.append(lambda picture=picture, name=name: _as_pil(picture, name))
        if paths:
            _add_paths(ids, loads, image_paths(paths))
        source = ", ".join(str(i) for i in ids[:3]) + (" ..." if len(ids) > 3 else "")
    if not ids:
        raise DataError("`images` is empty; pass one or more image files, folders or images")
    stems = unique_stems(ids)
    return [PhotoItem(i, s, f) for i, s, f in zip(ids, stems, loads, strict=True)], source


def _add_paths(ids: list[str], loads: list[Callable[[], Any]], paths: list[Path]) -> None:
    from featscope.data.images import open_rgb

    for path in paths:
        ids.append(str(path))
        loads.append(lambda path=path: open_rgb(path))


def _as_pil(picture: Any, name: str) -> Any:
    from PIL import Image

    if isinstance(picture, Image.Image):
        return picture.convert("RGB")
    array = np.asarray(picture)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise DataError(
            f"image {name!r} is a {type(picture).__name__} of shape {getattr(array, 'shape', '?')}"
            f" and dtype {array.dtype}; pass a PIL image or a uint8 (H, W[, 3]) array"
        )
    return Image.fromarray(array).convert("RGB")


# --------------------------------------------------------------------------- geometry


def is_detector(module: Any) -> bool:
    """Whether ``module`` resizes and pads its input itself (torchvision's detectors)."""
    transform = getattr(module, "transform", None)
    return all(hasattr(transform, a) for a in ("size_divisible", "image_mean", "min_size"))


@dataclass
class Geometry:
    """How the maps of one image line up with the photo."""

    image: np.ndarray  # RGB uint8 of the region the maps cover, at the drawing size
    region: tuple[int, int, int, int]  # (left, top, right, bottom) in original pixels
    detector: bool = False
    valid: tuple[float, float] | None = None  # detectors: fraction of the padded map that is image

    def crop(self, x: np.ndarray) -> tuple[np.ndarray, list[int] | None]:
        """Cut the padded margin off a detector's ``(C, h, w)`` map."""
        if self.valid is None:
            return x, None
        fh, fw = x.shape[1:]
        # Python's round (half to even), as MMRazor's crop rule
        vh = min(fh, max(1, round(fh * self.valid[0])))
        vw = min(fw, max(1, round(fw * self.valid[1])))
        return x[:, :vh, :vw], [vh, vw]


def _fit(image: Any, max_size: int | None) -> Any:
    from PIL import Image

    if max_size is None or max(image.size) <= max_size:
        return image
    scale = max_size / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def model_input(handle: Any, image: Any, max_size: int | None) -> tuple[Any, Geometry]:
    """Return the model's input for one photo and the geometry to draw its maps in."""
    import torch

    from featscope.models.preprocessing import crop_box  # imports PIL: only when drawing

    if is_detector(handle.module):
        # the detector normalises, resizes and pads by itself: give it the photo in [0, 1]
        array = np.asarray(image, dtype=np.float32) / 255.0
        x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
        shown = np.asarray(_fit(image, max_size))
        return x, Geometry(shown, (0, 0, image.width, image.height), detector=True)
    x = handle.preprocess(image)[None]
    left, top, right, bottom = crop_box(image.size, handle.preprocess)
    x0, y0 = max(0, round(left)), max(0, round(top))
    box = (
        x0,
        y0,
        min(image.width, x0 + max(1, round(right - left))),
        min(image.height, y0 + max(1, round(bottom - top))),
    )
    shown = np.asarray(_fit(image.crop(box), max_size))
    return x, Geometry(shown, box)
