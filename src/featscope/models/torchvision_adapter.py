"""torchvision models (``tv:<name>``): built with ``torchvision.models.get_model``.

Preprocessing comes from the model's default weights enum (its ``transforms`` metadata: crop
size, resize size, mean, std, interpolation), which describes the architecture's eval transform
even when the weights themselves are not loaded. Aliases come from
:func:`featscope.models.generic.resolve_generic`.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from featscope._optional import require
from featscope.errors import ModelSpecError
from featscope.models._util import unknown_name
from featscope.models.generic import resolve_generic, with_model_channels
from featscope.models.handle import ModelHandle
from featscope.models.hub import download_to_torch_cache, torch_cache_dir, weights_unavailable
from featscope.models.preprocessing import ASSUMED, Preprocessing

__all__ = ["load_torchvision", "torchvision_preprocessing"]

logger = logging.getLogger(__name__)

#: The origin recorded for the values read from the weights enum (``Preprocessing.sources``).
TV_WEIGHTS = "torchvision weights metadata"


def load_torchvision(
    name: str, *, pretrained: bool = False, spec: str | None = None
) -> ModelHandle:
    """Build a torchvision classification model by name and wrap it.

    Parameters
    ----------
    name : str
        A name from ``torchvision.models.list_models()``, e.g. ``"resnet18"``.
    pretrained : bool, default False
        Load the ``DEFAULT`` weights from torch's hub cache (``$TORCH_HOME/hub/checkpoints``),
        downloading them when not cached and ``HF_HUB_OFFLINE`` is not set. Off by default.
    spec : str, optional
        The spec string to record; defaults to ``"tv:<name>"``.

    Returns
    -------
    ModelHandle
        ``family="torchvision"``.

    Raises
    ------
    ModelSpecError
        When torchvision has no model of that name (the message lists close names), or
        pretrained weights are asked for that are neither cached nor downloadable.
    MissingExtraError
        When torchvision is not installed.
    """
    models = require("torchvision.models", "timm", "tv: model specs")
    known = models.list_models()
    if name not in known:
        listing = "torchvision.models.list_models()"
        raise unknown_name(f"tv:{name}", "tv", "torchvision", name, known, listing)
    spec = spec or f"tv:{name}"
    if pretrained:
        _fetch_default_weights(models, name, spec)
    kwargs: dict[str, Any] = {"weights": "DEFAULT" if pretrained else None}
    if (
        not pretrained
        and "weights_backbone" in inspect.signature(models.get_model_builder(name)).parameters
    ):
        # detection/segmentation builders default to downloading an ImageNet backbone
        kwargs["weights_backbone"] = None
    try:
        module = models.get_model(name, **kwargs)
    except OSError as exc:
        if not pretrained:
            raise
        raise weights_unavailable(spec, torch_cache_dir(), exc) from exc
    layout = resolve_generic(module)
    return ModelHandle(
        module=module,
        spec=spec,
        family="torchvision",
        preprocess=with_model_channels(torchvision_preprocessing(name), module),
        aliases=layout.aliases,
        num_prefix_tokens=layout.num_prefix_tokens,
        patch_grid=layout.patch_grid,
    )


def _fetch_default_weights(models: Any, name: str, spec: str) -> None:
    """Put the ``DEFAULT`` weights of ``name`` in torch's cache (no connection while offline)."""
    try:
        url = models.get_model_weights(name).DEFAULT.url
    except (ValueError, AttributeError) as exc:
        raise ModelSpecError(
            f"model spec {spec!r}: torchvision publishes no pretrained weights for {name!r}; "
            "pass a checkpoint file (--checkpoint) instead of --pretrained"
        ) from exc
    download_to_torch_cache(url, spec)


def torchvision_preprocessing(name: str) -> Preprocessing:
    """Read the eval transform of a torchvision model's default weights.

    Parameters
    ----------
    name : str
        A torchvision model name.

    Returns
    -------
    Preprocessing
        From the weights' ``transforms`` (crop size, resize size, mean, std, interpolation), or
        ImageNet defaults (224, crop 0.875, bilinear) when the model has no weights enum.
    """
    from torchvision import models

    try:
        transform = models.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, AttributeError, TypeError) as exc:
        logger.info("no weights metadata for torchvision model %r (%s); using ImageNet", name, exc)
        return Preprocessing().with_sources(ASSUMED)
    if not hasattr(transform, "crop_size"):
        if hasattr(transform, "mean") and hasattr(transform, "resize_size"):
            # segmentation weights (SemanticSegmentation): resize and normalise, no crop margin
            size = _first(transform.resize_size)
            return Preprocessing(
                input_size=(size, size),
                mean=tuple(float(v) for v in transform.mean),
                std=tuple(float(v) for v in transform.std),
                crop_pct=1.0,
            ).with_sources(TV_WEIGHTS, interpolation=ASSUMED)
        # detection weights (ObjectDetection) only scale to [0, 1]: the model resizes and
        # normalises inside its own transform
        logger.info("torchvision model %r preprocesses inside the model; scaling to [0, 1]", name)
        return Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop_pct=1.0).with_sources(
            TV_WEIGHTS, input_size=ASSUMED, interpolation=ASSUMED
        )
    crop = _pair(transform.crop_size)
    resize = _first(transform.resize_size)
    interpolation = str(getattr(transform.interpolation, "value", transform.interpolation))
    if interpolation not in ("bilinear", "bicubic", "nearest"):
        interpolation = "bilinear"
    return Preprocessing(
        input_size=crop,
        mean=tuple(float(v) for v in transform.mean),
        std=tuple(float(v) for v in transform.std),
        crop_pct=min(1.0, min(crop) / resize) if resize else 1.0,
        interpolation=interpolation,
    ).with_sources(TV_WEIGHTS)


def _pair(size: Any) -> tuple[int, int]:
    values = [int(v) for v in (size if isinstance(size, (list, tuple)) else [size])]
    return (values[0], values[-1])


def _first(size: Any) -> int:
    return int(size[0] if isinstance(size, (list, tuple)) else size)
