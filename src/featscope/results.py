"""Frozen result objects passed from the analysis stage to renderers and sinks.

Results hold numpy arrays plus their provenance (model spec, checkpoint hash, capture point,
parameters, seed, sample ids, library versions). They import nothing heavy, so ``render/`` and
``sinks/`` can depend on them without pulling in torch.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import importlib
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from featscope.errors import MissingExtraError, ParameterError

__all__ = [
    "BrowseResult",
    "BrowsedSample",
    "CamMap",
    "CamRun",
    "CapturedMaps",
    "CompareRun",
    "EmbeddingResult",
    "FeatmapRun",
    "FeatureMap",
    "FeatureSet",
    "MonitorStep",
    "Provenance",
    "ReconstructedImage",
    "ReconstructionResult",
    "ReconstructionRun",
    "ShapeBiasRun",
    "ShapeBiasStats",
    "TsneRun",
    "library_versions",
]

_LIBRARIES = (
    "featscope",
    "numpy",
    "torch",
    "openTSNE",
    "scikit-learn",
    "timm",
    "transformers",
    "grad-cam",
    "numba",
)


def library_versions() -> dict[str, str]:
    """Return the installed versions of featscope and the libraries that shape its results.

    Returns
    -------
    dict of str to str
        Distribution name to version, for the ones that are installed, plus ``python``.
    """
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


# ---------------------------------------------------------------------------------------------
# How results show themselves: a short text repr here, the rich displays in render/notebook.py.
# ---------------------------------------------------------------------------------------------

#: Upper bound of every repr (a run of hundreds of maps still prints a screenful).
REPR_MAX_CHARS = 2000
_REPR_MAX_LINES = 12
_KEY_METRICS = ("knn_accuracy_map", "knn_accuracy_features", "trustworthiness", "silhouette_map")


def _notebook() -> Any:
    # results.py is a base module: it may not depend on a stage, and must stay cheap to import.
    # The displays are drawn by featscope.render.notebook, looked up by name when a result is
    # first displayed, so matplotlib and bokeh load only then.
    return importlib.import_module("featscope.render.notebook")


class _Shown:
    """Rich display in notebooks (``_repr_mimebundle_``, ``_repr_html_``) and :meth:`show`."""

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> dict[str, Any]:  # IPython's display protocol
        return _notebook().mimebundle(self)

    def _repr_html_(self) -> str | None:
        # None when the display is a picture (image/png), so IPython adds no second copy
        return _notebook().html_display(self)

    def show(self) -> None:
        """Display the result: inline in a notebook, else a browser tab or a figure window."""
        _notebook().show(self)


def _summary(head: str, lines: Sequence[str] = (), tail: Sequence[str | None] = ()) -> str:
    """Return ``<head>`` with indented lines, then the tail lines, within :data:`REPR_MAX_CHARS`.

    At most a dozen lines in all: the tail (where it was written, timings) is always kept, and
    what does not fit of ``lines`` is counted (``... and 7 more``).
    """
    tail = [t for t in tail if t]
    room = max(1, _REPR_MAX_LINES - len(tail))
    lines = [line for line in lines if line]
    if len(lines) > room:
        lines = [*lines[: room - 1], f"... and {len(lines) - room + 1} more"]
    text = "\n".join([head, *(f"  {line}" for line in [*lines, *tail])])
    if len(text) > REPR_MAX_CHARS - 1:
        text = text[: REPR_MAX_CHARS - 5] + " ..."
    return f"<{text}>"


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _number(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}"
    return _short(value, 30)


def _metric_text(metrics: Mapping[str, Any], names: Sequence[str] = _KEY_METRICS) -> str:
    shown = [f"{k} {_number(metrics[k])}" for k in names if metrics.get(k) is not None]
    return ", ".join(shown)


def _origin(provenance: Provenance) -> str:
    parts = []
    if provenance.model:
        parts.append(f"model {_short(provenance.model, 50)}")
    if provenance.weights:
        parts.append(f"{provenance.weights} weights")
    if provenance.source:
        parts.append(f"data {_short(provenance.source, 50)}")
    return ", ".join(parts)


def _where(run_dir: Path | None, extra: str = "") -> str:
    if run_dir is None:
        return "in memory (work_dir=None: nothing written)"
    return f"written to {_short(run_dir, 120)}{extra}"


def _took(timings: Mapping[str, float]) -> str | None:
    if not timings:
        return None
    stages = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
    return f"took {sum(timings.values()):.2f} s ({stages})"


def _skipped(skipped: Sequence[Any]) -> str | None:
    return f"skipped {len(skipped)} unreadable images" if skipped else None


def _classes(labels: np.ndarray, class_names: Sequence[str]) -> str:
    if not class_names and (labels.size == 0 or bool(np.all(labels < 0))):
        return "unlabelled"
    present = int(np.unique(labels[labels >= 0]).size)
    return f"{present} of {len(class_names)} classes" if class_names else f"{present} classes"


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise MissingExtraError(
            f"to_dataframe() needs `pandas`, which is not installed ({exc}); install it with: "
            "pip install 'featscope[pandas]'"
        ) from exc
    return pandas


def _map_frame(result: EmbeddingResult, **first: Any) -> Any:
    """Return one map's rows as a DataFrame (see :meth:`EmbeddingResult.to_dataframe`)."""
    pd = _pandas()
    n = len(result.labels)
    names = result.class_names
    columns: dict[str, Any] = {key: [value] * n for key, value in first.items()}
    columns["id"] = list(result.ids)
    columns["label"] = result.labels
    columns["class_name"] = [
        names[i] if 0 <= i < len(names) else "" for i in result.labels.tolist()
    ]
    for axis, name in enumerate("xyz"[: result.n_components]):
        columns[name] = result.coords[:, axis]
    for name, values in dict(getattr(result, "fields", None) or {}).items():
        columns[name] = np.asarray(values)
    return pd.DataFrame(columns)


def _maps_frame(results: Sequence[EmbeddingResult], key: str, keys: Sequence[Any]) -> Any:
    pd = _pandas()
    frames = [_map_frame(r, **{key: k}) for r, k in zip(results, keys, strict=True)]
    if not frames:
        return pd.DataFrame(columns=[key, "id", "label", "class_name", "x", "y"])
    return pd.concat(frames, ignore_index=True)


