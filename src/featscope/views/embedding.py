"""The embedding-map view: features at capture points -> t-SNE / UMAP / PCA maps -> figures.

``featscope.tsne(...)`` is the whole job in one call; ``featscope tsne`` on the command line is a
thin wrapper around it. Each stage it composes is public on its own: :func:`featscope.load_model`,
:func:`featscope.capture.extract_features`, :class:`featscope.analysis.TSNE`,
:func:`featscope.render.plot_embedding` and :class:`featscope.sinks.LocalRun`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from featscope.data.thumbnails import DEFAULT_MAX_THUMBNAILS
from featscope.errors import MissingExtraError, ParameterError
from featscope.results import EmbeddingResult, FeatureSet, Provenance
from featscope.sinks.layout import THUMBNAIL_ROWS_NAME, THUMBNAILS_NAME, safe_stem
from featscope.views._run import Stopwatch, open_run

__all__ = ["DEFAULT_DEMO_POINTS", "PAGE_NAME", "TsneRun", "page_titles", "tsne"]

logger = logging.getLogger(__name__)

#: Capture points of the built-in default (``featscope tsne`` with no model and no data).
DEFAULT_DEMO_MODEL = "demo:digits-cnn"
DEFAULT_DEMO_POINTS = ("backbone", "neck", "pre_logits")
#: Capture point when a model is given without ``points``: the vector the classifier reads.
DEFAULT_POINTS = ("pre_logits",)

#: The interactive page in every run folder.
PAGE_NAME = "embedding.html"

_METHODS = ("tsne", "umap", "pca")
_FORMATS = ("png", "pdf", "svg", "jpg")


@dataclass(frozen=True)
class TsneRun:
    """What one embedding-map run produced.

    Attributes
    ----------
    results : tuple of EmbeddingResult
        One map per capture point (tuple outputs give one per element, ``<point>.<i>``).
    features : tuple of FeatureSet
        The features each map was computed from, in the same order.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` when ``work_dir=None``).
    skipped : tuple of (str, str)
        ``(sample id, reason)`` for images skipped with ``skip_bad_images=True``.
    timings : dict of str to float
        Seconds spent in each stage (``load``, ``extract``, ``reduce``, ``render``, ``page``,
        ``write``).
    page : pathlib.Path or None
        The interactive page ``embedding.html`` in the run folder (``None`` without a run folder
        or with ``html=False``).
    """

    results: tuple[EmbeddingResult, ...]
    features: tuple[FeatureSet, ...]
    run_dir: Path | None
    skipped: tuple[tuple[str, str], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    page: Path | None = None

    def __getitem__(self, point: str) -> EmbeddingResult:
        """Return the map of capture point ``point``."""
        for result in self.results:
            if result.point == point:
                return result
        names = ", ".join(r.point for r in self.results)
        raise KeyError(f"no map for point {point!r}; this run has: {names}")


def tsne(
    model: Any = None,
    data: Any = None,
    points: Sequence[str] | None = None,
    *,
    features: str | Path | None = None,
    labels: str | Path | None = None,
    class_names: str | Path | Sequence[str] | None = None,
    checkpoint: str | Path | None = None,
    input_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    class_idx: Sequence[int] | None = None,
    max_num_class: int = 20,
    max_num_samples: int | None = 100,
    sample: str = "random",
    seed: int = 0,
    method: str = "tsne",
    n_components: int = 2,
    perplexity: float = 30.0,
    early_exaggeration: float = 12.0,
    learning_rate: float | str = "auto",
    n_iter: int = 750,
    n_iter_without_progress: int = 300,
    init: str = "pca",
    pca_dims: int = 50,
    device: str = "cpu",
    amp: str | bool = "auto",
    batch_size: int = 64,
    num_workers: int | None = None,
    skip_bad_images: bool = False,
    cache_dir: str | Path | None = None,
    resume: bool = False,
    nproc: int = 1,
    work_dir: str | Path | None = "work_dirs",
    backends: Sequence[str] | None = None,
    formats: Sequence[str] = ("png",),
    dpi: int = 150,
    legend: bool = False,
    annotate: bool = False,
    point_size: float | None = None,
    show: bool = False,
    progress: bool = True,
    html: bool = True,
    thumbnails: int | None = DEFAULT_MAX_THUMBNAILS,
) -> TsneRun:
    """Map the features of a model (or of saved features) in 2-D or 3-D, with quality metrics.

    With no ``model``, no ``data`` and no ``features``, runs the built-in default: a small CNN
    trained on scikit-learn's digits, mapped at ``backbone``, ``neck`` and ``pre_logits``.

    Parameters
    ----------
    model : str or torch.nn.Module or callable or ModelHandle, optional
        A model spec (``"timm:resnet50"``, ``"tv:resnet18"``, ``"hf:./dir"``, ``"ts:m.pt"``,
        ``"py:pkg.mod:factory"``, ``"demo:digits-cnn"``), a module, a factory or a handle.
    data : str or Path or ImageSamples, optional
        An image folder (one sub-folder per class), a csv/tsv file list (``path,label``) or
        ``"demo:digits"``. Defaults to the digits.
    points : sequence of str, optional
        Capture points: module paths or the aliases ``backbone``, ``neck``, ``pre_logits``,
        ``logits``. Several points come from one forward pass. Default: ``pre_logits`` (and
        ``backbone``, ``neck``, ``pre_logits`` for the built-in model).
    features : str or Path, optional
        Saved features (``.npy`` with ``labels``, or ``.npz``) to map instead of running a model.
    labels : str or Path, optional
        Labels for ``.npy`` features (``.npy``, ``.txt`` or ``.csv``).
    class_names : str or Path or sequence of str, optional
        Class names (a file, one per line, or a sequence), index = label.
    checkpoint : str or Path, optional
        State dict to load into the model (``torch.load(weights_only=True)``).
    input_size, mean, std : optional
        Override the model's preprocessing.
    class_idx : sequence of int, optional
        Classes to show. Default: the first ``max_num_class`` classes.
    max_num_class : int, default=20
        Number of classes when ``class_idx`` is not given.
    max_num_samples : int or None, default=100
        Samples per class (``None`` or 0: all).
    sample : {"random", "first"}, default="random"
        Seeded random samples per class, or the first ones in dataset order (the reference's
        rule).
    seed : int, default=0
        Seed of sample selection and of the embedding.
    method : {"tsne", "umap", "pca"}, default="tsne"
        Dimensionality reduction.
    n_components : {2, 3}, default=2
        Map dimensions.
    perplexity, early_exaggeration, learning_rate, n_iter, n_iter_without_progress, init : optional
        t-SNE parameters, with the meanings of scikit-learn's ``TSNE``; ``n_iter`` counts the
        250 early-exaggeration iterations too.
    pca_dims : int, default=50
        Reduce wider features to this many dimensions with PCA before t-SNE (0: off).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``: where the model runs and where the
        t-SNE is computed (off the CPU with featscope's torch engine, see
        :class:`featscope.analysis.TSNE`).
    amp : {"auto", "off", "bf16", "fp16"}, default="auto"
        Mixed precision of the forward pass: "auto" is bfloat16 (float16 where unsupported)
        on CUDA and float32 elsewhere; "off" is float32 everywhere. Features are float32.
    batch_size : int, default=64
        Images per forward pass.
    num_workers : int, optional
        DataLoader workers (default: chosen from the data size and the cores).
    skip_bad_images : bool, default=False
        Skip unreadable images (they are listed in the log and in :attr:`TsneRun.skipped`)
        instead of stopping.
    cache_dir : str or Path, optional
        Stream the extracted features into memory-mapped ``.npy`` files in this folder (memory
        stays at about one batch) with a progress record after every batch, so that a killed
        run can be continued with ``resume=True``. See docs/scale.md.
    resume : bool, default=False
        Continue the extraction in ``cache_dir`` from its last complete batch (or reuse it when
        finished); gives exactly the features of an uninterrupted run. Refused, naming what
        changed, when the model, data or extraction options differ.
    nproc : int, default=1
        Extract with this many processes (data-parallel, gloo on CPU, NCCL on CUDA), started
        with torch's launcher; rank 0 merges the features in sample order and does the rest.
        Under ``torchrun`` leave it at 1: the ranks are detected from the environment.
    work_dir : str or Path or None, default="work_dirs"
        Where the run folder ``tsne_<timestamp>/`` is made; ``None`` writes nothing.
    backends : sequence of str, optional
        Also log to ``"tensorboard"`` and/or ``"wandb"``; the run folder is always written.
    formats : sequence of str, default=("png",)
        Figure formats: ``png``, ``pdf``, ``svg``, ``jpg``.
    dpi : int, default=150
        Resolution of raster figures.
    legend, annotate : bool, default=False
        Draw a legend of class names; write the class index at each point.
    point_size : float, optional
        Marker size (default adapts to the number of points).
    show : bool, default=False
        Open the figures in a window after writing them.
    progress : bool, default=True
        Show progress bars on a terminal.
    html : bool, default=True
        Write ``embedding.html`` in the run folder: one self-contained interactive page with all
        the maps side by side and linked selection (see :func:`featscope.render.page.build_page`).
    thumbnails : int or None, default=20000
        How many samples get an image thumbnail on the page (a seeded random subset when there
        are more samples; ``None``: all, ``0``: none). The thumbnails are also kept in the run
        folder (``thumbnails.npy`` and ``thumbnail_rows.npy``) for ``featscope compare``.

    Returns
    -------
    TsneRun
        The maps, their features, the run folder and stage timings.

    Raises
    ------
    featscope.errors.FeatscopeError
        For any problem with the inputs; nothing that looks finished is left on disk.

    Examples
    --------
    >>> import featscope
    >>> run = featscope.tsne(work_dir=None, progress=False)  # doctest: +SKIP
    >>> run["pre_logits"].metrics["knn_accuracy_map"] > 0.9  # doctest: +SKIP
    True
    """
    arguments = dict(locals())  # for the processes `nproc` starts
    _check_choice("method", method, _METHODS)
    _check_choice("sample", sample, ("random", "first"))
    if n_components not in (2, 3):
        raise ParameterError(f"`n_components` must be 2 or 3; got {n_components!r}")
    for fmt in formats:
        _check_choice("format", fmt, _FORMATS)
    if thumbnails is not None and (
        isinstance(thumbnails, bool) or not isinstance(thumbnails, int) or thumbnails < 0
    ):
        raise ParameterError(
            f"`--thumbnails` (thumbnails=) must be a count >= 0 (0: none; None in Python: all); "
            f"got {thumbnails!r}"
        )
    if features is not None and (model is not None or data is not None):
        raise ParameterError(
            "pass either `features` (saved features) or `model`/`data` (extract them), not both"
        )
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ParameterError(f"`nproc` must be an integer >= 1; got {nproc!r}; pass e.g. 2")
    if resume and cache_dir is None:
        raise ParameterError(
            "`resume` needs the folder of the extraction to continue; pass --cache-dir DIR "
            "together with --resume"
        )
    if nproc > 1 and features is None:
        from featscope.capture.distributed import launch

        arguments["nproc"] = 1
        return launch(tsne, arguments, nproc)

    rank, world = _torchrun_world() if features is None else (0, 1)
    if rank != 0:
        # other ranks only extract their shard; rank 0 writes everything the user sees
        work_dir, backends, show = None, None, False

    timings: dict[str, float] = {}
    clock = Stopwatch(timings)
    reducer_params = _reducer_params(
        method,
        seed=seed,
        n_components=n_components,
        perplexity=perplexity,
        early_exaggeration=early_exaggeration,
        learning_rate=learning_rate,
        n_iter=n_iter,
        n_iter_without_progress=n_iter_without_progress,
        init=init,
        pca_dims=pca_dims,
        # The t-SNE follows the model onto CUDA; on MPS (no float64) it stays on the CPU.
        device=device if str(device).startswith("cuda") else "cpu",
    )
    selection = {
        "class_idx": None if class_idx is None else list(class_idx),
        "max_num_class": max_num_class,
        "max_num_samples": max_num_samples,
        "seed": seed,
        "sample": sample,
    }

    samples = None  # the images behind the maps, for thumbnails (none for saved features)
    if features is not None:
        with clock("load"):
            feature_sets, skipped = _saved_features(features, labels, class_names, selection)
        extract = None
    else:
        with clock("load"):
            extract, feature_points = _prepare_extraction(
                model,
                data,
                points,
                checkpoint=checkpoint,
                input_size=input_size,
                mean=mean,
                std=std,
                class_names=class_names,
                selection=selection,
                device=device,
            )

    with open_run(work_dir, "tsne", backends) as run:
        if extract is not None:
            with clock("extract"):
                feature_sets, skipped, samples = extract(
                    batch_size=batch_size,
                    num_workers=num_workers,
                    progress=progress and rank == 0,
                    skip_bad_images=skip_bad_images,
                    cache_dir=cache_dir,
                    resume=resume,
                    world=world,
                    amp=amp,
                )
            if feature_sets is None:  # a rank other than 0 under torchrun: its part is done
                return TsneRun(results=(), features=(), run_dir=None, timings=timings)
            logger.info(
                "extracted %s from %d samples", ", ".join(feature_points), len(feature_sets[0])
            )
        from featscope.analysis import embed

        results = []
        for fs in feature_sets:
            with clock("reduce"):
                result = embed(fs, method=method, **reducer_params)
            results.append(result)
            logger.info(
                "%s: %s map of %d samples; metrics %s",
                fs.point,
                method,
                len(fs),
                dict(result.metrics),
            )

        with clock("render"):
            figures = _draw(results, legend=legend, annotate=annotate, point_size=point_size)
        if run is not None:
            with clock("write"):
                _write_run(run, feature_sets, results, figures, formats=formats, dpi=dpi)
            thumbs = rows = None
            if html or run.mirrors:
                with clock("thumbnails"):
                    thumbs, rows = _write_thumbnails(run, samples, thumbnails, seed=seed)
            for fs, result in zip(feature_sets, results, strict=True):
                # TensorBoard's projector / a W&B table; nothing happens without a backend
                run.log_embedding(fs, result, thumbs, thumbnail_indices=rows)
            if html:
                with clock("page"):
                    _write_page(run, results, thumbs, rows)
    run_dir = None if run is None else run.final_path
    if show:
        from featscope.render import show as show_figure

        for _, figure in figures:
            show_figure(figure)
    return TsneRun(
        results=tuple(results),
        features=tuple(feature_sets),
        run_dir=run_dir,
        skipped=tuple(skipped),
        timings=timings,
        page=run_dir / PAGE_NAME if run_dir and (run_dir / PAGE_NAME).is_file() else None,
    )


# --------------------------------------------------------------------------- inputs


def _saved_features(features, labels, class_names, selection):
    from featscope.data import load_features, select_indices

    fs = _with_class_names(load_features(features, labels=labels), class_names)
    keep = select_indices(fs.labels, len(fs.class_names), **selection)
    return [_subset_features(fs, keep)], []


def _prepare_extraction(
    model, data, points, *, checkpoint, input_size, mean, std, class_names, selection, device
) -> tuple[Callable[..., tuple[list[FeatureSet], list]], list[str]]:
    """Load the model, resolve the points and select the samples; read no image yet.

    Everything that can be wrong with the request (an unknown point, a checkpoint that does not
    fit, a missing class) fails here, before any image is decoded.
    """
    from featscope.capture import extract_features, resolve_points
    from featscope.data import load_samples, select_indices
    from featscope.models import load_model

    builtin = model is None and data is None
    handle = load_model(
        DEFAULT_DEMO_MODEL if model is None else model,
        checkpoint=checkpoint,
        input_size=input_size,
        mean=mean,
        std=std,
        device=device,
    )
    if points is None or len(points) == 0:
        points = DEFAULT_DEMO_POINTS if builtin else DEFAULT_POINTS
    capture_points = resolve_points(handle, list(points))
    samples = _with_class_names(load_samples(data), class_names)
    keep = select_indices(samples.labels, len(samples.class_names), **selection)
    samples = samples.subset(keep)
    logger.info(
        "apply %s to %d samples of %d classes from %s",
        "embedding",
        len(samples),
        len(np.unique(samples.labels)),
        samples.source,
    )
    provenance = Provenance(
        model=handle.spec,
        checkpoint=handle.checkpoint,
        checkpoint_sha256=handle.checkpoint_sha256,
        source=samples.source,
        seed=selection["seed"],
    )

    def extract(
        *, batch_size, num_workers, progress, skip_bad_images, cache_dir, resume, world, amp
    ):
        """Return ``(feature sets, skipped, the samples that were read)``.

        Under torchrun (``world > 1``) the ranks share the work and ranks other than 0 get
        ``(None, [], None)``.
        """
        options = {
            "batch_size": batch_size,
            "num_workers": num_workers,
            "progress": progress,
            "skip_bad_images": skip_bad_images,
            "cache_dir": cache_dir,
            "resume": resume,
            "amp": amp,
        }
        if world > 1:
            from featscope.capture.distributed import (
                extract_features_distributed,
                process_group,
                rank_device,
            )

            dev = rank_device(device)
            with process_group(dev):
                out = extract_features_distributed(
                    handle, samples, capture_points, device=dev, **options
                )
            if out is None:
                return None, [], None
        else:
            out = extract_features(handle, samples, capture_points, device=device, **options)
        kept = samples.subset(out.kept)
        sets = out.feature_sets(samples, provenance)
        if not sets or len(kept) == 0:
            raise ParameterError("no sample could be read; nothing to map")
        return sets, list(out.skipped), kept

    return extract, [p.name for p in capture_points]


def _torchrun_world() -> tuple[int, int]:
    """Return ``(rank, world size)`` from torchrun's environment (``(0, 1)`` without it)."""
    import os

    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


def _with_class_names(obj, class_names):
    """Apply ``class_names`` (a file or a sequence) to samples or a feature set."""
    if class_names is None:
        return obj
    from featscope.data import apply_class_names, read_class_names

    names = (
        read_class_names(class_names)
        if isinstance(class_names, (str, Path))
        else tuple(str(n) for n in class_names)
    )
    return apply_class_names(obj, names)


def _subset_features(fs: FeatureSet, keep: np.ndarray) -> FeatureSet:
    return replace(
        fs,
        features=fs.features[keep],
        labels=fs.labels[keep],
        ids=tuple(fs.ids[i] for i in keep),
    )


def _reducer_params(method: str, *, seed: int, n_components: int, **tsne_params) -> dict:
    params: dict[str, Any] = {"n_components": n_components, "random_state": seed}
    if method == "tsne":
        params.update(tsne_params)
    return params


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ParameterError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")


# --------------------------------------------------------------------------- outputs


def _draw(results, *, legend, annotate, point_size):
    """Return ``[(stem, figure)]``: one figure per map, plus all maps side by side."""
    from featscope.render import plot_embedding, plot_embeddings

    figures = []
    for result in results:
        ax = plot_embedding(result, legend=legend, annotate=annotate, point_size=point_size)
        figures.append((f"{result.method}_{safe_stem(result.point)}", ax.figure))
    if len(results) > 1:
        figures.append(("overview", plot_embeddings(results, legend=legend, point_size=point_size)))
    return figures


def _write_run(run, feature_sets, results, figures, *, formats, dpi) -> None:
    metrics = {}
    for fs, result in zip(feature_sets, results, strict=False):
        run.write(fs)  # feat_<point>.npy; labels, ids and class names with the first
        run.write(result)  # coords_<point>.csv, recorded in the manifest
        metrics[fs.point] = dict(result.metrics)
    run.write_json("metrics.json", metrics)
    for stem, figure in figures:
        run.write_figure(figure, stem, formats=formats, dpi=dpi)


def _write_thumbnails(run, samples, max_thumbnails, *, seed):
    """Make the thumbnails of (a seeded subset of) the samples and keep them in the run folder.

    Returns ``(thumbnails, rows)`` (rows index the samples), or ``(None, None)`` for saved
    features or ``max_thumbnails == 0``. ``featscope compare`` reuses the stored arrays.
    """
    from featscope.data.thumbnails import make_thumbnails, thumbnail_indices

    if samples is None or max_thumbnails == 0:
        return None, None
    rows = thumbnail_indices(len(samples), max_thumbnails, seed=seed)
    thumbs = make_thumbnails(samples, rows)
    run.write_array(THUMBNAILS_NAME, thumbs)
    run.write_array(THUMBNAIL_ROWS_NAME, rows)
    return thumbs, rows


def _write_page(run, results, thumbs, rows) -> None:
    """Write ``embedding.html``: the maps side by side, with the thumbnails on hover."""
    from featscope.render.page import build_page

    try:
        text = build_page(list(results), thumbs, rows, map_titles=page_titles(results))
    except MissingExtraError as exc:
        # the maps, figures and data are written; a missing page library must not lose them
        warnings.warn(f"no {PAGE_NAME}: {exc}", UserWarning, stacklevel=3)
        return
    run.write_text(PAGE_NAME, text)
    logger.info("wrote the interactive page %s (%.1f MB)", PAGE_NAME, len(text) / 1e6)


def page_titles(results: Sequence[EmbeddingResult]) -> list[str]:
    """Return the title of each map on the page: capture point, method, and 3-D caveat.

    Parameters
    ----------
    results : sequence of EmbeddingResult
        The maps.

    Returns
    -------
    list of str
        ``"<point> · <method>"``, with ``" (first 2 of 3 components)"`` for 3-D maps.
    """
    names = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
    titles = []
    for r in results:
        extra = f" (first 2 of {r.n_components} components)" if r.n_components > 2 else ""
        titles.append(f"{r.point} · {names.get(r.method, r.method)}{extra}")
    return titles
