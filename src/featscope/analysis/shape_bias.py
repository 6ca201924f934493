"""Shape bias: how often a classifier decides by an object's shape rather than its texture.

On the cue-conflict stimuli (the shape of one category in the texture of another; Geirhos et al.,
ICLR 2019) a decision is *shape* when it names the shape category, *texture* when it names the
texture category and *other* otherwise. On the images whose two cues differ::

    shape_bias = n_shape / (n_shape + n_texture)

"other" decisions are left out. An ImageNet-1k classifier decides among the 16 categories by the
**mean** softmax probability over each category's ImageNet classes (207 classes in all, the table
:file:`imagenet_16.json` shipped with featscope), then the arg-max over the 16; the other 793
classes are ignored. This module is numpy only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from featscope.data.cue_conflict import CATEGORIES, DecisionTable, split_imagename
from featscope.errors import DataError, ParameterError

__all__ = [
    "CATEGORIES",
    "HUMANS",
    "CategoryMapping",
    "ShapeBiasStats",
    "category_probabilities",
    "decide",
    "decide_from_logits",
    "human_order",
    "is_human",
    "load_mapping",
    "reference_humans",
    "shape_bias_by_subject",
    "shape_bias_from_decisions",
    "softmax",
]

#: Name under which the human observers are pooled.
HUMANS = "humans"
_HUMAN_SUBJ = re.compile(r"^subject-\d+$")
_MAPPING_FILE = "imagenet_16.json"
_HUMANS_FILE = "shape_bias_humans.json"


# --------------------------------------------------------------------------- 1000 -> 16


@dataclass(frozen=True)
class CategoryMapping:
    """Which model output classes make up each of the 16 categories.

    Attributes
    ----------
    indices : Mapping of str to tuple of int
        Output class indices per category, in :data:`CATEGORIES` order.
    source : str
        Where the table came from (``"featscope:imagenet_16.json"`` or a file path).
    """

    indices: Mapping[str, tuple[int, ...]]
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "indices",
            MappingProxyType({c: tuple(int(i) for i in self.indices[c]) for c in CATEGORIES}),
        )

    @property
    def n_classes(self) -> int:
        """Number of distinct output classes mapped (207 for the ImageNet table)."""
        return len({i for values in self.indices.values() for i in values})

    @property
    def min_outputs(self) -> int:
        """The smallest model output width this table fits (largest index + 1)."""
        return 1 + max(i for values in self.indices.values() for i in values)


def load_mapping(path: str | os.PathLike[str] | None = None) -> CategoryMapping:
    """Load a table of output classes per cue-conflict category.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A JSON file, ``{"airplane": [404], ...}`` (optionally under a ``"categories"`` key), or a
        csv file with rows ``category,index`` (one row per class; a header row is allowed).
        Default: the ImageNet-1k table shipped with featscope.

    Returns
    -------
    CategoryMapping
        The table, checked: all 16 categories, non-negative integer indices, no index in two
        categories.

    Raises
    ------
    DataError
        When the file cannot be read or parsed, a category is missing or unknown, an index is
        not a non-negative integer, or an index belongs to two categories.
    """
    if path is None:
        text = resources.files(__package__).joinpath(_MAPPING_FILE).read_text(encoding="utf-8")
        return _check_mapping(json.loads(text)["categories"], f"featscope:{_MAPPING_FILE}")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read mapping file '{path}': {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".csv":
        table = _mapping_from_csv(text, path)
    else:
        try:
            table = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"mapping file '{path}' is not valid JSON ({exc}); write "
                '{"airplane": [404], "bear": [294, 295, 296, 297], ...} or a .csv of '
                "category,index rows"
            ) from exc
        if isinstance(table, dict) and isinstance(table.get("categories"), dict):
            table = table["categories"]
    return _check_mapping(table, str(path))


def _mapping_from_csv(text: str, path: Path) -> dict[str, list[Any]]:
    table: dict[str, list[Any]] = {}
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise DataError(
                f"mapping file '{path}' line {line} has {len(row)} values; each row must be "
                "category,index (e.g. airplane,404)"
            )
        category, index = row[0].strip(), row[1].strip()
        if line == 1 and not index.lstrip("-").isdigit():
            continue  # a header row
        table.setdefault(category, []).append(index)
    return table


def _check_mapping(table: Any, source: str) -> CategoryMapping:
    if not isinstance(table, dict):
        raise DataError(
            f"mapping {source} must map each category to a list of class indices; got "
            f"{type(table).__name__}"
        )
    missing = [c for c in CATEGORIES if c not in table]
    unknown = [str(c) for c in table if c not in CATEGORIES]
    if missing or unknown:
        raise DataError(
            f"mapping {source} must name exactly the 16 categories ({', '.join(CATEGORIES)}); "
            f"missing: {', '.join(missing) or 'none'}; unknown: {', '.join(unknown) or 'none'}"
        )
    owner: dict[int, str] = {}
    indices: dict[str, tuple[int, ...]] = {}
    for category in CATEGORIES:
        values = table[category]
        if isinstance(values, (int, str)):
            values = [values]
        parsed = []
        for value in values:
            index = _as_index(value)
            if index is None:
                raise DataError(
                    f"mapping {source}: category {category!r} has the index {value!r}; "
                    "indices must be integers >= 0"
                )
            if index in owner and owner[index] != category:
                raise DataError(
                    f"mapping {source}: class {index} is in both {owner[index]!r} and "
                    f"{category!r}; each class may belong to one category only"
                )
            owner[index] = category
            parsed.append(index)
        if not parsed:
            raise DataError(
                f"mapping {source}: category {category!r} has no classes; give it at least one"
            )
        indices[category] = tuple(parsed)
    return CategoryMapping(indices, source)


def _as_index(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def softmax(logits: Any) -> np.ndarray:
    """Return the softmax over the last axis, computed stably in float64.

    Parameters
    ----------
    logits : array-like
        ``(N, C)`` scores.

    Returns
    -------
    numpy.ndarray
        ``(N, C)`` float64 probabilities, each row summing to 1.
    """
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def category_probabilities(
    probabilities: Any, mapping: CategoryMapping | None = None
) -> np.ndarray:
    """Return each category's score: the mean probability of its classes.

    Parameters
    ----------
    probabilities : array-like
        ``(N, C)`` softmax probabilities of a classifier (``C >= mapping.min_outputs``).
    mapping : CategoryMapping, optional
        The class table; default: the ImageNet-1k table (:func:`load_mapping`).

    Returns
    -------
    numpy.ndarray
        ``(N, 16)`` float64 scores, columns in :data:`CATEGORIES` order.

    Raises
    ------
    ParameterError
        When ``probabilities`` is not 2-D or has fewer columns than the table needs.
    """
    mapping = load_mapping() if mapping is None else mapping
    p = _as_matrix(probabilities)
    if p.shape[1] < mapping.min_outputs:
        raise ParameterError(
            f"the model outputs {p.shape[1]} classes but the mapping {mapping.source} uses class "
            f"indices up to {mapping.min_outputs - 1}; pass a mapping for this model's classes"
        )
    # the mean, not the sum or max: categories with many ImageNet classes (dog: 109) must not win
    # by having more classes
    return np.stack([p[:, list(mapping.indices[c])].mean(axis=1) for c in CATEGORIES], axis=1)


def _as_matrix(values: Any) -> np.ndarray:
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 2:
        raise ParameterError(
            f"class scores must be a 2-D (images, classes) array; got shape {p.shape}"
        )
    return p


def decide(probabilities: Any, mapping: CategoryMapping | None = None) -> np.ndarray:
    """Return each image's decision among the 16 categories.

    Parameters
    ----------
    probabilities : array-like
        ``(N, C)`` softmax probabilities. With ``mapping``, any ``C`` the table fits; without,
        ``C == 1000`` (ImageNet-1k, the shipped table) or ``C == 16`` (scores of the categories
        themselves, in :data:`CATEGORIES` order).
    mapping : CategoryMapping, optional
        Class table for models with other outputs.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` category names (``str``); ties go to the first category in sorted order.

    Raises
    ------
    ParameterError
        When the array is not 2-D, or has neither 1000 nor 16 columns and no mapping is given.
    """
    p = _as_matrix(probabilities)
    if mapping is None and p.shape[1] == len(CATEGORIES):
        scores = p
    elif mapping is None and p.shape[1] != 1000:
        raise ParameterError(
            f"the model outputs {p.shape[1]} classes; shape bias needs 1000 (ImageNet-1k, mapped "
            f"to the 16 categories by the shipped table) or 16 (the categories "
            f"{CATEGORIES[0]}..{CATEGORIES[-1]}, sorted); pass `mapping` (--mapping FILE, JSON "
            '{"airplane": [i, ...], ...}) for other outputs'
        )
    else:
        scores = category_probabilities(p, mapping)
    return np.asarray(CATEGORIES)[np.argmax(scores, axis=1)]


def decide_from_logits(logits: Any, mapping: CategoryMapping | None = None) -> np.ndarray:
    """Apply :func:`softmax`, then :func:`decide`.

    Parameters
    ----------
    logits : array-like
        ``(N, C)`` raw classifier outputs.
    mapping : CategoryMapping, optional
        Class table (see :func:`decide`).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` category names.
    """
    return decide(softmax(_as_matrix(logits)), mapping)


# --------------------------------------------------------------------------- the analysis


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


@dataclass(frozen=True)
class ShapeBiasStats:
    """Shape and texture decisions of one decision maker on the cue-conflict images.

    Attributes
    ----------
    name : str
        The decision maker (a csv's ``subj``, a model name or ``"humans"``).
    n_shape, n_texture, n_other : int
        Conflict trials (shape != texture) decided by the shape, the texture, or neither.
    n_excluded : int
        Trials left out because the image's shape and texture are the same category.
    per_category : Mapping of str to Mapping
        Per shape category (the ``category`` column): ``shape_bias``, ``n_shape``,
        ``n_texture``, ``n_other``. Categories without trials are absent.
    """

    name: str
    n_shape: int
    n_texture: int
    n_other: int
    n_excluded: int = 0
    per_category: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {c: MappingProxyType(dict(v)) for c, v in self.per_category.items()}
        object.__setattr__(self, "per_category", MappingProxyType(frozen))

    @property
    def n_conflict(self) -> int:
        """Trials whose shape and texture differ."""
        return self.n_shape + self.n_texture + self.n_other

    @property
    def shape_bias(self) -> float:
        """``n_shape / (n_shape + n_texture)``; NaN without shape or texture decisions."""
        return _ratio(self.n_shape, self.n_shape + self.n_texture)

    @property
    def shape_accuracy(self) -> float:
        """Fraction of the conflict trials decided by the shape."""
        return _ratio(self.n_shape, self.n_conflict)

    @property
    def texture_accuracy(self) -> float:
        """Fraction of the conflict trials decided by the texture."""
        return _ratio(self.n_texture, self.n_conflict)

    def texture_fraction(self, category: str | None = None) -> float:
        """Return ``1 - shape_bias``, overall or for one shape category (NaN if none)."""
        if category is None:
            return 1.0 - self.shape_bias
        entry = self.per_category.get(category)
        return float("nan") if entry is None else 1.0 - float(entry["shape_bias"])

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (what ``shape_bias.json`` holds per decision maker)."""
        return {
            "shape_bias": self.shape_bias,
            "n_shape": self.n_shape,
            "n_texture": self.n_texture,
            "n_other": self.n_other,
            "n_excluded": self.n_excluded,
            "shape_accuracy": self.shape_accuracy,
            "texture_accuracy": self.texture_accuracy,
            "per_category": {c: dict(v) for c, v in self.per_category.items()},
        }

    @classmethod
    def from_counts(
        cls, name: str, per_category: Mapping[str, Mapping[str, int]], n_excluded: int = 0
    ) -> ShapeBiasStats:
        """Build the statistics from per-category counts.

        Each category's counts are ``n_shape``, ``n_texture`` and ``n_other``.

        Parameters
        ----------
        name : str
            The decision maker.
        per_category : Mapping
            Counts per shape category.
        n_excluded : int, optional
            Same-shape-and-texture trials left out.

        Returns
        -------
        ShapeBiasStats
            Totals and per-category shape bias from the counts.
        """
        per: dict[str, dict[str, Any]] = {}
        for category in CATEGORIES:
            if category not in per_category:
                continue
            counts = {
                k: int(per_category[category][k]) for k in ("n_shape", "n_texture", "n_other")
            }
            bias = _ratio(counts["n_shape"], counts["n_shape"] + counts["n_texture"])
            per[category] = {"shape_bias": bias, **counts}
        return cls(
            name=name,
            n_shape=sum(v["n_shape"] for v in per.values()),
            n_texture=sum(v["n_texture"] for v in per.values()),
            n_other=sum(v["n_other"] for v in per.values()),
            n_excluded=int(n_excluded),
            per_category=per,
        )


def shape_bias_from_decisions(
    responses: Sequence[str],
    categories: Sequence[str],
    imagenames: Sequence[str],
    name: str = "",
) -> ShapeBiasStats:
    """Count shape, texture and other decisions and compute the shape bias.

    Parameters
    ----------
    responses : sequence of str
        The category chosen per trial (``object_response``; anything outside the 16, e.g.
        ``"na"``, is an "other" decision).
    categories : sequence of str
        The shape category per trial (``category``, the stimulus folder).
    imagenames : sequence of str
        The stimulus file names; the texture category is read from them
        (:func:`featscope.data.cue_conflict.split_imagename`).
    name : str, optional
        The decision maker.

    Returns
    -------
    ShapeBiasStats
        Counts on the trials whose shape and texture differ, overall and per shape category.

    Raises
    ------
    DataError
        When the sequences differ in length, a shape or texture is not one of the 16
        categories, or no trial has differing shape and texture.
    """
    n = len(responses)
    if len(categories) != n or len(imagenames) != n:
        raise DataError(
            f"decisions of {name or 'a decision maker'}: {n} responses, {len(categories)} "
            f"categories and {len(imagenames)} image names; give one of each per trial"
        )
    counts = {c: {"n_shape": 0, "n_texture": 0, "n_other": 0} for c in CATEGORIES}
    seen: set[str] = set()
    excluded = 0
    for response, shape, imagename in zip(responses, categories, imagenames, strict=True):
        shape = str(shape).strip()
        texture = split_imagename(imagename)[1]
        for cue, value in (("shape category", shape), ("texture category", texture)):
            if value not in CATEGORIES:
                raise DataError(
                    f"decisions of {name or 'a decision maker'}: {cue} {value!r} (image "
                    f"{imagename!r}) is not one of the 16 categories ({', '.join(CATEGORIES)})"
                )
        if shape == texture:  # no conflict: the trial says nothing about shape vs. texture
            excluded += 1
            continue
        seen.add(shape)
        response = str(response).strip()
        key = "n_shape" if response == shape else "n_texture" if response == texture else "n_other"
        counts[shape][key] += 1
    if not seen:
        raise DataError(
            f"decisions of {name or 'a decision maker'}: none of the {n} trials has an image "
            "whose shape and texture differ; shape bias needs cue-conflict trials"
        )
    return ShapeBiasStats.from_counts(name, {c: counts[c] for c in seen}, excluded)


def is_human(subj: str) -> bool:
    """Whether a ``subj`` value is a human observer (``subject-01`` ...)."""
    return bool(_HUMAN_SUBJ.match(subj))


def shape_bias_by_subject(
    table: DecisionTable, pool_humans: bool = True
) -> dict[str, ShapeBiasStats]:
    """Compute the shape bias of every decision maker in a decision table.

    Parameters
    ----------
    table : DecisionTable
        Rows of one or more decision makers (``subj``).
    pool_humans : bool, default True
        Also pool all human observers (``subject-NN``) as ``"humans"``.

    Returns
    -------
    dict of str to ShapeBiasStats
        One entry per ``subj`` in order of appearance, then ``"humans"`` when there are human
        observers.
    """
    out: dict[str, ShapeBiasStats] = {}
    human_rows: list[int] = []
    rows_of: dict[str, list[int]] = {}
    for i, subj in enumerate(table.subj):
        rows_of.setdefault(subj, []).append(i)
        if pool_humans and is_human(subj):
            human_rows.append(i)
    groups = list(rows_of.items())
    if human_rows and HUMANS not in rows_of:
        groups.append((HUMANS, human_rows))
    for subj, rows in groups:
        out[subj] = shape_bias_from_decisions(
            [table.object_response[i] for i in rows],
            [table.category[i] for i in rows],
            [table.imagename[i] for i in rows],
            name=subj,
        )
    return out


def reference_humans() -> ShapeBiasStats:
    """Return the pooled decisions of the 10 human observers of Geirhos et al. (2019).

    Shipped with featscope as per-category counts (:file:`shape_bias_humans.json`, computed
    from model-vs-human's ``raw-data/cue-conflict`` csvs), so that a model's figure shows the
    humans without the csvs at hand.

    Returns
    -------
    ShapeBiasStats
        Named ``"humans"``; overall shape bias 0.9587.
    """
    text = resources.files(__package__).joinpath(_HUMANS_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    return ShapeBiasStats.from_counts(HUMANS, data["per_category"], data["n_excluded"])


def human_order(humans: ShapeBiasStats | None = None) -> tuple[str, ...]:
    """Return the 16 categories by ascending human texture fraction (most shape-biased first).

    Parameters
    ----------
    humans : ShapeBiasStats, optional
        The humans' statistics; default :func:`reference_humans`.

    Returns
    -------
    tuple of str
        The categories, ties broken alphabetically (the sort is stable).
    """
    humans = reference_humans() if humans is None else humans

    def key(category: str) -> float:
        value = humans.texture_fraction(category)
        return np.inf if np.isnan(value) else value

    return tuple(sorted(CATEGORIES, key=key))
