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
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from featscope.data.cue_conflict import CATEGORIES, DecisionTable, split_imagename
from featscope.data.samples import ImageSamples
from featscope.errors import CaptureError, DataError, ParameterError
from featscope.results import Provenance, ShapeBiasRun, ShapeBiasStats

__all__ = [
    "CATEGORIES",
    "HUMANS",
    "CategoryMapping",
    "ShapeBiasStats",
    "as_mapping",
    "category_probabilities",
    "check_mapping",
    "class_scores",
    "decide",
    "decide_from_logits",
    "human_order",
    "is_human",
    "load_mapping",
    "mapping_source",
    "model_shape_bias",
    "reference_humans",
    "select_decision_makers",
    "shape_bias_by_subject",
    "shape_bias_from_decisions",
    "softmax",
    "with_reference_humans",
]

logger = logging.getLogger(__name__)

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
        return check_mapping(json.loads(text)["categories"], f"featscope:{_MAPPING_FILE}")
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
    return check_mapping(table, str(path))


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


def check_mapping(table: Any, source: str) -> CategoryMapping:
    """Check a table of output classes per category and freeze it.

    Parameters
    ----------
    table : dict
        Category -> class indices (a list, or one index); indices may be integer strings.
    source : str
        Where the table came from, named in errors and kept as :attr:`CategoryMapping.source`.

    Returns
    -------
    CategoryMapping
        The checked table.

    Raises
    ------
    DataError
        When ``table`` is not a dict, a category is missing or unknown, an index is not a
        non-negative integer, a class is in two categories, or a category has no class.
    """
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


def as_mapping(mapping: Any) -> CategoryMapping | None:
    """Turn the ``mapping`` argument of a shape-bias call into a checked table.

    Parameters
    ----------
    mapping : None, str, os.PathLike, dict or CategoryMapping
        ``None`` (decide by the output width: ImageNet-1k's shipped table or the 16
        categories), a JSON/csv file (:func:`load_mapping`), a dict of category -> class
        indices, or a table.

    Returns
    -------
    CategoryMapping or None
        The table; ``None`` when none was given.

    Raises
    ------
    ParameterError
        For any other type.
    DataError
        For a file or dict that is not a valid table.
    """
    if mapping is None or isinstance(mapping, CategoryMapping):
        return mapping
    if isinstance(mapping, Mapping):
        return check_mapping(dict(mapping), "`mapping`")
    if isinstance(mapping, (str, os.PathLike)):
        return load_mapping(mapping)
    raise ParameterError(
        f"`mapping` must be a JSON/csv file, a dict of category -> class indices or a "
        f"CategoryMapping; got {type(mapping).__name__}"
    )


def mapping_source(mapping: CategoryMapping | None, n_outputs: int) -> str:
    """Say which table turned ``n_outputs`` model outputs into the 16 decisions.

    Parameters
    ----------
    mapping : CategoryMapping or None
        The table given, if any.
    n_outputs : int
        The model's output width.

    Returns
    -------
    str
        The table's source, ``"16 outputs (the categories)"`` or the shipped ImageNet table.
    """
    if mapping is not None:
        return mapping.source
    if n_outputs == len(CATEGORIES):
        return "16 outputs (the categories)"
    return f"featscope:{_MAPPING_FILE}"


def class_scores(outputs: Mapping[str, Any]) -> np.ndarray:
    """Return the one ``(N, C)`` array of class scores among a model's captured outputs.

    Parameters
    ----------
    outputs : Mapping of str to array-like
        The features captured at the ``logits`` point, by output name (one entry per element
        of a tuple output).

    Returns
    -------
    numpy.ndarray
        The scores, as given.

    Raises
    ------
    CaptureError
        When the model returns several outputs (or none).
    """
    if len(outputs) != 1:
        raise CaptureError(
            f"the model returns {len(outputs)} outputs ({', '.join(outputs)}); shape bias needs "
            "one (N, classes) tensor of class scores; wrap the model to return the logits only"
        )
    (scores,) = outputs.values()
    return np.asarray(scores)


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


