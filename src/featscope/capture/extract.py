"""The batched extraction loop: images in, one pooled feature matrix per capture point out.

Images are read and preprocessed by a ``DataLoader`` (in worker processes for large sets), the
model runs under :func:`featscope.capture.hooks.capture` and ``torch.inference_mode()``, every
captured output is pooled per batch on the device, and only the ``(batch, D)`` vectors travel to
the CPU, into arrays allocated once. Samples are never shuffled: the same samples give the same
features.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from featscope.capture.hooks import capture
from featscope.capture.points import CapturePoint
from featscope.capture.pooling import flatten_outputs, pool
from featscope.data.samples import ImageSamples
from featscope.errors import CaptureError, DataError, FeatscopeError, ParameterError
from featscope.models import resolve_device
from featscope.models.handle import ModelHandle
from featscope.results import FeatureSet, Provenance

__all__ = ["ExtractionResult", "extract_features"]

logger = logging.getLogger(__name__)

#: Input pixels per batch on a CPU (:func:`default_batch_size`): 8 images at 224 px.
_CPU_BATCH_PIXELS = 2**19
#: Below this many samples, worker processes cost more to start than they save.
_MIN_SAMPLES_FOR_WORKERS = 256
_SKIP_HINT = "pass --skip-bad-images (skip_bad_images=True) to skip unreadable images"


@dataclass(frozen=True)
class ExtractionResult:
    """Pooled features of the samples that could be read, per captured tensor.

    Attributes
    ----------
    features : dict of str to numpy.ndarray
        ``(len(kept), D)`` float32 per output name: the point name, or ``<point>.<i>`` /
        ``<point>.<key>`` for the elements of tuple/dict outputs. Rows follow ``kept``.
    pooling : dict of str to str
        The pooling rule used for each output name (``"none"``, ``"global_avg"``,
        ``"cls_token"``, ``"token_mean"``).
    kept : numpy.ndarray
        ``(len(kept),)`` int64 positions, in the samples, of the rows of ``features``.
    skipped : tuple of (str, str)
        ``(sample id, reason)`` of every image that could not be read (only with
        ``skip_bad_images=True``).
    settings : dict
        How the model ran, as decided for this extraction: ``device``, ``batch_size``,
        ``precision`` (``"float32"``, ``"bfloat16"``, ``"float16"``), ``channels_last`` and
        ``folded_batchnorms`` (how many were folded). Empty for a finished store reused as it is.
    """

    features: dict[str, np.ndarray]
    pooling: dict[str, str]
    kept: np.ndarray
    skipped: tuple[tuple[str, str], ...] = field(default=())
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """The output names, in capture order."""
        return tuple(self.features)

    def feature_sets(
        self,
        samples: ImageSamples,
        provenance: Provenance,
        *,
        logits: np.ndarray | None = None,
        aliases: Mapping[str, tuple[str, ...]] | None = None,
    ) -> list[FeatureSet]:
        """Return one :class:`FeatureSet` per output name, labelled from the kept samples.

        Parameters
        ----------
        samples : ImageSamples
            The samples the features were extracted from (all of them; the kept rows are
            picked here); their metadata columns become each set's ``fields``.
        provenance : Provenance
            Where the features come from.
        logits : numpy.ndarray, optional
            ``(len(kept), C)`` classifier outputs of the same pass, given to every set.
        aliases : Mapping of str to tuple of str, optional
            For an output name, the other names whose features were the same.

        Returns
        -------
        list of FeatureSet
            In capture order.
        """
        kept = samples.subset(self.kept)
        aliases = aliases or {}
        return [
            FeatureSet(
                features=array,
                labels=kept.labels,
                class_names=kept.class_names,
                ids=kept.ids,
                point=name,
                pooling=self.pooling[name],
                provenance=provenance,
                fields=kept.metadata,
                logits=logits,
                aliases=aliases.get(name, ()),
            )
            for name, array in self.features.items()
        ]


class _SampleDataset(torch.utils.data.Dataset):
    """Sample ``i`` as ``(i, tensor, None)``, or ``(i, None, error)`` when it cannot be read.

    Errors travel as values rather than exceptions so that a worker process reports them as the
    same one-line :class:`FeatscopeError` a single process would, not wrapped in a traceback.
    """

    def __init__(self, samples: ImageSamples, preprocess: Any) -> None:
        self.samples = samples
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, FeatscopeError | None]:
        try:
            if self.samples.prepared:  # the user's own transform made the model input already
                return i, torch.as_tensor(self.samples.load_prepared(i)), None
            image = self.samples.load(i)
            if image.mode != "RGB":  # loaders promise RGB; a stray "L" or "RGBA" costs nothing
                image = image.convert("RGB")
            return i, self.preprocess(image), None
        except FeatscopeError as exc:
            return i, None, exc


def _collate(
    items: list[tuple[int, torch.Tensor | None, FeatscopeError | None]],
) -> tuple[torch.Tensor, torch.Tensor | None, list[tuple[int, FeatscopeError]]]:
    """Stack the readable samples of a batch; return the unreadable ones beside them."""
    good = [(i, t) for i, t, err in items if err is None]
    bad = [(i, err) for i, _, err in items if err is not None]
    positions = torch.tensor([i for i, _ in good], dtype=torch.int64)
    images = _stack([t for _, t in good]) if good else None
    return positions, images, bad


def _stack(images: list[torch.Tensor]) -> torch.Tensor:
    """Stack ``(C, H, W)`` images; laid out channels-last, they stay so (no copy to NCHW).

    featscope's preprocessing leaves each image in its pixels' (H, W, C) order, the layout a
    convolutional network runs fastest on a CPU; ``torch.stack`` would copy them into NCHW,
    and the batch would be copied back before the forward.
    """
    if all(t.ndim == 3 and t.permute(1, 2, 0).is_contiguous() for t in images):
        return torch.stack([t.permute(1, 2, 0) for t in images]).permute(0, 3, 1, 2)
    return torch.stack(images)


def _default_num_workers(n_samples: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    if n_samples < _MIN_SAMPLES_FOR_WORKERS or cpus < 3:
        return 0
    # leave one core to the main process, which runs the model and pools
    return min(4, cpus - 1)


def _amp_dtype(amp: bool | str | None, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype of ``amp`` on ``device`` (None: float32 throughout).

    "auto" is half precision on CUDA, where it roughly doubles the throughput of convolutional
    and transformer models; on a CPU it is decided per model by :func:`_auto_cpu_dtype` (None
    here).
    """
    if amp is False or amp is None or amp == "off":
        return None
    choices = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16}
    choices["float16"] = torch.float16
    if amp is not True and amp != "auto" and amp not in choices:
        raise ParameterError(
            f"`amp` must be 'auto', 'off', 'bf16' or 'fp16' (or True/False); got {amp!r}; "
            "pass one of those"
        )
    if amp in (True, "auto"):
        if device.type != "cuda":
            if amp is True:
                warnings.warn(
                    f"`amp` True picks half precision on CUDA only; running in float32 on "
                    f"{device} (pass amp='bf16' for bfloat16 there)",
                    stacklevel=3,
                )
            return None
        with torch.cuda.device(device):  # the GPU asked for, not the current one
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type not in ("cuda", "cpu"):
        warnings.warn(
            f"`amp` {amp!r} is supported on CUDA and the CPU; running in float32 on {device}",
            stacklevel=3,
        )
        return None
    return choices[amp]