def _metrics_frame(results: Sequence[EmbeddingResult], **first: Sequence[Any]) -> Any:
    pd = _pandas()
    rows = []
    for i, r in enumerate(results):
        row = {key: values[i] for key, values in first.items()}
        row.update(point=r.point, method=r.method, n_components=r.n_components)
        row.update(dict(r.metrics))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Provenance:
    """Where a result came from.

    Attributes
    ----------
    model : str or None
        The model spec (``"timm:resnet50"``), or ``None`` for features read from disk.
    checkpoint : str or None
        Path of the checkpoint loaded into the model, if any.
    checkpoint_sha256 : str or None
        SHA-256 of the checkpoint file.
    weights : str or None
        What weights the model held: ``"random"``, ``"pretrained"``, ``"checkpoint"``,
        ``"shipped"`` or ``"given"`` (see :class:`featscope.models.ModelHandle`).
    preprocessing : Mapping
        The preprocessing in effect for the model: sizes, crop, interpolation, mean, std,
        channels and where each came from (:func:`featscope.models.describe_preprocessing`);
        empty for features read from disk.
    source : str
        What the samples came from: a folder, a file list, a features file, ``demo:digits``.
    seed : int
        Seed of every random choice (sample selection, initialisation).
    versions : Mapping
        Library versions (see :func:`library_versions`).
    created : str
        ISO-8601 time the result was made (UTC).
    """

    model: str | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    source: str = ""
    seed: int = 0
    weights: str | None = None
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=library_versions)
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", _frozen_mapping(self.versions))
        object.__setattr__(self, "preprocessing", _frozen_mapping(self.preprocessing))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready copy."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class FeatureSet(_Shown):
    """Pooled feature vectors at one capture point, one row per sample.

    Attributes
    ----------
    features : numpy.ndarray
        ``(N, D)`` float32 features, rows in sample order.
    labels : numpy.ndarray
        ``(N,)`` int64 class indices into ``class_names``.
    class_names : tuple of str
        Name of every class index of the data source (not only those present).
    ids : tuple of str
        A stable id per sample: the image path relative to the data root, or ``"<source>:<i>"``.
    point : str
        Capture point the features come from (``"layer4"``, ``"pre_logits"``, ``"neck.0"``).
    pooling : str
        How maps or tokens became vectors: ``"none"``, ``"global_avg"``, ``"cls_token"`` or
        ``"token_mean"``.
    provenance : Provenance
        Model, checkpoint, data source, seed and versions.
    fields : Mapping of str to numpy.ndarray
        Metadata columns that travel with the samples (extra columns of a file list, extra
        fields of a Dataset's dict items, other columns of a Hugging Face dataset), each 1-D
        of length N, in row order.
    logits : numpy.ndarray or None
        ``(N, C)`` float32 classifier outputs of the same forward pass as ``features`` (None
        for a model without a ``logits`` point, or saved features).
    aliases : tuple of str
        Other capture-point names whose features were the same as these (mapped once, under
        ``point``).
    """

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    ids: tuple[str, ...]
    point: str
    pooling: str = "none"
    provenance: Provenance = field(default_factory=Provenance)
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)
    logits: np.ndarray | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        features = np.asarray(self.features)
        labels = np.asarray(self.labels, dtype=np.int64)
        if features.ndim != 2:
            raise ValueError(f"features must be 2-D (N, D); got shape {features.shape}")
        if len(labels) != len(features) or len(self.ids) != len(features):
            raise ValueError(
                f"features ({len(features)}), labels ({len(labels)}) and ids ({len(self.ids)}) "
                "must have one entry per sample"
            )
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "fields", _columns(self.fields, len(features)))
        if self.logits is not None:
            logits = np.asarray(self.logits)
            if logits.ndim != 2 or len(logits) != len(features):
                raise ValueError(
                    f"logits must be (N, C) with N = {len(features)}; got shape {logits.shape}"
                )
            object.__setattr__(self, "logits", logits)
        object.__setattr__(self, "aliases", tuple(self.aliases))

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        n, d = self.features.shape
        head = (
            f"FeatureSet {self.point!r}: {n:,} samples x {d:,} dims ({self.features.dtype}), "
            f"{_classes(self.labels, self.class_names)}, pooling {self.pooling}"
        )
        extra = list(getattr(self, "fields", None) or ())
        lines = [f"fields: {_short(', '.join(extra), 200)}"] if extra else []
        return _summary(head, lines, [_origin(self.provenance)])


@dataclass(frozen=True)
class EmbeddingResult(_Shown):
    """A 2-D or 3-D map of one :class:`FeatureSet`, with its quality metrics.

    Attributes
    ----------
    coords : numpy.ndarray
        ``(N, n_components)`` float64 coordinates, rows in the order of ``labels``.
    labels : numpy.ndarray
        ``(N,)`` int64 class indices.
    class_names : tuple of str
        Names of all class indices of the source.
    ids : tuple of str
        Sample ids, as in the :class:`FeatureSet`.
    point : str
        Capture point.
    method : str
        ``"tsne"``, ``"umap"`` or ``"pca"``.
    params : Mapping
        The parameters the reducer actually used ("auto" values resolved, clamps applied).
    metrics : Mapping
        Quality metrics (see :func:`featscope.analysis.embedding_metrics`).
    pooling : str
        Pooling rule of the features.
    provenance : Provenance
        Model, checkpoint, data source, seed and versions.
    fields : Mapping of str to numpy.ndarray
        Per-sample columns in row order, each 1-D of length N. Reserved names:
        ``"prediction"`` (int64 class index into ``class_names``; -1 = none),
        ``"confidence"`` (float32, probability of the predicted class), ``"correct"`` (bool;
        absent for unlabelled data), ``"cluster"`` (int64; -1 = noise). Any other name is a
        metadata column (numbers or str).
    neighbors : numpy.ndarray or None
        ``(N, k)`` int32: for each sample the rows of its k nearest neighbours in FEATURE
        space (itself excluded; k = 10, fewer when N <= 10); None when not computed.
    """

    coords: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    ids: tuple[str, ...]
    point: str
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    pooling: str = "none"
    provenance: Provenance = field(default_factory=Provenance)
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)
    neighbors: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(np.asarray(self.labels))
        object.__setattr__(self, "fields", _columns(self.fields, n))
        if self.neighbors is not None:
            neighbors = np.asarray(self.neighbors, dtype=np.int32)
            if neighbors.ndim != 2 or len(neighbors) != n:
                raise ValueError(
                    f"neighbors must be (N, k) with N = {n}; got shape {neighbors.shape}"
                )
            object.__setattr__(self, "neighbors", neighbors)
        object.__setattr__(self, "coords", np.asarray(self.coords, dtype=np.float64))
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int64))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "params", _frozen_mapping(self.params))
        object.__setattr__(self, "metrics", _frozen_mapping(self.metrics))

    @property
    def n_components(self) -> int:
        """Number of map dimensions (2 or 3)."""
        return int(self.coords.shape[1])

    @property
    def labelled(self) -> bool:
        """Whether the samples have classes (unlabelled ones: no class names, labels -1)."""
        return bool(self.class_names) or not bool(np.all(self.labels < 0))

    @functools.cached_property
    def page_html(self) -> str:
        """The interactive page of this one map, built in memory on first use."""
        return _notebook().page_html(self)

    def __repr__(self) -> str:
        method = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}.get(self.method, self.method)
        head = (
            f"EmbeddingResult {self.point!r}: {method} {self.n_components}-D map of "
            f"{len(self.labels):,} samples, {_classes(self.labels, self.class_names)}"
        )
        lines = [f"metrics: {_metric_text(self.metrics)}"] if self.metrics else []
        extra = list(getattr(self, "fields", None) or ())
        if extra:
            lines.append(f"fields: {_short(', '.join(extra), 200)}")
        return _summary(head, lines, [_origin(self.provenance)])

    def to_dataframe(self) -> Any:
        """Return the map as a table: one row per sample.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``label``, ``class_name`` (``""`` for unlabelled samples), ``x``,
            ``y`` (and ``z`` for a 3-D map), then every column of :attr:`fields`
            (predictions, confidence, clusters, metadata), rows in sample order.

        Raises
        ------
        MissingExtraError
            When pandas is not installed (``pip install 'featscope[pandas]'``).
        """
        return _map_frame(self)

    def metrics_dataframe(self) -> Any:
        """Return the quality metrics as a one-row table (``point``, ``method``, metrics)."""
        return _metrics_frame([self])


