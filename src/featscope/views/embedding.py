"""The embedding-map view: features at capture points -> t-SNE / UMAP / PCA maps -> figures.

``featscope.tsne(...)`` is the whole job in one call; ``featscope tsne`` on the command line is a
thin wrapper around it. It composes public stages: :func:`featscope.load_model`,
:func:`featscope.data.select_samples`, :func:`featscope.capture.extract_feature_sets`,
:func:`featscope.analysis.map_feature_sets`, :func:`featscope.render.plot_embedding_figures`,
:func:`featscope.render.page.build_page` and :class:`featscope.sinks.LocalRun` (the files by
:mod:`featscope.sinks.embedding`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from featscope.data.thumbnails import DEFAULT_MAX_THUMBNAILS, check_max_thumbnails
from featscope.options import EmbeddingOptions, Extraction, Figures, Output, Preprocess, Selection
from featscope.render.colorby import check_field_name
from featscope.results import TsneRun
from featscope.sinks.layout import PAGE_NAME
from featscope.sinks.open import open_run
from featscope.views._run import Stopwatch

__all__ = ["DEFAULT_DEMO_POINTS", "PAGE_NAME", "TsneRun", "tsne"]

logger = logging.getLogger(__name__)

#: The built-in default (``featscope tsne`` with no model and no data) and its capture points.
DEFAULT_DEMO_MODEL = "demo:digits-cnn"
#: Three different outputs: the second conv stage, the pooled last stage, the head's hidden layer
#: (``backbone`` itself pools to the same vectors as ``neck``).
DEFAULT_DEMO_POINTS = ("backbone.1", "neck", "pre_logits")
#: Capture point when a model is given without ``points``: the vector the classifier reads.
DEFAULT_POINTS = ("pre_logits",)


def tsne(
    model: Any = None,
    data: Any = None,
    points: Sequence[str] | None = None,
    *,
    features: str | Path | None = None,
    labels: str | Path | None = None,
    class_names: str | Path | Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
    embedding: EmbeddingOptions | None = None,
    selection: Selection | None = None,
    preprocess: Preprocess | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
    html: bool = True,
    thumbnails: int | None = DEFAULT_MAX_THUMBNAILS,
) -> TsneRun:
    """Map the features of a model (or of saved features) in 2-D or 3-D, with quality metrics.

    With no ``model``, no ``data`` and no ``features``, runs the built-in default: a small CNN
    trained on scikit-learn's digits, mapped at ``backbone.1``, ``neck`` and ``pre_logits``.

    Parameters
    ----------
    model : str or torch.nn.Module or callable or ModelHandle, optional
        A model spec (``"timm:resnet50"``, ``"tv:resnet18"``, ``"hf:./dir"``, ``"ts:m.pt"``,
        ``"py:pkg.mod:factory"``, ``"demo:digits-cnn"``), a module, a factory or a handle.
    data : str or Path or ImageSamples, optional
        An image folder (one sub-folder per class), a csv/tsv file list (``path,label``) or
        ``"demo:digits"`` (the default).
    points : sequence of str, optional
        Capture points: module paths or the aliases ``backbone``, ``neck``, ``pre_logits``,
        ``logits``, all from one forward pass; names that give the same features are mapped once
        (logged and recorded in the manifest). Default: ``pre_logits`` (``backbone.1``,
        ``neck``, ``pre_logits`` for the built-in model).
    features : str or Path, optional
        Saved features (``.npy`` with ``labels``, ``.npz`` or ``.csv``) to map instead of
        running a model.
    labels : str or Path, optional
        Labels for ``.npy`` features (``.npy``, ``.txt`` or ``.csv``).
    class_names : str or Path or sequence of str, optional
        Class names (a file, one per line, or a sequence), index = label.
    checkpoint : str or Path, optional
        State dict to load into the model (``torch.load(weights_only=True)``).
    embedding : EmbeddingOptions, optional
        The method (t-SNE, UMAP, PCA), map dimensions and t-SNE parameters.
    selection : Selection, optional
        Classes, samples per class, sampling rule and the seed of every random choice.
    preprocess : Preprocess, optional
        Overrides of the model's input size and normalisation.
    extraction : Extraction, optional
        Device (of the model and of a CUDA t-SNE), precision, batch size, workers, skipping of
        unreadable images, a resumable cache folder, data-parallel processes (``nproc``; under
        ``torchrun`` the ranks are found in the environment) and progress bars. See
        docs/scale.md.
    figures : Figures, optional
        Figure formats, resolution, legend, class indices at points, marker size, window.
    output : Output, optional
        The work dir of the run folder ``tsne_<timestamp>/`` (``work_dir=None``: write
        nothing), TensorBoard / W&B, and ``export``, a copy of the figures.
    html : bool, default True
        Write ``embedding.html``: every map side by side, with linked selection and thumbnails
        (see :func:`featscope.render.page.build_page`).
    thumbnails : int or None, default 20000
        How many samples get a thumbnail on the page (a seeded subset when there are more;
        ``None``: all, ``0``: none); kept in the run folder for ``featscope compare``.

    Returns
    -------
    TsneRun
        The maps, their features, the run folder, skipped images and stage timings.

    Raises
    ------
    featscope.errors.FeatscopeError
        For any problem with the inputs; nothing that looks finished is left on disk.

    Examples
    --------
    >>> run = featscope.tsne(output=Output(work_dir=None))  # doctest: +SKIP
    >>> run["pre_logits"].metrics["knn_accuracy_map"] > 0.9  # doctest: +SKIP
    True
    """
    arguments = dict(locals())  # for the processes `extraction.nproc` starts
    embedding, selection = embedding or EmbeddingOptions(), selection or Selection()
    preprocess, extraction = preprocess or Preprocess(), extraction or Extraction()
    figures, output = figures or Figures(), output or Output()
    check_max_thumbnails(thumbnails)
    from featscope.options import check_saved_features

    check_saved_features(features, model=model, data=data, checkpoint=checkpoint,
                         preprocess=preprocess, extraction=extraction)  # fmt: skip
    if features is None:
        from featscope.capture.distributed import distributed_world, launch

        if extraction.nproc != 1:
            one = replace(extraction, nproc=1)
            return launch(tsne, {**arguments, "extraction": one}, extraction.nproc)
        if distributed_world()[0] != 0:
            output = Output(work_dir=None)  # other ranks extract; rank 0 writes what users see
    from featscope.analysis import map_feature_sets
    from featscope.data import load_features, load_samples, select_samples
    from featscope.data.thumbnails import sample_thumbnails
    from featscope.render import plot_embedding_figures
    from featscope.sinks.embedding import write_maps, write_page, write_thumbnails
    from featscope.sinks.export import export_from_run

    timings: dict[str, float] = {}
    clock = Stopwatch(timings)
    samples = None  # the images behind the maps, for thumbnails (none for saved features)
    written, page = [], None  # the figures (what --out copies) and the page
    with clock("load"):
        if features is not None:
            saved = load_features(features, labels=labels)
            feature_sets = (select_samples(saved, selection, class_names=class_names),)
            skipped: tuple[tuple[str, str], ...] = ()
        else:
            # everything that can be wrong with the request fails here, before any image is read
            from featscope.capture import extract_feature_sets, resolve_points
            from featscope.models import describe_preprocessing, load_model

            builtin = model is None and data is None
            handle = load_model(
                DEFAULT_DEMO_MODEL if model is None else model,
                checkpoint=checkpoint,
                device=extraction.device,
                **preprocess.to_dict(),
            )
            default = DEFAULT_DEMO_POINTS if builtin else DEFAULT_POINTS
            capture_points = resolve_points(handle, list(points or default))
            samples = select_samples(load_samples(data), selection, class_names=class_names)

    classifier = samples is not None and "logits" in handle.aliases
    check_field_name(figures.color_by, {} if samples is None else samples.metadata, classifier)
    with open_run(output, "tsne") as run:
        if run is not None and samples is not None:
            run.add_metadata("samples", samples.summary())
            run.add_metadata("preprocessing", describe_preprocessing(handle))
        if samples is not None:
            with clock("extract"):
                extracted = extract_feature_sets(
                    handle, samples, capture_points, extraction, seed=selection.seed,
                    distributed=True,
                )  # fmt: skip
            if extracted is None:  # a rank other than 0 under torchrun: its part is done
                return TsneRun(results=(), features=(), run_dir=None, timings=timings)
            feature_sets, samples = extracted.feature_sets, extracted.samples
            skipped = extracted.skipped
            if run is not None and extracted.settings:
                run.add_metadata("extraction", dict(extracted.settings))
        with clock("reduce"):
            results = map_feature_sets(
                feature_sets, embedding, seed=selection.seed, device=extraction.device
            )
        with clock("render"):
            drawn = plot_embedding_figures(
                results,
                legend=figures.legend,
                annotate=figures.annotate,
                point_size=figures.point_size,
                color_by=figures.color_by,
            )
        thumbs = rows = None  # kept in the run too: its page is built in memory without a folder
        if samples is not None and thumbnails != 0 and (html or (run is not None and run.mirrors)):
            with clock("thumbnails"):
                thumbs, rows = sample_thumbnails(samples, thumbnails, seed=selection.seed)
        if run is not None:
            with clock("write"):
                written = write_maps(run, feature_sets, results, drawn, figures)
                if thumbs is not None:
                    write_thumbnails(run, thumbs, rows)
            for fs, result in zip(feature_sets, results, strict=True):
                # TensorBoard's projector / a W&B table; nothing happens without a backend
                run.log_embedding(fs, result, thumbs, thumbnail_indices=rows)
            if html:
                with clock("page"):
                    page = write_page(run, results, thumbs, rows)
    run_dir = None if run is None else run.final_path
    export_from_run(run, written, output.export)
    if figures.show:
        from featscope.render import show

        for figure in drawn.values():
            show(figure)
    return TsneRun(
        results=results,
        features=tuple(feature_sets),
        run_dir=run_dir,
        skipped=tuple(skipped),
        timings=timings,
        page=None if page is None or run_dir is None else run_dir / page.name,
        thumbnails=thumbs,
        thumbnail_rows=rows,
    )
