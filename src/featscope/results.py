"""Frozen result objects passed from the analysis stage to renderers and sinks.

Results hold numpy arrays plus their provenance (model spec, checkpoint hash, capture point,
parameters, seed, sample ids, library versions). They import nothing heavy, so ``render/`` and
``sinks/`` can depend on them without pulling in torch.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
from collections.abc import Iterator, Mapping
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


@dataclass(frozen=True)
class CapturedMaps:
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


@dataclass(frozen=True)
class FeatureMap:
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


@dataclass(frozen=True)
class FeatmapRun:
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "maps", tuple(self.maps))
        object.__setattr__(self, "params", _frozen_mapping(self.params))
        object.__setattr__(self, "timings", _frozen_mapping(self.timings))

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self) -> Iterator[FeatureMap]:
        return iter(self.maps)

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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
