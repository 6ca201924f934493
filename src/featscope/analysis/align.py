"""Maps of the same samples made comparable: shared rows, one orientation, centroid movement.

Two runs on the same data (two layers, two checkpoints, two models) can still differ in their
samples: a skipped unreadable image, another ``--max-num-samples``. Linking their maps point to
point needs the same samples in the same order in every map (:func:`common_samples`).

t-SNE, UMAP and PCA maps have no preferred orientation: each map of a run, each run of
``compare`` and each epoch of ``Monitor`` comes out rotated or mirrored at random, so the eye
cannot follow a cluster from one map to the next. :func:`align_maps` turns each map onto the one
before it with the rotation/reflection (and shift) that best matches the samples they share,
scipy's orthogonal Procrustes: distances inside a map, hence its shape and every metric, do not
change. :func:`centroid_movement` measures how far class centroids move between two maps.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from featscope.errors import DataError, ParameterError
from featscope.options import ALIGN_METHODS
from featscope.results import EmbeddingResult

__all__ = ["ALIGN_METHODS", "align_maps", "align_to", "centroid_movement", "common_samples"]


def common_samples(maps: Sequence[EmbeddingResult]) -> tuple[list[EmbeddingResult], int]:
    """Keep the samples present in every map, in the first map's order.

    Parameters
    ----------
    maps : sequence of EmbeddingResult
        One or more maps; sample ids link them.

    Returns
    -------
    aligned : list of EmbeddingResult
        The maps restricted to the common samples, rows in the first map's order, with the
        first map's labels and class names (one colour per sample on every map); their
        ``fields`` follow the rows, and ``neighbors`` are renumbered (a neighbour left out
        becomes -1).
    n_dropped : int
        Samples of the first map missing from another map.

    Raises
    ------
    DataError
        When the maps share no sample id.

    Warns
    -----
    UserWarning
        When some map has samples that are not in every map (they are left out).
    """
    common = set(maps[0].ids)
    for m in maps[1:]:
        common &= set(m.ids)
    if not common:
        raise DataError(
            "the runs share no sample id, so their maps cannot be linked; compare runs made on "
            "the same data (same --data, --class-idx, --max-num-samples and --seed)"
        )
    order = [i for i in maps[0].ids if i in common]
    n_dropped = len(maps[0].ids) - len(order)
    if any(len(m.ids) != len(order) for m in maps):
        warnings.warn(
            f"only {len(order)} samples are in every run; the page shows those and leaves out "
            f"the others ({max(len(m.ids) for m in maps) - len(order)} in the largest run)",
            UserWarning,
            stacklevel=3,
        )
    aligned = [m if m.ids == tuple(order) else _subset(m, order) for m in maps]
    first = aligned[0]
    aligned = [replace(m, labels=first.labels, class_names=first.class_names) for m in aligned]
    return aligned, n_dropped


def _subset(m: EmbeddingResult, order: Sequence[str]) -> EmbeddingResult:
    position = {sample_id: k for k, sample_id in enumerate(m.ids)}
    keep = np.asarray([position[i] for i in order], dtype=np.int64)
    fields = {name: np.asarray(col)[keep] for name, col in m.fields.items()}
    neighbors = None
    if m.neighbors is not None:
        new_row = np.full(len(m.ids), -1, dtype=np.int32)
        new_row[keep] = np.arange(len(keep), dtype=np.int32)
        old = np.asarray(m.neighbors)[keep]
        neighbors = np.where(old >= 0, new_row[np.clip(old, 0, None)], -1).astype(np.int32)
    return replace(
        m,
        coords=m.coords[keep],
        labels=m.labels[keep],
        ids=tuple(order),
        fields=fields,
        neighbors=neighbors,
    )


def _shared_rows(a: EmbeddingResult, b: EmbeddingResult) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``a`` and of ``b`` holding the same sample ids, in ``a``'s order."""
    if a.ids == b.ids:
        rows = np.arange(len(a.ids))
        return rows, rows
    position = {sample_id: k for k, sample_id in enumerate(b.ids)}
    pairs = [(i, position[s]) for i, s in enumerate(a.ids) if s in position]
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rows_a, rows_b = np.asarray(pairs, dtype=np.int64).T
    return rows_a, rows_b


