"""Watch classes separate during training: embedding maps, their metrics and feature maps.

:class:`Monitor` is called from a plain PyTorch loop (``monitor.step(epoch)`` at the end of each
epoch); :class:`FeatscopeCallback` does the same from a PyTorch Lightning ``Trainer``. Every
``every`` epochs they run the stages of :func:`featscope.tsne` on a fixed set of samples
(:func:`featscope.capture.extract_feature_sets`, :func:`featscope.analysis.map_feature_sets`;
PCA by default: fast, and comparable from epoch to epoch) and log, with the epoch as the step:

* the map as a figure (TensorBoard image ``<method>/<point>``, W&B image of the same key);
* its quality metrics as scalars (``<point>/knn_accuracy_map``, ``<point>/trustworthiness``, ...);
* the features and the map to the embedding views (TensorBoard projector, W&B table);
* optionally feature maps of a few samples (``featmap/<image>_<point>``).

The run folder ``<work_dir>/monitor_<timestamp>/`` receives the same figures (one file per
epoch), the coordinates (``coords_<point>_e<epoch>.csv``, the columns of a tsne run) and
``scalars.jsonl``; it is a hidden ``.partial`` folder until :meth:`Monitor.close` (kept, without
a manifest, if training fails). This is what MMEngine's ``LoggerHook`` and ``VisualizationHook``
do for OpenMMLab models, for any ``torch.nn.Module``. Monitoring leaves the training as it was:
the model's train/eval mode, its device and the global torch random state are restored.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions, Extraction, Figures, Output, Preprocess, Selection
from featscope.results import MonitorStep
from featscope.sinks.layout import safe_stem
from featscope.sinks.open import make_mirrors, open_run

__all__ = ["Monitor", "MonitorStep"]

logger = logging.getLogger(__name__)

#: What a Monitor uses when a group is not given: PCA maps, 50 samples per class, a legend.
MONITOR_EMBEDDING = EmbeddingOptions(method="pca")
MONITOR_SELECTION = Selection(max_num_samples=50)
MONITOR_FIGURES = Figures(dpi=100, legend=True)
MONITOR_OUTPUT = Output(backends=("tensorboard",))


def _check_every(every: Any) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ParameterError(f"`every` must be a positive integer (epochs); got {every!r}")
    return every


class Monitor:
    """Log embedding maps (and feature maps) of a model while it trains.

    Parameters
    ----------
    model : torch.nn.Module or ModelHandle
        The model being trained (used in place: never copied, moved or left in eval mode).
    data : str, path or ImageSamples, optional
        The samples to map, as for :func:`featscope.tsne` (default ``"demo:digits"``); the same
        ones at every step, so maps of successive epochs are comparable.
    points : sequence of str, optional
        Capture points (module paths or aliases); default ``("pre_logits",)``.
    every : int, default 1
        Log at epochs ``every - 1``, ``2 * every - 1``, ... (0-based; MMEngine's ``interval``).
    embedding : EmbeddingOptions, optional
        The map; default ``EmbeddingOptions(method="pca")`` (t-SNE separates classes more but
        takes seconds).
    selection : Selection, optional
        Classes, samples per class and seed; default ``Selection(max_num_samples=50)``.
    preprocess : Preprocess, optional
        Input size and normalisation (needed for a plain module whose input is not 224 x 224
        ImageNet-normalised).
    extraction : Extraction, optional
        Default: on the model's device, in the main process, without progress bars.
    figures : Figures, optional
        Default ``Figures(dpi=100, legend=True)``.
    output : Output, optional
        Work dir, backends (default ``("tensorboard",)``), run name, backend options.
    featmaps : sequence of str, optional
        Capture points whose feature maps are drawn for ``featmap_images`` samples.
    featmap_images : int, default 2
        How many samples (the first of the monitored ones) get feature maps.
    embeddings : bool, default True
        Log features and maps to the embedding views (TensorBoard projector, W&B table).
    thumbnails : int, default 32
        Side of the sample thumbnails in the projector sprite and the W&B table; 0: none.

    Raises
    ------
    ParameterError
        For a bad ``every`` or ``thumbnails``.
    CaptureError
        For an unknown capture point (before any image is read).
    MissingExtraError
        When a backend's package is not installed.

    Examples
    --------
    >>> monitor = featscope.Monitor(model, "data/val", points=["layer4"], every=5,
    ...                             preprocess=Preprocess(input_size=(64, 64)))  # doctest: +SKIP
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
        embedding: EmbeddingOptions | None = None,
        selection: Selection | None = None,
        preprocess: Preprocess | None = None,
        extraction: Extraction | None = None,
        figures: Figures | None = None,
        output: Output | None = None,
        featmaps: Sequence[str] | None = None,
        featmap_images: int = 2,
        embeddings: bool = True,
        thumbnails: int = 32,
    ) -> None:
        from featscope.capture import resolve_points
        from featscope.capture.training import module_device, training_state
        from featscope.data import load_samples, select_samples
        from featscope.models import load_model
        from featscope.models.handle import ModelHandle

        self.every = _check_every(every)
        if isinstance(thumbnails, bool) or not isinstance(thumbnails, int) or thumbnails < 0:
            raise ParameterError(
                f"`thumbnails` is the thumbnail side in pixels (0: none); got {thumbnails!r}"
            )
        self.embedding, self.selection = (
            embedding or MONITOR_EMBEDDING,
            selection or MONITOR_SELECTION,
        )
        self.figures, self.output = figures or MONITOR_FIGURES, output or MONITOR_OUTPUT
        self.embeddings, self.featmap_points = bool(embeddings), list(featmaps or [])
        module = model.module if isinstance(model, ModelHandle) else model
        device = str(module_device(module))  # the model stays where training put it
        self.extraction = extraction or Extraction(device=device, num_workers=0, progress=False)
        with training_state(module):
            self.handle = load_model(model, device=device, **(preprocess or Preprocess()).to_dict())
        self.points = resolve_points(self.handle, list(points or ("pre_logits",)))
        if self.featmap_points:
            resolve_points(self.handle, self.featmap_points)  # fail now, not at the first epoch
        self.samples = select_samples(load_samples(data), self.selection)
        self.thumbnails = None
        if thumbnails and self.embeddings:
            from featscope.data.thumbnails import sample_thumbnails

            self.thumbnails = sample_thumbnails(self.samples, size=max(8, thumbnails))[0]
        count = max(1, min(int(featmap_images), len(self.samples)))
        self.featmap_samples = self.samples.subset(list(range(count)))
        # Backends and their extras are checked now, not at the first epoch: a missing package
        # must fail before training starts. Nothing is written until the first step.
        make_mirrors(self.output)
        self._calls, self._run, self._closed = 0, None, False
        self.history: list[MonitorStep] = []

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
        import numpy as np

        from featscope.analysis import map_feature_sets
        from featscope.capture import extract_feature_sets
        from featscope.capture.training import training_state

        if self._closed:
            raise ParameterError("this Monitor is closed; make a new one to log again")
        epoch = self._calls if epoch is None else epoch
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ParameterError(f"`epoch` must be an integer >= 0; got {epoch!r}")
        epoch, self._calls = int(epoch), self._calls + 1
        if not force and (epoch + 1) % self.every != 0:
            return None
        run = self._open()
        seed, device = self.selection.seed, self.extraction.device
        with training_state(self.handle.module):
            extracted = extract_feature_sets(
                self.handle, self.samples, self.points, self.extraction, seed=seed
            )
            results = map_feature_sets(
                extracted.feature_sets, self.embedding, seed=seed, device=device
            )
            featmaps = self._featmaps() if self.featmap_points else ()
        if run is not None:
            run.step = epoch
            self._log(run, epoch, extracted, results, featmaps)
        step = MonitorStep(epoch=epoch, results=results, featmaps=tuple(featmaps))
        self.history.append(step)
        logger.info("epoch %d: %s", epoch, step.metrics)
        return step

    __call__ = step  # monitor(epoch) is monitor.step(epoch)

    def _open(self) -> Any:
        if self._run is None and self.output.work_dir is not None:
            self._run = open_run(replace(self.output, keep_failed=True), "monitor").open()
            about = {"model": self.handle.spec, "source": self.samples.source}
            about.update(n_samples=len(self.samples), points=[p.name for p in self.points])
            about.update(method=self.embedding.method, every=self.every, seed=self.selection.seed)
            self._run.add_metadata("monitor", {**about, "featmaps": self.featmap_points})
        return self._run

    def _featmaps(self) -> tuple[Any, ...]:
        from featscope.views.featmap import feature_maps

        done = feature_maps(
            self.featmap_samples,
            self.handle,
            self.featmap_points,
            extraction=self.extraction,
            output=Output(work_dir=None),
        )
        return tuple(done.maps)

    def _log(self, run: Any, epoch: int, extracted: Any, results: Any, featmaps: Any) -> None:
        from featscope.analysis.metrics import COUNT_METRICS
        from featscope.render import plot_embedding, png_bytes
        from featscope.sinks.writers import write_coords

        suffix, method, fig = f"e{epoch:04d}", self.embedding.method, self.figures
        # an unreadable image changes the rows: thumbnails would no longer match them
        read_all = len(extracted.samples) == len(self.samples)
        for fs, result in zip(extracted.feature_sets, results, strict=True):
            stem = safe_stem(result.point)
            ax = plot_embedding(
                result, legend=fig.legend, annotate=fig.annotate, point_size=fig.point_size
            )
            run.write_figure(
                ax.figure, f"{method}_{stem}_{suffix}", formats=fig.formats, dpi=fig.dpi,
                tag=f"{method}/{result.point}",
            )  # fmt: skip
            # the tsne view's table, one per epoch; not a manifest result (epochs would crowd it)
            write_coords(run, result, f"{stem}_{suffix}")
            measured = {k: v for k, v in result.metrics.items() if k not in COUNT_METRICS}
            run.log_metrics(measured, prefix=f"{result.point}/")
            if self.embeddings:
                thumbs = self.thumbnails if read_all else None
                run.log_embedding(fs, result, thumbs, tag=result.point)
        for fmap in featmaps:
            stem = safe_stem(f"{fmap.image_id}_{fmap.name}")
            picture = png_bytes(fmap.drawn)
            run.write_bytes(f"featmap_{stem}_{suffix}.png", picture, tag=f"featmap/{stem}")

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
            The other :class:`Monitor` arguments (``output``, ``embedding``, ``preprocess``,
            ``featmaps``, ...).

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
            self.data, self.points, self.every = data, points, _check_every(every)
            self.on, self.monitor_kwargs = on, monitor_kwargs
            self.monitor: Monitor | None = None

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.is_global_zero and self.monitor is None:
                self.monitor = Monitor(
                    pl_module, self.data, self.points, every=self.every, **self.monitor_kwargs
                )

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on == "train" and self.monitor is not None:
                self.monitor.step(int(trainer.current_epoch))

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.on == "validation" and not trainer.sanity_checking and self.monitor:
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
