"""Watch classes separate during training: embedding maps, their metrics and feature maps.

:class:`Monitor` is called from a plain PyTorch loop (``monitor.step(epoch)`` at the end of each
epoch); :class:`FeatscopeCallback` does the same from a PyTorch Lightning ``Trainer``. Every
``every`` epochs they extract features of a fixed set of samples at the capture points, map them
(PCA by default: fast, and comparable from epoch to epoch), and log, with the epoch as the step:

* the map as a figure (TensorBoard image ``<method>/<point>``, W&B image of the same key);
* its quality metrics as scalars (``<point>/knn_accuracy_map``, ``<point>/trustworthiness``, ...);
* the features and the map to the embedding views (TensorBoard projector, W&B table);
* optionally feature maps of a few samples (``featmap/<image>_<point>``).

The run folder ``<work_dir>/monitor_<timestamp>/`` receives the same figures (one file per
epoch), the coordinates (``coords_<point>_e<epoch>.csv``, columns ``id, label, class_name, x,
y`` as in a tsne run) and ``scalars.jsonl``; it is written as a hidden ``.partial`` folder until
:meth:`Monitor.close` (kept, without a manifest, if training fails). This is what MMEngine's
``LoggerHook`` and ``VisualizationHook`` do for OpenMMLab models, for any ``torch.nn.Module``.

Monitoring leaves the training as it was: the model's train/eval mode, its device and the
global torch random state are restored after each step.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featscope.errors import ParameterError
from featscope.views._run import check_backends, open_run

__all__ = ["Monitor", "MonitorStep"]

logger = logging.getLogger(__name__)

_METHODS = ("pca", "tsne", "umap")


@dataclass(frozen=True)
class MonitorStep:
    """What one monitoring step logged.

    Attributes
    ----------
    epoch : int
        The step (epoch) it was logged at.
    results : tuple of EmbeddingResult
        One map per captured output, with its metrics.
    featmaps : tuple of FeatureMap
        The feature maps drawn (empty without ``featmaps``).
    """

    epoch: int
    results: tuple[Any, ...]
    featmaps: tuple[Any, ...] = ()

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Metrics of every map, by capture point."""
        return {r.point: dict(r.metrics) for r in self.results}


@dataclass
class _Plan:
    handle: Any
    samples: Any
    points: list[Any]
    thumbnails: np.ndarray | None
    featmap_samples: Any
    extra: dict[str, Any] = field(default_factory=dict)


