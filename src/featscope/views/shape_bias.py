"""The shape-bias view: a classifier on the cue-conflict stimuli, against humans.

``featscope.shape_bias(...)`` runs a model over the stimuli, turns its outputs into decisions
among the 16 categories, computes the shape bias and draws the figure of Geirhos et al. (ICLR
2019); ``featscope.shape_bias_from_csv(...)`` does the analysis and the figure from decision
csvs (model-vs-human's format, featscope's own or theirs). ``featscope shape-bias`` is a thin
wrapper around both. The stages are public on their own: :func:`featscope.load_model`,
:func:`featscope.capture.extract_features` (the ``logits`` point),
:func:`featscope.analysis.shape_bias.decide_from_logits`,
:func:`featscope.analysis.shape_bias.shape_bias_from_decisions` and
:func:`featscope.render.shape_bias.plot_shape_bias`.

Differences from the reference (mmpretrain ``ShapeBiasMetric`` and ``shape_bias.py``), on
purpose: the csv is named ``cue-conflict_<model>_session-1.csv`` as documented (the reference
writes ``cue_conflict_...``); the shape bias itself is computed and written
(``shape_bias.json``), not only a top-1 accuracy; no pandas < 2, no old matplotlib, no icon
download.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

from featscope.errors import CaptureError, DataError, OutputError, ParameterError
from featscope.results import Provenance
from featscope.views._run import Stopwatch, open_run

__all__ = ["DEFAULT_MODEL", "ShapeBiasRun", "csv_name", "shape_bias", "shape_bias_from_csv"]

logger = logging.getLogger(__name__)

#: The model of ``featscope shape-bias`` with no arguments (real ImageNet weights).
DEFAULT_MODEL = "demo:efficientnet-lite0"
_FIGURE_STEM = "shape_bias"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_PROBE = 8  # images run before the run folder is made, to check the model's output width


@dataclass(frozen=True)
class ShapeBiasRun:
    """What a shape-bias run produced.

    Attributes
    ----------
    stats : Mapping of str to ShapeBiasStats
        Every decision maker, by name (``subj``); the human observers pooled as ``"humans"``
        (the shipped reference counts when the input holds no human csv).
    model_name : str or None
        The evaluated model's name (its ``subj``), ``None`` for a run from csvs.
    shown : tuple of str
        The decision makers drawn in the figure, in legend order (humans first).
    decisions : DecisionTable or None
        The model's decisions, one row per stimulus, as written to the csv.
    provenance : Provenance or None
        Model, checkpoint and stimuli folder of an evaluation.
    run_dir : pathlib.Path or None
        The folder written (the run folder, or ``out_dir``); ``None`` when nothing was written.
    files : tuple of pathlib.Path
        The files written.
    timings : dict of str to float
        Seconds per stage.
    """

    stats: Mapping[str, Any]
    model_name: str | None = None
    shown: tuple[str, ...] = ()
    decisions: Any = None
    provenance: Provenance | None = None
    run_dir: Path | None = None
    files: tuple[Path, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats", MappingProxyType(dict(self.stats)))

    def __getitem__(self, name: str) -> Any:
        """Return the statistics of one decision maker."""
        try:
            return self.stats[name]
        except KeyError:
            raise KeyError(
                f"no decision maker {name!r}; this run has: {', '.join(self.stats)}"
            ) from None

    @property
    def shape_bias(self) -> float:
        """The evaluated model's shape bias (a run from csvs: use ``run[name].shape_bias``)."""
        if self.model_name is None:
            raise ParameterError(
                "this run was made from csvs and has no single model; read "
                f"run[name].shape_bias for one of {', '.join(self.stats)}"
            )
        return float(self.stats[self.model_name].shape_bias)

    def to_dict(self) -> dict[str, Any]:
        """Return what ``shape_bias.json`` holds: statistics per decision maker."""
        return {name: s.to_dict() for name, s in self.stats.items()}


def csv_name(model_name: str) -> str:
    """Return model-vs-human's file name for a model's decisions.

    Parameters
    ----------
    model_name : str
        The ``subj`` of the model; underscores become dashes in the file name, as in
        model-vs-human (``vit_b_16`` -> ``cue-conflict_vit-b-16_session-1.csv``).

    Returns
    -------
    str
        ``cue-conflict_<model-name>_session-1.csv``.
    """
    return f"cue-conflict_{model_name.replace('_', '-')}_session-1.csv"


