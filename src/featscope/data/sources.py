"""Where images come from: class folders, file lists, the built-in digits, and class-name files.

Every source returns an :class:`~featscope.data.samples.ImageSamples` whose loader is a small
picklable object (so data-loader worker processes can use it) reading images with
:func:`~featscope.data.images.open_rgb`.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from featscope.data.images import open_rgb
from featscope.data.samples import UNLABELLED, ImageSamples, metadata_columns
from featscope.data.textlines import MARKER, decode_lines
from featscope.data.walk import check_name, class_folders, folder_key, walk_files
from featscope.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "apply_class_names",
    "demo_digits",
    "file_list",
    "image_folder",
    "load_samples",
    "read_class_names",
]

logger = logging.getLogger(__name__)

#: File extensions (lower case) that :func:`image_folder` treats as images.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
_LIST_EXTENSIONS = (".csv", ".tsv", ".txt")
_DEMOS = ("demo:digits",)
_MAX_LISTED = 5
#: Integer labels must be below this: class names "0" .. "<max>" are made for every index up to the
#: largest label, so a stray huge number (an image id in the label column) would exhaust memory.
MAX_CLASS_INDEX = 1_000_000

T = TypeVar("T")


@dataclass(frozen=True)
class _PathLoader:
    """Read the i-th image of a list of paths relative to a base folder (picklable)."""

    base: Path
    paths: tuple[str, ...]

    def __call__(self, i: int) -> Image.Image:
        return open_rgb(self.base / self.paths[i])


@dataclass(frozen=True)
class _ArrayLoader:
    """Turn the i-th ``(H, W)`` uint8 array into an RGB image (picklable)."""

    images: np.ndarray

    def __call__(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i]).convert("RGB")


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def image_folder(root: str | os.PathLike[str]) -> ImageSamples:
    """Read a folder with one sub-folder per class, as torchvision's ``ImageFolder`` does.

    Parameters
    ----------
    root : str or os.PathLike
        Folder whose sub-folders are the classes. Their sorted names are the class names (index =
        label). Images are found recursively inside each class folder by extension (jpg, jpeg,
        png, bmp, gif, tif, tiff, webp, ppm, pgm; any case). Hidden folders and files (names
        starting with ``.``, such as ``.ipynb_checkpoints``) are skipped. A folder without
        sub-folders that holds images is read as *unlabelled* data: its images, by name.

    Returns
    -------
    ImageSamples
        Samples sorted by class, then by path; ids are the paths relative to ``root`` with ``/``
        separators; ``source`` is ``root``. For a flat folder: labels all -1 and no class names.

    Raises
    ------
    DataError
        When ``root`` is missing or not a folder, has neither class sub-folders nor images, or
        its class sub-folders hold no image at all. A class folder without images is allowed
        (its class simply has no samples; a warning says so) and selecting that class later
        fails.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder '{root}' does not exist; check the path")
    if not root.is_dir():
        raise DataError(
            f"image folder '{root}' is not a folder; pass a folder with one sub-folder per class "
            "(or a .csv/.tsv/.txt file list)"
        )
    class_dirs = class_folders(root)
    if not class_dirs:
        loose = sorted(entry.name for entry in root.iterdir() if _is_image_file(entry))
        if not loose:
            raise DataError(
                f"image folder '{root}' has no class sub-folders and no images; put the images "
                f"in '{root}' (unlabelled) or in '{root}/<class name>/', or pass a file list"
            )
        logger.info("%s: %d images, no class sub-folders: unlabelled", root, len(loose))
        return _unlabelled_paths(root, loose, str(root))

    ids: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    # one set of walked folders for all classes: a link into another class (or to the root)
    # adds nothing, and a link loop is walked once
    seen = {key for key in map(folder_key, [root, *class_dirs]) if key is not None}
    for label, class_dir in enumerate(class_dirs):
        found = sorted(_walk_images(class_dir, root, seen))
        if not found:
            empty.append(class_dir.name)
        ids.extend(found)
        labels.extend([label] * len(found))
    if not ids:
        raise DataError(
            f"image folder '{root}' has {len(class_dirs)} class sub-folders but no image files "
            f"(extensions {', '.join(sorted(IMAGE_EXTENSIONS))}); check the path"
        )
    if empty:
        warnings.warn(
            f"image folder '{root}': {len(empty)} class folder(s) hold no images "
            f"({', '.join(repr(n) for n in empty[:_MAX_LISTED])}); those classes have no samples",
            UserWarning,
            stacklevel=2,
        )
    class_names = tuple(d.name for d in class_dirs)
    logger.info("%s: %d images in %d classes", root, len(ids), len(class_names))
    return ImageSamples(
        ids=tuple(ids),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=class_names,
        source=str(root),
        loader=_PathLoader(root, tuple(ids)),
    )


