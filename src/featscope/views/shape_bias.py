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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featscope.analysis.shape_bias import (
    HUMANS,
    as_mapping,
    class_scores,
    decide_from_logits,
    model_shape_bias,
    select_decision_makers,
    shape_bias_by_subject,
    with_reference_humans,
)
from featscope.data.cue_conflict import (
    check_model_name,
    default_model_name,
    locate_stimuli,
    read_decision_csvs,
    read_stimuli,
)
from featscope.options import Extraction, Figures, Output, Preprocess
from featscope.render.shape_bias import plot_shape_bias
from featscope.results import Provenance, ShapeBiasRun
from featscope.sinks.export import export_from_run, finished_paths
from featscope.sinks.open import open_run
from featscope.views._run import Stopwatch

__all__ = ["DEFAULT_MODEL", "ShapeBiasRun", "shape_bias", "shape_bias_from_csv"]

logger = logging.getLogger(__name__)

#: The model of ``featscope shape-bias`` with no arguments (real ImageNet weights).
DEFAULT_MODEL = "demo:efficientnet-lite0"
# batches of 32 and float32 (no autocast): decisions as the published numbers were measured
_EXTRACTION = Extraction(batch_size=32, amp="off")
_FIGURES = Figures(formats=("png", "pdf"))


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
    from featscope.capture.logits import extract_logits, probe_logits
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
        # outputs that cannot be mapped fail before the long loop and before a run folder exists
        head = probe_logits(handle, samples, extraction)
        decide_from_logits(class_scores(head.features), category_mapping)
    origin = handle.provenance(str(root))
    with open_run(output, "shape_bias") as run:
        with clock("evaluate"):
            out = extract_logits(handle, samples, extraction)
            stimuli, logits = samples.subset(out.kept), class_scores(out.features)
            result = model_shape_bias(name, logits, stimuli, category_mapping, provenance=origin)
        figure = _draw({name: result[name]}, clock, humans=result[HUMANS])
        files = _write(run, result, figure, figures, clock)
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
    with open_run(output, "shape_bias") as run:
        written = _write(run, result, figure, figures, clock)
    # the figures first and the numbers last: a copy never holds a json without its figures
    exports = (*written[1:], *written[:1])
    return _finish(run, result, (written, exports), output, (figure, figures), clock)


# --------------------------------------------------------------------------- stages


def _draw(stats: dict[str, Any], clock: Stopwatch, **style: Any) -> Any:
    with clock("render"):
        return plot_shape_bias(stats, **style).figure


def _write(run: Any, result: ShapeBiasRun, figure: Any, figures: Figures, clock: Stopwatch) -> Any:
    """Write the result (csv, json, manifest entry), then the figures; nothing without a run."""
    if run is None:
        return ()
    with clock("write"):
        written = run.write(result)
        drawn = run.write_figure(figure, "shape_bias", formats=figures.formats, dpi=figures.dpi)
        return (*written, *drawn)


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
    return dataclasses.replace(
        result,
        run_dir=run.final_path,
        files=tuple(finished_paths(run, files[0])),
        exported=tuple(export_from_run(run, files[1], output.export)),
        timings=clock.timings,
    )
