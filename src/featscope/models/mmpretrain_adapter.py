"""MMPretrain models (``mmpretrain:<model name or config file>``): the reference tools' own models.

The model is built as MMPretrain builds it, by ``mmpretrain.get_model(target, pretrained=False)``:
``target`` is a model name (``resnet18_8xb16_cifar10``, listed by ``mmpretrain.list_models()``)
or the path of a config file (``configs/resnet/resnet18_8xb16_cifar10.py``). Nothing is
downloaded unless ``pretrained=True``: then the weights the model index (or the config's
``load_from``) names are fetched into torch's hub cache and read like any checkpoint, with
``torch.load(weights_only=True)`` (:func:`featscope.models.checkpoint.load_checkpoint`). An
MMPretrain checkpoint (``{"meta": ..., "state_dict": {"backbone.conv1.weight": ...}}``) loads
into the whole model as it is.

Aliases are the stages of ``extract_feat(x, stage=...)``, which ``vis_tsne.py --vis-stage``
uses. For an ``ImageClassifier``: ``backbone`` is the backbone's output (a tuple, one tensor per
``out_indices`` entry: captured as ``backbone.0``, ``backbone.1``...), ``neck`` the neck's (the
backbone's when there is none), ``pre_logits`` ``head.pre_logits(...)`` and ``logits`` the
head's output. :func:`mmpretrain_forward` computes them in one pass, exactly as
``ImageClassifier.extract_feat`` does, and returns them in its ``extras``; ``head.pre_logits``
runs twice per batch (once alone, once inside the head). A self-supervised model (MAE, SimMIM,
MaskFeat, MoCo...) has ``backbone``, its ``extract_feat(x)``. Module paths
(``backbone.layer4``) are captured by hooks as for any model.

Preprocessing comes from the config: mean and std from its ``data_preprocessor`` (0-255 values
divided by 255), input size, crop and interpolation from the test pipeline (``ResizeEdge`` +
``CenterCrop``, ``Resize``, ``EfficientNetCenterCrop``). A config without a sized test pipeline
(the CIFAR configs, whose 32x32 images go in as they are; the self-supervised configs) gets 32 px
for CIFAR datasets, else the backbone's own ``img_size``, else 224 px with crop 0.875.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from featscope._optional import require
from featscope.errors import ModelSpecError
from featscope.models._util import first_line, unknown_name
from featscope.models.checkpoint import load_checkpoint
from featscope.models.generic import with_model_channels
from featscope.models.handle import ModelHandle, PointRef
from featscope.models.hub import download_to_torch_cache
from featscope.models.preprocessing import (
    ASSUMED,
    IMAGENET_MEAN,
    IMAGENET_STD,
    OVERRIDE,
    Preprocessing,
)

__all__ = [
    "backbone_input_size",
    "load_mmpretrain",
    "mmpretrain_forward",
    "mmpretrain_preprocessing",
]

logger = logging.getLogger(__name__)

#: The origins recorded for the values read from an MMPretrain config.
MM_PREPROCESSOR = "mmpretrain config (data_preprocessor)"
MM_PIPELINE = "mmpretrain config (test pipeline)"

_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
# mmcv-lite lacks the compiled ops; mmcv says so with a warning on import that does not concern
# the classification and self-supervised models featscope builds
_MMCV_LITE_WARNING = r"Fail to import ``MultiScaleDeformableAttention``"


def load_mmpretrain(
    target: str, *, pretrained: bool = False, in_chans: int | None = None, spec: str | None = None
) -> ModelHandle:
    """Build an MMPretrain model by name or config file and wrap it.

    Parameters
    ----------
    target : str
        A model name from ``mmpretrain.list_models()`` (``"resnet18_8xb16_cifar10"``) or the
        path of an MMPretrain config file (``.py``).
    pretrained : bool, default False
        Load the weights the model index (or the config's ``load_from``) names, from torch's
        hub cache, downloading them when not cached and ``HF_HUB_OFFLINE`` is not set.
    in_chans : int, optional
        Build the backbone for this many input channels (its ``in_channels``).
    spec : str, optional
        The spec string to record; defaults to ``"mmpretrain:<target>"``.

    Returns
    -------
    ModelHandle
        ``family="mmpretrain"``, in eval mode (as ``get_model`` leaves it).

    Raises
    ------
    ModelSpecError
        When the name is unknown (with close names), the config file is missing, the model
        cannot be built, or pretrained weights are asked for that are not published or neither
        cached nor downloadable.
    CheckpointError
        When the pretrained weights cannot be read safely (see :func:`load_checkpoint`).
    MissingExtraError
        When mmpretrain is not installed.
    """
    spec = spec or f"mmpretrain:{target}"
    mmpretrain = _import_mmpretrain()
    source = _resolve_target(mmpretrain, target, spec)
    overrides = {} if in_chans is None else {"backbone": {"in_channels": int(in_chans)}}
    try:
        with _quiet():
            model = mmpretrain.get_model(source, pretrained=False, **overrides)
    except Exception as exc:  # registry KeyError, config TypeError/AssertionError...
        raise ModelSpecError(
            f"model spec {spec!r}: mmpretrain cannot build the model ({type(exc).__name__}: "
            f"{first_line(exc)}); check the config (and its _base_ files)"
        ) from exc
    config = model._config
    checkpoint = sha256 = None
    if pretrained:
        report = load_checkpoint(model, download_to_torch_cache(_weights_url(model, spec), spec))
        checkpoint, sha256 = report.path, report.sha256
    preprocess = mmpretrain_preprocessing(config, model)
    if in_chans is not None:
        preprocess = preprocess.with_sources(channels=OVERRIDE)
    classifier = _is_classifier(model)
    names = ("backbone", "neck", "pre_logits", "logits") if classifier else ("backbone",)
    if classifier and not (model.with_head and hasattr(model.head, "pre_logits")):
        names = ("backbone", "neck")
    backbone = getattr(model, "backbone", None)
    tokens = getattr(backbone, "out_type", "raw") == "raw"
    grid = getattr(backbone, "patch_resolution", None)
    return ModelHandle(
        module=model,
        spec=spec,
        family="mmpretrain",
        preprocess=preprocess,
        aliases={name: PointRef(None) for name in names},
        num_prefix_tokens=int(getattr(backbone, "num_extra_tokens", 0) or 0) if tokens else 0,
        patch_grid=(int(grid[0]), int(grid[1])) if grid is not None else None,
        checkpoint=checkpoint,
        checkpoint_sha256=sha256,
        forward=mmpretrain_forward,
    )


def mmpretrain_forward(model: Any, x: Any) -> tuple[Any, dict[str, Any]]:
    """Run an MMPretrain model once and return the stages of ``extract_feat``.

    Parameters
    ----------
    model : mmengine.model.BaseModel
        An MMPretrain model.
    x : torch.Tensor
        ``(N, C, H, W)`` input batch, already normalised.

    Returns
    -------
    tuple
        For an ``ImageClassifier``: ``(logits, {"backbone", "neck", "pre_logits", "logits"})``
        (without the last two when it has no head); else ``(features, {"backbone": features})``
        with ``features = model.extract_feat(x)``.
    """
    if not _is_classifier(model):
        features = model.extract_feat(x)
        return features, {"backbone": features}
    # the steps of ImageClassifier.extract_feat, once for every stage
    features = model.backbone(x)
    neck = model.neck(features) if model.with_neck else features
    extras = {"backbone": features, "neck": neck}
    if not (model.with_head and hasattr(model.head, "pre_logits")):
        return neck, extras
    extras["pre_logits"] = model.head.pre_logits(neck)
    extras["logits"] = logits = model.head(neck)
    return logits, extras


def mmpretrain_preprocessing(config: Any, model: Any = None) -> Preprocessing:
    """Read the eval transform of an MMPretrain config.

    Parameters
    ----------
    config : mmengine.Config or Mapping
        The model's config (``model._config`` after ``get_model``).
    model : torch.nn.Module, optional
        The built model: its first convolution gives the input channels and its backbone's
        ``img_size`` the input size when the config has no sized test pipeline.

    Returns
    -------
    Preprocessing
        Mean and std of the ``data_preprocessor`` on the [0, 1] scale; size, crop fraction and
        interpolation of the test pipeline (see the module docstring for the fallbacks).
    """
    mean, std, norm_source = _normalisation(config)
    size, crop_pct, interpolation, size_source = _pipeline_geometry(config, model)
    order, order_source = _channel_order(config)
    preprocess = Preprocessing(
        input_size=size,
        mean=mean,
        std=std,
        crop_pct=crop_pct,
        interpolation=interpolation[0],
        channel_order=order,
    ).with_sources(
        channel_order=order_source,
        input_size=size_source,
        crop_pct=size_source,
        interpolation=interpolation[1],
        mean=norm_source,
        std=norm_source,
    )
    return with_model_channels(preprocess, model) if model is not None else preprocess


def _data_preprocessor(config: Any) -> Any:
    """Return the model's ``data_preprocessor`` (else the config's top-level one), or None."""
    model_cfg = _get(config, "model") or {}
    return _get(model_cfg, "data_preprocessor") or _get(config, "data_preprocessor")


def _normalisation(config: Any) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """Mean, std (0-1 scale) and their origin, from the config's data preprocessor."""
    preprocessor = _data_preprocessor(config)
    if preprocessor is None:
        logger.info("mmpretrain config has no data_preprocessor; using ImageNet mean/std")
        return IMAGENET_MEAN, IMAGENET_STD, ASSUMED
    mean, std = _get(preprocessor, "mean"), _get(preprocessor, "std")
    if mean is None or std is None:
        # ClsDataPreprocessor without mean/std feeds the model its 0-255 pixels
        return (0.0, 0.0, 0.0), (1 / 255,) * 3, MM_PREPROCESSOR + " (no normalisation: 0-255)"
    return (
        tuple(float(v) / 255 for v in mean),
        tuple(float(v) / 255 for v in std),
        MM_PREPROCESSOR,
    )


