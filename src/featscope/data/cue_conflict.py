"""The cue-conflict stimuli (texture vs. shape) and the model-vs-human decision csvs.

The stimuli of Geirhos et al. (ICLR 2019) are 1,280 PNGs in 16 category folders; a file name
says both cues, ``<shape><k>-<texture><j>.png`` (``airplane1-bicycle2.png``: an airplane's shape
in a bicycle's texture), and the folder is the shape. featscope cannot ship them (130 MB); they
come from the texture-vs-shape repository (CC BY 4.0), and :func:`locate_stimuli` finds them.

Decisions are stored in the csv format of model-vs-human, one row per trial, header
``subj,session,trial,rt,object_response,category,condition,imagename``, so that featscope's
files drop into their tools and theirs into featscope. Only the standard library ``csv`` module
is used.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featscope.data.samples import ImageSamples
from featscope.errors import DataError, OutputError, ParameterError

__all__ = [
    "CATEGORIES",
    "CSV_COLUMNS",
    "ENV_VAR",
    "REQUIRED_COLUMNS",
    "STIMULI_URL",
    "DecisionTable",
    "check_model_name",
    "concat_tables",
    "csv_name",
    "decision_csv_files",
    "default_cache_dir",
    "default_model_name",
    "locate_stimuli",
    "read_decision_csvs",
    "read_decisions",
    "read_stimuli",
    "split_imagename",
    "texture_category",
    "write_decisions",
]

logger = logging.getLogger(__name__)

#: The 16 cue-conflict categories, sorted (the order of 16-class model outputs).
CATEGORIES = (
    "airplane",
    "bear",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "car",
    "cat",
    "chair",
    "clock",
    "dog",
    "elephant",
    "keyboard",
    "knife",
    "oven",
    "truck",
)

#: Header of a model-vs-human decision csv, in order.
CSV_COLUMNS = (
    "subj",
    "session",
    "trial",
    "rt",
    "object_response",
    "category",
    "condition",
    "imagename",
)
#: The columns the shape-bias analysis reads; a csv without one of them cannot be analysed.
REQUIRED_COLUMNS = ("subj", "object_response", "category", "imagename")

#: Environment variable naming the stimuli folder when ``data`` is not given.
ENV_VAR = "FEATSCOPE_CUE_CONFLICT"
#: Where the stimuli come from.
STIMULI_URL = "https://github.com/rgeirhos/texture-vs-shape"
_STIMULI_SUBDIR = "stimuli/style-transfer-preprocessed-512"

# "<shape><k>-<texture><j>.png"; humans' csvs prefix it with "NNNN_s5n_sXX_0_<shape>_00_"
_STIMULUS_NAME = re.compile(r"^(?P<shape>[a-z]+)\d+-(?P<texture>[a-z]+)\d+\.png$")
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
# a model name is a csv value and part of a file name
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def default_cache_dir() -> Path:
    """Return the default stimuli folder, ``$XDG_CACHE_HOME/featscope/cue-conflict``.

    Returns
    -------
    pathlib.Path
        ``~/.cache/featscope/cue-conflict`` unless ``XDG_CACHE_HOME`` is set.
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "featscope" / "cue-conflict"


def locate_stimuli(data: str | os.PathLike[str] | None = None) -> Path:
    """Find the cue-conflict stimuli folder.

    Looks, in order, at ``data``, the environment variable ``FEATSCOPE_CUE_CONFLICT`` and
    :func:`default_cache_dir`. The folder found is checked by :func:`read_stimuli` later.

    Parameters
    ----------
    data : str or os.PathLike, optional
        The folder given by the user (``--data``); used as is when given.

    Returns
    -------
    pathlib.Path
        The stimuli folder.

    Raises
    ------
    DataError
        When ``data`` is not given and neither the environment variable nor the cache folder
        points at an existing folder; the message says where to get the stimuli.
    """
    if data is not None:
        return Path(data)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_dir():
            raise DataError(
                f"${ENV_VAR} is {from_env!r}, which is not a folder; point it at the "
                f"cue-conflict stimuli (folder {_STIMULI_SUBDIR} of {STIMULI_URL}, CC BY 4.0)"
            )
        return path
    cache = default_cache_dir()
    if cache.is_dir():
        return cache
    raise DataError(
        "no cue-conflict stimuli found: --data (data=) was not given, "
        f"${ENV_VAR} is not set and {cache} does not exist; get the 1,280 images from "
        f"{STIMULI_URL} (folder {_STIMULI_SUBDIR}, CC BY 4.0), e.g. `git clone "
        f"--depth 1 {STIMULI_URL}` then `cp -r texture-vs-shape/{_STIMULI_SUBDIR} {cache}`, "
        "or pass --data FOLDER"
    )


