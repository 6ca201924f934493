"""Hugging Face datasets as input: a ``datasets.Dataset``, a split of a ``DatasetDict``, ``hf:DIR``.

The image column is the first of type ``datasets.Image``, else the first named like an image
(:data:`~featscope.data.torch_sources.IMAGE_KEYS`: ``image``, ``img``, ``pixel_values``, ...;
arrays in it follow :mod:`featscope.data.items`). The label column is the first ``ClassLabel``
(its ``names`` are the class names), else the first named like a label (``label``, ``labels``,
``fine_label``, ...) holding integers or names; without one the data are unlabelled, and so are
``ClassLabel`` columns holding -1 (the "no label" value of ``datasets``) on every row.

``hf:DIR`` reads a dataset written by ``save_to_disk`` (``datasets.load_from_disk``) or a folder
of parquet/arrow files (``datasets.load_dataset(DIR)``, which infers splits from file names such
as ``data/train-00000-of-00001.parquet``); ``hf:DIR:SPLIT`` picks a split. Anything else is taken
as a hub id, read only when the hub may be reached (never with ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from featscope._optional import require
from featscope.data.items import labels_from_values
from featscope.data.samples import ImageSamples, metadata_columns
from featscope.data.torch_sources import IMAGE_KEYS, LABEL_KEYS, torch_dataset
from featscope.errors import DataError

__all__ = ["hf_dataset", "is_hf_dataset", "load_hf"]

logger = logging.getLogger(__name__)

_DATA_FILES = (".parquet", ".arrow")


def is_hf_dataset(data: Any) -> bool:
    """Whether ``data`` is a Hugging Face ``Dataset``, ``DatasetDict`` or iterable dataset."""
    module = type(data).__module__ or ""
    return module == "datasets" or module.startswith("datasets.")


def hf_dataset(
    dataset: Any,
    *,
    split: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    prepared: bool | None = None,
    source: str | None = None,
) -> ImageSamples:
    """Read a Hugging Face dataset.

    Parameters
    ----------
    dataset : datasets.Dataset or datasets.DatasetDict
        The data; a ``DatasetDict`` needs ``split`` unless it has a single split.
    split : str, optional
        The split of a ``DatasetDict``.
    image_column, label_column : str, optional
        The columns to use instead of the ones found by type or name.
    prepared : bool, optional
        As in :func:`featscope.data.torch_sources.torch_dataset` (a float ``(C, H, W)``
        ``pixel_values`` column is prepared by default).
    source : str, optional
        The ``source`` to record; default ``"Hugging Face dataset (split <split>)"``.

    Returns
    -------
    ImageSamples
        In row order; ids ``"<split or hf>:<row>"``.

    Raises
    ------
    DataError
        When there is no image column (the columns are listed), the split is missing or not
        given for several splits, the dataset is streaming, or a label is out of range.
    """
    if type(dataset).__name__.startswith("Iterable"):
        raise DataError(
            "a streaming (iterable) Hugging Face dataset cannot be indexed; load it without "
            "streaming=True"
        )
    if not hasattr(dataset, "features"):  # a DatasetDict: a dict of splits
        split = _pick_split(dataset, split, source or "the DatasetDict")
        dataset = dataset[split]
    name = split or "hf"
    where = source or "Hugging Face dataset" + (f" (split {split})" if split else "")
    features = dict(dataset.features)
    columns = ", ".join(f"{k} ({_column_type(v)})" for k, v in features.items()) or "none"
    image = image_column or _find(features, "Image", IMAGE_KEYS)
    if image is None or image not in features:
        raise DataError(
            f"{where} has no image column (columns: {columns}); cast one to datasets.Image "
            "or name it with image_column="
        )
    label = label_column or _find(features, "ClassLabel", LABEL_KEYS, exclude=image)
    if label is not None and label not in features:
        raise DataError(f"{where} has no column {label!r} (columns: {columns})")
    # rows are read with the image column only: decoding the other columns would be wasted
    samples = torch_dataset(
        dataset.select_columns([image]), prepared=prepared, name=name, source=where
    )
    metadata = _other_columns(dataset, features, (image, label))
    samples = dataclasses.replace(samples, metadata=metadata)
    if label is None:
        return samples
    feature = features[label]
    names = tuple(feature.names) if _type_name(feature) == "ClassLabel" else None
    values = np.asarray(list(dataset[label]), dtype=object)
    labels, class_names = labels_from_values(values, f"{where}, column {label!r}", names)
    logger.info("%s: labels from column %r, %d classes", where, label, len(class_names))
    return dataclasses.replace(samples, labels=labels, class_names=class_names)


def _other_columns(dataset: Any, features: dict[str, Any], used: tuple[Any, ...]) -> dict:
    """Return the scalar columns besides image and label (``ClassLabel`` as its names)."""
    columns = {}
    for key, feature in features.items():
        kind = _type_name(feature)
        if key in used or kind not in ("Value", "ClassLabel"):
            continue
        values = list(dataset[key])
        if kind == "ClassLabel":
            names = list(feature.names)
            known = range(len(names))
            values = [names[v] if isinstance(v, int) and v in known else "" for v in values]
        columns[key] = values
    if columns:
        logger.info("metadata columns: %s", ", ".join(columns))
    return metadata_columns(columns, len(dataset))


def _type_name(feature: Any) -> str:
    return type(feature).__name__


def _column_type(feature: Any) -> str:
    """``Image``, ``ClassLabel``, ``Sequence``...; a plain ``Value`` by its dtype (``string``)."""
    name = _type_name(feature)
    return str(getattr(feature, "dtype", name)) if name == "Value" else name


def _find(
    features: dict[str, Any], type_name: str, names: tuple[str, ...], exclude: str | None = None
) -> str | None:
    """Return the first column of type ``type_name``, else the first named one of ``names``."""
    typed = [k for k, v in features.items() if _type_name(v) == type_name and k != exclude]
    if typed:
        return typed[0]
    lowered = {k.lower(): k for k in features if k != exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def _pick_split(splits: Any, split: str | None, where: str) -> str:
    available = list(splits.keys())
    if split is not None:
        if split not in available:
            raise DataError(
                f"{where} has no split {split!r}; its splits are {', '.join(available)}"
            )
        return split
    if len(available) == 1:
        return available[0]
    raise DataError(
        f"{where} has splits {', '.join(available)}; name one: hf:DIR:{available[0]} on the "
        f"command line, or pass dataset[{available[0]!r}]"
    )


def load_hf(target: str, *, spec: str | None = None) -> ImageSamples:
    """Read ``hf:DIR``, ``hf:DIR:SPLIT``, a parquet/arrow file, or (online only) a hub id.

    Parameters
    ----------
    target : str
        What follows ``hf:``.
    spec : str, optional
        The whole spec, recorded as the source; default ``"hf:" + target``.

    Returns
    -------
    ImageSamples
        As :func:`hf_dataset`.

    Raises
    ------
    DataError
        When the folder holds no dataset, the split is wrong, a hub id is given offline, or as
        :func:`hf_dataset`.
    MissingExtraError
        When ``datasets`` is not installed (the ``hf-data`` extra).
    """
    spec = spec or f"hf:{target}"
    path, split = _path_and_split(target)
    datasets = require("datasets", "hf-data", "Hugging Face datasets (hf:)")
    location = Path(path)
    try:
        if location.is_dir() and _saved(location):
            loaded = datasets.load_from_disk(str(location))
        elif location.is_dir():
            if not any(p.suffix in _DATA_FILES for p in location.rglob("*") if p.is_file()):
                raise DataError(
                    f"{spec}: folder '{location}' holds neither a dataset written by "
                    "save_to_disk nor .parquet/.arrow files; check the path"
                )
            loaded = datasets.load_dataset(str(location))
        elif location.is_file() and location.suffix in _DATA_FILES:
            builder = location.suffix.lstrip(".")
            loaded = datasets.load_dataset(builder, data_files=[str(location)])
        elif _offline():
            raise DataError(
                f"{spec}: '{path}' is not a folder, and the hub is not reachable "
                "(HF_HUB_OFFLINE is set); give a folder written by save_to_disk or of parquet "
                "files"
            )
        else:
            loaded = datasets.load_dataset(path)
    except DataError:
        raise
    except Exception as exc:  # datasets signals a bad folder or id with many exception types
        raise DataError(
            f"{spec}: datasets could not read '{path}' ({type(exc).__name__}: {exc}); check "
            "the path or hub id"
        ) from exc
    return hf_dataset(loaded, split=split, source=spec)


def _saved(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _path_and_split(target: str) -> tuple[str, str | None]:
    """``DIR:SPLIT`` -> ``(DIR, SPLIT)`` unless ``DIR:SPLIT`` itself exists."""
    if os.path.exists(target) or ":" not in target:
        return target, None
    path, _, split = target.rpartition(":")
    if split and os.sep not in split and "/" not in split:
        return path, split
    return target, None


def _offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )
