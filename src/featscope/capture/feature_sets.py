"""One call from a model and its samples to labelled feature sets, as every embedding view needs.

:func:`extract_feature_sets` is the capture step shared by :func:`featscope.tsne` and
:class:`featscope.Monitor`: the batched extraction (:func:`featscope.capture.extract_features`),
sharded over torchrun's processes when asked, then one :class:`~featscope.results.FeatureSet`
per captured output with the samples' labels, ids and the run's provenance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from featscope.capture.points import CapturePoint
from featscope.data.samples import ImageSamples
from featscope.errors import DataError
from featscope.models.handle import ModelHandle
from featscope.options import Extraction
from featscope.results import FeatureSet

__all__ = ["FeatureExtraction", "extract_feature_sets"]


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
    """

    feature_sets: tuple[FeatureSet, ...]
    samples: ImageSamples
    skipped: tuple[tuple[str, str], ...] = ()


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
    from featscope.capture.extract import extract_features

    extraction = Extraction() if extraction is None else extraction
    rank, world = distributed_world() if distributed else (0, 1)
    options = {
        "batch_size": extraction.batch_size,
        "num_workers": extraction.num_workers,
        "progress": extraction.progress and rank == 0,
        "skip_bad_images": extraction.skip_bad_images,
        "cache_dir": extraction.cache_dir,
        "resume": extraction.resume,
        "amp": extraction.amp,
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
    provenance = handle.provenance(samples.source, seed=seed)
    sets = tuple(out.feature_sets(samples, provenance))
    if not sets or len(out.kept) == 0:
        raise DataError(f"no sample of {samples.source!r} could be read; nothing to map")
    return FeatureExtraction(sets, samples.subset(out.kept), tuple(out.skipped))
