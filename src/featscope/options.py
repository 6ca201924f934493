"""The option groups that several views share, each a small frozen dataclass.

A view takes the few things that define it (model, data, points, its own method options) plus
these groups::

    featscope.tsne(model="timm:resnet18", data="val/",
                   selection=Selection(max_num_samples=50),
                   figures=Figures(formats=("png", "pdf"), dpi=300),
                   output=Output(work_dir="runs", backends=("tensorboard",)))

Each field declares its command-line flag beside its default (:func:`option`), so the parser,
the config file and the Python call cannot drift apart: ``featscope.cli.groups`` builds one
argparse group per dataclass from these declarations and turns parsed flags back into the
dataclass. A value is checked once, here, when the group is made; the message names the flag.

This module sits between ``analysis/`` and ``render/`` in the pipeline and imports nothing heavy.
"""

from __future__ import annotations

import copyreg
import dataclasses
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from featscope.errors import ParameterError

__all__ = [
    "BACKENDS",
    "EMBEDDING_METHODS",
    "FIGURE_FORMATS",
    "MAX_DPI",
    "EmbeddingOptions",
    "Extraction",
    "Figures",
    "Output",
    "Preprocess",
    "Selection",
    "check_formats",
    "check_saved_features",
    "flag_spec",
    "option",
]

#: Formats matplotlib writes for every view that draws.
FIGURE_FORMATS = ("png", "pdf", "svg", "jpg")
_FORMAT_ALIASES = {"jpeg": "jpg"}
#: Where a run is written besides its folder; ``local`` (the folder) is always on.
BACKENDS = ("local", "tensorboard", "wandb")
#: A raster figure of a few inches at this resolution is already tens of megapixels; more is a
#: typo (``--dpi 30000``) that would allocate gigabytes before anything is drawn.
MAX_DPI = 1200
#: The largest input side: a batch of 64 RGB 4096 x 4096 float inputs is already 12 GiB.
MAX_INPUT_SIDE = 4096
#: Seeds go to numpy and scikit-learn, which take 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
#: Amp modes of the forward pass.
AMP_MODES = ("auto", "off", "bf16", "fp16")
SAMPLE_MODES = ("random", "first")


def option(
    default: Any = None,
    *flags: str,
    help: str,
    from_arg: Callable[[Any], Any] | None = None,
    **argparse_kwargs: Any,
) -> Any:
    """Declare one field of an option group together with its command-line flag.

    Parameters
    ----------
    default : object
        The field's default, also the flag's default. A list or tuple default is stored as a
        tuple and given to argparse as a list.
    *flags : str
        The flag's spellings (``"--batch-size"``); the first is the one shown. None: the
        field has no flag (set from Python or a config file only).
    help : str
        One line for ``--help``; the default is appended unless the text states it.
    from_arg : callable, optional
        Turns the parsed value into the field's value (``tuple``, ``lambda v: not v``).
    **argparse_kwargs
        Passed to ``add_argument`` (``type``, ``nargs``, ``choices``, ``action``, ``metavar``,
        ``dest`` is always the field name).

    Returns
    -------
    dataclasses.Field
        The field, with the flag in its metadata.
    """
    metadata = {"flags": flags, "help": help, "from_arg": from_arg, "argparse": argparse_kwargs}
    if isinstance(default, (list, tuple)):
        frozen = tuple(default)
        return field(default_factory=lambda: frozen, metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_spec(group: type, name: str) -> Mapping[str, Any]:
    """Return the flag declaration of field ``name`` of an option group.

    Parameters
    ----------
    group : type
        An option-group dataclass (:class:`Selection`, :class:`Figures`, ...).
    name : str
        One of its fields.

    Returns
    -------
    Mapping
        ``flags``, ``help``, ``from_arg`` and ``argparse`` (the ``add_argument`` keywords).
    """
    for f in dataclasses.fields(group):
        if f.name == name:
            return f.metadata
    raise KeyError(f"{group.__name__} has no option {name!r}")


def _flag(group: Any, name: str) -> str:
    """Return the flag that sets ``name`` (for messages), or its Python name when it has none."""
    flags = flag_spec(type(group), name).get("flags") or ()
    return flags[0] if flags else name


def _tuple(value: Any) -> tuple | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes, os.PathLike, int, float)):
        return (value,)
    return tuple(value)


