"""The dataset browser's inputs: which images, in which columns, under which file names.

:func:`featscope.browse` draws a few images of a dataset as the model sees them. This module
holds everything it decides before drawing, each a function of its own:

* :func:`open_images` opens the ``data`` argument: a class folder, a folder of loose images
  (unlabelled), one image file, a file list, ``ImageSamples`` or the demo photos;
* :func:`choose_positions` draws ``n`` of them at random with a seed (MMPretrain's
  ``browse_dataset.py`` walked the dataset from the start) and :func:`sample_seed` gives each
  image its own augmentation seed, so that an image's crops do not depend on the others drawn;
* :func:`file_stems` names the pictures ``<index>_<class>_<stem>``, so that two ``a.jpg`` in two
  class folders no longer overwrite each other (they did in the reference);
* :func:`trace_columns` runs one image through the transform and keeps the columns a mode
  shows.

:class:`BrowseOptions` groups the browser's own options (mode, number, seed, phase); each field
declares its command-line flag.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from featscope.data.py_sources import is_python_data
from featscope.data.samples import ImageSamples
from featscope.data.transforms import PHASES, Pipeline, StepOutput, trace
from featscope.errors import DataError, ParameterError
from featscope.options import option

__all__ = [
    "DEFAULT_N",
    "DEMO_SOURCE",
    "MODES",
    "BrowseOptions",
    "choose_positions",
    "demo_photo_samples",
    "file_stems",
    "load_image",
    "open_images",
    "sample_label",
    "sample_seed",
    "trace_columns",
]

#: The drawing modes, as in MMPretrain's ``browse_dataset.py``.
MODES = ("original", "transformed", "concat", "pipeline")
#: Images drawn when ``n`` is not given.
DEFAULT_N = 8
#: The data of ``featscope browse`` with no arguments.
DEMO_SOURCE = "demo:photos"
_LIST_EXTENSIONS = (".csv", ".tsv", ".txt")


def _n_from_arg(value: int) -> int | None:
    """``-n 0`` means every image; a negative count is a typo."""
    if value < 0:
        raise ParameterError(f"`-n` {value} must be >= 0 (0: all images); pass e.g. -n 8")
    return value or None


@dataclass(frozen=True)
class BrowseOptions:
    """What the dataset browser draws: the mode, how many images, the seed and the phase."""

    mode: str = option(
        "pipeline", "--mode", "-m", choices=MODES,
        help="pipeline: every step; original: as loaded; transformed: after the last step; "
        "concat: original | transformed",
    )  # fmt: skip
    n: int | None = option(
        DEFAULT_N, "-n", "--num", type=int, from_arg=_n_from_arg,
        help="number of images, drawn at random with --seed (0: all)",
    )  # fmt: skip
    seed: int = option(0, "--seed", type=int, help="seed of the image choice and augmentations")
    phase: str = option(
        "train", "--phase", "-p", choices=PHASES,
        help="a model spec's training augmentation or its evaluation transform",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(f"`mode` {self.mode!r} is not one of {', '.join(MODES)}")
        n = self.n
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ParameterError(
                f"`n` must be a positive number of samples; got {n!r}; pass e.g. 8"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ParameterError(f"`seed` must be an integer >= 0; got {self.seed!r}")
        if self.phase not in PHASES:
            raise ParameterError(
                f"`phase` {self.phase!r} is not one of {', '.join(PHASES)}; pass train or eval"
            )


# --------------------------------------------------------------------------- opening


def open_images(data: Any = None) -> ImageSamples:
    """Open the images to browse.

    Parameters
    ----------
    data : str, os.PathLike, ImageSamples or None
        A folder with one sub-folder per class, a folder of loose images (unlabelled), an image
        file, a ``.csv``/``.tsv``/``.txt`` list of ``path,label`` rows, ``ImageSamples``, or
        ``None`` / ``"demo:photos"`` for the demo photos.

    Returns
    -------
    ImageSamples
        The images, read lazily; loose images have the label -1 and no class names.

    Raises
    ------
    DataError
        For an empty folder or ``ImageSamples``, a path that is none of the above, or a source
        that cannot be read.
    """
    from featscope.data.sources import IMAGE_EXTENSIONS, file_list, image_folder

    if isinstance(data, ImageSamples):
        if len(data) == 0:
            raise DataError("`data` has no samples; pass a folder or file list with images")
        return data
    if data is None or data == DEMO_SOURCE:
        return demo_photo_samples()
    if is_python_data(data):
        from featscope.data.sources import load_samples

        return load_samples(data)
    if not isinstance(data, (str, os.PathLike)):
        raise DataError(
            f"`data` must be a folder, an image file, a .csv/.tsv/.txt file list, {DEMO_SOURCE}, "
            f"ImageSamples or a Dataset; got {type(data).__name__}"
        )
    path = Path(data)
    if path.is_dir():
        entries = [e for e in path.iterdir() if not e.name.startswith(".")]
        if not entries:
            raise DataError(
                f"data folder '{path}' is empty; put images in '{path}/<class name>/' (or "
                "directly in it), or pass another folder"
            )
        if any(e.is_dir() for e in entries):
            return image_folder(path)
        return _loose_images(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in _LIST_EXTENSIONS:
            return file_list(path)
        if suffix in IMAGE_EXTENSIONS:
            return _loose_images(path)
    raise DataError(
        f"data '{path}' is neither a folder, an image file nor a .csv/.tsv/.txt file list; check "
        f"the path, or pass {DEMO_SOURCE}"
    )


def _loose_images(path: Path) -> ImageSamples:
    """Unlabelled images: the files below a folder, or one file; ids relative to the folder."""
    from featscope.data.images import open_rgb
    from featscope.data.photos import image_paths

    files = image_paths([path])
    base = path if path.is_dir() else path.parent
    ids = tuple(f.relative_to(base).as_posix() for f in files)
    return ImageSamples(
        ids=ids,
        labels=np.full(len(ids), -1, dtype=np.int64),
        class_names=(),
        source=str(path),
        loader=lambda i: open_rgb(files[i]),
    )


def demo_photo_samples() -> ImageSamples:
    """Return the demo photos (coffee, chelsea, astronaut) as samples, each its own class.

    Returns
    -------
    ImageSamples
        Source ``"demo:photos"``; ids and class names are the photo names.

    Raises
    ------
    MissingExtraError
        When scikit-image is not installed (the ``demo`` extra).
    """
    from featscope.data.photos import demo_photos

    photos = demo_photos()
    names = tuple(name for name, _ in photos)
    images = [image for _, image in photos]
    return ImageSamples(
        ids=names,
        labels=np.arange(len(names), dtype=np.int64),
        class_names=names,
        source=DEMO_SOURCE,
        loader=lambda i: images[i],
    )


# --------------------------------------------------------------------------- choosing


def load_image(samples: ImageSamples, position: int, *, skip_bad_images: bool = False) -> Any:
    """Read one image, or warn and return None for an unreadable one when skipping.

    Parameters
    ----------
    samples : ImageSamples
        The images.
    position : int
        The image's position.
    skip_bad_images : bool, default False
        Warn (``UserWarning``) and return None instead of raising for an unreadable image.

    Returns
    -------
    PIL.Image.Image or None

    Raises
    ------
    DataError
        For an unreadable image without ``skip_bad_images``; the message names the file.
    """
    try:
        return samples.load(int(position))
    except DataError as exc:
        if not skip_bad_images:
            raise
        warnings.warn(f"skipped an unreadable image: {exc}", UserWarning, stacklevel=2)
        return None


def choose_positions(total: int, n: int | None, seed: int) -> np.ndarray:
    """Draw ``n`` of ``total`` positions at random, without repeats, in ascending order.

    Parameters
    ----------
    total : int
        Number of images.
    n : int or None
        How many; every position when ``None`` or ``n >= total``.
    seed : int
        Seed of the draw.

    Returns
    -------
    numpy.ndarray
        ``(min(n, total),)`` int64 positions, sorted.
    """
    if n is None or n >= total:
        return np.arange(total, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=int(n), replace=False)).astype(np.int64)


def sample_seed(seed: int, position: int) -> int:
    """Return the augmentation seed of the image at ``position``.

    An image's random crops depend on the run's seed and its own position only, never on which
    other images are drawn.

    Parameters
    ----------
    seed : int
        The run's seed.
    position : int
        The image's position in the data.

    Returns
    -------
    int
        A seed in ``[0, 2**32)``.
    """
    return int(np.random.SeedSequence([int(seed), int(position)]).generate_state(1)[0])


def sample_label(samples: ImageSamples, position: int) -> tuple[int | None, str | None]:
    """Return the class index and name of a sample, ``(None, None)`` when it has no label.

    Parameters
    ----------
    samples : ImageSamples
        The images.
    position : int
        The sample's position.

    Returns
    -------
    (int or None, str or None)
    """
    label = int(samples.labels[position])
    if label < 0:
        return None, None
    return label, samples.class_names[label]


def file_stems(samples: ImageSamples, positions: Any) -> list[str]:
    """Name each drawn image's picture ``<index>_<class>_<stem>``, unique within the run.

    Parameters
    ----------
    samples : ImageSamples
        The images.
    positions : sequence of int
        The drawn positions.

    Returns
    -------
    list of str
        One file stem per position: the position zero-padded to the width of the largest
        (at least 3 digits), the class name unless it equals the file stem (the demo photos),
        and the file stem, in characters safe in file names; ``-2``, ``-3`` ... on a clash.
    """
    width = max(3, len(str(max(len(samples) - 1, 0))))
    used: set[str] = set()
    stems = []
    for position in positions:
        position = int(position)
        stem = PurePath(samples.ids[position]).stem or "image"
        _, class_name = sample_label(samples, position)
        parts = [f"{position:0{width}d}"]
        if class_name is not None and class_name != stem:
            parts.append(class_name)
        parts.append(stem)
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in "_".join(parts))
        candidate, k = name, 1
        while candidate in used:
            k += 1
            candidate = f"{name}-{k}"
        used.add(candidate)
        stems.append(candidate)
    return stems


# --------------------------------------------------------------------------- tracing


def trace_columns(
    pipeline: Pipeline, image: Any, *, mode: str, seed: int = 0, image_id: str = "image"
) -> list[StepOutput]:
    """Run one image through the transform and return the outputs a mode draws, titled.

    Parameters
    ----------
    pipeline : Pipeline
        The resolved transform (:func:`featscope.data.transforms.resolve_transform`).
    image : PIL.Image.Image
        The loaded image.
    mode : {"pipeline", "original", "transformed", "concat"}
        ``pipeline``: the loaded image and every step; ``original``: the image as loaded (the
        transform does not run); ``transformed``: the last step's output; ``concat``: the
        first and the last.
    seed : int, default 0
        Seed of the random augmentations (see :func:`sample_seed`).
    image_id : str, default "image"
        Named in errors.

    Returns
    -------
    list of StepOutput
        One per column, ``name`` the column's title (``"original"``, ``"transformed"``, or
        ``"Original"`` and the step names).

    Raises
    ------
    ParameterError
        For an unknown mode, or a step that fails or returns no image (see
        :func:`featscope.data.transforms.trace`).
    """
    if mode not in MODES:
        raise ParameterError(f"`mode` {mode!r} is not one of {', '.join(MODES)}")
    if mode == "original":
        (first,) = trace(Pipeline((), pipeline.source), image, image_id=image_id)
        return [dataclasses.replace(first, name="original")]
    outputs = trace(pipeline, image, seed=seed, image_id=image_id)
    original = dataclasses.replace(outputs[0], name="original")
    transformed = dataclasses.replace(outputs[-1], name="transformed")
    if mode == "transformed":
        return [transformed]
    if mode == "concat":
        return [original, transformed]
    return outputs