# ---------------------------------------------------------------------------------------------
# Results of feature maps and their differences.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapturedMaps(_Shown):
    """The feature maps of one image, captured in one forward pass, and where they lie on it.

    Made by :func:`featscope.capture.maps.capture_maps`.

    Attributes
    ----------
    image_id : str
        The image.
    maps : Mapping
        ``{point: {output name: (C, h, w) float32}}``: every tensor of every point, laid out
        channels-first (tokens on their grid), batch axis dropped, as captured.
    region : (int, int, int, int)
        ``(left, top, right, bottom)`` of the photo the model saw, in the photo's pixels (the
        centre crop of a classifier's preprocessing; the whole photo for a detector).
    valid : (float, float) or None
        Detectors only: the fraction of each map's height and width that is image, the rest
        being the padding the detector's transform added at the bottom/right.
    provenance : Provenance
        The model, checkpoint and image source.
    """

    image_id: str
    maps: Mapping[str, Mapping[str, np.ndarray]]
    region: tuple[int, int, int, int]
    valid: tuple[float, float] | None = None
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        frozen = {p: _frozen_mapping(levels) for p, levels in self.maps.items()}
        object.__setattr__(self, "maps", MappingProxyType(frozen))
        object.__setattr__(self, "region", tuple(int(v) for v in self.region))

    def __repr__(self) -> str:
        lines = [
            f"{point} {name}: {'x'.join(str(v) for v in np.shape(array))}"
            for point, levels in self.maps.items()
            for name, array in levels.items()
        ]
        head = f"CapturedMaps of {self.image_id!r}: {len(self.maps)} points, region {self.region}"
        return _summary(head, lines)


@dataclass(frozen=True)
class FeatureMap(_Shown):
    """One drawn feature map: one image, one capture point, one level.

    Attributes
    ----------
    image_id : str
        The image: its path as given, or the name of an in-memory/demo image.
    point : str
        The capture point asked for (``"layer4"``, ``"backbone.fpn"``).
    name : str
        The output drawn: the point, or ``<point>.<level>`` for the elements of tuple and dict
        outputs (FPN levels, multi-stage backbones).
    values : numpy.ndarray
        The raw ``(C, h, w)`` float32 map as captured (tokens laid out on their grid; for a
        difference ``|F_a - F_b|``), before any crop, standardisation or resizing.
    drawn : numpy.ndarray
        The picture written, RGB uint8 ``(H, W, 3)``.
    file : str or None
        File name (without suffix) of the pictures and the ``.npy`` in the run folder.
    params : Mapping
        How it was drawn: the shapes, the region of the photo, the colour scale, the crop, and
        the drawing options.
    provenance : Provenance
        The model (model A of a difference), its checkpoint and the image source.
    provenance_b : Provenance or None
        Model B of a difference; ``None`` for a plain feature map.
    """

    image_id: str
    point: str
    name: str
    values: np.ndarray
    drawn: np.ndarray
    file: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    provenance_b: Provenance | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen_mapping(self.params))

    @property
    def level(self) -> str | None:
        """The level of a tuple/dict output (``"0"``, ``"pool"``), or ``None``."""
        return self.name[len(self.point) + 1 :] if self.name != self.point else None

    def _line(self) -> str:
        values = "x".join(str(v) for v in np.shape(self.values))
        drawn = "x".join(str(v) for v in np.shape(self.drawn)[:2])
        return f"{_short(self.image_id, 50)} · {self.name}: values {values} -> picture {drawn}"

    def __repr__(self) -> str:
        kind = "difference " if self.provenance_b is not None else ""
        file = f", file {self.file}" if self.file else ""
        return _summary(f"FeatureMap {kind}{self._line()}{file}", (), [_origin(self.provenance)])


class _MapsOfARun:
    """What runs made of maps share: ``maps``, ``params`` and ``timings`` frozen; len, iteration.

    For frozen dataclasses with those three fields (:class:`FeatmapRun`, :class:`CamRun`).
    """

    def __post_init__(self) -> None:
        object.__setattr__(self, "maps", tuple(self.maps))
        object.__setattr__(self, "params", _frozen_mapping(self.params))
        object.__setattr__(self, "timings", _frozen_mapping(self.timings))

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.maps)


@dataclass(frozen=True)
class FeatmapRun(_MapsOfARun, _Shown):
    """What one feature-map (or difference) run produced.

    Attributes
    ----------
    maps : tuple of FeatureMap
        One per image, point and level, in image order, then point order, then level order.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` when ``work_dir=None``).
    view : str
        ``"featmap"`` or ``"featmap_diff"``.
    models : tuple of str
        The model spec(s).
    params : Mapping
        The drawing options used.
    timings : Mapping of str to float
        Seconds spent in each stage (``load``, ``forward``, ``draw``, ``write``).
    skipped : tuple of (str, str)
        ``(image id, reason)`` of unreadable images skipped with ``skip_bad_images=True``.
    exported : tuple of pathlib.Path
        The copies made for ``Output.export`` (``--out``).
    """

    maps: tuple[FeatureMap, ...]
    run_dir: Path | None
    view: str = "featmap"
    models: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()
    exported: tuple[Path, ...] = ()

    def __getitem__(self, key: tuple[str, str]) -> FeatureMap:
        """Return the map of ``(image_id, name)``."""
        for item in self.maps:
            if (item.image_id, item.name) == tuple(key):
                return item
        have = ", ".join(f"({m.image_id!r}, {m.name!r})" for m in self.maps[:8])
        raise KeyError(f"no map for {key!r}; this run has e.g. {have}")

    @property
    def raw(self) -> dict[tuple[str, str], np.ndarray]:
        """Raw ``(C, h, w)`` maps by ``(image_id, name)``."""
        return {(m.image_id, m.name): m.values for m in self.maps}

    @property
    def drawn(self) -> dict[tuple[str, str], np.ndarray]:
        """Drawn RGB pictures by ``(image_id, name)``."""
        return {(m.image_id, m.name): m.drawn for m in self.maps}

    @property
    def files(self) -> dict[tuple[str, str], Path]:
        """The ``.png`` files written, by ``(image_id, name)`` (empty without a run folder)."""
        if self.run_dir is None:
            return {}
        return {(m.image_id, m.name): self.run_dir / f"{m.file}.png" for m in self.maps}

    def __repr__(self) -> str:
        images = len({m.image_id for m in self.maps})
        names = list(dict.fromkeys(m.name for m in self.maps))
        head = (
            f"FeatmapRun {self.view}: {len(self.maps)} maps, {images} images x "
            f"{len(names)} outputs ({_short(', '.join(names), 80)})"
        )
        if self.models:
            head += f" · {_short(' vs '.join(self.models), 100)}"
        tail = [_where(self.run_dir), _took(self.timings), _skipped(self.skipped)]
        return _summary(head, [m._line() for m in self.maps], tail)


