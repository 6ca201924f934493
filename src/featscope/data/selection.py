"""Which samples a view uses: the classes (``--class-idx``, ``--max-num-class``), how many each.

The rule follows OpenMMLab's ``vis_tsne.py`` (the first ``max_num_class`` classes, at most
``max_num_samples`` samples of each), with three deliberate differences:

- ``sample="random"`` (the default) draws a seeded random subset of each class instead of its
  first samples, so a dataset sorted by, say, acquisition date is not summarised by its oldest
  images; ``sample="first"`` gives exactly the reference's selection.
- Without ``class_idx`` the first ``max_num_class`` classes *that have samples* are used (the
  reference counts empty class indices too and then shows fewer classes).
- The order of ``class_idx`` changes nothing: labels stay the dataset's class indices (the
  reference paired its legend with the ``--class-idx`` order and mislabelled unsorted lists).

Unlabelled data (``n_classes=0``, every label -1) are one group: ``max_num_samples`` is the
total, drawn with ``numpy.random.default_rng(seed)`` (``sample="random"``) or the first ones;
``max_num_class`` is ignored and ``class_idx`` is ignored with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from featscope.data.samples import UNLABELLED
from featscope.errors import DataError, ParameterError
from featscope.options import Selection
from featscope.results import FeatureSet

__all__ = ["SAMPLE_MODES", "select_indices", "select_samples"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: Accepted values of ``sample``.
SAMPLE_MODES = ("random", "first")


def select_indices(
    labels: Sequence[int] | np.ndarray,
    n_classes: int,
    *,
    class_idx: Sequence[int] | None = None,
    max_num_class: int | None = 20,
    max_num_samples: int | None = 100,
    seed: int = 0,
    sample: str = "random",
    class_names: Sequence[str] | None = None,
    source: str = "the data",
) -> np.ndarray:
    """Return the positions of the samples to use, in dataset order.

    Parameters
    ----------
    labels : array-like of int
        ``(N,)`` class index of every sample.
    n_classes : int
        Number of classes of the source (``len(class_names)``); 0 for unlabelled data, whose
        labels are all -1 (see the module docstring).
    class_idx : sequence of int, optional
        The classes to use (``--class-idx``). Order does not matter; duplicates are dropped
        with a warning. By default the first ``max_num_class`` classes that have samples.
    max_num_class : int or None, default 20
        How many classes to use when ``class_idx`` is not given; ``None`` or ``<= 0``: all.
    max_num_samples : int or None, default 100
        At most this many samples per class (in all, for unlabelled data); ``None`` or
        ``<= 0``: all.
    seed : int, default 0
        Seed of the random per-class draw. Each class draws from its own stream
        (``numpy.random.default_rng([seed, class])``), so a class gets the same samples
        whichever other classes are selected.
    sample : {"random", "first"}, default "random"
        ``"random"``: a seeded random subset of each class; ``"first"``: the first samples of
        each class in dataset order (the reference's rule).
    class_names : sequence of str, optional
        Used only to name classes in error messages.
    source : str, optional
        Name of the data source, used only in error messages.

    Returns
    -------
    numpy.ndarray
        Sorted int64 positions into ``labels``.

    Raises
    ------
    ParameterError
        When ``n_classes``, ``seed`` or ``sample`` is invalid, or a ``class_idx`` is out of
        range (the valid range is named).
    DataError
        When a selected class has no samples, or nothing is selected.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ParameterError(f"`labels` must be 1-D (one per sample); got shape {labels.shape}")
    if labels.size and labels.dtype.kind not in "iu":
        raise ParameterError(f"`labels` must be integer class indices; got dtype {labels.dtype}")
    labels = labels.astype(np.int64, copy=False)
    unlabelled = (
        not isinstance(n_classes, bool)
        and isinstance(n_classes, (int, np.integer))
        and n_classes == 0
        and bool(np.all(labels == UNLABELLED))
    )
    if not unlabelled and (
        isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1
    ):
        raise ParameterError(
            f"`n_classes` must be a positive integer (0 only for unlabelled data, labels all "
            f"-1); got {n_classes!r}"
        )
    n_classes = int(n_classes)
    if sample not in SAMPLE_MODES:
        raise ParameterError(f"`sample` must be one of {', '.join(SAMPLE_MODES)}; got {sample!r}")
    if (
        isinstance(seed, bool)
        or not isinstance(seed, (int, np.integer))
        or not 0 <= seed <= _MAX_SEED
    ):
        raise ParameterError(
            f"`--seed` must be an integer from 0 to {_MAX_SEED} (2**32 - 1, what numpy, "
            f"scikit-learn and openTSNE accept); got {seed!r}"
        )

    if unlabelled:
        return _select_unlabelled(labels.size, class_idx, max_num_samples, seed, sample, source)
    counts = np.bincount(labels[(labels >= 0) & (labels < n_classes)], minlength=n_classes)
    if class_idx is None:
        present = np.flatnonzero(counts)
        limit = _limit(max_num_class)
        classes = present[:limit] if limit is not None else present
        absent = n_classes - len(present)
        if absent:
            logger.info(
                "%s: %d of %d classes have no samples and are skipped", source, absent, n_classes
            )
    else:
        classes = _check_class_idx(class_idx, n_classes, counts, class_names, source)

    per_class = _limit(max_num_samples)
    chosen = []
    for c in classes:
        positions = np.flatnonzero(labels == c)
        if per_class is not None and len(positions) > per_class:
            if sample == "first":
                positions = positions[:per_class]
            else:
                rng = np.random.default_rng([int(seed), int(c)])
                positions = np.sort(rng.choice(positions, size=per_class, replace=False))
        chosen.append(positions)
    selected = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)
    if not selected.size:
        raise DataError(
            f"no samples selected from {source}: it has {labels.size} samples and none belongs "
            f"to the {n_classes} classes; check the labels and --class-idx"
        )
    logger.info("selected %d samples of %d classes from %s", selected.size, len(classes), source)
    return selected.astype(np.int64, copy=False)