def default_batch_size(handle: ModelHandle, device: str | torch.device) -> int:
    """Return the batch size extraction uses when none is given.

    64 on a GPU. On a CPU, the largest power of two up to 64 that keeps a batch under
    :data:`_CPU_BATCH_PIXELS` input pixels: 8 at 224 px, 2 at 384 px, 64 at 64 px and below.
    Large batches do not run faster on a CPU, and their activations (200 MB for the first
    convolution of ResNet-18 at 224 px and batch 64) leave the caches and are allocated afresh
    by every batch. Measured on 2 cores (docs/benchmarks.md): ResNet-18 at 224 px runs about
    1.15x faster at batch 8 than at 64, ViT-S/16 at 224 px 1.2x, ViT-S/16 at 384 px batch 2
    1.1x faster than 32.

    Parameters
    ----------
    handle : ModelHandle
        The model; its preprocessing gives the input size.
    device : str or torch.device
        Where the model runs.

    Returns
    -------
    int
        The batch size.
    """
    if str(device) != "cpu" and not str(device).startswith("cpu:"):
        return 64
    size = getattr(handle.preprocess, "input_size", None)
    if not size or len(size) != 2:
        return 64
    fits = max(1, _CPU_BATCH_PIXELS // (int(size[0]) * int(size[1])))
    return min(64, 1 << (fits.bit_length() - 1))


def _fold(handle: ModelHandle, tap: Any, probe: Any) -> tuple[ModelHandle, Any, int]:
    """Return the handle and capture to extract with (a folded copy of the model when safe)."""
    from featscope.capture.fold import folded_handle

    folded_model, folded = folded_handle(handle, tap.points, probe)
    if not folded:
        return handle, tap, 0
    logger.info(
        "folded %d BatchNorm layers into the convolutions before them (the same features to "
        "float32 rounding; --no-fold-bn runs the model as it is)",
        len(folded),
    )
    return folded_model, capture(folded_model, tap.points), len(folded)


def _first_images(dataset: _SampleDataset) -> torch.Tensor | None:
    """Return the first readable images of the samples as one batch (None if none)."""
    from featscope.capture.precision import CHECK_IMAGES

    try:
        _, images, _ = _collate([dataset[i] for i in range(min(CHECK_IMAGES, len(dataset)))])
    except RuntimeError:  # prepared tensors of different sizes do not stack: nothing to check
        return None
    return images if images is not None and images.ndim == 4 else None


def _auto_cpu_dtype(
    handle: ModelHandle,
    tap: Any,
    images: torch.Tensor | None,
    dev: torch.device,
    memory_format: torch.memory_format,
) -> torch.dtype | None:
    """``amp="auto"`` on a CPU: bfloat16 where it is native and keeps these features, else None.

    Runs inside the extraction's capture, on the model as placed for the loop.
    """
    from featscope.capture.precision import check_bf16, native_cpu_bf16

    if images is None or not native_cpu_bf16():
        return None
    # the loop's conversion: prepared tensors may come in another floating type
    x = images.to(dev, dtype=torch.float32).contiguous(memory_format=memory_format)

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = _pool_batch(tap.run(batch), len(batch), handle.num_prefix_tokens)
        return {name: vectors for name, (vectors, _rule) in pooled.items()}

    check = check_bf16(run, x)
    logger.info("%s", check.describe())
    return check.dtype


def _model_state(module: Any) -> tuple[torch.device | None, torch.dtype | None]:
    for tensor in _tensors(module):
        return tensor.device, (tensor.dtype if tensor.is_floating_point() else None)
    return None, None


def _tensors(module: Any) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def _floating_dtype(module: Any) -> torch.dtype:
    for tensor in _tensors(module):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _has_conv2d(module: Any) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in module.modules())