def split_imagename(imagename: str) -> tuple[str, str]:
    """Return the ``(shape, texture)`` categories written in a stimulus file name.

    The rule of model-vs-human and mmpretrain: the part after the last ``_`` (humans' csvs
    prefix the name with trial information), split at the last ``-``; the extension and digits
    are removed from both halves.

    Parameters
    ----------
    imagename : str
        ``"airplane1-bicycle2.png"`` or ``"0001_s5n_s01_0_bird_00_bird3-bird2.png"``.

    Returns
    -------
    (str, str)
        Shape and texture category, e.g. ``("airplane", "bicycle")``.

    Raises
    ------
    DataError
        When the name has no ``<shape>-<texture>`` part.
    """
    stem = os.path.splitext(str(imagename).rsplit("_", 1)[-1])[0]
    shape, sep, texture = stem.rpartition("-")
    shape, texture = _strip_digits(shape), _strip_digits(texture)
    if not sep or not shape or not texture:
        raise DataError(
            f"image name {imagename!r} is not a cue-conflict stimulus name; expected "
            "'<shape><k>-<texture><j>.png', e.g. 'airplane1-bicycle2.png'"
        )
    return shape, texture


def texture_category(imagename: str) -> str:
    """Return the texture category of a stimulus file name (see :func:`split_imagename`).

    Parameters
    ----------
    imagename : str
        A stimulus file name, with or without the humans' trial prefix.

    Returns
    -------
    str
        The texture category, e.g. ``"bicycle"`` for ``"airplane1-bicycle2.png"``.
    """
    return split_imagename(imagename)[1]


def _strip_digits(text: str) -> str:
    return re.sub(r"\d", "", text)


def read_stimuli(root: str | os.PathLike[str]) -> ImageSamples:
    """Read a folder in the cue-conflict layout: ``<root>/<category>/<shape>k-<texture>j.png``.

    Parameters
    ----------
    root : str or os.PathLike
        Folder with one sub-folder per category (any non-empty subset of the 16, so that a few
        stimuli can be evaluated); other files at the top (README, the mapping table) are
        ignored.

    Returns
    -------
    ImageSamples
        Samples sorted by category folder, then file name (the file order of model-vs-human);
        ``labels`` index :data:`CATEGORIES` (the shape), ``class_names`` is
        :data:`CATEGORIES`, ids are ``<category>/<file name>``.

    Raises
    ------
    DataError
        When ``root`` is not a folder, holds no category folder, has a sub-folder that is not one
        of the 16 categories, or holds an image whose name is not ``<shape>k-<texture>j.png``
        with the folder as shape and one of the 16 categories as texture.
    """
    from featscope.data.sources import _PathLoader

    root = Path(root)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise DataError(
            f"cue-conflict folder '{root}' {what}; pass the stimuli folder (16 category "
            f"sub-folders, from {STIMULI_URL}, folder {_STIMULI_SUBDIR})"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name not in CATEGORIES]
    if unknown or not folders:
        found = (
            f"sub-folders {', '.join(repr(n) for n in unknown[:5])} are not"
            if unknown
            else ("there are no category sub-folders")
        )
        raise DataError(
            f"'{root}' is not in the cue-conflict layout: {found} among the 16 categories "
            f"({', '.join(CATEGORIES)}); pass the folder that holds airplane/, bear/, ... "
            f"({_STIMULI_SUBDIR} of {STIMULI_URL})"
        )
    ids: list[str] = []
    labels: list[int] = []
    bad: list[str] = []
    for folder in folders:
        names = sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        for name in names:
            match = _STIMULUS_NAME.match(name.lower())
            if match is None or match["shape"] != folder.name or match["texture"] not in CATEGORIES:
                bad.append(f"{folder.name}/{name}")
                continue
            ids.append(f"{folder.name}/{name}")
            labels.append(CATEGORIES.index(folder.name))
    if bad:
        raise DataError(
            f"'{root}' is not in the cue-conflict layout: {len(bad)} image(s) are not named "
            f"'<shape><k>-<texture><j>.png' with the folder as shape and a category as texture "
            f"(first: {', '.join(bad[:3])}); keep only the stimuli in the category folders"
        )
    if not ids:
        raise DataError(
            f"cue-conflict folder '{root}' has category folders but no .png stimuli; "
            f"check the path (the stimuli come from {STIMULI_URL})"
        )
    logger.info("%s: %d cue-conflict stimuli in %d categories", root, len(ids), len(folders))
    return ImageSamples(
        ids=tuple(ids),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=CATEGORIES,
        source=str(root),
        loader=_PathLoader(root, tuple(ids)),
    )