def _check_int(group: Any, name: str, low: int, high: int | None = None) -> None:
    value = getattr(group, name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        rule = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ParameterError(f"`{_flag(group, name)}` must be an integer {rule}; got {value!r}")


def _check_choice(group: Any, name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ParameterError(
            f"`{_flag(group, name)}` must be one of {', '.join(choices)}; got {value!r}"
        )


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """Return figure formats as a lower-case tuple without repeats, or raise naming the bad one.

    Parameters
    ----------
    formats : str or sequence of str
        ``"png"`` or ``("png", "pdf")``; a leading dot is allowed.

    Returns
    -------
    tuple of str

    Raises
    ------
    ParameterError
        For an empty list or a format matplotlib is not asked to write here.
    """
    items = (formats,) if isinstance(formats, str) else tuple(formats)
    if not items:
        raise ParameterError(f"`formats` is empty; pass one or more of {', '.join(FIGURE_FORMATS)}")
    checked: list[str] = []
    for item in items:
        fmt = str(item).lower().lstrip(".")
        fmt = _FORMAT_ALIASES.get(fmt, fmt)
        if fmt not in FIGURE_FORMATS:
            raise ParameterError(
                f"figure format {item!r} is not supported; choose from {', '.join(FIGURE_FORMATS)}"
            )
        if fmt not in checked:
            checked.append(fmt)
    return tuple(checked)


def check_saved_features(features: Any, **given: Any) -> None:
    """Refuse extraction inputs and options beside saved ``features``, where they would be ignored.

    Parameters
    ----------
    features : path or None
        The saved features; ``None`` (extract them) accepts everything.
    **given
        ``model``, ``data``, ``checkpoint`` (``None`` when not given), ``preprocess``
        (:class:`Preprocess`) and ``extraction`` (:class:`Extraction`: its ``device`` is used
        by the map itself, so it is allowed).

    Raises
    ------
    ParameterError
        Naming every option that saved features would silently ignore.
    """
    if features is None:
        return
    ignored = [f"`{k}`" for k in ("model", "data", "checkpoint") if given.get(k) is not None]
    preprocess, extraction = given.get("preprocess"), given.get("extraction")
    if preprocess is not None:
        ignored += [f"`{_flag(preprocess, k)}`" for k, v in preprocess.to_dict().items() if v]
    if extraction is not None:
        defaults = Extraction(device=extraction.device, progress=extraction.progress)
        ignored += [
            f"`{_flag(extraction, f.name)}`"
            for f in dataclasses.fields(Extraction)
            if getattr(extraction, f.name) != getattr(defaults, f.name)
        ]
    if ignored:
        raise ParameterError(
            f"saved `features` are mapped as they are, so {', '.join(ignored)} would be ignored; "
            "pass either `features` or the model, data and extraction options (--device is "
            "used for the map and is allowed)"
        )


def _freeze(group: Any, name: str, value: Any) -> None:
    object.__setattr__(group, name, value)


@dataclass(frozen=True)
class Selection:
    """Which samples a view uses: classes, how many of each, and the seed of every choice.

    The rule follows MMPretrain's ``vis_tsne.py`` (see :func:`featscope.data.select_indices`).
    """

    class_idx: tuple[int, ...] | None = option(
        None, "--class-idx", nargs="+", type=int, metavar="I",
        help="classes to use (default: the first --max-num-class that have samples)",
    )  # fmt: skip
    max_num_class: int | None = option(
        20, "--max-num-class", type=int, help="classes when --class-idx is not given (0: all)"
    )
    max_num_samples: int | None = option(
        100, "--max-num-samples", type=int, help="samples per class (0: all)"
    )
    sample: str = option(
        "random", "--sample", choices=SAMPLE_MODES,
        help="seeded random samples per class, or the first ones (the reference's rule)",
    )  # fmt: skip
    seed: int = option(0, "--seed", type=int, help="seed of every random choice")

    def __post_init__(self) -> None:
        _freeze(self, "class_idx", _tuple(self.class_idx))
        _check_choice(self, "sample", self.sample, SAMPLE_MODES)
        _check_int(self, "seed", 0, MAX_SEED)
        # -1 used to be taken as "all" without a word: 0 is the documented "all"
        for name in ("max_num_class", "max_num_samples"):
            if getattr(self, name) is not None:
                _check_int(self, name, 0)


@dataclass(frozen=True)
class Preprocess:
    """Overrides of the model's own preprocessing (``None`` keeps the model's value)."""

    input_size: tuple[int, int] | None = option(
        None, "--input-size", nargs="+", type=int, metavar="N",
        help="input size: S or H W (default: the model's)",
    )  # fmt: skip
    mean: tuple[float, float, float] | None = option(
        None,
        "--mean",
        nargs=3,
        type=float,
        help="normalisation mean, 0-1 scale (default: the model's)",
    )
    std: tuple[float, float, float] | None = option(
        None,
        "--std",
        nargs=3,
        type=float,
        help="normalisation std, 0-1 scale (default: the model's)",
    )
    in_chans: int | None = option(
        None, "--in-chans", type=int, metavar="N",
        help="input channels of the model: 1 grey, 3 RGB (default: from its first layer)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        size = _tuple(self.input_size)
        if size is not None:
            if len(size) == 1:
                size = (size[0], size[0])
            if len(size) != 2:
                raise ParameterError(
                    f"`--input-size` takes 1 or 2 integers (S or H W); got {list(size)}"
                )
            if not all(
                isinstance(v, numbers.Integral)
                and not isinstance(v, bool)
                and 1 <= v <= MAX_INPUT_SIDE
                for v in size
            ):
                # bounded before a batch of (batch, 3, H, W) floats is allocated
                raise ParameterError(
                    f"`--input-size` must be 1 or 2 integers from 1 to {MAX_INPUT_SIDE}; got "
                    f"{list(size)} (e.g. --input-size 224)"
                )
        _freeze(self, "input_size", size)
        _freeze(self, "mean", _tuple(self.mean))
        _freeze(self, "std", _tuple(self.std))
        if self.in_chans is not None:
            _check_int(self, "in_chans", 1, 4)

    def to_dict(self) -> dict[str, Any]:
        """Return the overrides that are set, as keyword arguments of ``load_model``."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Extraction:
    """How features are extracted: device, precision, batches, workers, cache, processes."""

    device: str = option("cpu", "--device", help="cpu, cuda, cuda:N or mps")
    amp: str = option(
        "auto", "--amp", choices=AMP_MODES,
        help="precision of the forward pass (auto: bf16 on CUDA; on a CPU with native bf16, bf16 "
        "when a check on the first images shows that it keeps the features; float32 elsewhere)",
    )  # fmt: skip
    batch_size: int | None = option(
        None, "--batch-size", type=int,
        help="images per forward pass (default: 64, and on a CPU fewer for large inputs: 8 at "
        "224 px, where small batches stay in cache and run faster)",
    )  # fmt: skip
    fold_bn: bool = option(
        True, "--no-fold-bn", action="store_false", from_arg=bool,
        help="run the model as it is, without folding each BatchNorm into the convolution "
        "before it (folding gives the same features to float32 rounding, faster)",
    )  # fmt: skip
    num_workers: int | None = option(
        None, "--num-workers", type=int, help="DataLoader workers (default: from data and cores)"
    )
    skip_bad_images: bool = option(
        False, "--skip-bad-images", action="store_true",
        help="leave unreadable images out (with a warning, listed in run.log) instead of failing",
    )  # fmt: skip
    cache_dir: Path | None = option(
        None, "--cache-dir", metavar="DIR",
        help="stream features to memory-mapped .npy files in DIR (bounded memory), with a "
        "progress record after every batch so that a killed run can be resumed",
    )  # fmt: skip
    resume: bool = option(
        False, "--resume", action="store_true",
        help="continue the extraction in --cache-dir from its last complete batch (or reuse it "
        "when finished); refused if the model, data or options changed",
    )  # fmt: skip
    nproc: int = option(
        1, "--nproc", type=int, metavar="K",
        help="extract with K processes (data-parallel; or run under torchrun "
        "--nproc_per_node=K -m featscope ...); rank 0 writes the results",
    )  # fmt: skip
    progress: bool = option(
        True, "--quiet", action="store_false", from_arg=bool,
        help="no progress bars, warnings only",
    )  # fmt: skip

    def __post_init__(self) -> None:
        _check_choice(self, "amp", self.amp, AMP_MODES)
        if self.batch_size is not None:
            _check_int(self, "batch_size", 1)
        if self.num_workers is not None:
            _check_int(self, "num_workers", 0)
        if self.cache_dir is not None:
            _freeze(self, "cache_dir", Path(self.cache_dir))


@dataclass(frozen=True)
class Figures:
    """How figures are drawn and saved: formats, resolution, window, legend, marker size."""

    formats: tuple[str, ...] = option(
        ("png",), "--format", nargs="+", choices=FIGURE_FORMATS, help="figure formats"
    )
    dpi: int = option(150, "--dpi", type=int, help="resolution of raster figures")
    show: bool = option(False, "--show", action="store_true", help="open the figures in a window")
    legend: bool = option(
        False, "--legend", action="store_true", help="legend with the class names"
    )
    annotate: bool = option(
        False, "--annotate", action="store_true", help="write the class index at points"
    )
    point_size: float | None = option(
        None, "--point-size", type=float, help="marker size (default: from the number of points)"
    )
    color_by: str | None = option(
        None, "--color-by", metavar="FIELD",
        help="colour the maps by label, prediction, correct, confidence, cluster or a metadata "
        "field (default: label; cluster for unlabelled data)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        _freeze(self, "formats", check_formats(self.formats))
        _check_int(self, "dpi", 10, MAX_DPI)


@dataclass(frozen=True)
class Output:
    """Where a run is written: the run folder, the trackers it mirrors to, one export.

    ``work_dir=None`` writes nothing (no folder, no trackers).
    """

    work_dir: Path | None = option(
        Path("work_dirs"), "--work-dir", metavar="DIR", help="parent folder of the run folder"
    )
    backends: tuple[str, ...] = option(
        (), "--backend", nargs="+", action="extend", choices=BACKENDS, metavar="NAME",
        help="also log to tensorboard and/or wandb (local, the run folder, is always on)",
    )  # fmt: skip
    export: Path | None = option(
        None, "--out", "-o", metavar="PATH",
        help="also copy the finished result to this file or folder",
    )  # fmt: skip
    name: str | None = None
    keep_failed: bool = False
    backend_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.work_dir is not None:
            _freeze(self, "work_dir", Path(self.work_dir))
        if self.export is not None:
            _freeze(self, "export", Path(self.export))
        backends: list[str] = []
        for name in _tuple(self.backends) or ():
            _check_choice(self, "backends", name, BACKENDS)
            if name not in backends:
                backends.append(name)
        _freeze(self, "backends", tuple(backends))
        _freeze(self, "backend_options", MappingProxyType(dict(self.backend_options or {})))
        if self.work_dir is None and self.export is not None:
            raise ParameterError(
                f"`--out` {str(self.export)!r} copies files of the finished run folder, but "
                "work_dir is None; pass a work_dir"
            )
        if self.work_dir is None and self.mirrored:
            raise ParameterError(
                f"backends {list(self.mirrored)} log beside the run folder, but work_dir is None; "
                "pass a work_dir"
            )

    @property
    def mirrored(self) -> tuple[str, ...]:
        """The backends besides ``local``, in order."""
        return tuple(b for b in self.backends if b != "local")


# ---------------------------------------------------------------------------------------------
# Embedding maps: the reducer and its parameters (featscope.tsne and featscope.Monitor).
# ---------------------------------------------------------------------------------------------


def _mappingproxy(mapping: dict[str, Any]) -> MappingProxyType:
    return MappingProxyType(mapping)


def _reduce_mappingproxy(mapping: MappingProxyType) -> tuple[Any, tuple[dict[str, Any]]]:
    return _mappingproxy, (dict(mapping),)


# Groups (and results) keep their mappings read-only, which pickle and copy.deepcopy refuse by
# default; they must travel to the processes of `nproc` and of Lightning's spawn strategies (a
# FeatscopeCallback holds its Monitor's groups), so read-only mappings pickle as their copy.
copyreg.pickle(MappingProxyType, _reduce_mappingproxy)

#: Reducers of an embedding map.
EMBEDDING_METHODS = ("tsne", "umap", "pca")
TSNE_INITS = ("pca", "random")
#: ``--align``: rotation/reflection onto the previous map (orthogonal Procrustes), or none.
ALIGN_METHODS = ("procrustes", "none")


def _learning_rate(text: str) -> float | str:
    """``--learning-rate``: ``auto`` or a number (the name is read as "a learning rate")."""
    return text if text == "auto" else float(text)


@dataclass(frozen=True)
class EmbeddingOptions:
    """How feature vectors become a 2-D or 3-D map: the method and its parameters.

    The t-SNE parameters have the meanings of scikit-learn's ``TSNE`` (see
    :class:`featscope.analysis.TSNE`) and reach it only when ``method="tsne"``; ``params`` holds
    any other parameter of the method (``{"n_neighbors": 30}`` for UMAP, ``{"whiten": True}``
    for PCA, ``{"metric": "cosine"}`` for t-SNE).
    """

    method: str = option(
        "tsne", "--method", choices=EMBEDDING_METHODS, help="the map: t-SNE, UMAP or PCA"
    )
    n_components: int = option(
        2, "--n-components", type=int, choices=(2, 3), help="dimensions of the map"
    )
    perplexity: float = option(
        30.0, "--perplexity", type=float, help="t-SNE: effective number of neighbours per point"
    )
    early_exaggeration: float = option(
        12.0, "--early-exaggeration", type=float,
        help="t-SNE: factor on the attraction during the first 250 iterations",
    )  # fmt: skip
    learning_rate: float | str = option(
        "auto", "--learning-rate", type=_learning_rate,
        help="t-SNE: step size in scikit-learn's units, or auto",
    )  # fmt: skip
    n_iter: int = option(
        750, "--n-iter", type=int,
        help="t-SNE: iterations, incl. 250 exaggerated (reference: 1000); the convergence "
        "stop may end earlier unless --no-early-stop",
    )  # fmt: skip
    early_stop: bool = option(
        True, "--no-early-stop", action="store_false", from_arg=bool,
        help="t-SNE: run exactly --n-iter iterations (no convergence stop, no "
        "--n-iter-without-progress stop), as many as sklearn's reference runs",
    )  # fmt: skip
    n_iter_without_progress: int = option(
        300, "--n-iter-without-progress", type=int,
        help="t-SNE: stop after this many iterations without a lower KL divergence",
    )  # fmt: skip
    init: str = option("pca", "--init", choices=TSNE_INITS, help="t-SNE: initial positions")
    pca_dims: int = option(
        50, "--pca-dims", type=int, help="t-SNE: PCA first to this width (0: off)"
    )
    align: str = option(
        "procrustes", "--align", choices=ALIGN_METHODS,
        help="turn each map onto the previous one (points of a run, compare runs, Monitor "
        "epochs) so clusters stay in place; none: independent orientations",
    )  # fmt: skip
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_choice(self, "method", self.method, EMBEDDING_METHODS)
        _check_choice(self, "align", self.align, ALIGN_METHODS)
        if self.n_components not in (2, 3) or isinstance(self.n_components, bool):
            raise ParameterError(f"`--n-components` must be 2 or 3; got {self.n_components!r}")
        if self.learning_rate != "auto" and (
            isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float))
        ):
            raise ParameterError(
                f"`--learning-rate` must be 'auto' or a number; got {self.learning_rate!r}"
            )
        _freeze(self, "params", MappingProxyType(dict(self.params or {})))

    def reducer_params(self) -> dict[str, Any]:
        """Return the keyword arguments of the method (those of ``reduce``/``embed``).

        Returns
        -------
        dict
            ``n_components``, the t-SNE parameters when ``method="tsne"``, and ``params``.
        """
        kwargs: dict[str, Any] = {"n_components": self.n_components}
        if self.method == "tsne":
            names = ("perplexity", "early_exaggeration", "learning_rate", "n_iter")
            names += ("n_iter_without_progress", "init", "pca_dims")
            kwargs.update({name: getattr(self, name) for name in names})
            if not self.early_stop:  # every iteration asked for runs
                kwargs.update(kl_rtol=None, n_iter_without_progress=None)
        kwargs.update(self.params)
        return kwargs