def _check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_OK.match(name):
        raise ParameterError(
            f"`model_name` {name!r} cannot name a csv row and file: use letters, digits and "
            "_ . + - (starting with a letter or digit), e.g. my_resnet50"
        )
    return name


def _default_model_name(spec: str) -> str:
    # "timm:resnet50" -> "resnet50", "demo:efficientnet-lite0" -> "efficientnet_lite0",
    # "hf:./models/vit-base" -> "vit_base", "py:pkg.nets:build" -> "build", a module's qualified
    # class name -> the class name: model-vs-human's subj values use underscores
    kind, sep, body = spec.partition(":")
    if not sep or not re.fullmatch(r"[a-z]+", kind):
        body = spec.rsplit(".", 1)[-1]
    elif kind == "py":
        body = body.rsplit(":", 1)[-1]
    body = re.split(r"[/\\]", body.rstrip("/\\"))[-1]
    body = re.sub(r"\.(pt|pth|bin|safetensors|ckpt|jit)$", "", body)
    return re.sub(r"[^A-Za-z0-9.+]+", "_", body).strip("_.") or "model"


def _check_formats(formats: Sequence[str]) -> list[str]:
    # checked before the model runs; the same rule (and aliases) as save_figure
    from featscope.options import check_formats

    return list(check_formats(formats))


def _resolve_mapping(mapping: Any) -> Any:
    from featscope.analysis.shape_bias import CategoryMapping, load_mapping

    if mapping is None or isinstance(mapping, CategoryMapping):
        return mapping
    if isinstance(mapping, Mapping):
        from featscope.analysis.shape_bias import _check_mapping

        return _check_mapping(dict(mapping), "`mapping`")
    if isinstance(mapping, (str, os.PathLike)):
        return load_mapping(mapping)
    raise ParameterError(
        f"`mapping` must be a JSON/csv file, a dict of category -> class indices or a "
        f"CategoryMapping; got {type(mapping).__name__}"
    )