# --------------------------------------------------------------------------- decision csvs


@dataclass(frozen=True)
class DecisionTable:
    """Trials of one or more decision makers, one row each, in model-vs-human's columns.

    Every column is a tuple of strings, exactly as written in the csv (``"NaN"`` stays a
    string), so that reading and writing a file changes nothing.

    Attributes
    ----------
    subj, session, trial, rt, object_response, category, condition, imagename : tuple of str
        The columns of :data:`CSV_COLUMNS`: decision maker, session, trial number, response
        time (``"NaN"`` for models), the chosen category (or ``"na"``), the shape category (the
        stimulus folder), condition and the stimulus file name.
    source : str
        Where the rows came from (a csv path, or ``"<model name>"``).
    """

    subj: tuple[str, ...]
    session: tuple[str, ...]
    trial: tuple[str, ...]
    rt: tuple[str, ...]
    object_response: tuple[str, ...]
    category: tuple[str, ...]
    condition: tuple[str, ...]
    imagename: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        lengths = {name: len(getattr(self, name)) for name in CSV_COLUMNS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"every column needs one value per row; got lengths {lengths}")
        for name in CSV_COLUMNS:
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))

    def __len__(self) -> int:
        return len(self.subj)

    @classmethod
    def from_decisions(
        cls,
        subj: str,
        object_response: Sequence[str],
        category: Sequence[str],
        imagename: Sequence[str],
    ) -> DecisionTable:
        """Build the table of one model, as model-vs-human writes it.

        Parameters
        ----------
        subj : str
            The model name (the ``subj`` column).
        object_response : sequence of str
            The model's chosen category per image.
        category : sequence of str
            The shape category (stimulus folder) per image.
        imagename : sequence of str
            The stimulus file name per image (no folder).

        Returns
        -------
        DecisionTable
            Rows ``subj,1,<i+1>,NaN,<response>,<category>,NaN,<imagename>``.
        """
        n = len(object_response)
        return cls(
            subj=(subj,) * n,
            session=("1",) * n,
            trial=tuple(str(i + 1) for i in range(n)),
            rt=("NaN",) * n,
            object_response=tuple(object_response),
            category=tuple(category),
            condition=("NaN",) * n,
            imagename=tuple(imagename),
            source=subj,
        )

    @classmethod
    def for_stimuli(
        cls, subj: str, object_response: Sequence[str], stimuli: ImageSamples
    ) -> DecisionTable:
        """Build the table of one model's decisions on stimuli read by :func:`read_stimuli`.

        Parameters
        ----------
        subj : str
            The model name.
        object_response : sequence of str
            The model's chosen category per stimulus, in the order of ``stimuli``.
        stimuli : ImageSamples
            The stimuli (ids ``<category>/<file name>``, labels index :data:`CATEGORIES`).

        Returns
        -------
        DecisionTable
            As :meth:`from_decisions`, with the shape category from each stimulus's label and
            the file name from its id.
        """
        imagenames = [sample_id.rsplit("/", 1)[-1] for sample_id in stimuli.ids]
        shapes = [stimuli.class_names[label] for label in stimuli.labels]
        return cls.from_decisions(subj, list(object_response), shapes, imagenames)

    def rows(self) -> Iterable[tuple[str, ...]]:
        """Yield the rows in :data:`CSV_COLUMNS` order."""
        return zip(*(getattr(self, name) for name in CSV_COLUMNS), strict=True)

    def subjects(self) -> tuple[str, ...]:
        """Return the decision makers in order of first appearance."""
        return tuple(dict.fromkeys(self.subj))

    def select(self, subj: str) -> DecisionTable:
        """Return the rows of one decision maker."""
        keep = [i for i, s in enumerate(self.subj) if s == subj]
        return DecisionTable(
            **{name: tuple(getattr(self, name)[i] for i in keep) for name in CSV_COLUMNS},
            source=self.source,
        )

    def to_csv_text(self) -> str:
        """Return the table as csv text with the model-vs-human header."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(self.rows())
        return buffer.getvalue()


def csv_name(model_name: str) -> str:
    """Return model-vs-human's file name for a model's decisions.

    Parameters
    ----------
    model_name : str
        The ``subj`` of the model; underscores become dashes in the file name, as in
        model-vs-human (``vit_b_16`` -> ``cue-conflict_vit-b-16_session-1.csv``).

    Returns
    -------
    str
        ``cue-conflict_<model-name>_session-1.csv``.
    """
    return f"cue-conflict_{model_name.replace('_', '-')}_session-1.csv"


def check_model_name(name: Any) -> str:
    """Return ``name`` if it can be a csv ``subj`` and part of a file name, else raise.

    Parameters
    ----------
    name : str
        The model name.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ParameterError
        Unless ``name`` is letters, digits and ``_ . + -``, starting with a letter or digit.
    """
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ParameterError(
            f"`model_name` {name!r} cannot name a csv row and file: use letters, digits and "
            "_ . + - (starting with a letter or digit), e.g. my_resnet50"
        )
    return name


def default_model_name(spec: str) -> str:
    """Return a model's ``subj`` from its spec, spelled as model-vs-human's (underscores).

    Parameters
    ----------
    spec : str
        A model spec or a module's qualified class name.

    Returns
    -------
    str
        ``"timm:resnet50"`` -> ``resnet50``, ``"demo:efficientnet-lite0"`` ->
        ``efficientnet_lite0``, ``"hf:./models/vit-base"`` -> ``vit_base``,
        ``"py:pkg.nets:build"`` -> ``build``, ``"ts:m.pt"`` -> ``m``, ``"pkg.mod.Net"`` ->
        ``Net``; ``"model"`` when nothing is left.
    """
    kind, sep, body = spec.partition(":")
    if not sep or not re.fullmatch(r"[a-z]+", kind):
        body = spec.rsplit(".", 1)[-1]
    elif kind == "py":
        body = body.rsplit(":", 1)[-1]
    body = re.split(r"[/\\]", body.rstrip("/\\"))[-1]
    body = re.sub(r"\.(pt|pth|bin|safetensors|ckpt|jit)$", "", body)
    return re.sub(r"[^A-Za-z0-9.+]+", "_", body).strip("_.") or "model"


def decision_csv_files(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[Path]:
    """Expand decision csvs and folders of them into a list of files.

    Parameters
    ----------
    paths : path or sequence of paths
        Csv files (taken as given) and folders (every ``*.csv`` in them, sorted, not
        recursive).

    Returns
    -------
    list of pathlib.Path
        The files, in the order given.

    Raises
    ------
    ParameterError
        When ``paths`` is empty.
    DataError
        When a path does not exist or a folder holds no csv.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths or [])
    if not items:
        raise ParameterError("`paths` is empty; pass a folder of decision csvs or csv files")
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file())
            if not found:
                raise DataError(
                    f"folder '{path}' holds no .csv files; pass the folder of decision csvs "
                    "(cue-conflict_<name>_session-1.csv)"
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"decision csv or folder '{path}' does not exist; check the path")
    return files


