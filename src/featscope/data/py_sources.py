"""Python objects and ``py:module:factory`` data specs -> samples.

**A ``py:`` spec executes code**: the module is imported (running its top-level code) and the
factory called, exactly as for ``py:`` models (the same importer,
:func:`featscope.models.factory_adapter.import_attribute`: the current folder is searched as
``python -m`` does, and ``py:path/to/file.py:name`` names a file). Only name code you trust.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from featscope.data.samples import ImageSamples
from featscope.errors import DataError, FeatscopeError

__all__ = ["KINDS", "is_python_data", "py_data", "samples_from_object"]

#: What ``data=`` accepts, for messages.
KINDS = (
    "a folder (class sub-folders or flat), a .csv/.tsv/.txt file list, demo:digits, "
    "py:module:factory, hf:DIR, a torch Dataset or DataLoader, a Hugging Face dataset, "
    "(images, labels) arrays, a sequence of images, or ImageSamples"
)


def samples_from_object(data: Any) -> ImageSamples:
    """Read a Python object holding data.

    Parameters
    ----------
    data : Any
        A Hugging Face ``Dataset`` (or a ``DatasetDict`` with one split), a torch
        ``DataLoader``, an ``(images, labels)`` pair of arrays (same length, labels 1-D), or
        anything with ``__len__`` and ``__getitem__`` (a torch ``Dataset``, a list of images, an
        ``(N, ...)`` image array).

    Returns
    -------
    ImageSamples

    Raises
    ------
    DataError
        When ``data`` is none of these, or cannot be read (see the readers in
        :mod:`featscope.data.torch_sources` and :mod:`featscope.data.hf_sources`).
    """
    from featscope.data.hf_sources import hf_dataset, is_hf_dataset
    from featscope.data.torch_sources import (
        image_arrays,
        is_dataloader,
        torch_dataloader,
        torch_dataset,
    )

    if isinstance(data, ImageSamples):
        return data
    if is_hf_dataset(data):
        return hf_dataset(data)
    if is_dataloader(data):
        return torch_dataloader(data)
    if _is_pair(data):
        return image_arrays(data[0], data[1])
    if hasattr(data, "__len__") and hasattr(data, "__getitem__") and not _is_text(data):
        if isinstance(data, Mapping):
            raise DataError(
                f"data is a {type(data).__name__} (a mapping); pass one split or column of it, "
                f"or {KINDS}"
            )
        return torch_dataset(data)
    raise DataError(f"data must be {KINDS}; got {type(data).__name__}")


def _is_text(data: Any) -> bool:
    return isinstance(data, (str, bytes, os.PathLike))


def _is_pair(data: Any) -> bool:
    """``(images, labels)``: two array-likes of one length, the second 1-D (not two images)."""
    from featscope.data.items import NotALabel, as_array, label_value

    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return False
    images, labels = data
    labels_array = as_array(labels)
    if labels_array is None and isinstance(labels, (list, tuple)):
        labels_array = np.asarray(labels, dtype=object)
    if labels_array is None or labels_array.ndim != 1:
        return False
    try:
        if len(images) != len(labels_array) or isinstance(images, Image.Image):
            return False
        label_value(labels_array[0]) if len(labels_array) else None
    except (TypeError, NotALabel):  # e.g. a list of two (image, label) items
        return False
    return True


def _is_factory(target: Any) -> bool:
    """Tell a factory (a class or function: called) from data (an object holding items)."""
    if inspect.isclass(target) or inspect.isroutine(target):
        return True
    return callable(target) and not hasattr(target, "__len__")


def is_python_data(data: Any) -> bool:
    """Tell whether ``data`` is one of the Python data objects or specs :func:`load_samples` reads.

    Views that also take their own kinds of input (featmap and recon take paths, PIL images and
    arrays; browse a folder or a file list) hand these to :func:`load_samples` instead.

    Parameters
    ----------
    data : Any
        What a user passed as ``data``.

    Returns
    -------
    bool
        True for a ``"py:..."`` or ``"hf:..."`` spec, a Hugging Face dataset, a DataLoader, and
        any other indexable object with a length (a torch ``Dataset``) that is not text, a path,
        a list or tuple, an image, an array, a torch module or :class:`ImageSamples`.
    """
    from featscope.data.hf_sources import is_hf_dataset
    from featscope.data.torch_sources import is_dataloader

    if isinstance(data, str):
        return data.startswith(("py:", "hf:"))
    if data is None or isinstance(data, (os.PathLike, list, tuple, Mapping, ImageSamples)):
        return False
    if is_hf_dataset(data) or is_dataloader(data):
        return True
    if isinstance(data, (np.ndarray, Image.Image)) or hasattr(data, "named_modules"):
        return False  # an image, or a torch module (nn.Sequential is indexable too)
    return hasattr(data, "__len__") and hasattr(data, "__getitem__")


def py_data(spec: str) -> ImageSamples:
    """Import ``py:module:name`` (or ``py:path/file.py:name``) and read the data it gives.

    Parameters
    ----------
    spec : str
        The spec. ``name`` is a function (called with no arguments) returning any data
        :func:`featscope.data.load_samples` accepts, or such data itself (a module-level
        dataset object).

    Returns
    -------
    ImageSamples
        Its ``source`` is ``"<spec> (<what the factory returned>)"``.

    Raises
    ------
    DataError
        When the spec is malformed, the module cannot be imported, the name is missing, the
        factory needs arguments or raises (the factory and its error are named), or what it
        returns is not data.
    """
    from featscope.models.factory_adapter import import_attribute, required_parameters
    from featscope.models.spec import parse_py

    parsed = parse_py(spec, what="data", error=DataError)
    target = import_attribute(parsed, "data", error=DataError)
    made = target
    if _is_factory(target):
        required = required_parameters(target)
        if required:
            raise DataError(
                f"data factory {spec!r} needs argument(s) {', '.join(required)}; name a function "
                "that takes no arguments and returns the data (e.g. a small wrapper def)"
            )
        try:
            made = target()
        except FeatscopeError:
            raise
        except Exception as exc:
            raise DataError(
                f"data factory {spec!r} raised {type(exc).__name__}: {exc}; fix the factory "
                "(it is called with no arguments)"
            ) from exc
    if made is None:
        raise DataError(f"data factory {spec!r} returned None; return the data (e.g. a Dataset)")
    if isinstance(made, str) and made.startswith("py:"):
        raise DataError(f"data factory {spec!r} returned another py: spec ({made!r}); return data")
    from featscope.data.sources import load_samples

    try:
        samples = load_samples(made)
    except DataError as exc:
        raise DataError(f"data factory {spec!r}: {exc}") from exc
    return dataclasses.replace(samples, source=f"{spec} ({samples.source})")
