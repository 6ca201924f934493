"""Which files each result type becomes: the table behind :meth:`LocalRun.write`.

``run.write(result)`` looks up the writer of ``type(result)`` (or of its nearest base class) in
one table. A new result type (here ``ScoresResult``) gets its files with one decorated
function::

    from featscope.sinks import register_writer

    @register_writer(ScoresResult)
    def write_scores(run, result, name):
        return [run.write_json(name or "scores", result.to_dict())]

A writer takes the open :class:`~featscope.sinks.run.LocalRun`, the result and the ``name``
given to ``write`` (``None``: the writer picks one), writes through the run's ``write_*``
methods, and returns the paths written. A type whose library is heavy to import (matplotlib's
``Figure``) is registered by its dotted name, so that ``import featscope.sinks`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from featscope.data.textlines import encode_lines
from featscope.errors import ParameterError
from featscope.results import BrowseResult, EmbeddingResult, FeatureSet, ShapeBiasRun
from featscope.sinks.layout import (
    CLASS_NAMES_NAME,
    COORD_COLUMNS,
    IDS_NAME,
    LABELS_NAME,
    check_name,
    coords_name,
    features_name,
    safe_stem,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from featscope.sinks.run import LocalRun

__all__ = [
    "ResultWriters",
    "Writer",
    "register_writer",
    "write_coords",
    "write_result",
    "writer_for",
]

#: ``writer(run, result, name) -> paths written``.
Writer = Callable[["LocalRun", Any, "str | None"], list[Path]]
W = TypeVar("W", bound=Writer)

# result type (or "module.QualName" for a type not imported yet) -> its writer
_WRITERS: dict[type | str, Writer] = {}


def register_writer(result_type: type | str) -> Callable[[W], W]:
    """Return a decorator that makes a function the writer of ``result_type``.

    Parameters
    ----------
    result_type : type or str
        The result class, or its dotted name (``"matplotlib.figure.Figure"``) when importing it
        would be costly. Subclasses use the writer of their nearest registered base; a later
        registration of the same type replaces the earlier one.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """
    if not isinstance(result_type, (type, str)) or result_type == "":
        raise ParameterError(
            f"register_writer takes a class or its dotted name; got {result_type!r}"
        )

    def decorate(writer: W) -> W:
        _WRITERS[result_type] = writer
        return writer

    return decorate


def writer_for(result: Any) -> Writer:
    """Return the writer of ``result``'s type (or of its nearest registered base class).

    Raises
    ------
    ParameterError
        When no writer is registered for the type.
    """
    for cls in type(result).__mro__:
        writer = _WRITERS.get(cls) or _WRITERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if writer is not None:
            return writer
    known = sorted(k if isinstance(k, str) else k.__name__ for k in _WRITERS)
    name = type(result).__name__
    raise ParameterError(
        f"LocalRun.write has no writer for a {name}; it writes {', '.join(known)}: register "
        f"one with @featscope.sinks.register_writer({name}), or use write_json/write_array"
    )


def write_result(run: LocalRun, result: Any, name: str | None = None) -> list[Path]:
    """Write ``result`` into ``run`` with the writer of its type; return the paths written."""
    return writer_for(result)(run, result, name)


def write_coords(run: LocalRun, result: EmbeddingResult, stem: str) -> Path:
    """Write a map as ``coords_<stem>.csv``: ``id, label, class_name, x, y(, z)``, then its fields.

    The per-sample fields follow the coordinates in the order of ``result.fields``
    (``prediction``, ``confidence``, ``correct`` as ``true``/``false``, ``cluster``, metadata).

    One row per sample in result order; coordinates with full float precision (``repr``). A
    label without a class name gets the label as its name. Nothing is recorded in the manifest
    (:meth:`LocalRun.write_embedding` does that too).

    Parameters
    ----------
    run : LocalRun
        The open run.
    result : EmbeddingResult
        The map.
    stem : str
        The file's key: ``"pre_logits"``, ``"pre_logits_e0003"``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    names = result.class_names
    axes = ["x", "y", "z"][: result.n_components]
    extra = list(result.fields)  # prediction, confidence, correct, cluster, metadata

    def cell(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "true" if value else "false"
        if isinstance(value, (float, np.floating)):
            return repr(float(value))
        return str(value.item() if isinstance(value, np.generic) else value)

    def rows() -> Iterable[list[Any]]:
        columns = [result.fields[k] for k in extra]
        for row, (sample_id, label, coords) in enumerate(
            zip(result.ids, result.labels, result.coords, strict=True)
        ):
            index = int(label)
            # an unlabelled sample (-1) has no class name
            name = names[index] if 0 <= index < len(names) else ("" if index < 0 else str(index))
            yield [
                sample_id, index, name, *(repr(float(v)) for v in coords),
                *(cell(c[row]) for c in columns),
            ]  # fmt: skip

    header = [*COORD_COLUMNS[:3], *axes, *extra]
    return run.write_csv(coords_name(check_name(stem, "result key")), header, rows())


@register_writer(EmbeddingResult)
def _write_embedding(run: LocalRun, result: EmbeddingResult, name: str | None) -> list[Path]:
    """``coords_<name>.csv``, and the result recorded in the manifest under ``name``."""
    return [run.write_embedding(result, name or safe_stem(result.point))]


@register_writer(FeatureSet)
def _write_features(run: LocalRun, features: FeatureSet, name: str | None) -> list[Path]:
    """``feat_<name>.npy``; the samples' labels, ids and class names with the first set."""
    stem = check_name(name or safe_stem(features.point), "result key")
    paths = [run.write_array(features_name(stem), features.features)]
    # name-safe: a newline or tab in a file name must not split the sample's line
    ids_text = encode_lines(features.ids)
    names_text = encode_lines(features.class_names)
    ids_path, names_path = run.path / IDS_NAME, run.path / CLASS_NAMES_NAME
    if not ids_path.is_file():
        paths.append(run.write_array(LABELS_NAME, features.labels))
        paths.append(run.write_text(IDS_NAME, ids_text))
        paths.append(run.write_text(CLASS_NAMES_NAME, names_text))
    elif (
        ids_path.read_text(encoding="utf-8") != ids_text
        or not names_path.is_file()
        or names_path.read_text(encoding="utf-8") != names_text
    ):
        # one ids.txt describes every feature file of the folder: a set of other samples
        # would be read back against the wrong ids
        raise ParameterError(
            f"feature set {features.point!r} holds other samples (or class names) than the "
            f"feature sets already in this run's {IDS_NAME}; write the sets of one run for the "
            "same samples, or write this one to another run"
        )
    return paths


@register_writer("matplotlib.figure.Figure")
def _write_figure(run: LocalRun, fig: Any, name: str | None) -> list[Path]:
    """``<name>.png`` (see :meth:`LocalRun.write_figure` for other formats)."""
    if name is None:
        raise ParameterError(
            "a figure needs a file name: pass name=, e.g. run.write(fig, name='tsne_neck')"
        )
    return run.write_figure(fig, name)


@register_writer(ShapeBiasRun)
def _write_shape_bias(run: LocalRun, result: ShapeBiasRun, name: str | None) -> list[Path]:
    """Write an evaluated model's decision csv, then ``shape_bias.json``; record the result.

    The csv has model-vs-human's name and columns
    (:func:`featscope.data.cue_conflict.csv_name`), so that it drops into their tools; a run
    drawn from csvs has no decisions of its own and writes only the json. The entry's key is
    ``name``, else the model's name, else ``"shape_bias"``.
    """
    paths = []
    if result.decisions is not None and result.model_name is not None:
        from featscope.data.cue_conflict import csv_name  # the data stage: imported on use

        csv_text = result.decisions.to_csv_text()
        paths.append(run.write_text(csv_name(result.model_name), csv_text))
    paths.append(run.write_json("shape_bias.json", result.to_dict()))
    run.add_result(name or result.model_name or "shape_bias", result)
    return paths


@register_writer(BrowseResult)
def _write_browse(run: LocalRun, result: BrowseResult, name: str | None) -> list[Path]:
    """Write ``<name>.json`` (default ``browse.json``: source, steps, options, samples).

    The result is recorded in the manifest under the same key. The pictures are figures,
    written as they are drawn (one per sample), before the result that lists them exists.
    """
    key = name or "browse"
    paths = [run.write_json(key, result.to_dict())]
    run.add_result(key, result)
    return paths


class ResultWriters:
    """The result methods of :class:`~featscope.sinks.run.LocalRun` (a base class of it).

    The run provides the open check (``_require_open``), the key check (``_check_key``) and
    :meth:`~featscope.sinks.run.LocalRun.add_result`, besides its ``write_*`` methods.
    """

    if TYPE_CHECKING:  # provided by LocalRun; declared here for the type checker only

        def _require_open(self) -> None: ...

        def _check_key(self, key: Any) -> None: ...

        def add_result(self, key: str, result: Any) -> None:
            """Record ``result`` in the manifest under ``key``."""

    def write(self, result: Any, name: str | None = None) -> list[Path]:
        """Write a result as the files of its type (the :class:`~featscope.sinks.Sink` protocol).

        ``FeatureSet``: ``feat_<name>.npy``, and with the first set ``labels.npy``, ``ids.txt``
        and ``class_names.txt``. ``EmbeddingResult``: ``coords_<name>.csv`` (see
        :meth:`write_embedding`), recorded in the manifest under ``name``. ``ShapeBiasRun``:
        the model's decision csv and ``shape_bias.json``. ``BrowseResult``: ``browse.json``.
        A matplotlib ``Figure``: ``<name>.png`` (see :meth:`write_figure`). Other types are
        added with :func:`~featscope.sinks.register_writer`.

        Parameters
        ----------
        result : Any
            A result of a registered type.
        name : str, optional
            Key of the result in file names and the manifest; default its capture point (a
            figure needs one).

        Returns
        -------
        list of pathlib.Path
            The files written.

        Raises
        ------
        ParameterError
            If no writer is registered for the type, the name is not allowed or already
            recorded, or (a ``FeatureSet``) its samples differ from those of the run's first set.
        OutputError
            If a file cannot be written.
        """
        self._require_open()
        return write_result(self, result, name)  # type: ignore[arg-type]

    def write_embedding(self, result: EmbeddingResult, stem: str) -> Path:
        """Write an embedding's coordinates as ``coords_<stem>.csv`` and record the result.

        Columns are ``id, label, class_name, x, y`` (and ``z`` for a 3-D map), one row per sample
        in result order; coordinates are written with full float precision.

        Parameters
        ----------
        result : EmbeddingResult
            The map.
        stem : str
            Key of the result (usually the capture point, e.g. ``"pre_logits"``); also the key of
            its entry in the manifest.

        Returns
        -------
        pathlib.Path
            The CSV file written.

        Raises
        ------
        ParameterError
            If ``stem`` is not allowed or was already recorded.
        OutputError
            If the file cannot be written.
        """
        self._check_key(stem)
        path = write_coords(self, result, stem)  # type: ignore[arg-type]
        self.add_result(stem, result)
        return path