@contextlib.contextmanager
def _placed(module: Any, device: torch.device, channels_last: bool) -> Iterator[None]:
    """Move the model to ``device`` (and channels-last) for the loop, and back afterwards.

    featscope never leaves the caller's model changed; moving back costs one copy of the
    weights, which is small next to an extraction.
    """
    original_device, _ = _model_state(module)
    moved = original_device is not None and original_device != device
    converted = False
    if channels_last:
        converted = any(
            p.ndim == 4 and not p.is_contiguous(memory_format=torch.channels_last)
            for p in _tensors(module)
        )
    try:
        if moved:
            module.to(device)
        if converted:
            module.to(memory_format=torch.channels_last)
        yield
    finally:
        if converted:
            module.to(memory_format=torch.contiguous_format)
        if moved:
            module.to(original_device)


class _Accumulator:
    """Pooled batches written into arrays allocated once, at the first batch (in RAM).

    Has the interface of :class:`featscope.capture.store.FeatureStore`, which writes to
    memory-mapped files instead.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self.arrays: dict[str, np.ndarray] = {}
        self.pooling: dict[str, str] = {}
        self.filled = 0
        self.kept: list[np.ndarray] = []
        self.skipped: list[tuple[str, str]] = []
        self.samples_done = 0
        self.complete = False

    def add(self, pooled: Mapping[str, tuple[torch.Tensor, str]], positions: Any) -> None:
        n = len(positions)
        if not self.arrays:
            for name, (vectors, rule) in pooled.items():
                self.arrays[name] = np.empty((self.n_rows, vectors.shape[1]), dtype=np.float32)
                self.pooling[name] = rule
        elif pooled.keys() != self.arrays.keys():
            raise CaptureError(
                f"the captured outputs changed between batches (first {list(self.arrays)}, now "
                f"{list(pooled)}); pick capture points whose output structure does not depend "
                "on the input"
            )
        for name, (vectors, _rule) in pooled.items():
            target = self.arrays[name]
            if vectors.shape[1] != target.shape[1]:
                raise CaptureError(
                    f"output {name!r} has {vectors.shape[1]} features in one batch and "
                    f"{target.shape[1]} in another (inputs of different sizes?); use a fixed "
                    "input size or a point whose width does not depend on the input"
                )
            target[self.filled : self.filled + n] = vectors.cpu().numpy()
        self.filled += n
        self.kept.append(np.asarray(positions, dtype=np.int64))

    def commit(self, consumed: int, skipped: Any = ()) -> None:
        self.skipped.extend(skipped)
        self.samples_done += consumed

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, str], np.ndarray]:
        # rows of skipped images were never written: trim them (a view, not a copy, when none)
        kept = np.concatenate(self.kept) if self.kept else np.zeros(0, dtype=np.int64)
        return {k: v[: self.filled] for k, v in self.arrays.items()}, dict(self.pooling), kept

    def close(self) -> None:
        pass


def _pool_batch(
    values: Mapping[str, Any], n: int, num_prefix_tokens: int
) -> dict[str, tuple[torch.Tensor, str]]:
    pooled: dict[str, tuple[torch.Tensor, str]] = {}
    for point_name, raw in values.items():
        for name, tensor in flatten_outputs(point_name, raw).items():
            if name in pooled:  # "neck" and "neck.0" both asked for: the same tensor
                continue
            if tensor.ndim == 0 or tensor.shape[0] != n:
                raise CaptureError(
                    f"output {name!r} has shape {tuple(tensor.shape)}, which is not batch-first "
                    f"for a batch of {n} images; pick a point (or an element of it) with one "
                    "row per image"
                )
            pooled[name] = pool(tensor, num_prefix_tokens)
    return pooled


def _progress(total: int, enabled: bool) -> Any:
    from featscope.progress import Progress

    # a bar on a terminal or in a notebook; in logs and CI a plain line about every 10 s
    return Progress(total, "extracting features", "img", enabled=enabled)


def extract_features(
    handle: ModelHandle,
    samples: ImageSamples,
    points: str | Iterable[str | CapturePoint],
    *,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    num_workers: int | None = None,
    progress: bool = True,
    skip_bad_images: bool = False,
    channels_last: bool | None = None,
    amp: bool | str = False,
    fold_batchnorm: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    _fingerprint_extra: Mapping[str, Any] | None = None,
) -> ExtractionResult:
    """Run the model over the samples and return pooled features at each capture point.

    Parameters
    ----------
    handle : ModelHandle
        The model, with its preprocessing and capture-point aliases.
    samples : ImageSamples
        The images; read lazily, in order, never shuffled. Prepared samples
        (``samples.prepared``: float ``(C, H, W)`` model inputs) skip ``handle.preprocess``.
    points : str, CapturePoint or iterable of them
        Capture points (aliases or module paths); checked before any image is read.
    batch_size : int or None, default None
        Images per forward pass; None: :func:`default_batch_size`. Results do not depend on
        it (to float rounding).
    device : str or torch.device, default "cpu"
        Where the model runs. The model is moved there for the loop and back afterwards.
    num_workers : int or None, default None
        DataLoader worker processes; ``None`` picks 0 for small sets (< 256 images) or small
        machines (< 3 cores), else ``min(4, cores - 1)``.
    progress : bool, default True
        Show progress: a bar on a terminal or in a notebook, a log line about every 10 s
        otherwise (:class:`featscope.progress.Progress`).
    skip_bad_images : bool, default False
        Record unreadable images in ``skipped`` and go on, instead of failing.
    channels_last : bool or None, default None
        Run in channels-last memory format; ``None`` means on for CPU and CUDA with models
        holding ``Conv2d`` layers (ResNet-18 at 224 px on 2 CPU cores: 28 s instead of 49 s
        for 1,000 images, benchmarks/tsne_job.py).
    amp : {"auto", "off", "bf16", "fp16"} or bool, default False
        Autocast the forward pass to half precision. "auto" (and ``True``) picks bfloat16 on
        CUDA where supported, float16 otherwise; on a CPU with native bfloat16, "auto" runs the
        first images both ways and keeps bfloat16 only when the features agree
        (:mod:`featscope.capture.precision`), else float32; "bf16" / "fp16" apply
        on CUDA and the CPU (torch's CPU autocast), with a warning and float32 on other
        devices. Features are pooled and returned in float32.
    fold_batchnorm : bool, default True
        Run a copy of the model in which every BatchNorm that directly follows a convolution is
        folded into it (:mod:`featscope.capture.fold`), unless one of the pair is a capture
        point; the copy is checked against the model first. The features are the same to
        float32 rounding; ResNet-18 on a CPU runs about 1.15x faster. False runs the model as
        it is.
    cache_dir : path or None, default None
        Write the features batch by batch into memory-mapped ``.npy`` files in this folder
        (:class:`featscope.capture.store.FeatureStore`) instead of RAM: memory stays at about
        one batch, the returned features are read-only memory maps, and a killed extraction can
        be continued with ``resume=True``.
    resume : bool, default False
        Continue the extraction found in ``cache_dir`` from its last complete batch (or reuse
        it when finished); the features are exactly those of an uninterrupted run. Refused when
        the model, data or options differ from the ones the folder was made with.

    Returns
    -------
    ExtractionResult
        Features per output name (rows = ``kept``), pooling rules, kept positions and skipped
        images.

    Raises
    ------
    ParameterError
        For a bad ``batch_size``, ``num_workers``, ``amp`` or ``device`` (e.g. CUDA requested
        on a machine without it).
    CaptureError
        When a point is unknown (before reading images), does not run, or gives an output that
        cannot be pooled.
    DataError
        When there are no samples, when an image cannot be read (unless ``skip_bad_images``),
        or when no image at all could be read.
    OutputError
        When ``cache_dir`` cannot be written or holds something that is not a feature store.
    """
    if batch_size is None:
        batch_size = default_batch_size(handle, device)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(
            f"`batch_size` must be a positive integer; got {batch_size!r}; pass e.g. 64"
        )
    if num_workers is not None and (
        isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0
    ):
        raise ParameterError(
            f"`num_workers` must be an integer >= 0 or None; got {num_workers!r}; "
            "pass 0 to read images in the main process"
        )
    # points first: a typo must fail before a single image is read (hooks come later, in `with`)
    tap = capture(handle, points)
    dev = resolve_device(device)
    autocast_dtype = _amp_dtype(amp, dev)
    if len(samples) == 0:
        raise DataError(
            f"the samples from {samples.source!r} are empty; there is nothing to extract "
            "features from; check the data path and the class selection"
        )
    module = handle.module
    if channels_last is None:
        channels_last = dev.type in ("cpu", "cuda") and _has_conv2d(module)
    if resume and cache_dir is None:
        raise ParameterError(
            "`resume` needs the folder of the extraction to continue; pass --cache-dir DIR "
            "(cache_dir=DIR) together with --resume"
        )
    workers = _default_num_workers(len(samples)) if num_workers is None else num_workers
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    input_dtype = _floating_dtype(module)
    auto_cpu = amp == "auto" and dev.type == "cpu" and input_dtype == torch.float32
    if cache_dir is None:
        sink: Any = _Accumulator(len(samples))
    else:
        from featscope.capture.precision import native_cpu_bf16
        from featscope.capture.store import FeatureStore, fingerprint

        # options, not the checks' outcomes: a finished store is reused without running the
        # model, and the checks decide the same way again on the same model, data and CPU.
        # Stores made before folding existed (unfolded) are refused by "fold_batchnorm".
        auto_bf16 = auto_cpu and native_cpu_bf16()
        stamp = fingerprint(
            handle,
            [p.name for p in tap.points],
            samples,
            source=samples.source,
            batch_size=batch_size,
            skip_bad_images=bool(skip_bad_images),
            amp="auto (bf16 if checked)" if auto_bf16 else str(autocast_dtype),
            channels_last=bool(channels_last),
            device_type=dev.type,
            # recorded only when set, so that stores made before it existed still resume
            **({"prepared": True} if samples.prepared else {}),
            # folded features differ from unfolded ones by float32 rounding: not mixed
            **({"fold_batchnorm": True} if fold_batchnorm else {}),
            **dict(_fingerprint_extra or {}),
        )
        sink = FeatureStore(cache_dir, stamp, batch_size, resume=resume)
        if sink.samples_done:
            logger.info(
                "resuming the extraction in %s after %d complete batches (%d of %d samples)",
                cache_dir,
                sink.batches_done,
                sink.samples_done,
                len(samples),
            )
    start = sink.samples_done
    dataset: Any = _SampleDataset(samples, handle.preprocess)
    running = start < len(samples)  # a finished store needs no model at all
    # a few real images, read once, check the folded copy and bfloat16 against the model
    probe = functools.cache(lambda: _first_images(dataset))
    n_folded = 0
    if running and fold_batchnorm:
        handle, tap, n_folded = _fold(handle, tap, probe)
        module = handle.module
    if start:
        # the same batches as an uninterrupted run: `start` is a whole number of batches
        dataset = torch.utils.data.Subset(dataset, range(start, len(samples)))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
    )
    settings: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if running:
            stack.enter_context(_placed(module, dev, channels_last))
            stack.enter_context(tap)
            if auto_cpu:  # on the model as the loop runs it: placed once
                autocast_dtype = _auto_cpu_dtype(handle, tap, probe(), dev, memory_format)
            settings = {
                "device": str(dev),
                "batch_size": batch_size,
                "precision": str(autocast_dtype or input_dtype).removeprefix("torch."),
                "channels_last": bool(channels_last),
                "folded_batchnorms": n_folded,
            }
        logger.info(
            "extracting %s from %d images of %s on %s (batch %d, %d workers, channels_last=%s, "
            "amp=%s)",
            [p.name for p in tap.points],
            len(samples),
            samples.source,
            dev,
            batch_size,
            workers,
            channels_last,
            autocast_dtype,
        )
        bar = stack.enter_context(_progress(len(samples), progress))
        bar.update(start)
        for positions, images, bad in loader if running else ():
            skipped: list[tuple[str, str]] = []
            for i, err in bad:
                if not skip_bad_images:
                    if isinstance(err, DataError) and "skip-bad-images" not in str(err):
                        raise DataError(f"{err}; {_SKIP_HINT}") from err
                    raise err
                logger.warning("skipping %s: %s", samples.ids[i], err)
                skipped.append((samples.ids[i], str(err)))
            if images is not None:
                x = images.to(dev, dtype=input_dtype, non_blocking=True)
                if x.ndim == 4:
                    x = x.contiguous(memory_format=memory_format)
                autocast = (
                    torch.autocast(device_type=dev.type, dtype=autocast_dtype)
                    if autocast_dtype is not None
                    else contextlib.nullcontext()
                )
                n = len(positions)
                with torch.inference_mode(), autocast:
                    values = tap.run(x)
                    pooled = _pool_batch(values, n, handle.num_prefix_tokens)
                sink.add(pooled, positions.numpy())
            sink.commit(len(positions) + len(bad), skipped)
            bar.update(len(positions) + len(bad))
    features, pooling, kept = sink.result()
    sink.close()
    skipped = sink.skipped
    if not len(kept):
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise DataError(
            f"none of the {len(samples)} images from {samples.source!r} could be read"
            f"{first}; check the files"
        )
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image(s) of {len(samples)} from "
            f"{samples.source!r} (first: {skipped[0][0]})",
            stacklevel=2,
        )
    return ExtractionResult(
        features=features,
        pooling=pooling,
        kept=kept,
        skipped=tuple(skipped),
        settings=settings,
    )
