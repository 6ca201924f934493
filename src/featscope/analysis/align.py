"""Maps of several runs restricted to the samples they share, row for row.

Two runs on the same data (two layers, two checkpoints, two models) can still differ in their
samples: a skipped unreadable image, another ``--max-num-samples``. Linking their maps point to
point needs the same samples in the same order in every map.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from featscope.errors import DataError
from featscope.results import EmbeddingResult

__all__ = ["common_samples"]


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
        first map's labels and class names (one colour per sample on every map).
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
    aligned = []
    for m in maps:
        if m.ids == tuple(order):
            aligned.append(m)
            continue
        position = {sample_id: k for k, sample_id in enumerate(m.ids)}
        keep = np.asarray([position[i] for i in order], dtype=np.int64)
        fields = {name: values[keep] for name, values in m.fields.items()}
        # neighbour rows point at the samples left out too: they no longer hold
        aligned.append(
            replace(
                m, coords=m.coords[keep], labels=m.labels[keep], ids=tuple(order), fields=fields,
                neighbors=None,
            )
        )  # fmt: skip
    first = aligned[0]
    aligned = [replace(m, labels=first.labels, class_names=first.class_names) for m in aligned]
    return aligned, n_dropped
