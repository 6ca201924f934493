"""Frozen result objects passed from the analysis stage to renderers and sinks.

Results hold numpy arrays plus their provenance (model spec, checkpoint hash, capture point,
parameters, seed, sample ids, library versions). They import nothing heavy, so ``render/`` and
``sinks/`` can depend on them without pulling in torch.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["EmbeddingResult", "FeatureSet", "Provenance", "library_versions"]

_LIBRARIES = ("featscope", "numpy", "torch", "openTSNE", "scikit-learn", "timm", "transformers")


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
    versions: Mapping[str, str] = field(default_factory=library_versions)
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", _frozen_mapping(self.versions))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready copy."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class FeatureSet:
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
    """

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    ids: tuple[str, ...]
    point: str
    pooling: str = "none"
    provenance: Provenance = field(default_factory=Provenance)

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

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class EmbeddingResult:
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

    def __post_init__(self) -> None:
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


# ---------------------------------------------------------------------------------------------
# Results of feature maps and their differences.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Results of reconstructions of masked-image models.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Results of shape bias.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Results of the dataset browser.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Results of runs: what one call of a view produced.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TsneRun:
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


@dataclass(frozen=True)
class MonitorStep:
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