def model_shape_bias(
    name: str,
    logits: Any,
    stimuli: ImageSamples,
    mapping: CategoryMapping | None = None,
    *,
    provenance: Provenance | None = None,
) -> ShapeBiasRun:
    """Decide among the 16 categories from a model's outputs and measure its shape bias.

    Parameters
    ----------
    name : str
        The model's ``subj`` (see :func:`featscope.data.cue_conflict.check_model_name`).
    logits : array-like
        ``(N, C)`` raw outputs, one row per stimulus of ``stimuli``: ImageNet-1k's 1000
        classes, the 16 categories, or any width with ``mapping``.
    stimuli : ImageSamples
        The stimuli behind the rows (:func:`featscope.data.cue_conflict.read_stimuli`; those
        read, when some were skipped).
    mapping : CategoryMapping, optional
        Output classes per category (see :func:`decide`).
    provenance : Provenance, optional
        Model, checkpoint and stimuli folder, recorded in the result.

    Returns
    -------
    ShapeBiasRun
        The model's statistics beside the reference humans (:func:`reference_humans`), drawn
        in that order; its decisions (one csv row per stimulus); the table used as
        ``params["mapping"]``.

    Raises
    ------
    ParameterError
        For outputs that are neither 1000 nor 16 classes without ``mapping``, or that do not
        fit ``mapping``.
    """
    scores = _as_matrix(logits)
    table = DecisionTable.for_stimuli(name, decide_from_logits(scores, mapping), stimuli)
    stats = shape_bias_by_subject(table, pool_humans=False)[name]
    humans = reference_humans()
    logger.info("%s: shape bias %.4f (humans %.4f)", name, stats.shape_bias, humans.shape_bias)
    return ShapeBiasRun(
        stats={name: stats, HUMANS: humans},
        model_name=name,
        shown=(HUMANS, name),
        decisions=table,
        params={"mapping": mapping_source(mapping, scores.shape[1])},
        provenance=Provenance() if provenance is None else provenance,
    )


def with_reference_humans(stats: Mapping[str, ShapeBiasStats]) -> dict[str, ShapeBiasStats]:
    """Add the shipped humans (:func:`reference_humans`) when ``stats`` has no ``"humans"``.

    Parameters
    ----------
    stats : Mapping of str to ShapeBiasStats
        Statistics by decision maker (:func:`shape_bias_by_subject`).

    Returns
    -------
    dict of str to ShapeBiasStats
        A copy, with ``"humans"`` last when it was added.
    """
    out = dict(stats)
    if HUMANS not in out:
        logger.info("no human csv (subject-NN) in the input: humans from featscope's reference")
        out[HUMANS] = reference_humans()
    return out


def select_decision_makers(
    stats: Mapping[str, ShapeBiasStats], models: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Return the decision makers to draw, in legend order.

    Parameters
    ----------
    stats : Mapping of str to ShapeBiasStats
        Statistics by decision maker, ``"humans"`` included.
    models : sequence of str, optional
        The ones to draw, in order, by ``subj`` (repeats dropped). Default: every decision
        maker that is neither a human observer nor ``"humans"``, by descending shape bias
        (NaN last).

    Returns
    -------
    tuple of str
        ``models`` in the order given, with ``"humans"`` first unless ``models`` places it.

    Raises
    ------
    DataError
        When a name of ``models`` is not in ``stats``; a name with dashes whose underscore
        spelling is there gets a "did you mean".
    """
    candidates = [n for n in stats if n != HUMANS and not is_human(n)]
    if not models:
        chosen = sorted(candidates, key=lambda n: -_sortable(stats[n].shape_bias))
    else:
        unknown = [m for m in models if m not in stats]
        if unknown:
            hints = [m.replace("-", "_") for m in unknown if m.replace("-", "_") in stats]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            raise DataError(
                f"`models` {', '.join(map(repr, unknown))} not in the csvs{hint}; they hold: "
                f"{', '.join(candidates)} (and humans)"
            )
        chosen = list(dict.fromkeys(models))
    return tuple(chosen) if HUMANS in chosen else (HUMANS, *chosen)


def _sortable(value: float) -> float:
    return -1.0 if np.isnan(value) else value


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