def align_to(
    moving: EmbeddingResult, reference: EmbeddingResult, *, label: str | None = None
) -> EmbeddingResult:
    """Rotate/reflect and shift one map onto another on the samples they share.

    Parameters
    ----------
    moving : EmbeddingResult
        The map to turn.
    reference : EmbeddingResult
        The map to match (same number of components).
    label : str, optional
        How ``params["aligned_to"]`` names the reference (default: its capture point).

    Returns
    -------
    EmbeddingResult
        ``moving`` with coordinates ``(X - mean) @ R + mean_ref``, ``R`` orthogonal (scipy's
        ``orthogonal_procrustes`` on the shared rows, centred), so every distance inside the
        map is kept; ``params["aligned_to"]`` says onto what. Unchanged (no ``aligned_to``)
        when the maps share fewer samples than ``n_components + 1`` or differ in dimensions.
    """
    from scipy.linalg import orthogonal_procrustes

    if moving.n_components != reference.n_components:
        return moving
    rows_m, rows_r = _shared_rows(moving, reference)
    if len(rows_m) <= moving.n_components:
        return moving
    a = moving.coords[rows_m]
    b = reference.coords[rows_r]
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    rotation, _ = orthogonal_procrustes(a - mean_a, b - mean_b)
    coords = (moving.coords - mean_a) @ rotation + mean_b
    params = {**moving.params, "aligned_to": label if label is not None else reference.point}
    return replace(moving, coords=coords, params=params)


def align_maps(
    maps: Sequence[EmbeddingResult],
    method: str = "procrustes",
    *,
    previous: Sequence[EmbeddingResult] | None = None,
    previous_label: str = "previous",
) -> tuple[EmbeddingResult, ...]:
    """Turn each map onto the one before it, so that a cluster stays where it was.

    Parameters
    ----------
    maps : sequence of EmbeddingResult
        Maps of (mostly) the same samples: the capture points of one run, the runs of a
        comparison.
    method : {"procrustes", "none"}, default "procrustes"
        ``"none"`` returns the maps as they are.
    previous : sequence of EmbeddingResult, optional
        One earlier map per map (Monitor: the same points at the previous epoch): map ``i`` is
        turned onto ``previous[i]`` instead of onto map ``i - 1``.
    previous_label : str, default "previous"
        How ``params["aligned_to"]`` names the maps of ``previous``
        (``"<point> (<previous_label>)"``).

    Returns
    -------
    tuple of EmbeddingResult
        The maps, the first left as it is (or turned onto ``previous[0]``), each next one
        turned onto the aligned map before it.

    Raises
    ------
    ParameterError
        For an unknown method, or ``previous`` of another length than ``maps``.
    """
    if method not in ALIGN_METHODS:
        raise ParameterError(f"`--align` must be one of {', '.join(ALIGN_METHODS)}; got {method!r}")
    maps = list(maps)
    if method == "none":
        return tuple(maps)
    if previous is not None and len(previous) != len(maps):
        raise ParameterError(
            f"`previous` has {len(previous)} maps for {len(maps)} maps; "
            "give one earlier map per map"
        )
    out: list[EmbeddingResult] = []
    for i, m in enumerate(maps):
        if previous is not None:
            ref = previous[i]
            out.append(align_to(m, ref, label=f"{ref.point} ({previous_label})"))
        elif out:
            out.append(align_to(m, out[-1]))
        else:
            out.append(m)
    return tuple(out)


def centroid_movement(a: EmbeddingResult, b: EmbeddingResult) -> float:
    """Return how far class centroids move from map ``a`` to map ``b``, in map radii.

    Each map is first centred and scaled to unit RMS radius on the samples both hold (maps of
    different layers or methods come in different units); the result is the mean distance
    between the centroid of each class in ``a`` and in ``b``.

    Parameters
    ----------
    a, b : EmbeddingResult
        Two labelled maps sharing samples.

    Returns
    -------
    float
        0 when every class centroid stays in place; about 1 to 2 when the map is mirrored or
        turned half round.

    Raises
    ------
    ParameterError
        When the maps share no sample or have no labels.
    """
    rows_a, rows_b = _shared_rows(a, b)
    labels = a.labels[rows_a]
    if len(rows_a) == 0 or not np.any(labels >= 0):
        raise ParameterError(
            "centroid movement needs two labelled maps with samples in common; these share "
            f"{len(rows_a)} samples"
        )

    def unit(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=0)
        radius = float(np.sqrt((x**2).sum(axis=1).mean()))
        return x / radius if radius > 0 else x

    xa, xb = unit(a.coords[rows_a, :2]), unit(b.coords[rows_b, :2])
    if a.n_components == b.n_components:
        xa, xb = unit(a.coords[rows_a]), unit(b.coords[rows_b])
    classes = np.unique(labels[labels >= 0])
    moves = [
        float(np.linalg.norm(xa[labels == c].mean(axis=0) - xb[labels == c].mean(axis=0)))
        for c in classes
    ]
    return float(np.mean(moves))