class Monitor:
    """Log embedding maps (and feature maps) of a model while it trains.

    Parameters
    ----------
    model : torch.nn.Module or ModelHandle
        The model being trained (used in place: never copied, moved or left in eval mode).
    data : str, path or ImageSamples, optional
        The samples to map, as for :func:`featscope.tsne` (default ``"demo:digits"``). The same
        samples are used at every step, so maps of successive epochs are comparable.
    points : sequence of str, optional
        Capture points (module paths or aliases); default ``("pre_logits",)``.
    every : int, default 1
        Log every ``every`` epochs: at epochs ``every - 1``, ``2 * every - 1``, ... (0-based;
        the MMEngine ``interval`` rule).
    backends : sequence of str, default ("tensorboard",)
        Where to log besides the run folder: ``"tensorboard"``, ``"wandb"``.
    work_dir : str or path, default "work_dirs"
        Parent of the run folder ``monitor_<timestamp>/`` and of the backends' folders.
    max_samples : int, default 500
        About this many samples, spread evenly over the selected classes (seeded).
    method : {"pca", "tsne", "umap"}, default "pca"
        The map. PCA is fast and deterministic; t-SNE separates classes more but takes seconds.
    featmaps : sequence of str, optional
        Capture points whose feature maps are drawn for ``featmap_images`` samples.
    featmap_images : int, default 2
        How many samples (the first of the monitored ones) get feature maps.
    embeddings : bool, default True
        Log features and maps to the embedding views (TensorBoard projector, W&B table).
    thumbnails : int, default 32
        Side of the sample thumbnails in the projector sprite and the W&B table; 0: none.
    class_idx : sequence of int, optional
        Classes to monitor (default: the first ``max_num_class``).
    max_num_class : int, default 20
        Number of classes when ``class_idx`` is not given.
    seed : int, default 0
        Seed of the sample choice and of the map.
    batch_size : int, default 64
        Images per forward pass.
    device : str, optional
        Where features are extracted; default the device of the model's parameters.
    input_size, mean, std : optional
        Override the model's preprocessing (needed for a plain module whose input is not
        224 x 224 ImageNet-normalised).
    name : str, optional
        Run folder name instead of ``monitor_<timestamp>``.
    backend_options : Mapping, optional
        Options per backend (see :func:`featscope.views._run.open_run`), e.g.
        ``{"wandb": {"project": "my-project"}}``.
    dpi : int, default 100
        Resolution of the map figures.
    **method_params
        Parameters of the reducer (``perplexity=20`` for t-SNE, ...).

    Raises
    ------
    ParameterError
        For a bad ``every``, ``method``, ``max_samples`` or backend.
    CaptureError
        For an unknown capture point (before any image is read).
    MissingExtraError
        When a backend's package is not installed.

    Examples
    --------
    >>> monitor = featscope.Monitor(model, "data/val", points=["layer4"], every=5,
    ...                             backends=["tensorboard"], input_size=64)  # doctest: +SKIP
    >>> for epoch in range(epochs):  # doctest: +SKIP
    ...     train_one_epoch(model)
    ...     monitor.step(epoch)
    >>> monitor.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        data: Any = None,
        points: Sequence[str] | None = None,
        *,
        every: int = 1,
        backends: Sequence[str] | None = ("tensorboard",),
        work_dir: str | os.PathLike[str] | None = "work_dirs",
        max_samples: int = 500,
        method: str = "pca",
        featmaps: Sequence[str] | None = None,
        featmap_images: int = 2,
        embeddings: bool = True,
        thumbnails: int = 32,
        class_idx: Sequence[int] | None = None,
        max_num_class: int = 20,
        seed: int = 0,
        batch_size: int = 64,
        device: str | None = None,
        input_size: int | tuple[int, int] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        name: str | None = None,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
        dpi: int = 100,
        **method_params: Any,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ParameterError(f"`every` must be a positive integer (epochs); got {every!r}")
        if method not in _METHODS:
            raise ParameterError(f"`method` must be one of {', '.join(_METHODS)}; got {method!r}")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 4:
            raise ParameterError(
                f"`max_samples` must be an integer >= 4 (a map needs a few points); got "
                f"{max_samples!r}"
            )
        if isinstance(thumbnails, bool) or not isinstance(thumbnails, int) or thumbnails < 0:
            raise ParameterError(
                f"`thumbnails` is the thumbnail side in pixels (0: none); got {thumbnails!r}"
            )
        if work_dir is None and check_backends(backends):
            raise ParameterError(
                "backends log beside the run folder, but work_dir is None; pass a work_dir"
            )
        self.every = every
        self.method = method
        self.method_params = dict(method_params)
        self.embeddings = bool(embeddings)
        self.seed = seed
        self.batch_size = batch_size
        self.dpi = dpi
        self.featmap_points = list(featmaps or [])
        self.work_dir = work_dir
        self._backends = list(backends or [])
        self._run_kwargs = {"name": name, "backend_options": backend_options}
        self._calls = 0
        self._run: Any = None
        self._closed = False
        self.history: list[MonitorStep] = []
        self._plan = self._prepare(
            model,
            data,
            points,
            max_samples=max_samples,
            class_idx=class_idx,
            max_num_class=max_num_class,
            thumbnails=thumbnails,
            featmap_images=featmap_images,
            device=device,
            input_size=input_size,
            mean=mean,
            std=std,
        )
        # Backends and their extras are checked now, not at the first epoch: a missing package
        # must fail before training starts. Nothing is written until the first step.
        from featscope.views._run import make_mirrors

        make_mirrors(self._backends, backend_options)

    # ------------------------------------------------------------------ setup

    def _prepare(
        self,
        model: Any,
        data: Any,
        points: Sequence[str] | None,
        *,
        max_samples: int,
        class_idx: Sequence[int] | None,
        max_num_class: int,
        thumbnails: int,
        featmap_images: int,
        device: str | None,
        input_size: Any,
        mean: Any,
        std: Any,
    ) -> _Plan:
        from featscope.capture import resolve_points
        from featscope.data import load_samples, select_indices
        from featscope.models import load_model
        from featscope.models.handle import ModelHandle

        module = model.module if isinstance(model, ModelHandle) else model
        if device is None:
            device = str(_module_device(module))
        self.device = device
        with _training_state(module):
            handle = load_model(model, input_size=input_size, mean=mean, std=std, device=device)
        capture_points = resolve_points(handle, list(points or ("pre_logits",)))
        if self.featmap_points:
            resolve_points(handle, self.featmap_points)  # fail now, not at the first epoch
        samples = load_samples(data)
        present = np.unique(samples.labels)
        if class_idx is not None:
            n_classes = len(set(class_idx))
        elif max_num_class and max_num_class > 0:
            n_classes = min(max_num_class, len(present))
        else:
            n_classes = len(present)
        per_class = max(1, max_samples // max(1, n_classes))
        keep = select_indices(
            samples.labels,
            len(samples.class_names),
            class_idx=class_idx,
            max_num_class=max_num_class,
            max_num_samples=per_class,
            seed=self.seed,
            source=samples.source,
        )
        samples = samples.subset(keep)
        thumbs = None
        if thumbnails and self.embeddings:
            from featscope.data.thumbnails import make_thumbnails

            thumbs = make_thumbnails(samples, None, size=max(8, thumbnails))
        featmap_samples = None
        if self.featmap_points:
            count = max(1, min(int(featmap_images), len(samples)))
            featmap_samples = samples.subset(np.arange(count))
        logger.info(
            "monitor %d samples of %d classes from %s at %s",
            len(samples),
            len(np.unique(samples.labels)),
            samples.source,
            ", ".join(p.name for p in capture_points),
        )
        return _Plan(handle, samples, capture_points, thumbs, featmap_samples)

    # ------------------------------------------------------------------ logging

    def __call__(self, epoch: int | None = None, *, force: bool = False) -> MonitorStep | None:
        """Log for ``epoch`` if it is a logging epoch (the same as :meth:`step`)."""
        return self.step(epoch, force=force)

    def step(self, epoch: int | None = None, *, force: bool = False) -> MonitorStep | None:
        """Log the maps for ``epoch`` if it is a logging epoch (see ``every``).

        Parameters
        ----------
        epoch : int, optional
            The 0-based epoch just finished; default: the number of earlier calls.
        force : bool, default False
            Log whatever the epoch.

        Returns
        -------
        MonitorStep or None
            What was logged, or None when this epoch is skipped.

        Raises
        ------
        ParameterError
            For a negative epoch, or after :meth:`close`.
        """
        if self._closed:
            raise ParameterError("this Monitor is closed; make a new one to log again")
        if epoch is None:
            epoch = self._calls
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ParameterError(f"`epoch` must be an integer >= 0; got {epoch!r}")
        epoch = int(epoch)
        self._calls += 1
        if not force and (epoch + 1) % self.every != 0:
            return None
        run = self._open()
        plan = self._plan
        with _training_state(plan.handle.module):
            results, sets = self._maps()
            featmaps = self._featmaps() if self.featmap_points else ()
        if run is not None:
            run.step = epoch
            self._log(run, epoch, results, sets, featmaps)
        step = MonitorStep(epoch=epoch, results=tuple(results), featmaps=tuple(featmaps))
        self.history.append(step)
        logger.info("epoch %d: %s", epoch, step.metrics)
        return step

    def _open(self) -> Any:
        if self._run is None and self.work_dir is not None:
            run = open_run(
                self.work_dir, "monitor", self._backends, keep_failed=True, **self._run_kwargs
            )
            self._run = run.open()
            self._run.add_metadata(
                "monitor",
                {
                    "model": self._plan.handle.spec,
                    "source": self._plan.samples.source,
                    "n_samples": len(self._plan.samples),
                    "points": [p.name for p in self._plan.points],
                    "method": self.method,
                    "every": self.every,
                    "featmaps": self.featmap_points,
                    "seed": self.seed,
                },
            )
        return self._run

    def _maps(self) -> tuple[list[Any], list[Any]]:
        from featscope.analysis import embed
        from featscope.capture import extract_features
        from featscope.results import Provenance

        plan = self._plan
        out = extract_features(
            plan.handle,
            plan.samples,
            plan.points,
            batch_size=self.batch_size,
            device=self.device,
            num_workers=0,
            progress=False,
        )
        kept = plan.samples.subset(out.kept)
        provenance = Provenance(model=plan.handle.spec, source=kept.source, seed=self.seed)
        params = {"n_components": 2, "random_state": self.seed, **self.method_params}
        sets = out.feature_sets(plan.samples, provenance)
        results = [embed(fs, method=self.method, **params) for fs in sets]
        return results, sets

    def _featmaps(self) -> tuple[Any, ...]:
        from featscope.options import Extraction, Output
        from featscope.views.featmap import feature_maps

        done = feature_maps(
            self._plan.featmap_samples,
            self._plan.handle,
            self.featmap_points,
            extraction=Extraction(device=self.device),
            output=Output(work_dir=None),
        )
        return tuple(done.maps)

    def _log(self, run: Any, epoch: int, results: list, sets: list, featmaps: tuple) -> None:
        from featscope.render import plot_embedding
        from featscope.sinks.layout import safe_stem
        from featscope.sinks.manifest import COUNT_KEYS
        from featscope.sinks.writers import write_coords

        suffix = f"e{epoch:04d}"
        for fs, result in zip(sets, results, strict=True):
            stem = safe_stem(result.point)
            ax = plot_embedding(result, legend=len(result.class_names) <= 20)
            run.write_figure(
                ax.figure,
                f"{self.method}_{stem}_{suffix}",
                dpi=self.dpi,
                tag=f"{self.method}/{result.point}",
            )
            # the tsne view's table, one per epoch; not a manifest result (epochs would crowd it)
            write_coords(run, result, f"{stem}_{suffix}")
            measured = {k: v for k, v in result.metrics.items() if k not in COUNT_KEYS}
            run.log_metrics(measured, prefix=f"{result.point}/")
            if self.embeddings:
                thumbs = self._plan.thumbnails
                if thumbs is not None and len(thumbs) != len(fs):
                    thumbs = None  # an image could not be read: sample order no longer matches
                run.log_embedding(fs, result, thumbs, tag=result.point)
        for fmap in featmaps:
            stem = safe_stem(f"{fmap.image_id}_{fmap.name}")
            run.write_bytes(f"featmap_{stem}_{suffix}.png", _png(fmap.drawn), tag=f"featmap/{stem}")

    # ------------------------------------------------------------------ end

    @property
    def run_dir(self) -> Path | None:
        """The run folder: hidden ``.partial`` while open, the final one after :meth:`close`."""
        return None if self._run is None else self._run.path

    def close(self) -> Path | None:
        """Finish the run folder (manifest, rename) and close the backends.

        Returns
        -------
        pathlib.Path or None
            The finished run folder; None when nothing was logged or ``work_dir`` is None.
        """
        self._closed = True
        run = self._run
        if run is None or run.state == "failed":
            return None
        return run.final_path if run.finished else run.finish()

    def abort(self, exc: BaseException | None = None) -> None:
        """End a failed run: backends closed as failed, the partial folder kept for inspection.

        Parameters
        ----------
        exc : BaseException, optional
            The error that ended training, recorded in ``run.log``.
        """
        self._closed = True
        if self._run is not None:
            self._run.abort(exc)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


# --------------------------------------------------------------------------- helpers


def _module_device(module: Any) -> Any:
    import torch

    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def _training_state(module: Any) -> Iterator[None]:
    """Restore the module's train/eval mode of every submodule and torch's random state."""
    import torch

    modes = [(m, m.training) for m in module.modules()]
    cpu_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        for submodule, mode in modes:
            submodule.training = mode
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _png(picture: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- Lightning


@functools.cache
def _callback_class() -> type:
    """Build the Lightning callback class on first use (Lightning is an optional extra)."""
    try:
        from lightning.pytorch import Callback
    except ImportError:
        try:
            from pytorch_lightning import Callback
        except ImportError:
            from featscope._optional import require

            require("lightning", "lightning", "the Lightning callback")
            raise  # pragma: no cover - require raised already

    class FeatscopeCallback(Callback):  # type: ignore[misc, valid-type]
        """A PyTorch Lightning callback running a :class:`Monitor` on the LightningModule.

        Parameters
        ----------
        data : str, path or ImageSamples, optional
            The samples to map (see :class:`Monitor`).
        points : sequence of str, optional
            Capture points, module paths inside the LightningModule (``"net.layer4"``).
        every : int, default 1
            Log every ``every`` epochs.
        on : {"train", "validation"}, default "train"
            Log at the end of the training epoch, or of the validation epoch (sanity checks
            skipped).
        **monitor_kwargs
            The other :class:`Monitor` arguments (``backends``, ``work_dir``, ``method``,
            ``featmaps``, ``input_size``, ...).

        Attributes
        ----------
        monitor : Monitor or None
            Made when fitting starts (on the global-zero process only).
        """

        def __init__(
            self,
            data: Any = None,
            points: Sequence[str] | None = None,
            *,
            every: int = 1,
            on: str = "train",
            **monitor_kwargs: Any,
        ) -> None:
            super().__init__()
            if on not in ("train", "validation"):
                raise ParameterError(f"`on` must be 'train' or 'validation'; got {on!r}")
            if isinstance(every, bool) or not isinstance(every, int) or every < 1:
                raise ParameterError(f"`every` must be a positive integer (epochs); got {every!r}")
            self.data = data
            self.points = points
            self.every = every
            self.on = on
            self.monitor_kwargs = monitor_kwargs
            self.monitor: Monitor | None = None

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.is_global_zero and self.monitor is None:
                self.monitor = Monitor(
                    pl_module, self.data, self.points, every=self.every, **self.monitor_kwargs
                )

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on == "train":
                self._step(trainer)

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on == "validation" and not trainer.sanity_checking:
                self._step(trainer)

        def _step(self, trainer: Any) -> None:
            if self.monitor is not None:
                self.monitor.step(int(trainer.current_epoch))

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            if self.monitor is not None:
                self.monitor.close()

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            if self.monitor is not None:
                self.monitor.abort(exception)

    # Named as the module attribute that returns it, so pickle finds it by reference.
    FeatscopeCallback.__module__ = __name__
    FeatscopeCallback.__qualname__ = "FeatscopeCallback"
    return FeatscopeCallback


def __getattr__(name: str) -> Any:
    # `from featscope.views.monitor import FeatscopeCallback` imports Lightning only then.
    if name == "FeatscopeCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
