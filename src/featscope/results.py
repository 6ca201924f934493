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


# ---------------------------------------------------------------------------------------------
# Results of reconstructions of masked-image models.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconstructedImage:
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


def _stacked(name: str, doc: str) -> property:
    """Return a property that stacks attribute ``name`` of every image into one array."""
    return property(lambda self: np.stack([getattr(i, name) for i in self.images]), doc=doc)


@dataclass(frozen=True)
class ReconstructionResult:
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


@dataclass(frozen=True)
class ReconstructionRun:
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