def _channel_order(config: Any) -> tuple[str, str]:
    """Return the colour order the model was trained on, and its origin.

    OpenMMLab reads image files with OpenCV, in BGR order; the data preprocessor turns them to
    RGB only with ``to_rgb=True`` (mmengine's name: ``bgr_to_rgb``). The CIFAR and MNIST
    datasets hold RGB arrays, which no file read reorders.
    """
    preprocessor = _data_preprocessor(config)
    to_rgb = _get(preprocessor, "to_rgb")
    if to_rgb is None:
        to_rgb = _get(preprocessor, "bgr_to_rgb")
    if preprocessor is None or to_rgb is None or bool(to_rgb):
        return "RGB", MM_PREPROCESSOR + " (to_rgb)" if to_rgb else "default (RGB)"
    dataset = str(_get(config, "dataset_type") or "").lower()
    if "cifar" in dataset or "mnist" in dataset:
        return "RGB", f"mmpretrain config ({_get(config, 'dataset_type')} arrays are RGB)"
    return "BGR", MM_PREPROCESSOR + " (to_rgb=False: OpenCV's BGR order)"


def _pipeline_geometry(
    config: Any, model: Any
) -> tuple[tuple[int, int], float, tuple[str, str], str]:
    """Input size, crop fraction, (interpolation, origin) and the size's origin."""
    steps = _test_pipeline(config)
    resize_edge: int | None = None
    size: tuple[int, int] | None = None
    crop_pct = 1.0
    interpolation = ("bilinear", "mmpretrain default (bilinear resize)")
    for step in steps:
        kind = str(_get(step, "type") or "")
        if kind in ("ResizeEdge", "Resize", "RandomResize"):
            interpolation = _interpolation(step, interpolation)
        if kind == "ResizeEdge" and _get(step, "edge") in (None, "short"):
            resize_edge = int(_get(step, "scale"))
            size = (resize_edge, resize_edge)
        elif kind == "Resize" and _get(step, "scale") is not None:
            size = _hw(_get(step, "scale"))
            resize_edge = None
        elif kind == "CenterCrop":
            size = _hw(_get(step, "crop_size"))
            crop_pct = min(1.0, min(size) / resize_edge) if resize_edge else 1.0
        elif kind == "EfficientNetCenterCrop":
            crop = int(_get(step, "crop_size"))
            size = (crop, crop)
            crop_pct = crop / (crop + int(_get(step, "crop_padding") or 32))
            interpolation = _interpolation(step, interpolation)
    if size is not None:
        return size, crop_pct, interpolation, MM_PIPELINE
    interpolation = ("bilinear", ASSUMED)
    if "cifar" in str(_get(config, "dataset_type") or "").lower():
        # CIFAR images are 32x32 and the CIFAR configs feed them as they are
        return (32, 32), 1.0, interpolation, "mmpretrain config (CIFAR dataset: 32 px)"
    img_size = backbone_input_size(model)
    if img_size is not None:
        # a fixed-size backbone (ViT, Swin) at its size, with the ImageNet eval crop margin of
        # the test configs (ResizeEdge 256 + CenterCrop 224) that --test-cfg usually names
        return _hw(img_size), 0.875, interpolation, "model (backbone.img_size)"
    return (224, 224), 0.875, interpolation, ASSUMED