def shape_bias(
    model: Any = None,
    data: str | os.PathLike[str] | None = None,
    *,
    model_name: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    mapping: Any = None,
    input_size: tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str = "cpu",
    skip_bad_images: bool = False,
    work_dir: str | os.PathLike[str] | None = "work_dirs",
    backends: Sequence[str] | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 150,
    show: bool = False,
    progress: bool = True,
) -> ShapeBiasRun:
    """Measure a classifier's shape bias on the cue-conflict stimuli and draw it against humans.

    With no arguments, runs the built-in EfficientNet-Lite0 (real ImageNet weights, the
    ``demo`` extra) on the stimuli found by :func:`featscope.data.cue_conflict.locate_stimuli`.

    Parameters
    ----------
    model : str or torch.nn.Module or callable or ModelHandle, optional
        An ImageNet-1k classifier (any model spec: ``"timm:resnet50"``, ``"tv:resnet18"``,
        ``"hf:./dir"``, ``"ts:m.pt"``, ``"py:pkg.mod:factory"``, ``"demo:efficientnet-lite0"``),
        a module with 16 outputs (the categories, sorted), or any model with ``mapping``.
    data : str or os.PathLike, optional
        The stimuli folder (16 category sub-folders). Default: ``$FEATSCOPE_CUE_CONFLICT``,
        then ``~/.cache/featscope/cue-conflict``.
    model_name : str, optional
        The model's ``subj`` in the csv and legend (default: from the spec, e.g. ``resnet50``).
    checkpoint : str or os.PathLike, optional
        State dict to load into the model (``torch.load(weights_only=True)``).
    mapping : str or os.PathLike or dict or CategoryMapping, optional
        Output classes per category, for models whose outputs are neither ImageNet-1k's 1000
        classes nor the 16 categories (see :func:`featscope.analysis.shape_bias.load_mapping`).
    input_size, mean, std : optional
        Override the model's preprocessing.
    batch_size : int, default=32
        Images per forward pass.
    num_workers : int, optional
        DataLoader workers (default: chosen from the data size and the cores).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.
    skip_bad_images : bool, default=False
        Leave unreadable stimuli out (with a warning) instead of failing; the shape bias is then
        computed on the stimuli that could be read, and the csv holds only those.
    work_dir : str or os.PathLike or None, default="work_dirs"
        Where the run folder ``shape_bias_<timestamp>/`` is made; ``None`` writes nothing.
    backends : sequence of str, optional
        Also log to ``"tensorboard"`` and/or ``"wandb"``.
    formats : sequence of str, default=("png", "pdf")
        Figure formats.
    dpi : int, default=150
        Resolution of raster figures.
    show : bool, default=False
        Open the figure in a window.
    progress : bool, default=True
        Show a progress bar on a terminal.

    Returns
    -------
    ShapeBiasRun
        ``run.shape_bias`` is the model's shape bias; ``run.stats`` holds the model and the
        humans; the run folder holds ``cue-conflict_<model-name>_session-1.csv``,
        ``shape_bias.json`` and ``shape_bias.png``/``.pdf``.

    Raises
    ------
    featscope.errors.FeatscopeError
        For a stimuli folder not in the cue-conflict layout (:class:`DataError`), a model output
        that is neither 1000 nor 16 classes without ``mapping`` (:class:`ParameterError`), an
        unreadable stimulus without ``skip_bad_images`` (:class:`DataError`), and any
        other problem with the inputs.

    Examples
    --------
    >>> import featscope
    >>> run = featscope.shape_bias("timm:resnet50", "cue-conflict/")  # doctest: +SKIP
    >>> round(run.shape_bias, 3)  # doctest: +SKIP
    0.214
    """
    from featscope.analysis.shape_bias import (
        HUMANS,
        decide_from_logits,
        reference_humans,
        shape_bias_from_decisions,
    )
    from featscope.data.cue_conflict import DecisionTable, locate_stimuli, read_stimuli

    formats = _check_formats(formats)
    if model_name is not None:
        _check_model_name(model_name)
    timings: dict[str, float] = {}
    clock = Stopwatch(timings)
    with clock("load"):
        category_mapping = _resolve_mapping(mapping)
        root = locate_stimuli(data)
        samples = read_stimuli(root)
        from featscope.models import load_model

        handle = load_model(
            DEFAULT_MODEL if model is None else model,
            checkpoint=checkpoint,
            input_size=input_size,
            mean=mean,
            std=std,
            device=device,
        )
    name = model_name or _default_model_name(handle.spec)
    _check_model_name(name)
    provenance = Provenance(
        model=handle.spec,
        checkpoint=handle.checkpoint,
        checkpoint_sha256=handle.checkpoint_sha256,
        source=str(root),
    )
    logger.info("shape bias of %s (%s) on %d stimuli in %s", name, handle.spec, len(samples), root)
    extract_options = {
        "device": device,
        "num_workers": num_workers,
        "skip_bad_images": skip_bad_images,
    }
    with clock("evaluate"):
        # a few images first: a model whose outputs cannot be mapped fails before the long loop
        # and before a run folder is made (a few, so that one unreadable image skipped with
        # skip_bad_images does not leave the probe empty)
        head = samples.subset(range(min(len(samples), _PROBE)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped images are reported by the real pass
            probe, _ = _logits(handle, head, _PROBE, progress=False, **extract_options)
        decide_from_logits(probe, category_mapping)
    with open_run(work_dir, "shape_bias", backends) as run:
        with clock("evaluate"):
            logits, kept = _logits(
                handle, samples, batch_size, progress=progress, **extract_options
            )
            responses = decide_from_logits(logits, category_mapping)
        if len(kept) != len(samples):  # unreadable stimuli skipped: keep the rows that ran
            samples = samples.subset(kept)
        imagenames = [sample_id.rsplit("/", 1)[-1] for sample_id in samples.ids]
        shapes = [samples.class_names[label] for label in samples.labels]
        table = DecisionTable.from_decisions(name, list(responses), shapes, imagenames)
        stats = shape_bias_from_decisions(responses, shapes, imagenames, name=name)
        humans = reference_humans()
        all_stats = {name: stats, HUMANS: humans}
        logger.info(
            "%s: shape bias %.4f (%d shape, %d texture, %d other decisions; humans %.4f)",
            name,
            stats.shape_bias,
            stats.n_shape,
            stats.n_texture,
            stats.n_other,
            humans.shape_bias,
        )
        with clock("render"):
            figure = _draw({name: stats}, humans=humans)
        files: list[Path] = []
        if run is not None:
            with clock("write"):
                files.append(run.write_text(csv_name(name), table.to_csv_text()))
                files.append(run.write_json("shape_bias.json", _json_ready(all_stats)))
                files += run.write_figure(figure, _FIGURE_STEM, formats=formats, dpi=dpi)
                run.add_result(
                    name,
                    SimpleNamespace(
                        metrics=_metrics(stats),
                        params={"mapping": _mapping_source(category_mapping, logits.shape[1])},
                        provenance=provenance,
                        labels=samples.labels,
                    ),
                )
                run.add_metadata("model_name", name)
    run_dir = None if run is None else run.final_path
    if run_dir is not None:
        files = [run_dir / f.name for f in files]
    if show:
        from featscope.render import show as show_figure

        show_figure(figure)
    return ShapeBiasRun(
        stats=all_stats,
        model_name=name,
        shown=(HUMANS, name),
        decisions=table,
        provenance=provenance,
        run_dir=run_dir,
        files=tuple(files),
        timings=timings,
    )


def _logits(handle: Any, samples: Any, batch_size: int, **options: Any) -> tuple[Any, Any]:
    """Run the model over the samples; return its ``(N, C)`` outputs and the positions read."""
    from featscope.capture import extract_features

    out = extract_features(handle, samples, "logits", batch_size=batch_size, **options)
    if len(out.features) != 1:
        raise CaptureError(
            f"the model returns several outputs ({', '.join(out.features)}); shape bias needs "
            "one (N, classes) tensor of class scores; wrap the model to return the logits only"
        )
    (logits,) = out.features.values()
    return logits, out.kept


def _mapping_source(mapping: Any, width: int) -> str:
    if mapping is not None:
        return mapping.source
    return "16 outputs (the categories)" if width == 16 else "featscope:imagenet_16.json"


def _metrics(stats: Any) -> dict[str, float]:
    return {
        "shape_bias": stats.shape_bias,
        "shape_accuracy": stats.shape_accuracy,
        "texture_accuracy": stats.texture_accuracy,
        "n_shape": stats.n_shape,
        "n_texture": stats.n_texture,
        "n_other": stats.n_other,
    }


def _json_ready(stats: Mapping[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return {name: clean(s.to_dict()) for name, s in stats.items()}


def _draw(stats: Mapping[str, Any], **options: Any) -> Any:
    from featscope.render.shape_bias import plot_shape_bias

    return plot_shape_bias(stats, **options).figure


# --------------------------------------------------------------------------- from csvs


def _csv_files(paths: Any) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths or [])
    if not items:
        raise ParameterError("`paths` is empty; pass a folder of decision csvs or csv files")
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file())
            if not found:
                raise DataError(
                    f"folder '{path}' holds no .csv files; pass the folder of decision csvs "
                    "(cue-conflict_<name>_session-1.csv)"
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"decision csv or folder '{path}' does not exist; check the path")
    return files


def shape_bias_from_csv(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    models: Sequence[str] | None = None,
    colors: Sequence[Any] | None = None,
    markers: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] | None = "work_dirs",
    backends: Sequence[str] | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 150,
    show: bool = False,
) -> ShapeBiasRun:
    """Compute the shape bias of every decision maker in decision csvs and draw the figure.

    Parameters
    ----------
    paths : path or sequence of paths
        Decision csvs (model-vs-human's format) or folders of them (every ``*.csv`` in the
        folder, not recursive). A decision maker (``subj``) may occur in one file only.
    models : sequence of str, optional
        The decision makers to draw, in legend order, by ``subj`` (model-vs-human's model
        names use underscores: ``vit_b_16``). Humans are always drawn. Default: every non-human
        decision maker, by descending shape bias.
    colors : sequence, optional
        One colour per entry of ``models`` (names, hex or ``"R,G,B"`` in 0-255).
    markers : sequence of str, optional
        One matplotlib marker per entry of ``models``.
    labels : sequence of str, optional
        Legend names per entry of ``models`` (the reference's ``--plotting-names``).
    out_dir : path, optional
        Write ``shape_bias.json`` and the figures straight into this folder (made if needed)
        instead of a run folder.
    work_dir : path or None, default="work_dirs"
        Parent of the run folder ``shape_bias_<timestamp>/`` when ``out_dir`` is not given;
        ``None`` (and no ``out_dir``) writes nothing.
    backends : sequence of str, optional
        Also log to ``"tensorboard"``/``"wandb"`` (run folder only).
    formats : sequence of str, default=("png", "pdf")
        Figure formats.
    dpi : int, default=150
        Resolution of raster figures.
    show : bool, default=False
        Open the figure in a window.

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
    >>> run = featscope.shape_bias_from_csv("model-vs-human-cue-conflict/", work_dir=None)
    ... # doctest: +SKIP
    >>> round(run["resnet50"].shape_bias, 3), round(run["humans"].shape_bias, 3)  # doctest: +SKIP
    (0.214, 0.959)
    """
    from featscope.analysis.shape_bias import (
        HUMANS,
        is_human,
        reference_humans,
        shape_bias_by_subject,
    )
    from featscope.data.cue_conflict import concat_tables, read_decisions

    formats = _check_formats(formats)
    timings: dict[str, float] = {}
    clock = Stopwatch(timings)
    with clock("load"):
        files = _csv_files(paths)
        tables = []
        owner: dict[str, Path] = {}
        for path in files:
            table = read_decisions(path)
            for subj in table.subjects():
                if subj in owner:
                    raise DataError(
                        f"decision maker {subj!r} is in both '{owner[subj]}' and '{path}'; "
                        "keep one of the two files out of the input"
                    )
                owner[subj] = path
            tables.append(table)
        if not owner:
            raise DataError(f"the decision csvs {', '.join(map(str, files))} hold no rows")
        stats = shape_bias_by_subject(concat_tables(tables))
    if HUMANS not in stats:
        logger.info("no human csv (subject-NN) in the input: humans from featscope's reference")
        stats[HUMANS] = reference_humans()
    candidates = [n for n in stats if n != HUMANS and not is_human(n)]
    if models is None or len(models) == 0:
        chosen = sorted(candidates, key=lambda n: -_sortable(stats[n].shape_bias))
    else:
        unknown = [m for m in models if m not in stats]
        if unknown:
            hints = [m.replace("-", "_") for m in unknown if m.replace("-", "_") in stats]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            raise DataError(
                f"`models` {', '.join(map(repr, unknown))} not in the csvs{hint}; they hold: "
                f"{', '.join(candidates)} (and humans)"
            )
        chosen = list(dict.fromkeys(models))
    shown = [HUMANS, *[m for m in chosen if m != HUMANS]]
    for name in shown:
        logger.debug("%s: shape bias %.4f", name, stats[name].shape_bias)

    with clock("render"):
        figure = _draw(
            {n: stats[n] for n in (chosen if HUMANS in chosen else shown)},
            colors=colors,
            markers=markers,
            labels=labels,
        )
    written: list[Path] = []
    run_dir: Path | None = None
    with clock("write"):
        if out_dir is not None:
            run_dir, written = _write_plain(Path(out_dir), stats, figure, formats, dpi)
        else:
            with open_run(work_dir, "shape_bias", backends) as run:
                if run is not None:
                    written.append(run.write_json("shape_bias.json", _json_ready(stats)))
                    written += run.write_figure(figure, _FIGURE_STEM, formats=formats, dpi=dpi)
                    run.add_metadata("csv_files", [str(f) for f in files])
                    run.add_metadata("shown", shown)
            if run is not None:
                run_dir = run.final_path
                written = [run_dir / f.name for f in written]
    if show:
        from featscope.render import show as show_figure

        show_figure(figure)
    return ShapeBiasRun(
        stats=stats,
        model_name=None,
        shown=tuple(shown),
        run_dir=run_dir,
        files=tuple(written),
        timings=timings,
    )


def _sortable(value: float) -> float:
    return -1.0 if math.isnan(value) else value


def _write_plain(
    out_dir: Path, stats: Mapping[str, Any], figure: Any, formats: Sequence[str], dpi: int
) -> tuple[Path, list[Path]]:
    from featscope._atomic import write_text_atomic
    from featscope.render import save_figure

    json_path = out_dir / "shape_bias.json"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # the figures first, the numbers last: a json never stands beside missing figures
        json_path.unlink(missing_ok=True)
        figures = save_figure(figure, out_dir / _FIGURE_STEM, formats, dpi)
        write_text_atomic(
            json_path,
            json.dumps(_json_ready(stats), indent=2, sort_keys=True, allow_nan=False) + "\n",
        )
    except OSError as exc:
        raise OutputError(
            f"cannot write to --out-dir '{out_dir}': {exc.strerror or exc}; choose a writable "
            "folder"
        ) from exc
    return out_dir, [json_path, *figures]
