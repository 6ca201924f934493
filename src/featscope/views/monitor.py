"""Watch classes separate during training: embedding maps, their metrics and feature maps.

:class:`Monitor` is called from a plain PyTorch loop (``monitor.step(epoch)`` at the end of each
epoch); :class:`featscope.lightning.FeatscopeCallback` does the same from a PyTorch Lightning
``Trainer``. Every ``every`` epochs they run the stages of :func:`featscope.tsne` on a fixed set
of samples (:func:`featscope.capture.extract_feature_sets`,
:func:`featscope.analysis.map_feature_sets`; PCA by default: fast, and comparable from epoch to
epoch) and log, with the epoch as the step (:func:`featscope.sinks.monitor.write_monitor_step`):

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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions, Extraction, Figures, Output, Preprocess, Selection
from featscope.results import MonitorStep
from featscope.sinks.open import make_mirrors, open_run

__all__ = ["Monitor", "MonitorStep"]

logger = logging.getLogger(__name__)

#: What a Monitor uses when a group is not given: PCA maps, 50 samples per class, a legend.
MONITOR_EMBEDDING = EmbeddingOptions(method="pca")
MONITOR_SELECTION = Selection(max_num_samples=50)
MONITOR_FIGURES = Figures(dpi=100, legend=True)
MONITOR_OUTPUT = Output(backends=("tensorboard",))


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
        Default: on the model's device, in the main process, without progress bars. A group
        left at the default device runs on the model's device too.
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
        from featscope.capture.training import (
            check_every,
            check_monitoring,
            module_device,
            training_state,
        )
        from featscope.data import load_samples, select_samples
        from featscope.data.thumbnails import check_thumbnail_side, sample_thumbnails
        from featscope.models import load_model
        from featscope.models.handle import ModelHandle

        self.every, thumbnails = check_every(every), check_thumbnail_side(thumbnails)
        self.embedding = embedding or MONITOR_EMBEDDING
        self.selection = selection or MONITOR_SELECTION
        self.figures, self.output = figures or MONITOR_FIGURES, output or MONITOR_OUTPUT
        self.embeddings, self.featmap_points = bool(embeddings), list(featmaps or [])
        module = model.module if isinstance(model, ModelHandle) else model
        device = str(module_device(module))  # the model stays where training put it
        # the model stays where training put it, and extraction runs there: an Extraction left at
        # the default device ("cpu") would move a model training on a GPU back and forth
        if extraction is None:
            extraction = Extraction(device=device, num_workers=0, progress=False)
        elif extraction.device == Extraction().device:
            extraction = replace(extraction, device=device)
        self.extraction = extraction
        check_monitoring(self.extraction, self.figures, self.output)
        with training_state(module):
            self.handle = load_model(model, device=device, **(preprocess or Preprocess()).to_dict())
        self.points = resolve_points(self.handle, list(points or ("pre_logits",)))
        if self.featmap_points:
            resolve_points(self.handle, self.featmap_points)  # fail now, not at the first epoch
        self.samples = select_samples(load_samples(data), self.selection)
        self.thumbnails = None
        if thumbnails and self.embeddings:
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
        from featscope.analysis import map_feature_sets
        from featscope.capture import extract_feature_sets
        from featscope.capture.training import check_epoch, training_state
        from featscope.sinks.monitor import write_monitor_step

        if self._closed:
            raise ParameterError("this Monitor is closed; make a new one to log again")
        epoch, self._calls = check_epoch(self._calls if epoch is None else epoch), self._calls + 1
        if not force and (epoch + 1) % self.every != 0:
            return None
        run = self._open()
        seed, device = self.selection.seed, self.extraction.device
        with training_state(self.handle.module):
            extracted = extract_feature_sets(
                self.handle, self.samples, self.points, self.extraction, seed=seed
            )
            results = map_feature_sets(
                extracted.feature_sets, self.embedding, seed=seed, device=device,
                previous=self.history[-1].results if self.history else None,
            )  # fmt: skip
            featmaps = self._featmaps() if self.featmap_points else ()
        self._pin_precision(extracted.settings)
        if run is not None and extracted.settings and not self.history:
            run.add_metadata("extraction", dict(extracted.settings))
        step = MonitorStep(epoch=epoch, results=results, featmaps=tuple(featmaps))
        if run is not None:
            write_monitor_step(
                run, step, extracted.feature_sets, self.figures, thumbnails=self.thumbnails,
                embeddings=self.embeddings,
            )  # fmt: skip
        self.history.append(step)
        logger.info("epoch %d: %s", epoch, step.metrics)
        return step

    __call__ = step  # monitor(epoch) is monitor.step(epoch)

    def _pin_precision(self, settings: Mapping[str, Any]) -> None:
        """Keep the precision the first step chose for every later step.

        On a CPU ``amp="auto"`` checks bfloat16 against float32 on the first images each time
        features are extracted; the weights change between epochs, so the choice could change
        too, and maps of one run would then differ in precision.
        """
        chosen = {"bfloat16": "bf16", "float32": "off"}.get(settings.get("precision", ""))
        if self.extraction.amp == "auto" and settings.get("device") == "cpu" and chosen:
            self.extraction = replace(self.extraction, amp=chosen)

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