def backbone_input_size(model: Any) -> tuple[int, int] | None:
    """Return the fixed ``(h, w)`` input of a model's backbone (ViT, Swin), or ``None`` (a CNN).

    Parameters
    ----------
    model : torch.nn.Module or None
        An MMPretrain model.

    Returns
    -------
    (int, int) or None
        The backbone's ``img_size``, else its patch embedding's ``init_input_size``.
    """
    backbone = getattr(model, "backbone", None)
    size = getattr(backbone, "img_size", None)
    if size is None:
        size = getattr(getattr(backbone, "patch_embed", None), "init_input_size", None)
    return _hw(size) if size is not None else None


def _test_pipeline(config: Any) -> Sequence[Any]:
    for loader in ("test_dataloader", "val_dataloader"):
        dataset = _get(_get(config, loader), "dataset")
        pipeline = _get(dataset, "pipeline")
        if pipeline:
            return list(pipeline)
    return list(_get(config, "test_pipeline") or ())


def _interpolation(step: Any, current: tuple[str, str]) -> tuple[str, str]:
    value = _get(step, "interpolation")
    if value is None:
        return current
    if value not in _INTERPOLATIONS:
        # mmcv also knows area and lanczos; bicubic is the closest of the three featscope has
        logger.info("mmpretrain interpolation %r is not supported; using bicubic", value)
        return "bicubic", MM_PIPELINE + f" ({value} read as bicubic)"
    return str(value), MM_PIPELINE