def _is_image_file(path: Path) -> bool:
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not _is_hidden(path.name):
        check_name(path)  # its name becomes an id
        return True
    return False


def _walk_images(class_dir: Path, root: Path, seen: set[tuple[int, int]]) -> list[str]:
    files = walk_files(class_dir, lambda name: Path(name).suffix.lower() in IMAGE_EXTENSIONS, seen)
    return [path.relative_to(root).as_posix() for path in files]


def file_list(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> ImageSamples:
    """Read a list of ``path,label`` rows (csv, tsv or whitespace-separated text).

    Parameters
    ----------
    path : str or os.PathLike
        The list. The separator is a tab for ``.tsv`` files; otherwise it is taken from the first
        row: a tab, else a comma, else whitespace (then the label is the last field, so paths may
        contain spaces). A header row is recognised when it is ``path,label`` or when its label is
        neither an integer nor a label used by another row and its path does not end in an image
        extension; with a header, the columns named
        ``path`` and ``label`` are used (any order, other columns ignored). Blank lines are
        skipped.
    root : str or os.PathLike, optional
        Folder that relative paths are resolved against; by default the list's own folder.

    Returns
    -------
    ImageSamples
        Samples in list order. Labels are integer class indices (class names ``"0"`` ..
        ``str(max)``) or class names (sorted names give the indices; see
        :func:`apply_class_names` to impose another order). Ids are the paths as written in the
        list, with ``/`` separators; ``source`` is the list path.

    Raises
    ------
    DataError
        When the list is missing or empty, a row lacks a column or has an empty path or label
        (the line number is named), a line cannot be parsed, labels mix indices and names, an
        index is negative or not below :data:`MAX_CLASS_INDEX`, or image paths do not exist (the
        first few are listed with the count).

    Notes
    -----
    Paths that leave the list's folder (``../images/x.png``) and absolute paths are followed:
    a list is trusted like the paths typed on the command line (dataset lists often point at a
    shared image store). featscope only reads the files a list names, as images; an entry naming
    something that is not an image (``../../etc/passwd``) fails with a :class:`DataError` when
    it is read, like any unreadable image (or is skipped with ``--skip-bad-images``). Check a
    list from an untrusted source before running on it: the images it names can end up as
    thumbnails in the run folder.
    """
    path = Path(path)
    text = _read_text(path, "file list")
    base = Path(root) if root is not None else path.parent
    if root is not None and not base.is_dir():
        raise DataError(f"file-list root '{base}' is not a folder; pass the folder images are in")

    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise DataError(f"file list '{path}' has no rows; expected path,label rows")
    rows = _split_rows(path, lines)
    if all(len(cells) == 1 for _, cells in rows):
        return _path_list(path, base, rows)

    path_col, label_col = 0, 1
    first_no, first = rows[0]
    header: list[str] | None = None
    if _is_header(first, rows[1:]):
        header = [cell.strip() for cell in first]
        lowered = [cell.strip().lower() for cell in first]
        if "path" in lowered and "label" in lowered:
            path_col, label_col = lowered.index("path"), lowered.index("label")
        rows = rows[1:]
        if not rows:
            raise DataError(f"file list '{path}' has a header (line {first_no}) but no rows")

    paths: list[str] = []
    raw_labels: list[tuple[int, str]] = []
    need = max(path_col, label_col) + 1
    for line_no, cells in rows:
        if len(cells) < need:
            raise DataError(
                f"line {line_no} of file list '{path}' has {len(cells)} column(s) "
                f"({','.join(cells)!r}); expected path,label"
            )
        image_path, label = cells[path_col].strip(), cells[label_col].strip()
        if not image_path:
            raise DataError(f"line {line_no} of file list '{path}' has an empty path")
        if not label:
            raise DataError(f"line {line_no} of file list '{path}' has an empty label")
        paths.append(Path(image_path).as_posix())
        raw_labels.append((line_no, label))

    labels, class_names = _labels_from_strings(raw_labels, f"file list '{path}'")
    _check_exist(path, base, paths, [n for n, _ in raw_labels])
    metadata = _extra_columns(rows, header, (path_col, label_col))
    logger.info(
        "%s: %d images in %d classes%s",
        path,
        len(paths),
        len(class_names),
        f"; metadata columns {', '.join(metadata)}" if metadata else "",
    )
    return ImageSamples(
        ids=tuple(paths),
        labels=labels,
        class_names=class_names,
        source=str(path),
        loader=_PathLoader(base, tuple(paths)),
        metadata=metadata,
    )


def _extra_columns(
    rows: list[tuple[int, list[str]]], header: list[str] | None, used: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Return the columns of a file list beyond path and label, by header name or ``column_<i>``.

    Cells missing from a short row are empty; numbers become numeric columns.
    """
    width = max(len(cells) for _, cells in rows)
    names = {}
    for i in range(width):
        if i in used:
            continue
        named = header[i] if header is not None and i < len(header) and header[i] else ""
        names[named or f"column_{i + 1}"] = [
            cells[i].strip() if i < len(cells) else "" for _, cells in rows
        ]
    return metadata_columns(names, len(rows))


def _path_list(path: Path, base: Path, rows: list[tuple[int, list[str]]]) -> ImageSamples:
    """Read a list of paths only, one per row, as unlabelled samples (skip a ``path`` header)."""
    first = rows[0][1][0].strip()
    if first.lower() == "path" or (
        Path(first).suffix.lower() not in IMAGE_EXTENSIONS and not (base / first).is_file()
    ):
        rows = rows[1:]
        if not rows:
            raise DataError(f"file list '{path}' has a header (line 1) but no rows")
    paths = []
    for line_no, cells in rows:
        if not cells[0].strip():
            raise DataError(f"line {line_no} of file list '{path}' has an empty path")
        paths.append(Path(cells[0].strip()).as_posix())
    _check_exist(path, base, paths, [n for n, _ in rows])
    logger.info("%s: %d images, no label column: unlabelled", path, len(paths))
    return _unlabelled_paths(base, paths, str(path))


def _unlabelled_paths(base: Path, paths: Sequence[str], source: str) -> ImageSamples:
    """Return image files below ``base`` as unlabelled samples (ids: the relative paths)."""
    return ImageSamples(
        ids=tuple(paths),
        labels=np.full(len(paths), UNLABELLED, dtype=np.int64),
        class_names=(),
        source=source,
        loader=_PathLoader(base, tuple(paths)),
    )


def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise DataError(f"{what} '{path}' does not exist; check the path")
    if not path.is_file():
        raise DataError(f"{what} '{path}' is not a file")
    try:
        # utf-8-sig: lists saved by Excel start with a byte-order mark
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} '{path}' is not UTF-8 text ({exc}); save it as UTF-8") from exc
    except OSError as exc:
        raise DataError(f"cannot read {what} '{path}': {exc.strerror or exc}") from exc


def _split_rows(path: Path, lines: list[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    first = lines[0][1]
    if path.suffix.lower() == ".tsv" or "\t" in first:
        delimiter: str | None = "\t"
    elif "," in first:
        delimiter = ","
    else:
        delimiter = None
    if delimiter is None:
        body = lines[1:] if len(lines) > 1 and len(first.split()) == 1 else lines
        if all(Path(line.strip()).suffix.lower() in IMAGE_EXTENSIONS for _, line in body):
            # paths only ("img 001.jpg"): each line is one path, spaces included
            return [(n, [line.strip()]) for n, line in lines]
        # "img 001.jpg 3": the label is the last field, the path may contain spaces
        return [(n, line.strip().rsplit(maxsplit=1)) for n, line in lines]
    return _csv_rows(lines, delimiter, f"file list '{path}'")


def _csv_rows(
    lines: list[tuple[int, str]], delimiter: str, where: str
) -> list[tuple[int, list[str]]]:
    """Split ``(line number, text)`` lines into cells, one csv row per line."""
    rows = []
    for n, line in lines:
        # one reader per line: an unclosed quote must not swallow the following lines. The
        # reader gets one empty line more; it reads it only when a quoted value is still open
        # (a value with a line break, which a line-per-row list cannot hold).
        reader = csv.reader([line, ""], delimiter=delimiter)
        try:
            cells = next(reader, [])
        except csv.Error as exc:  # e.g. a field longer than csv's limit (128 KiB)
            raise DataError(
                f"line {n} of {where} cannot be read as {delimiter!r}-separated values ({exc}); "
                "fix or remove the line"
            ) from exc
        if reader.line_num > 1:
            raise DataError(
                f"line {n} of {where} opens a quoted value that does not close on that line (a "
                "line break inside a value?); put each row on one line: replace line breaks in "
                "values, close the quote"
            )
        rows.append((n, cells))
    return rows


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_header(first: list[str], rest: list[tuple[int, list[str]]]) -> bool:
    cells = [cell.strip().lower() for cell in first]
    if "path" in cells and "label" in cells:
        return True
    if len(cells) < 2 or _is_int(cells[1]):
        return False
    # a name used as a label by another row, or a cell naming an image file, is data
    if Path(cells[0]).suffix in IMAGE_EXTENSIONS:
        return False
    used = {row[1].strip().lower() for _, row in rest if len(row) > 1}
    return cells[1] not in used


def _labels_from_strings(
    raw: Sequence[tuple[int, str]],
    where: str,
    class_names: Sequence[str] | None = None,
    unit: str = "line",
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Turn ``(line or row number, text)`` labels into indices: all integers, or all names."""
    is_int = [_is_int(text) for _, text in raw]
    if all(is_int):
        values = [int(text) for _, text in raw]
        too_large = [k for k, v in enumerate(values) if v >= MAX_CLASS_INDEX]
        if too_large:
            line_no, text = raw[too_large[0]]
            raise _too_large(text, f"{unit} {line_no}", where)
        labels = np.asarray(values, dtype=np.int64)
        if labels.size and labels.min() < 0:
            line_no, text = raw[int(np.argmin(labels))]
            raise DataError(
                f"{where}: label {text} ({unit} {line_no}) is negative; class indices start at 0"
            )
        if class_names is not None:
            names = tuple(class_names)
            _check_covers(labels, names, where)
            return labels, names
        top = int(labels.max()) if labels.size else 0
        return labels, tuple(str(i) for i in range(top + 1))
    if any(is_int):
        int_at = next(i for i, ok in enumerate(is_int) if ok)
        name_at = next(i for i, ok in enumerate(is_int) if not ok)
        raise DataError(
            f"{where}: labels mix class indices and class names ({unit} {raw[int_at][0]}: "
            f"{raw[int_at][1]}, {unit} {raw[name_at][0]}: {raw[name_at][1]!r}); use one kind"
        )
    texts = [text for _, text in raw]
    names = tuple(class_names) if class_names is not None else tuple(sorted(set(texts)))
    position = {name: i for i, name in enumerate(names)}
    unknown = [(n, text) for n, text in raw if text not in position]
    if unknown:
        line_no, text = unknown[0]
        raise DataError(
            f"{where}: label {text!r} ({unit} {line_no}) is not one of the {len(names)} class "
            f"names ({_preview(names)}); fix the label or the class names"
        )
    return np.asarray([position[t] for t in texts], dtype=np.int64), names


def _too_large(label: object, position: str, where: str) -> DataError:
    """Return the error for an integer label at or above :data:`MAX_CLASS_INDEX`."""
    return DataError(
        f"{where}: label {label} ({position}) is too large: class indices must be below "
        f"{MAX_CLASS_INDEX:,}; number the classes from 0, or use class names as labels"
    )


def _preview(items: Sequence[Any], limit: int = _MAX_LISTED) -> str:
    shown = ", ".join(repr(x) if isinstance(x, str) else str(x) for x in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def _check_exist(list_path: Path, base: Path, paths: list[str], line_numbers: list[int]) -> None:
    missing = [(n, p) for n, p in zip(line_numbers, paths, strict=True) if not (base / p).is_file()]
    if missing:
        shown = ", ".join(f"'{p}' (line {n})" for n, p in missing[:_MAX_LISTED])
        more = ", ..." if len(missing) > _MAX_LISTED else ""
        raise DataError(
            f"{len(missing)} of {len(paths)} image paths in file list '{list_path}' do not exist "
            f"({shown}{more}); relative paths are resolved against '{base}': pass the right root"
        )


def demo_digits() -> ImageSamples:
    """Return scikit-learn's 1,797 8x8 handwritten digits as RGB images (10 classes).

    Each image is ``np.round(images * 255 / 16).astype(np.uint8)`` (the digits store 0-16 ink
    levels) as an ``L`` image converted to RGB; featscope's demo model is trained on this rule.

    Returns
    -------
    ImageSamples
        Ids ``"digits:<i>"``, class names ``"0"`` .. ``"9"``, source ``"demo:digits"``.
    """
    from sklearn.datasets import load_digits  # heavy: only for the demo

    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)
    return ImageSamples(
        ids=tuple(f"digits:{i}" for i in range(len(images))),
        labels=np.asarray(digits.target, dtype=np.int64),
        class_names=tuple(str(i) for i in range(10)),
        source="demo:digits",
        loader=_ArrayLoader(images),
    )


def load_samples(data: Any) -> ImageSamples:
    """Open a data source by what it is.

    Parameters
    ----------
    data : str, os.PathLike, ImageSamples, a Python data object, or None
        ``None`` or ``"demo:digits"``: the built-in digits; a folder: :func:`image_folder`
        (class sub-folders, or images directly: unlabelled); a ``.csv``/``.tsv``/``.txt`` file:
        :func:`file_list`; ``"py:module:factory"`` or ``"py:path/file.py:factory"``: the data
        the factory returns (:func:`featscope.data.py_sources.py_data`); ``"hf:DIR"`` (or
        ``"hf:DIR:SPLIT"``): a Hugging Face dataset on disk
        (:func:`featscope.data.hf_sources.load_hf`); an :class:`ImageSamples`: returned as is;
        a torch ``Dataset`` or ``DataLoader``, a Hugging Face ``Dataset``, ``(images, labels)``
        arrays or a sequence of images: :func:`featscope.data.py_sources.samples_from_object`.

    Returns
    -------
    ImageSamples
        The samples; ``labelled`` tells whether they have classes, ``prepared`` whether they are
        model inputs already.

    Raises
    ------
    DataError
        When ``data`` is none of the above, or the source itself cannot be read.
    MissingExtraError
        For ``hf:`` without the ``datasets`` package.
    """
    from featscope.data.py_sources import KINDS, samples_from_object

    if isinstance(data, ImageSamples):
        return data
    if data is None or (isinstance(data, str) and data == "demo:digits"):
        return demo_digits()
    if not isinstance(data, (str, os.PathLike)):
        return samples_from_object(data)
    text = os.fspath(data)
    path = Path(text)
    if text.startswith("demo:"):
        raise DataError(f"unknown demo data {text!r}; the built-in ones are {', '.join(_DEMOS)}")
    if not path.exists() and text[:3].lower() == "py:":
        from featscope.data.py_sources import py_data

        return py_data(text)
    if not path.exists() and text[:3].lower() == "hf:":
        from featscope.data.hf_sources import load_hf

        return load_hf(text[3:], spec=text)
    if path.is_dir():
        return image_folder(path)
    if path.is_file():
        if path.suffix.lower() in _LIST_EXTENSIONS:
            return file_list(path)
        raise DataError(f"data '{path}' is a {path.suffix or 'extension-less'} file; pass {KINDS}")
    what = "is not a regular file (a device, FIFO or socket)" if path.exists() else "does not exist"
    raise DataError(f"data '{path}' {what}; pass {KINDS}")


def read_class_names(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Read class names, one per line (UTF-8), line ``i`` naming class index ``i``.

    Parameters
    ----------
    path : str or os.PathLike
        The text file. Surrounding whitespace is stripped; blank lines at the end are ignored.

    Returns
    -------
    tuple of str
        The names.

    Raises
    ------
    DataError
        When the file is missing, not UTF-8, empty, has a blank line before the last name, or
        repeats a name.
    """
    path = Path(path)
    text = _read_text(path, "class-names file")
    if text.startswith(MARKER):  # a run's class_names.txt with names that needed escaping
        lines = list(decode_lines(text, f"class-names file '{path}'"))
    else:
        lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise DataError(f"class-names file '{path}' is empty; write one class name per line")
    if "" in lines:
        raise DataError(
            f"class-names file '{path}' has a blank line (line {lines.index('') + 1}); each line "
            "names the class of its index, so remove it or write the name"
        )
    seen: dict[str, int] = {}
    for n, name in enumerate(lines, start=1):
        if name in seen:
            raise DataError(
                f"class-names file '{path}' repeats {name!r} (lines {seen[name]} and {n}); "
                "class names must be unique"
            )
        seen[name] = n
    return tuple(lines)


def _default_names(names: Sequence[str]) -> bool:
    return tuple(names) == tuple(str(i) for i in range(len(names)))


def _check_covers(labels: np.ndarray, names: Sequence[str], where: str) -> None:
    if labels.size and int(labels.max()) >= len(names):
        top = int(labels.max())
        raise DataError(
            f"{where}: {len(names)} class names cannot name label {top} (the largest label); "
            f"give at least {top + 1} names, one per class index"
        )


def apply_class_names(samples: T, names: Sequence[str]) -> T:
    """Return a copy of ``samples`` with class names ``names``.

    Works on anything with ``labels`` and ``class_names`` fields that :func:`dataclasses.replace`
    can copy (:class:`ImageSamples`, :class:`featscope.results.FeatureSet`).

    When the current names are the default ``"0"``, ``"1"``, ... (integer labels), ``names``
    simply names the indices. When the labels were class names (for example a file list with
    ``cat``/``dog`` labels), the labels are re-indexed so that index ``i`` is ``names[i]``.

    Parameters
    ----------
    samples : ImageSamples or FeatureSet
        The samples or features.
    names : sequence of str
        Class names, index = label (for example from :func:`read_class_names`).

    Returns
    -------
    ImageSamples or FeatureSet
        A new object of the same type.

    Raises
    ------
    DataError
        When ``names`` has fewer entries than the largest label needs, repeats a name, (for
        name labels) lacks a name the labels use, or the samples are unlabelled.
    """
    names = tuple(str(n) for n in names)
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise DataError(f"class names repeat {duplicate!r}; class names must be unique")
    labels = np.asarray(samples.labels, dtype=np.int64)  # type: ignore[attr-defined]
    current = tuple(samples.class_names)  # type: ignore[attr-defined]
    source = getattr(samples, "source", None) or getattr(
        getattr(samples, "provenance", None), "source", None
    )
    where = f"class names for {source or 'the data'}"
    if not current and labels.size and bool(np.all(labels == UNLABELLED)):
        raise DataError(
            f"{where}: the data has no labels (a flat folder, a list of paths, a dataset without "
            "labels), so there is nothing to name; leave out the class names"
        )
    if _default_names(current) or not labels.size:
        _check_covers(labels, names, where)
        return dataclasses.replace(samples, class_names=names)  # type: ignore[type-var]
    position = {name: i for i, name in enumerate(names)}
    used = [current[i] for i in np.unique(labels)]
    unknown = [name for name in used if name not in position]
    if unknown:
        raise DataError(
            f"{where}: the labels use {len(unknown)} class name(s) missing from the "
            f"{len(names)} given ({_preview(unknown)}); add them to the class names"
        )
    mapping = np.asarray([position.get(name, -1) for name in current], dtype=np.int64)
    return dataclasses.replace(  # type: ignore[type-var]
        samples, labels=mapping[labels], class_names=names
    )