# ---------------------------------------------------------------------------------------------
# Results of class activation maps.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CamMap(_Shown):
    """One class activation map: one image, one method, one class.

    Attributes
    ----------
    image_id : str
        The image: its path as given, or the name of an in-memory/demo image.
    method : str
        The method (``"gradcam"``, ``"scorecam"``, ...; pytorch-grad-cam computed it).
    class_index : int
        The class explained.
    class_name : str
        Its short name (``"espresso"``), or ``"class <i>"`` when the model has no names.
    probability : float
        The model's probability of that class on this image.
    values : numpy.ndarray
        float32 ``(H, W)`` map in [0, 1] at the model's input size (the photo's centre crop
        the model saw), as pytorch-grad-cam returns it.
    drawn : numpy.ndarray
        The picture written, RGB uint8, over the photo's region as the feature maps draw it.
    score : float or None
        The faithfulness of the map by ``metric`` (higher is better), ``None`` when not scored.
    metric : str or None
        ``"confidence"`` or ``"road"`` (see ``featscope.capture.cam.CamSession.faithfulness``).
    point : str
        The capture point the map was computed at.
    file : str or None
        File name (without suffix) of the pictures and the ``.npy`` in the run folder.
    params : Mapping
        The options, the region of the photo and the title.
    provenance : Provenance
        The model, its checkpoint and the image source.
    """

    image_id: str
    method: str
    class_index: int
    class_name: str
    probability: float
    values: np.ndarray
    drawn: np.ndarray
    score: float | None = None
    metric: str | None = None
    point: str = ""
    file: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen_mapping(self.params))

    @property
    def metrics(self) -> dict[str, float]:
        """``probability`` and ``faithfulness_<metric>``, as the manifest records them."""
        out = {"probability": float(self.probability)}
        if self.score is not None:
            out[f"faithfulness_{self.metric}"] = float(self.score)
        return out

    def __repr__(self) -> str:
        score = "" if self.score is None else f", {self.metric}={self.score:+.3f}"
        return (
            f"CamMap({self.image_id!r}, {self.method}, {self.class_name!r} "
            f"p={self.probability:.3f}{score}, {self.values.shape[1]}x{self.values.shape[0]})"
        )


@dataclass(frozen=True)
class CamRun(_MapsOfARun, _Shown):
    """What one class-activation-map run produced.

    Attributes
    ----------
    maps : tuple of CamMap
        In image order, then class order, then method order.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` when ``work_dir=None``).
    model : str
        The model spec.
    point : str
        The capture point.
    params : Mapping
        The options used.
    sheet : numpy.ndarray or None
        The sheet of every map (RGB uint8), ``None`` with ``sheet="none"``.
    timings : Mapping of str to float
        Seconds spent in each stage (``load``, ``cam``: the maps and their scores, ``draw``,
        ``write``).
    skipped : tuple of (str, str)
        ``(image id, reason)`` of unreadable images skipped with ``skip_bad_images=True``.
    exported : tuple of pathlib.Path
        The copies made for ``Output.export`` (``--out``).
    """

    maps: tuple[CamMap, ...]
    run_dir: Path | None
    model: str = ""
    point: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    sheet: np.ndarray | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()
    exported: tuple[Path, ...] = ()

    def __getitem__(self, key: tuple[str, str, int | str]) -> CamMap:
        """Return the map of ``(image_id, method, class index or name)``."""
        if not isinstance(key, tuple) or len(key) != 3:
            raise KeyError(
                f"a CamRun is indexed by (image, method, class), e.g. "
                f"run['a.jpg', 'gradcam', 'tabby']; got {key!r} (all maps: run.maps)"
            )
        image_id, method, cls = key
        for item in self.maps:
            if (item.image_id, item.method) == (image_id, method) and cls in (
                item.class_index,
                item.class_name,
            ):
                return item
        have = ", ".join(f"({m.image_id!r}, {m.method!r}, {m.class_index})" for m in self.maps[:6])
        raise KeyError(f"no map for {key!r}; this run has e.g. {have}")

    @property
    def scores(self) -> list[dict[str, Any]]:
        """One row per map: image, method, class, probability and faithfulness score."""
        return [
            {
                "image": m.image_id,
                "method": m.method,
                "class_index": m.class_index,
                "class_name": m.class_name,
                "probability": float(m.probability),
                "metric": m.metric,
                "score": None if m.score is None else float(m.score),
            }
            for m in self.maps
        ]

    def to_dataframe(self) -> Any:
        """Return :attr:`scores` as a table: one row per map."""
        columns = ["image", "method", "class_index", "class_name", "probability", "metric"]
        return _pandas().DataFrame(self.scores, columns=[*columns, "score"])

    def __repr__(self) -> str:
        images = len({m.image_id for m in self.maps})
        methods = list(dict.fromkeys(m.method for m in self.maps))
        where = f", run_dir={str(self.run_dir)!r}" if self.run_dir is not None else ""
        return (
            f"CamRun({len(self.maps)} maps of {images} image(s), {self.model} at "
            f"{self.point!r}, methods={methods}{where})"
        )


