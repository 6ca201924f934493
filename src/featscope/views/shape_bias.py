"""The shape-bias view: a classifier on the cue-conflict stimuli, against humans.

``featscope.shape_bias(...)`` runs a model over the stimuli, decides among the 16 categories,
computes the shape bias and draws the figure of Geirhos et al. (ICLR 2019);
``featscope.shape_bias_from_csv(...)`` does the analysis and the figure from model-vs-human
decision csvs. Both compose :mod:`featscope.data.cue_conflict` (stimuli, csvs, names),
:func:`featscope.capture.extract_features` (the ``logits`` point),
:mod:`featscope.analysis.shape_bias` and :func:`featscope.render.shape_bias.plot_shape_bias`,
and write a run folder; ``Output.export`` (``--out``) copies files of the finished folder.
Differences from mmpretrain's ``ShapeBiasMetric`` and ``shape_bias.py`` are listed in
``docs/shape-bias.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featscope.analysis.shape_bias import (
    HUMANS,
    as_mapping,
    class_scores,
    decide_from_logits,
    mapping_source,
    reference_humans,
    select_decision_makers,
    shape_bias_by_subject,
    with_reference_humans,
)
from featscope.data.cue_conflict import (
    DecisionTable,
    check_model_name,
    csv_name,
    default_model_name,
    locate_stimuli,
    read_decision_csvs,
    read_stimuli,
)
from featscope.options import Extraction, Figures, Output, Preprocess
from featscope.render.shape_bias import plot_shape_bias
from featscope.results import Provenance, ShapeBiasRun, ShapeBiasStats
from featscope.sinks.open import open_run
from featscope.views._run import Stopwatch

__all__ = ["DEFAULT_MODEL", "ShapeBiasRun", "shape_bias", "shape_bias_from_csv"]

logger = logging.getLogger(__name__)

#: The model of ``featscope shape-bias`` with no arguments (real ImageNet weights).
DEFAULT_MODEL = "demo:efficientnet-lite0"
# batches of 32 and float32 (no autocast): decisions as the published numbers were measured
_EXTRACTION = Extraction(batch_size=32, amp="off")
_FIGURES = Figures(formats=("png", "pdf"))
_PROBE = 8  # images run before the run folder is made, to check the model's output width


def shape_bias(
    model: Any = None,
    data: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    mapping: Any = None,
    preprocess: Preprocess | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
) -> ShapeBiasRun:
    """Measure a classifier's shape bias on the cue-conflict stimuli and draw it against humans.

    With no arguments, runs the built-in EfficientNet-Lite0 (real ImageNet weights, the
    ``demo`` extra) on the stimuli found by :func:`featscope.data.cue_conflict.locate_stimuli`.

    Parameters
    ----------
    model : str or torch.nn.Module or callable or ModelHandle, optional
        An ImageNet-1k classifier (any model spec), a module with 16 outputs (the categories,
        sorted), or any model with ``mapping``.
    data : str or os.PathLike, optional
        The stimuli folder (16 category sub-folders). Default: ``$FEATSCOPE_CUE_CONFLICT``,
        then ``~/.cache/featscope/cue-conflict``.
    checkpoint : str or os.PathLike, optional
        State dict to load into the model (``torch.load(weights_only=True)``).
    model_name : str, optional
        The model's ``subj`` in the csv and legend (default: from the spec, e.g. ``resnet50``).
    mapping : str or os.PathLike or dict or CategoryMapping, optional
        Output classes per category, for models whose outputs are neither ImageNet-1k's 1000
        classes nor the 16 categories (see :func:`featscope.analysis.shape_bias.as_mapping`).
    preprocess : Preprocess, optional
        Overrides of the model's input size, mean and std.
    extraction : Extraction, optional
        Device, batch size (default 32), workers, precision (default ``"off"``), progress bar,
        and ``skip_bad_images`` (unreadable stimuli left out with a warning; the csv and the
        shape bias then cover the others).
    figures : Figures, optional
        Formats (default png and pdf), dpi, show.
    output : Output, optional
        The run folder ``shape_bias_<timestamp>/`` under ``work_dir`` (``None``: nothing
        written), trackers, and ``export``: a copy of the decision csv (a file, or into a
        folder) once the run folder is finished.

    Returns
    -------
    ShapeBiasRun
        ``run.shape_bias`` is the model's shape bias; ``run.stats`` holds the model and the
        humans; the run folder holds ``cue-conflict_<model-name>_session-1.csv``,
        ``shape_bias.json`` and the figures.

    Raises
    ------
    featscope.errors.FeatscopeError
        For a stimuli folder not in the cue-conflict layout, a model output that is neither
        1000 nor 16 classes without ``mapping`` (found on a few images, before the run folder
        is made), an unreadable stimulus without ``skip_bad_images``, and any other problem
        with the inputs.

    Examples
    --------
    >>> import featscope
    >>> run = featscope.shape_bias("timm:resnet50", "cue-conflict/")  # doctest: +SKIP
    >>> round(run.shape_bias, 3)  # doctest: +SKIP
    0.214
    """
    from featscope.models import load_model

    preprocess, extraction = preprocess or Preprocess(), extraction or _EXTRACTION
    figures, output = figures or _FIGURES, output or Output()
    if model_name is not None:
        check_model_name(model_name)
    clock = Stopwatch()
    with clock("load"):
        category_mapping = as_mapping(mapping)
        root = locate_stimuli(data)
        samples = read_stimuli(root)
        spec = DEFAULT_MODEL if model is None else model
        kwargs = {"checkpoint": checkpoint, "device": extraction.device}
        handle = load_model(spec, **kwargs, **preprocess.to_dict())
    name = check_model_name(model_name or default_model_name(handle.spec))
    logger.info("shape bias of %s (%s) on %d stimuli in %s", name, handle.spec, len(samples), root)
    with clock("evaluate"):
        # a few images first: a model whose outputs cannot be mapped fails before the long loop
        # and before a run folder is made (a few, so that one unreadable image skipped with
        # skip_bad_images does not leave the probe empty)
        head = samples.subset(range(min(len(samples), _PROBE)))
        probe = dataclasses.replace(extraction, batch_size=_PROBE, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped images are reported by the real pass
            decide_from_logits(_logits(handle, head, probe)[0], category_mapping)
    with open_run(output, "shape_bias") as run:
        with clock("evaluate"):
            logits, kept = _logits(handle, samples, extraction)
            responses = decide_from_logits(logits, category_mapping)
        table = DecisionTable.for_stimuli(name, responses, samples.subset(kept))
        stats = shape_bias_by_subject(table, pool_humans=False)[name]
        humans = reference_humans()
        logger.info("%s: shape bias %.4f (humans %.4f)", name, stats.shape_bias, humans.shape_bias)
        result = ShapeBiasRun(
            stats={name: stats, HUMANS: humans},
            model_name=name,
            shown=(HUMANS, name),
            decisions=table,
            params={"mapping": mapping_source(category_mapping, logits.shape[1])},
            provenance=Provenance(
                model=handle.spec,
                checkpoint=handle.checkpoint,
                checkpoint_sha256=handle.checkpoint_sha256,
                source=str(root),
            ),
        )
        figure = _draw({name: stats}, clock, humans=humans)
        files: tuple[Path, ...] = ()
        if run is not None:
            with clock("write"):
                csv = run.write_text(csv_name(name), table.to_csv_text())
                files = (csv, *_write(run, result, figure, figures))
    return _finish(run, result, (files, files[:1]), output, (figure, figures), clock)


def shape_bias_from_csv(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    models: Sequence[str] | None = None,
    colors: Sequence[Any] | None = None,
    markers: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
) -> ShapeBiasRun:
    """Compute the shape bias of every decision maker in decision csvs and draw the figure.

    Parameters
    ----------
    paths : path or sequence of paths
        Decision csvs (model-vs-human's format) or folders of them (every ``*.csv``, not
        recursive). A decision maker (``subj``) may occur in one file only.
    models : sequence of str, optional
        The decision makers to draw, in legend order, by ``subj`` (model-vs-human's names use
        underscores: ``vit_b_16``). Humans are always drawn. Default: every non-human decision
        maker, by descending shape bias.
    colors, markers, labels : sequence, optional
        One colour (name, hex or ``"R,G,B"`` in 0-255), matplotlib marker, or legend name
        (the reference's ``--plotting-names``) per entry of ``models``.
    figures : Figures, optional
        Formats (default png and pdf), dpi, show.
    output : Output, optional
        The run folder under ``work_dir`` (``None``: nothing written), trackers, and
        ``export``: a folder that receives the figures and ``shape_bias.json`` once the run
        folder is finished.

    Returns
    -------
    ShapeBiasRun
        ``run.stats`` has every ``subj`` of the csvs and the pooled ``"humans"`` (from the
        csvs' ``subject-NN`` rows, else the shipped reference counts).

    Raises
    ------
    DataError
        For a missing path, a csv without the needed columns, a decision maker in two files, or
        a name in ``models`` that is not in the csvs.
    ParameterError
        For colours, markers or labels that do not match ``models``.

    Examples
    --------
    >>> import featscope
    >>> from featscope.options import Output
    >>> run = featscope.shape_bias_from_csv("model-vs-human-cue-conflict/",
    ...                                     output=Output(work_dir=None))  # doctest: +SKIP
    >>> round(run["resnet50"].shape_bias, 3), round(run["humans"].shape_bias, 3)  # doctest: +SKIP
    (0.214, 0.959)
    """
    figures, output = figures or _FIGURES, output or Output()
    clock = Stopwatch()
    with clock("load"):
        table, files = read_decision_csvs(paths)
        stats = with_reference_humans(shape_bias_by_subject(table))
    order = select_decision_makers(stats, models)
    shown = (HUMANS, *[n for n in order if n != HUMANS])
    result = ShapeBiasRun(
        stats=stats,
        shown=shown,
        params={"csv_files": [str(f) for f in files], "shown": list(shown)},
        provenance=Provenance(source=table.source),
    )
    style = {"colors": colors, "markers": markers, "labels": labels}
    figure = _draw({n: stats[n] for n in order}, clock, **style)
    written: tuple[Path, ...] = ()
    with open_run(output, "shape_bias") as run:
        if run is not None:
            with clock("write"):
                written = _write(run, result, figure, figures)
    # the figures first and the numbers last: a copy never holds a json without its figures
    exports = (*written[1:], *written[:1])
    return _finish(run, result, (written, exports), output, (figure, figures), clock)


# --------------------------------------------------------------------------- stages


def _logits(handle: Any, samples: Any, extraction: Extraction) -> tuple[Any, Any]:
    """Run the model over the samples; return its ``(N, C)`` outputs and the positions read."""
    from featscope.capture import extract_features

    out = extract_features(
        handle,
        samples,
        "logits",
        batch_size=extraction.batch_size,
        device=extraction.device,
        num_workers=extraction.num_workers,
        progress=extraction.progress,
        skip_bad_images=extraction.skip_bad_images,
        amp=extraction.amp,
    )
    return class_scores(out.features), out.kept


def _draw(stats: dict[str, ShapeBiasStats], clock: Stopwatch, **style: Any) -> Any:
    with clock("render"):
        return plot_shape_bias(stats, **style).figure


def _write(run: Any, result: ShapeBiasRun, figure: Any, figures: Figures) -> tuple[Path, ...]:
    """Write ``shape_bias.json`` and the figures; record the result in the manifest."""
    numbers = run.write_json("shape_bias.json", result.to_dict())
    drawn = run.write_figure(figure, "shape_bias", formats=figures.formats, dpi=figures.dpi)
    run.add_result(result.model_name or "shape_bias", result)
    return (numbers, *drawn)


def _finish(
    run: Any,
    result: ShapeBiasRun,
    files: tuple[Sequence[Path], Sequence[Path]],
    output: Output,
    drawn: tuple[Any, Figures],
    clock: Stopwatch,
) -> ShapeBiasRun:
    """Show the figure, point the result at the finished run folder and make the copies.

    ``files`` are the result's files and those ``--out`` copies, as written in the hidden
    ``.partial`` folder (renamed since).
    """
    figure, figures = drawn
    if figures.show:
        from featscope.render import show

        show(figure)
    if run is None:
        return dataclasses.replace(result, timings=clock.timings)
    from featscope.sinks.export import export_files

    run_dir = run.final_path
    written, exports = ([run_dir / f.name for f in names] for names in files)
    copies = export_files(exports, output.export) if output.export is not None else ()
    return dataclasses.replace(
        result,
        run_dir=run_dir,
        files=tuple(written),
        exported=tuple(copies),
        timings=clock.timings,
    )
