"""One call from a model and its samples to labelled feature sets, as every embedding view needs.

:func:`extract_feature_sets` is the capture step shared by :func:`featscope.tsne` and
:class:`featscope.Monitor`: the batched extraction (:func:`featscope.capture.extract_features`),
sharded over torchrun's processes when asked, then one :class:`~featscope.results.FeatureSet`
per captured output with the samples' labels, ids, metadata and the run's provenance.

Two things ride along with the requested points, from the same forward pass:

* the classifier output: when the model has a ``logits`` point it is captured too, so that the
  maps can say what the model predicted for every sample (``FeatureSet.logits``);
* the check for points that are the same: names that resolve to the same output (an alias and
  the module behind it; ``neck`` and ``pre_logits`` of a model whose head only flattens) give
  the same pooled features; they are mapped once, under the first name, and the others are
  recorded in ``FeatureSet.aliases`` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featscope.capture.points import CapturePoint, resolve_points
from featscope.data.samples import ImageSamples
from featscope.errors import DataError
from featscope.models.handle import ModelHandle
from featscope.options import Extraction
from featscope.results import FeatureSet

__all__ = ["LOGITS", "FeatureExtraction", "extract_feature_sets", "same_outputs"]

logger = logging.getLogger(__name__)

#: The alias of the classifier output, captured beside the requested points when the model has it.
LOGITS = "logits"


@dataclass(frozen=True)
class FeatureExtraction:
    """The feature sets of one extraction and the samples behind their rows.

    Attributes
    ----------
    feature_sets : tuple of FeatureSet
        One per captured output (tuple outputs give ``<point>.<i>``), in capture order.
    samples : ImageSamples
        The samples that could be read, in the order of every feature set's rows.
    skipped : tuple of (str, str)
        ``(sample id, reason)`` of the images skipped with ``skip_bad_images``.
    duplicates : Mapping of str to tuple of str
        For each point kept, the requested names that gave the same features (mapped once).
    settings : Mapping of str to Any
        How the model ran (:attr:`featscope.capture.ExtractionResult.settings`).
    """

    feature_sets: tuple[FeatureSet, ...]
    samples: ImageSamples
    skipped: tuple[tuple[str, str], ...] = ()
    duplicates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


def extract_feature_sets(
    handle: ModelHandle,
    samples: ImageSamples,
    points: str | Iterable[str | CapturePoint],
    extraction: Extraction | None = None,
    *,
    seed: int = 0,
    distributed: bool = False,
) -> FeatureExtraction | None:
    """Extract pooled features of ``samples`` at ``points`` and label them.

    Parameters
    ----------
    handle : ModelHandle
        The model (see :func:`featscope.load_model`).
    samples : ImageSamples
        The selected samples (see :func:`featscope.data.select_samples`).
    points : str, CapturePoint or iterable of them
        Capture points; checked before any image is read.
    extraction : Extraction, optional
        Device, precision, batch size, workers, cache folder and resume, progress bar (default:
        ``Extraction()``). ``nproc`` is not read here: a view starts its processes itself.
    seed : int, default 0
        Seed recorded in the provenance (the seed of the sample selection).
    distributed : bool, default False
        Under ``torchrun`` (``WORLD_SIZE > 1``), share the samples between the processes (every
        rank must call this); rank 0 gets all features in sample order, the other ranks
        ``None``. False: this process extracts everything, whatever the world.

    Returns
    -------
    FeatureExtraction or None
        ``None`` only on ranks other than 0 of a distributed extraction.

    Raises
    ------
    FeatscopeError
        As :func:`featscope.capture.extract_features` (bad options, unknown points, unreadable
        images), and :class:`~featscope.errors.DataError` when no sample could be read.
    """
    from featscope.capture.distributed import distributed_world
    from featscope.capture.extract import default_batch_size, extract_features

    extraction = Extraction() if extraction is None else extraction
    requested = _as_points(handle, points)
    names = [p.name for p in requested]
    # the classifier output of the same pass, for predictions; not mapped unless asked for
    extra_logits = LOGITS in handle.aliases and LOGITS not in names
    if extra_logits:
        requested.append(CapturePoint(name=LOGITS, ref=handle.aliases[LOGITS], alias=LOGITS))
    points = requested
    rank, world = distributed_world() if distributed else (0, 1)
    options = {
        # resolved here: a distributed run shards the samples by whole batches
        "batch_size": extraction.batch_size or default_batch_size(handle, extraction.device),
        "num_workers": extraction.num_workers,
        "progress": extraction.progress and rank == 0,
        "skip_bad_images": extraction.skip_bad_images,
        "cache_dir": extraction.cache_dir,
        "resume": extraction.resume,
        "amp": extraction.amp,
        "fold_batchnorm": extraction.fold_bn,
    }
    if world > 1:
        from featscope.capture.distributed import (
            extract_features_distributed,
            process_group,
            rank_device,
        )

        device = rank_device(extraction.device)
        with process_group(device):
            out = extract_features_distributed(handle, samples, points, device=device, **options)
        if out is None:
            return None
    else:
        out = extract_features(handle, samples, points, device=extraction.device, **options)
    logits = out.features.get(LOGITS)
    if logits is not None and logits.ndim != 2:
        logits = None
    if extra_logits:
        out.features.pop(LOGITS, None)
        out.pooling.pop(LOGITS, None)
    duplicates = same_outputs(out.features)
    for kept, others in duplicates.items():
        logger.warning(
            "capture points %s give the same features as %r: mapped once, as %r",
            ", ".join(repr(o) for o in others),
            kept,
            kept,
        )
        for other in others:
            out.features.pop(other)
    provenance = handle.provenance(samples.source, seed=seed)
    sets = tuple(out.feature_sets(samples, provenance, logits=logits, aliases=duplicates))
    if not sets or len(out.kept) == 0:
        raise DataError(f"no sample of {samples.source!r} could be read; nothing to map")
    return FeatureExtraction(
        sets, samples.subset(out.kept), tuple(out.skipped), duplicates, dict(out.settings)
    )


def _as_points(handle: ModelHandle, points: str | Iterable[str | CapturePoint]) -> list:
    """Resolve names to :class:`CapturePoint` (points given as such stay), in order."""
    items = [points] if isinstance(points, (str, CapturePoint)) else list(points)
    names = [p for p in items if not isinstance(p, CapturePoint)]
    resolved = iter(resolve_points(handle, names) if names else [])
    by_name = {p.name: p for p in resolved}
    out: dict[str, CapturePoint] = {}
    for p in items:
        point = p if isinstance(p, CapturePoint) else by_name[p]
        out.setdefault(point.name, point)
    return list(out.values())


def same_outputs(features: Mapping[str, np.ndarray]) -> dict[str, tuple[str, ...]]:
    """Group output names whose features are the same, within float32 rounding.

    An alias and the module behind it, or a global average pool and the feature map it pools,
    give the same vectors, up to the order of a float sum.

    Parameters
    ----------
    features : Mapping of str to numpy.ndarray
        ``(N, D)`` features by output name, in capture order.

    Returns
    -------
    dict of str to tuple of str
        For the first name of each group of two or more, the later names of the group.
    """
    names = list(features)
    taken: set[str] = set()
    groups: dict[str, tuple[str, ...]] = {}
    for i, first in enumerate(names):
        if first in taken:
            continue
        same = tuple(
            other
            for other in names[i + 1 :]
            if other not in taken and _same(features[first], features[other])
        )
        if same:
            groups[first] = same
            taken.update(same)
    return groups


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = float(np.max(np.abs(a[: min(len(a), 64)]), initial=0.0)) or 1.0
    head = slice(0, min(len(a), 64))  # most different outputs differ in the first rows already
    if not np.allclose(a[head], b[head], rtol=1e-4, atol=1e-5 * scale):
        return False
    return bool(np.allclose(a, b, rtol=1e-4, atol=1e-5 * scale))