# ---------------------------------------------------------------------------------------------
# Results of reconstructions of masked-image models.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconstructedImage(_Shown):
    """One image's reconstruction by a masked-image model.

    Attributes
    ----------
    image_id : str
        The image: its path as given, or its name.
    original : numpy.ndarray
        ``(H, W, 3)`` uint8: the model input (resized and cropped), de-normalised.
    mask : numpy.ndarray
        ``(H, W)`` bool, True on pixels of hidden patches.
    patch_mask : numpy.ndarray
        ``(gh, gw)`` bool, True on hidden model patches.
    masked : numpy.ndarray
        ``(H, W, 3)`` uint8: the original with hidden pixels in the mask colour.
    reconstruction : numpy.ndarray
        ``(H, W, 3)`` uint8: the prediction everywhere (MaskFeat: the predicted HOG picture).
    pasted : numpy.ndarray
        ``(H, W, 3)`` uint8: original on visible patches, prediction on hidden ones (MaskFeat:
        the input's HOG on visible patches, the predicted HOG on hidden ones).
    error : float
        Mean squared error over the hidden pixels on the 0-1 scale (MaskFeat: over the HOG
        values of hidden patches).
    hog_original : numpy.ndarray or None
        ``(H, W, 3)`` uint8 HOG picture of the input (MaskFeat only).
    hog_prediction, hog_target : numpy.ndarray or None
        ``(3, 9, hc, wc)`` float32 predicted and input HOG cell histograms (MaskFeat only).
    file : str or None
        File stem of the image's figure in the run folder.
    """

    image_id: str
    original: np.ndarray
    mask: np.ndarray
    patch_mask: np.ndarray
    masked: np.ndarray
    reconstruction: np.ndarray
    pasted: np.ndarray
    error: float
    hog_original: np.ndarray | None = None
    hog_prediction: np.ndarray | None = None
    hog_target: np.ndarray | None = None
    file: str | None = None

    def _line(self) -> str:
        height, width = np.shape(self.original)[:2]
        hidden = f"{int(np.sum(self.patch_mask))} of {np.size(self.patch_mask)} patches hidden"
        return f"{_short(self.image_id, 50)}: {height}x{width}, {hidden}, error {self.error:.4g}"

    def __repr__(self) -> str:
        return _summary(f"ReconstructedImage {self._line()}")


def _stacked(name: str, doc: str) -> property:
    """Return a property that stacks attribute ``name`` of every image into one array."""
    return property(lambda self: np.stack([getattr(i, name) for i in self.images]), doc=doc)


@dataclass(frozen=True)
class ReconstructionResult(_Shown):
    """What a masked-image model filled in on a set of images: a sequence of images.

    Attributes
    ----------
    images : tuple of ReconstructedImage
        One per image, in input order (unreadable images skipped).
    family : {"mae", "simmim", "maskfeat"}
        The model family.
    params : Mapping
        ``mask_ratio``, ``mask_patch_size``, ``patch_size``, ``seed``, ``norm_pix``,
        ``mask_color``, ``input_size`` and ``error`` (what the error measures: ``mse_hog`` or
        ``mse_pixels_0_1``), as resolved for the model.
    provenance : Provenance
        Model spec, checkpoint and its SHA-256, the images' source, the mask seed, versions.
    """

    images: tuple[ReconstructedImage, ...]
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "params", _frozen_mapping(self.params))

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ReconstructedImage]:
        return iter(self.images)

    def __getitem__(self, index: int) -> ReconstructedImage:
        return self.images[index]

    @property
    def model(self) -> str | None:
        """The model spec."""
        return self.provenance.model

    original = _stacked("original", "``(N, H, W, 3)`` uint8 originals.")
    mask = _stacked("mask", "``(N, H, W)`` bool pixel masks (True: hidden).")
    patch_masks = _stacked("patch_mask", "``(N, gh, gw)`` bool patch masks (True: hidden).")
    reconstruction = _stacked("reconstruction", "``(N, H, W, 3)`` uint8 reconstructions.")
    pasted = _stacked("pasted", "``(N, H, W, 3)`` uint8 reconstructions with visible patches back.")

    @property
    def errors(self) -> np.ndarray:
        """``(N,)`` masked-patch errors."""
        return np.array([i.error for i in self.images], dtype=np.float64)

    @property
    def error(self) -> float:
        """Mean masked-patch error over the images."""
        return float(self.errors.mean())

    def error_table(self) -> tuple[list[str], list[list[Any]]]:
        """Return the header and rows of ``errors.csv``: one row per image.

        Returns
        -------
        (list of str, list of list)
            ``image, figure, error, hidden_patches, patches``; the error with 8 significant
            digits.
        """
        header = ["image", "figure", "error", "hidden_patches", "patches"]
        rows = [
            [i.image_id, i.file, f"{i.error:.8g}", int(i.patch_mask.sum()), i.patch_mask.size]
            for i in self.images
        ]
        return header, rows

    def error_summary(self) -> dict[str, Any]:
        """Return what ``errors.json`` holds: what the error measures, its mean, each image's."""
        return {
            "error": self.params.get("error"),
            "mean": self.error,
            "images": {i.image_id: i.error for i in self.images},
        }

    def to_dataframe(self) -> Any:
        """Return ``errors.csv`` as a table: image, figure, error, hidden and total patches."""
        header, rows = self.error_table()
        frame = _pandas().DataFrame(rows, columns=header)
        return frame.astype({"error": "float64"})

    def _head(self) -> str:
        mean = f"{self.error:.4g}" if self.images else "n/a"
        return (
            f"{self.family}: {len(self.images)} images, mask ratio "
            f"{_number(self.params.get('mask_ratio', 'n/a'))}, mean error {mean} "
            f"({self.params.get('error', 'error')}) · {_origin(self.provenance)}"
        )

    def __repr__(self) -> str:
        lines = [i._line() for i in self.images]
        return _summary(f"ReconstructionResult {self._head()}", lines)


@dataclass(frozen=True)
class ReconstructionRun(_Shown):
    """What one call of :func:`featscope.reconstruct` produced.

    It reads like its :class:`ReconstructionResult`: ``run[0]``, ``len(run)``, ``for image in
    run``, and every attribute of the result (``run.errors``, ``run.params``, ``run.family``,
    ``run.mask``, ...) is the result's.

    Attributes
    ----------
    result : ReconstructionResult
        The images, their errors, the parameters and the provenance.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` without a work dir).
    files : tuple of pathlib.Path
        The copies made outside the run folder (``--out``).
    timings : Mapping of str to float
        Seconds per stage (``load``, ``predict``, ``draw``, ``write``).
    skipped : tuple of (str, str)
        ``(image, reason)`` of unreadable images skipped with ``skip_bad_images``.
    """

    result: ReconstructionResult
    run_dir: Path | None = None
    files: tuple[Path, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.result)

    def __iter__(self) -> Iterator[ReconstructedImage]:
        return iter(self.result)

    def __getitem__(self, index: int) -> ReconstructedImage:
        return self.result[index]

    def __getattr__(self, name: str) -> Any:
        # only called for names the run itself lacks; the guard keeps copy and pickle (which
        # look up dunders before ``result`` exists) from recursing
        if name == "result" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.result, name)

    def __repr__(self) -> str:
        lines = [i._line() for i in self.result.images]
        tail = [_where(self.run_dir), _took(self.timings), _skipped(self.skipped)]
        return _summary(f"ReconstructionRun {self.result._head()}", lines, tail)

    def to_dataframe(self) -> Any:
        """Return the error table (see :meth:`ReconstructionResult.to_dataframe`)."""
        return self.result.to_dataframe()