def read_decision_csvs(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> tuple[DecisionTable, list[Path]]:
    """Read decision csvs (files or folders of them) into one table.

    Parameters
    ----------
    paths : path or sequence of paths
        As :func:`decision_csv_files`.

    Returns
    -------
    (DecisionTable, list of pathlib.Path)
        Every row of every file, in file order, and the files read.

    Raises
    ------
    DataError
        For a missing path, a folder without csvs, a csv :func:`read_decisions` refuses, a
        decision maker (``subj``) in two files (never merged silently), or no rows at all.
    """
    files = decision_csv_files(paths)
    tables = []
    owner: dict[str, Path] = {}
    for path in files:
        table = read_decisions(path)
        for subj in table.subjects():
            if subj in owner:
                raise DataError(
                    f"decision maker {subj!r} is in both '{owner[subj]}' and '{path}'; "
                    "keep one of the two files out of the input"
                )
            owner[subj] = path
        tables.append(table)
    if not owner:
        raise DataError(f"the decision csvs {', '.join(map(str, files))} hold no rows")
    return concat_tables(tables, source=", ".join(map(str, files))), files


def concat_tables(tables: Sequence[DecisionTable], source: str = "") -> DecisionTable:
    """Stack decision tables row-wise.

    Parameters
    ----------
    tables : sequence of DecisionTable
        Tables to join, in order.
    source : str, optional
        Source of the result.

    Returns
    -------
    DecisionTable
        All rows of all tables.
    """
    columns: Mapping[str, tuple[str, ...]] = {
        name: tuple(v for t in tables for v in getattr(t, name)) for name in CSV_COLUMNS
    }
    return DecisionTable(**columns, source=source)


def read_decisions(path: str | os.PathLike[str]) -> DecisionTable:
    """Read a model-vs-human decision csv.

    Column names are matched without regard to case and surrounding spaces (as the reference
    does); extra columns are ignored; the columns the analysis does not need (``session``,
    ``trial``, ``rt``, ``condition``) may be absent and read as ``"NaN"``.

    Parameters
    ----------
    path : str or os.PathLike
        The csv file.

    Returns
    -------
    DecisionTable
        Its rows, with ``source`` = the path.

    Raises
    ------
    DataError
        When the file cannot be read, is empty, or lacks a column of :data:`REQUIRED_COLUMNS`
        (the message names the missing ones), or a row has fewer values than the header.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read decision csv '{path}': {exc.strerror or exc}") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(
            f"decision csv '{path}' is empty; expected the header {','.join(CSV_COLUMNS)}"
        )
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise DataError(
            f"decision csv '{path}' lacks the column(s) {', '.join(missing)} (header: "
            f"{','.join(header)}); write the model-vs-human header {','.join(CSV_COLUMNS)}"
        )
    position = {name: names.index(name) for name in CSV_COLUMNS if name in names}
    columns: dict[str, list[str]] = {name: [] for name in CSV_COLUMNS}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < len(names):
            raise DataError(
                f"decision csv '{path}' line {line} has {len(row)} values but the header has "
                f"{len(names)} columns; fix or remove that line"
            )
        for name in CSV_COLUMNS:
            columns[name].append(row[position[name]].strip() if name in position else "NaN")
    return DecisionTable(**{k: tuple(v) for k, v in columns.items()}, source=str(path))


def write_decisions(path: str | os.PathLike[str], table: DecisionTable) -> Path:
    """Write a decision table as a model-vs-human csv.

    Parameters
    ----------
    path : str or os.PathLike
        The csv file to write (its folder must exist).
    table : DecisionTable
        The rows.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ParameterError
        When ``table`` is not a :class:`DecisionTable`.
    OutputError
        When the file cannot be written.
    """
    if not isinstance(table, DecisionTable):
        raise ParameterError(
            f"`table` must be a DecisionTable; got {type(table).__name__}; build one with "
            "DecisionTable.from_decisions(...)"
        )
    path = Path(path)
    try:
        path.write_text(table.to_csv_text(), encoding="utf-8")
    except OSError as exc:
        raise OutputError(
            f"cannot write decision csv '{path}': {exc.strerror or exc}; check the folder "
            "exists and is writable"
        ) from exc
    return path