_MAX_SEED = 2**32 - 1


def select_samples(
    items: T,
    selection: Selection | None = None,
    *,
    class_names: str | os.PathLike[str] | Sequence[str] | None = None,
) -> T:
    """Return the samples (or saved features) a view uses: named classes, then the selection.

    Parameters
    ----------
    items : ImageSamples or FeatureSet
        All samples of the source, or features read with :func:`featscope.data.load_features`.
    selection : Selection, optional
        Classes, samples per class, sampling rule and seed (default: ``Selection()``); the rule
        is :func:`select_indices`.
    class_names : path or sequence of str, optional
        Class names (a file, one per line, or a sequence), index = label, applied before the
        selection (see :func:`featscope.data.apply_class_names`).

    Returns
    -------
    ImageSamples or FeatureSet
        The selected rows, in source order, of the same type as ``items``.

    Raises
    ------
    ParameterError, DataError
        As :func:`select_indices` and :func:`featscope.data.apply_class_names`.
    """
    from featscope.data.sources import apply_class_names, read_class_names

    if class_names is not None:
        names = (
            read_class_names(class_names)
            if isinstance(class_names, (str, os.PathLike))
            else tuple(str(n) for n in class_names)
        )
        items = apply_class_names(items, names)
    selection = Selection() if selection is None else selection
    found: Any = items
    is_features = isinstance(found, FeatureSet)
    keep = select_indices(
        found.labels,
        len(found.class_names),
        class_idx=selection.class_idx,
        max_num_class=selection.max_num_class,
        max_num_samples=selection.max_num_samples,
        seed=selection.seed,
        sample=selection.sample,
        class_names=found.class_names,
        source=(found.provenance.source if is_features else found.source) or "the data",
    )
    if is_features:
        return dataclasses.replace(
            found,
            features=found.features[keep],
            labels=found.labels[keep],
            ids=tuple(found.ids[i] for i in keep),
            fields={k: v[keep] for k, v in found.fields.items()},
            logits=None if found.logits is None else found.logits[keep],
        )
    return found.subset(keep)


def _select_unlabelled(
    n: int,
    class_idx: Sequence[int] | None,
    max_num_samples: int | None,
    seed: int,
    sample: str,
    source: str,
) -> np.ndarray:
    if class_idx is not None:
        warnings.warn(
            f"`--class-idx` is ignored: {source} has no labels; --max-num-samples counts all "
            "samples",
            UserWarning,
            stacklevel=3,
        )
    if n == 0:
        raise DataError(f"no samples selected from {source}: it has 0 samples; check the data")
    total = _limit(max_num_samples)
    positions = np.arange(n, dtype=np.int64)
    if total is not None and n > total:
        if sample == "first":
            positions = positions[:total]
        else:
            rng = np.random.default_rng(int(seed))
            positions = np.sort(rng.choice(n, size=total, replace=False))
    logger.info("selected %d of %d unlabelled samples from %s", positions.size, n, source)
    return positions


def _limit(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterError(f"limits must be integers or None; got {value!r}")
    return int(value) if value > 0 else None


def _check_class_idx(
    class_idx: Sequence[int],
    n_classes: int,
    counts: np.ndarray,
    class_names: Sequence[str] | None,
    source: str,
) -> np.ndarray:
    requested = list(class_idx)
    if not requested:
        raise ParameterError(
            "`--class-idx` is empty; give at least one class index or leave it out"
        )
    for value in requested:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ParameterError(f"`--class-idx` must be integers; got {value!r}")
        if not 0 <= value < n_classes:
            raise ParameterError(
                f"`--class-idx` {value} is out of range: the data has {n_classes} classes "
                f"(0-{n_classes - 1}); pass indices below {n_classes}"
            )
    unique = sorted({int(v) for v in requested})
    if len(unique) != len(requested):
        repeated = sorted({int(v) for v in requested if requested.count(v) > 1})
        warnings.warn(
            f"`--class-idx` repeats {', '.join(map(str, repeated))}; each class is used once",
            UserWarning,
            stacklevel=3,
        )
    for c in unique:
        if counts[c] == 0:
            name = (
                f" ({class_names[c]!r})" if class_names is not None and c < len(class_names) else ""
            )
            raise DataError(f"class {c}{name} has no samples in {source}; drop it from --class-idx")
    return np.asarray(unique, dtype=np.int64)