def _hw(value: Any) -> tuple[int, int]:
    """Return an mmcv size, ``S`` or ``(w, h)``, as ``(h, w)``."""
    if isinstance(value, (list, tuple)):
        return (int(value[-1]), int(value[0]))
    return (int(value), int(value))


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None) if obj is not None else None


def _import_mmpretrain() -> Any:
    with _quiet():
        return require("mmpretrain", "mmpretrain", "mmpretrain: model specs")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MMCV_LITE_WARNING, category=UserWarning)
        yield


def _resolve_target(mmpretrain: Any, target: str, spec: str) -> str:
    """Check a model name or config path; return what ``get_model`` takes."""
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise ModelSpecError(
                f"model spec {spec!r}: config file {str(path)!r} does not exist; pass the path of "
                "an MMPretrain config (.py) or a model name such as resnet18_8xb16_cifar10"
            )
        return str(path)
    known = mmpretrain.list_models()
    if target not in known:
        listing = "mmpretrain.list_models('<pattern>*')"
        raise unknown_name(spec, "mmpretrain", "mmpretrain", target, known, listing)
    return target


def _weights_url(model: Any, spec: str) -> str:
    """Return the address of the model's published weights (model index, else ``load_from``)."""
    metainfo = getattr(model, "_metainfo", None)
    url = getattr(metainfo, "weights", None) or _get(model._config, "load_from")
    if not url:
        raise ModelSpecError(
            f"model spec {spec!r}: mmpretrain publishes no pretrained weights for this model; "
            "pass a checkpoint file (--checkpoint) instead of --pretrained"
        )
    return str(url)


def _is_classifier(model: Any) -> bool:
    """Whether ``model`` has ``ImageClassifier``'s backbone/neck/head and staged extract_feat."""
    extract = getattr(model, "extract_feat", None)
    if extract is None or not hasattr(model, "backbone") or not hasattr(model, "with_neck"):
        return False
    try:
        return "stage" in inspect.signature(extract).parameters
    except (TypeError, ValueError):
        return False