# ---------------------------------------------------------------------------------------------
# Results of shape bias.
# ---------------------------------------------------------------------------------------------


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


_COUNTS = ("n_shape", "n_texture", "n_other")


@dataclass(frozen=True)
class ShapeBiasStats(_Shown):
    """Shape and texture decisions of one decision maker on the cue-conflict images.

    Made by :func:`featscope.analysis.shape_bias.shape_bias_from_decisions`; the provenance of
    the decisions is the :class:`ShapeBiasRun`'s.

    Attributes
    ----------
    name : str
        The decision maker (a csv's ``subj``, a model name or ``"humans"``).
    n_shape, n_texture, n_other : int
        Conflict trials (shape != texture) decided by the shape, the texture, or neither.
    n_excluded : int
        Trials left out because the image's shape and texture are the same category.
    per_category : Mapping of str to Mapping
        Per shape category (the ``category`` column): ``shape_bias``, ``n_shape``,
        ``n_texture``, ``n_other``. Categories without trials are absent.
    """

    name: str
    n_shape: int
    n_texture: int
    n_other: int
    n_excluded: int = 0
    per_category: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {c: MappingProxyType(dict(v)) for c, v in self.per_category.items()}
        object.__setattr__(self, "per_category", MappingProxyType(frozen))

    @property
    def n_conflict(self) -> int:
        """Trials whose shape and texture differ."""
        return self.n_shape + self.n_texture + self.n_other

    @property
    def shape_bias(self) -> float:
        """``n_shape / (n_shape + n_texture)``; NaN without shape or texture decisions."""
        return _ratio(self.n_shape, self.n_shape + self.n_texture)

    @property
    def shape_accuracy(self) -> float:
        """Fraction of the conflict trials decided by the shape."""
        return _ratio(self.n_shape, self.n_conflict)

    @property
    def texture_accuracy(self) -> float:
        """Fraction of the conflict trials decided by the texture."""
        return _ratio(self.n_texture, self.n_conflict)

    @property
    def metrics(self) -> dict[str, float]:
        """The overall numbers: shape bias, shape and texture accuracy, and the counts."""
        return {
            "shape_bias": self.shape_bias,
            "shape_accuracy": self.shape_accuracy,
            "texture_accuracy": self.texture_accuracy,
            "n_shape": self.n_shape,
            "n_texture": self.n_texture,
            "n_other": self.n_other,
        }

    def texture_fraction(self, category: str | None = None) -> float:
        """Return ``1 - shape_bias``, overall or for one shape category (NaN if none)."""
        if category is None:
            return 1.0 - self.shape_bias
        entry = self.per_category.get(category)
        return float("nan") if entry is None else 1.0 - float(entry["shape_bias"])

    def _line(self) -> str:
        return (
            f"{_short(self.name, 40)}: shape bias {_number(self.shape_bias)} (shape "
            f"{self.n_shape}, texture {self.n_texture}, other {self.n_other}; "
            f"{len(self.per_category)} categories)"
        )

    def __repr__(self) -> str:
        return _summary(f"ShapeBiasStats {self._line()}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (what ``shape_bias.json`` holds per decision maker)."""
        return {
            **self.metrics,
            "n_excluded": self.n_excluded,
            "per_category": {c: dict(v) for c, v in self.per_category.items()},
        }

    @classmethod
    def from_counts(
        cls, name: str, per_category: Mapping[str, Mapping[str, int]], n_excluded: int = 0
    ) -> ShapeBiasStats:
        """Build the statistics from per-category counts.

        Parameters
        ----------
        name : str
            The decision maker.
        per_category : Mapping
            ``n_shape``, ``n_texture`` and ``n_other`` per shape category.
        n_excluded : int, optional
            Same-shape-and-texture trials left out.

        Returns
        -------
        ShapeBiasStats
            Totals and per-category shape bias from the counts, categories in sorted order
            (the order of the 16 categories).
        """
        per: dict[str, dict[str, Any]] = {}
        for category in sorted(per_category):
            counts = {k: int(per_category[category][k]) for k in _COUNTS}
            bias = _ratio(counts["n_shape"], counts["n_shape"] + counts["n_texture"])
            per[category] = {"shape_bias": bias, **counts}
        totals = {k: sum(v[k] for v in per.values()) for k in _COUNTS}
        return cls(name=name, **totals, n_excluded=int(n_excluded), per_category=per)


@dataclass(frozen=True)
class ShapeBiasRun(_Shown):
    """What one shape-bias call produced (a model's evaluation, or decision csvs drawn).

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
    params : Mapping
        The class table used (``mapping``) and the number of stimuli of an evaluation; the csv
        files and the decision makers drawn of a run from csvs.
    provenance : Provenance
        Model, checkpoint and stimuli folder of an evaluation; the csv files of a plot.
    run_dir : pathlib.Path or None
        The finished run folder; ``None`` when nothing was written.
    files : tuple of pathlib.Path
        The files of the result in the run folder.
    exported : tuple of pathlib.Path
        The copies made at ``Output.export`` (``--out``).
    timings : dict of str to float
        Seconds per stage.
    """

    stats: Mapping[str, ShapeBiasStats]
    model_name: str | None = None
    shown: tuple[str, ...] = ()
    decisions: Any = None
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    run_dir: Path | None = None
    files: tuple[Path, ...] = ()
    exported: tuple[Path, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats", _frozen_mapping(self.stats))
        object.__setattr__(self, "params", _frozen_mapping(self.params))

    def __getitem__(self, name: str) -> ShapeBiasStats:
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

    @property
    def metrics(self) -> dict[str, float] | None:
        """The evaluated model's numbers (:attr:`ShapeBiasStats.metrics`); None from csvs."""
        return None if self.model_name is None else self.stats[self.model_name].metrics

    def to_dict(self) -> dict[str, Any]:
        """Return what ``shape_bias.json`` holds: statistics per decision maker."""
        return {name: s.to_dict() for name, s in self.stats.items()}

    def to_dataframe(self) -> Any:
        """Return one row per decision maker and shape category.

        Returns
        -------
        pandas.DataFrame
            Columns ``name``, ``category``, ``shape_bias``, ``n_shape``, ``n_texture``,
            ``n_other``; the rows of the whole set have category ``"all"``.
        """
        rows = []
        for name, stats in self.stats.items():
            rows.append({"name": name, "category": "all", **stats.metrics})
            for category, entry in stats.per_category.items():
                rows.append({"name": name, "category": category, **dict(entry)})
        columns = ["name", "category", "shape_bias", "n_shape", "n_texture", "n_other"]
        return _pandas().DataFrame(rows)[columns]

    def __repr__(self) -> str:
        if self.model_name is not None:
            head = f"ShapeBiasRun of {self.model_name!r}: shape bias {_number(self.shape_bias)}"
        else:
            head = f"ShapeBiasRun of {len(self.stats)} decision makers (from csvs)"
        lines = [s._line() for s in self.stats.values()]
        tail = [_origin(self.provenance), _where(self.run_dir), _took(self.timings)]
        return _summary(head, lines, tail)


# ---------------------------------------------------------------------------------------------
# Results of the dataset browser.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrowsedSample(_Shown):
    """One image as the browser drew it.

    Attributes
    ----------
    index : int
        Position of the sample in the data source.
    id : str
        Its id: the path relative to the data root, or the demo photo's name.
    label : int or None
        Class index (None for unlabelled images).
    class_name : str or None
        Class name.
    columns : tuple of str
        Title of each drawn column (``"Original"``, step names, ``"transformed"``).
    sizes : tuple of (int, int)
        ``(height, width)`` of each column's (first) image.
    images : tuple of tuple of numpy.ndarray
        The drawn pictures, ``(H, W, 3)`` uint8: one tuple per column, one image per view.
    file : str
        File name without suffix, unique within the run.
    """

    index: int
    id: str
    label: int | None
    class_name: str | None
    columns: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    images: tuple[tuple[np.ndarray, ...], ...]
    file: str

    @classmethod
    def from_panels(
        cls,
        index: int,
        id: str,
        label: tuple[int | None, str | None],
        panels: Sequence[Any],
        file: str,
    ) -> BrowsedSample:
        """Describe a sample by the panels drawn for it.

        Parameters
        ----------
        index, id, file
            As the attributes.
        label : (int or None, str or None)
            Class index and name.
        panels : sequence of featscope.render.browse.Panel
            The columns drawn (``title`` and ``images`` are read).

        Returns
        -------
        BrowsedSample
        """
        return cls(
            index=int(index),
            id=id,
            label=label[0],
            class_name=label[1],
            columns=tuple(p.title for p in panels),
            sizes=tuple(tuple(p.images[0].shape[:2]) for p in panels),
            images=tuple(tuple(p.images) for p in panels),
            file=file,
        )

    def _line(self) -> str:
        label = "" if self.label is None else f" (class {self.label} {self.class_name!r})"
        columns = ", ".join(
            f"{title} {h}x{w}" for title, (h, w) in zip(self.columns, self.sizes, strict=False)
        )
        return f"#{self.index} {_short(self.id, 50)}{label}: {_short(columns, 160)}"

    def __repr__(self) -> str:
        return _summary(f"BrowsedSample {self._line()}")

    def to_dict(self) -> dict[str, Any]:
        """Return the sample's entry of ``browse.json`` (everything but the pictures)."""
        return {
            "index": self.index,
            "id": self.id,
            "label": self.label,
            "class_name": self.class_name,
            "columns": list(self.columns),
            "sizes": [list(size) for size in self.sizes],
            "file": self.file,
        }


@dataclass(frozen=True)
class BrowseResult(_Shown):
    """What one browse call drew and wrote.

    Attributes
    ----------
    samples : tuple of BrowsedSample
        The drawn samples, in source order.
    mode : str
        ``"pipeline"``, ``"original"``, ``"transformed"`` or ``"concat"``.
    transform : str
        The transform's source (``"timm:resnet18 (train)"``, a class name).
    steps : tuple of str
        Names of the transform's steps, in order.
    source : str
        Where the images came from.
    formats : tuple of str
        The picture formats written, one file per sample and format.
    params : Mapping
        The options used (mode, n, seed, phase, transform).
    provenance : Provenance
        The data source and the seed.
    run_dir : pathlib.Path or None
        The finished run folder; None when nothing was written.
    exported : tuple of pathlib.Path
        The copies made at ``Output.export`` (``--out``): the pictures, then ``browse.json``.
    timings : dict of str to float
        Seconds per stage (``load``, ``transform``, ``draw``, ``write``).
    """

    samples: tuple[BrowsedSample, ...]
    mode: str
    transform: str
    steps: tuple[str, ...]
    source: str
    formats: tuple[str, ...] = ("png",)
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    run_dir: Path | None = None
    exported: tuple[Path, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples", tuple(self.samples))
        object.__setattr__(self, "params", _frozen_mapping(self.params))

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[BrowsedSample]:
        return iter(self.samples)

    @property
    def files(self) -> list[Path]:
        """The pictures in the run folder, in sample order (empty when nothing was written)."""
        if self.run_dir is None:
            return []
        return [self.run_dir / f"{s.file}.{fmt}" for s in self.samples for fmt in self.formats]

    @property
    def out_dir(self) -> Path | None:
        """The folder holding the pictures: the export folder, else the run folder."""
        return self.exported[0].parent if self.exported else self.run_dir

    def __repr__(self) -> str:
        head = (
            f"BrowseResult {self.mode}: {len(self.samples)} samples of {_short(self.source, 60)}, "
            f"transform {_short(self.transform, 60)}"
        )
        if self.steps:
            head += f" ({len(self.steps)} steps: {_short(', '.join(self.steps), 100)})"
        lines = [s._line() for s in self.samples]
        return _summary(head, lines, [_where(self.out_dir), _took(self.timings)])

    def to_dict(self) -> dict[str, Any]:
        """Return what ``browse.json`` holds: source, transform, steps, options, samples."""
        return {
            "source": self.source,
            "transform": self.transform,
            "steps": list(self.steps),
            "params": _jsonable(self.params),
            "samples": [s.to_dict() for s in self.samples],
        }


# ---------------------------------------------------------------------------------------------
# Results of runs: what one call of a view produced.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRun(_Shown):
    """What :func:`compare` produced.

    Attributes
    ----------
    results : tuple of EmbeddingResult
        Every map shown, restricted to the common samples, in page order.
    titles : tuple of str
        The title of each map (``"<run folder> · <point> · <method>"``).
    page : pathlib.Path or None
        The page: its ``--out`` copy when one was asked for, else ``compare.html`` in the run
        folder (``None`` without a work dir).
    run_dir : pathlib.Path or None
        The ``compare_<timestamp>`` run folder holding the page (``None`` without a work dir).
    n_dropped : int
        Samples of the first run missing from another run (left out of the page).
    page_html : str or None
        The page's HTML, kept in memory (also without a work dir).
    """

    results: tuple[EmbeddingResult, ...]
    titles: tuple[str, ...]
    page: Path | None
    run_dir: Path | None
    n_dropped: int = 0
    page_html: str | None = None

    def __repr__(self) -> str:
        n = len(self.results[0].labels) if self.results else 0
        head = f"CompareRun: {len(self.results)} maps of {n:,} common samples"
        if self.n_dropped:
            head += f" ({self.n_dropped:,} samples missing from a run left out)"
        lines = [
            f"{_short(t, 80)}: {_metric_text(r.metrics)}"
            for t, r in zip(self.titles, self.results, strict=False)
        ]
        where = _where(self.run_dir, f" (page {self.page.name})" if self.page else "")
        return _summary(head, lines, [where])

    def to_dataframe(self) -> Any:
        """Return every map's rows, one block per map, with its title in column ``map``."""
        return _maps_frame(self.results, "map", self.titles)

    def metrics_dataframe(self) -> Any:
        """Return one row of quality metrics per map (``map``, ``point``, ``method``, ...)."""
        return _metrics_frame(self.results, map=self.titles)


@dataclass(frozen=True)
class TsneRun(_Shown):
    """What one embedding-map run (:func:`featscope.tsne`) produced.

    Attributes
    ----------
    results : tuple of EmbeddingResult
        One map per capture point (tuple outputs give one per element, ``<point>.<i>``).
    features : tuple of FeatureSet
        The features each map was computed from, in the same order.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` without a work dir).
    skipped : tuple of (str, str)
        ``(sample id, reason)`` for images skipped with ``skip_bad_images``.
    timings : dict of str to float
        Seconds spent in each stage (``load``, ``extract``, ``reduce``, ``render``, ``write``,
        ``thumbnails``, ``page``).
    page : pathlib.Path or None
        The interactive page ``embedding.html`` in the run folder (``None`` without a run folder
        or with ``html=False``).
    thumbnails : numpy.ndarray or None
        ``(M, s, s, 3)`` uint8 thumbnails shown on the page, kept in memory.
    thumbnail_rows : numpy.ndarray or None
        ``(M,)`` the sample row of each thumbnail.
    """

    results: tuple[EmbeddingResult, ...]
    features: tuple[FeatureSet, ...]
    run_dir: Path | None
    skipped: tuple[tuple[str, str], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    page: Path | None = None
    thumbnails: np.ndarray | None = None
    thumbnail_rows: np.ndarray | None = None

    @functools.cached_property
    def page_html(self) -> str:
        """The interactive page as one self-contained HTML string.

        The text of ``embedding.html`` when the run wrote it; otherwise (``work_dir=None``,
        ``html=False``) built in memory on first use from the maps and thumbnails, writing
        nothing (see :func:`featscope.render.page.build_page`).
        """
        if self.page is not None and Path(self.page).is_file():
            return Path(self.page).read_text(encoding="utf-8")
        return _notebook().page_html(self)

    def __repr__(self) -> str:
        first = self.results[0] if self.results else None
        if first is None:
            return _summary("TsneRun: no maps (this process wrote none)", [_where(self.run_dir)])
        head = (
            f"TsneRun: {len(self.results)} maps of {len(first.labels):,} samples, "
            f"{_classes(first.labels, first.class_names)} · {_origin(first.provenance)}"
        )
        lines = [
            f"{r.point} ({r.method}, {r.n_components}-D): {_metric_text(r.metrics)}"
            for r in self.results
        ]
        where = _where(self.run_dir, f" (page {self.page.name})" if self.page else "")
        return _summary(head, lines, [where, _took(self.timings), _skipped(self.skipped)])

    def to_dataframe(self) -> Any:
        """Return every map's rows as one table, the capture point in column ``point``.

        Returns
        -------
        pandas.DataFrame
            ``point``, then the columns of :meth:`EmbeddingResult.to_dataframe`: one block of
            rows per map (select one with ``df[df.point == "pre_logits"]``, or call
            ``run["pre_logits"].to_dataframe()``).

        Raises
        ------
        MissingExtraError
            When pandas is not installed (``pip install 'featscope[pandas]'``).
        """
        return _maps_frame(self.results, "point", [r.point for r in self.results])

    def metrics_dataframe(self) -> Any:
        """Return one row of quality metrics per map (``point``, ``method``, metrics)."""
        return _metrics_frame(self.results)

    def __getitem__(self, point: str) -> EmbeddingResult:
        """Return the map of capture point ``point``."""
        for result in self.results:
            if result.point == point:
                return result
        for result, fs in zip(self.results, self.features, strict=False):
            if point in fs.aliases:  # a name that gave the same features, mapped once
                return result
        names = ", ".join(r.point for r in self.results)
        raise KeyError(f"no map for point {point!r}; this run has: {names}")


@dataclass(frozen=True)
class MonitorStep(_Shown):
    """What one step of :class:`featscope.Monitor` logged.

    Attributes
    ----------
    epoch : int
        The step (epoch) it was logged at.
    results : tuple of EmbeddingResult
        One map per captured output, with its metrics.
    featmaps : tuple
        The feature maps drawn (empty without ``featmaps``).
    """

    epoch: int
    results: tuple[EmbeddingResult, ...]
    featmaps: tuple[Any, ...] = ()

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Metrics of every map, by capture point."""
        return {r.point: dict(r.metrics) for r in self.results}

    @functools.cached_property
    def page_html(self) -> str:
        """The interactive page of this step's maps, built in memory on first use."""
        return _notebook().page_html(self)

    def __repr__(self) -> str:
        n = len(self.results[0].labels) if self.results else 0
        head = f"MonitorStep epoch {self.epoch}: {len(self.results)} maps of {n:,} samples"
        if self.featmaps:
            head += f", {len(self.featmaps)} feature maps"
        lines = [f"{r.point} ({r.method}): {_metric_text(r.metrics)}" for r in self.results]
        return _summary(head, lines)

    def to_dataframe(self) -> Any:
        """Return every map's rows, with ``epoch`` and ``point`` columns first."""
        frame = _maps_frame(self.results, "point", [r.point for r in self.results])
        frame.insert(0, "epoch", self.epoch)
        return frame

    def metrics_dataframe(self) -> Any:
        """Return one row of quality metrics per map, with the ``epoch``."""
        return _metrics_frame(self.results, epoch=[self.epoch] * len(self.results))


def _columns(columns: Mapping[str, Any], n: int) -> Mapping[str, np.ndarray]:
    """Per-sample columns as read-only 1-D arrays of length ``n`` (a ValueError otherwise)."""
    out = {}
    for name, values in dict(columns or {}).items():
        array = np.asarray(values)
        if array.ndim != 1 or len(array) != n:
            raise ValueError(
                f"field {name!r} must be 1-D with one value per sample ({n}); got shape "
                f"{array.shape}"
            )
        out[str(name)] = array
    return MappingProxyType(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
