"""A classifier's outputs on a set of images, for the views that decide from them (shape bias).

:func:`extract_logits` is the batched extraction at the ``logits`` point with the options of an
:class:`~featscope.options.Extraction` group. :func:`probe_logits` runs the first few images
only, quietly, so that a view can check the model's outputs (how many, how wide) before the long
pass and before it writes anything.
"""

from __future__ import annotations

import dataclasses
import warnings

from featscope.capture.extract import ExtractionResult, extract_features
from featscope.data.samples import ImageSamples
from featscope.models.handle import ModelHandle
from featscope.options import Extraction

__all__ = ["PROBE_SIZE", "extract_logits", "probe_logits"]

#: Images of a probe: a few, so that one unreadable image skipped with ``skip_bad_images`` does
#: not leave it empty.
PROBE_SIZE = 8


def extract_logits(
    handle: ModelHandle, samples: ImageSamples, extraction: Extraction | None = None
) -> ExtractionResult:
    """Run the model over the samples and return its outputs at the ``logits`` point.

    Parameters
    ----------
    handle : ModelHandle
        The classifier.
    samples : ImageSamples
        The images, in order.
    extraction : Extraction, optional
        Device, precision (``amp``), batch size, workers, progress bar and ``skip_bad_images``;
        its cache folder and processes are not used. Default: ``Extraction()``.

    Returns
    -------
    ExtractionResult
        ``features`` holds one ``(N, C)`` array per output of the model (one for a plain
        classifier); ``kept`` the positions of the images read.

    Raises
    ------
    FeatscopeError
        As :func:`featscope.capture.extract_features` (a model without a ``logits`` point,
        unreadable images without ``skip_bad_images``).
    """
    extraction = Extraction() if extraction is None else extraction
    return extract_features(
        handle,
        samples,
        "logits",
        batch_size=extraction.batch_size,
        device=extraction.device,
        num_workers=extraction.num_workers,
        progress=extraction.progress,
        skip_bad_images=extraction.skip_bad_images,
        amp=extraction.amp,
        fold_batchnorm=extraction.fold_bn,
    )


def probe_logits(
    handle: ModelHandle,
    samples: ImageSamples,
    extraction: Extraction | None = None,
    size: int = PROBE_SIZE,
) -> ExtractionResult:
    """Run the model on the first ``size`` samples, in one batch, without progress or warnings.

    A view checks what comes back (e.g. that the outputs map to its classes) before the long
    pass, so that a wrong model fails in seconds and before a run folder is made.

    Parameters
    ----------
    handle : ModelHandle
        The classifier.
    samples : ImageSamples
        The images; only the first ``size`` are read.
    extraction : Extraction, optional
        As for :func:`extract_logits`; batch size and progress bar are those of the probe.
    size : int, default 8
        How many images.

    Returns
    -------
    ExtractionResult
        As :func:`extract_logits`, for the first images.

    Raises
    ------
    FeatscopeError
        As :func:`extract_logits`; images skipped with ``skip_bad_images`` are not reported
        here (the full pass reports them).
    """
    extraction = Extraction() if extraction is None else extraction
    head = samples.subset(range(min(len(samples), size)))
    quiet = dataclasses.replace(extraction, batch_size=size, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped images are reported by the full pass
        return extract_logits(handle, head, quiet)
