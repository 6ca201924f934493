"""timm models (``timm:<name>``): preprocessing and aliases from the model's own API.

The aliases follow timm's feature contract: ``backbone`` is ``forward_features(x)`` (maps for
CNNs, ``(N, L, C)`` tokens for ViTs), ``pre_logits`` is ``forward_head(f, pre_logits=True)``
and ``logits`` is ``forward_head(f)``. These are not module outputs, so
:func:`timm_forward` returns them in its ``extras`` (``PointRef(None)``). ``logits`` is an extra
too: the handle's forward calls ``forward_features``/``forward_head`` rather than the model
itself, so a hook on the root module (``PointRef("")``) would never fire. ``neck`` is the
global-pool module (``global_pool`` or ``head.global_pool``) where the model has one.

Because ``forward_head`` runs twice per batch (once for ``pre_logits``, once for the logits),
hooks on modules inside the head (``global_pool``, ``fc``'s input) fire twice with the same
tensor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from featscope._optional import require
from featscope.models._util import unknown_name
from featscope.models.generic import with_model_channels
from featscope.models.handle import ModelHandle, PointRef
from featscope.models.hub import hf_cache_dir, torch_cache_dir, weights_unavailable
from featscope.models.preprocessing import OVERRIDE, Preprocessing

if TYPE_CHECKING:
    import torch

__all__ = ["build_timm_handle", "is_timm_model", "load_timm", "set_timm_input_size", "timm_forward"]

logger = logging.getLogger(__name__)

_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
#: The origin recorded for the values read from timm (see ``Preprocessing.sources``).
TIMM_CONFIG = "timm data config"
_NECK_PATHS = ("global_pool", "head.global_pool")


def load_timm(
    name: str, *, pretrained: bool = False, in_chans: int | None = None, spec: str | None = None
) -> ModelHandle:
    """Create a timm model by name and wrap it.

    Parameters
    ----------
    name : str
        A name from ``timm.list_models()``, e.g. ``"resnet50"`` or
        ``"vit_tiny_patch16_224"``.
    pretrained : bool, default False
        Load timm's pretrained weights from its cache, downloading them when not cached and
        ``HF_HUB_OFFLINE`` is not set. Off by default: featscope never downloads unless asked.
    in_chans : int, optional
        Build the model for this many input channels (timm's ``in_chans``; pretrained weights
        are adapted by timm). Default: timm's (3).
    spec : str, optional
        The spec string to record; defaults to ``"timm:<name>"``.

    Returns
    -------
    ModelHandle
        ``family="timm"``, with timm's data config as preprocessing.

    Raises
    ------
    ModelSpecError
        When timm has no model of that name (the message lists close names), or pretrained
        weights are asked for that are neither cached nor downloadable (one line naming the
        cache folder).
    MissingExtraError
        When timm is not installed.
    """
    spec = spec or f"timm:{name}"
    timm = require("timm", "timm", "timm: model specs")
    if not timm.is_model(name):
        listing = "timm.list_models('<pattern>*')"
        raise unknown_name(f"timm:{name}", "timm", "timm", name, timm.list_models(), listing)
    kwargs = {} if in_chans is None else {"in_chans": int(in_chans)}
    try:
        model = timm.create_model(name, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError) as exc:
        if not pretrained:
            raise
        # hub download or cache errors: the user asked for weights that cannot be had
        raise weights_unavailable(spec, _weights_cache(timm, name), exc) from exc
    handle = build_timm_handle(model, spec)
    if in_chans is not None:
        handle.preprocess = handle.preprocess.with_sources(channels=OVERRIDE)
    return handle


def _weights_cache(timm: Any, name: str) -> str:
    """Return the cache timm reads ``name``'s weights from: the HF hub's, or torch's for URLs."""
    try:
        config = timm.models.get_pretrained_cfg(name, allow_unregistered=False)
    except Exception:
        config = None
    if config is not None and not getattr(config, "hf_hub_id", None) and config.url:
        return torch_cache_dir()
    return hf_cache_dir()


def is_timm_model(module: Any) -> bool:
    """Whether ``module`` is a timm model with the ``forward_features``/``forward_head`` API.

    Parameters
    ----------
    module : object
        Any object.

    Returns
    -------
    bool
        ``True`` for models built by ``timm.create_model``.
    """
    return (
        hasattr(module, "forward_features")
        and hasattr(module, "forward_head")
        and hasattr(module, "pretrained_cfg")
    )


def build_timm_handle(model: torch.nn.Module, spec: str) -> ModelHandle:
    """Wrap a timm model: preprocessing from its data config, aliases from its API.

    Parameters
    ----------
    model : torch.nn.Module
        A model built by ``timm.create_model`` (see :func:`is_timm_model`).
    spec : str
        The spec or name to record.

    Returns
    -------
    ModelHandle
        ``family="timm"``.
    """
    aliases = {"backbone": PointRef(None)}
    for path in _NECK_PATHS:
        if _has_module(model, path):
            aliases["neck"] = PointRef(path)
            break
    aliases["pre_logits"] = PointRef(None)
    aliases["logits"] = PointRef(None)
    return ModelHandle(
        module=model,
        spec=spec,
        family="timm",
        preprocess=timm_preprocessing(model),
        aliases=aliases,
        num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0) or 0),
        patch_grid=_patch_grid(model),
        forward=timm_forward,
    )


def timm_forward(model: Any, x: torch.Tensor) -> tuple[Any, dict[str, Any]]:
    """Run a timm model and return its logits plus the API-level aliases.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model.
    x : torch.Tensor
        ``(N, 3, H, W)`` input batch.

    Returns
    -------
    tuple
        ``(logits, {"backbone": features, "pre_logits": pooled, "logits": logits})``.
    """
    features = model.forward_features(x)
    pre_logits = model.forward_head(features, pre_logits=True)
    logits = model.forward_head(features)
    return logits, {"backbone": features, "pre_logits": pre_logits, "logits": logits}


def timm_preprocessing(model: torch.nn.Module) -> Preprocessing:
    """Read a timm model's eval transform from its pretrained config.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model.

    Returns
    -------
    Preprocessing
        Input size, mean, std, crop fraction and interpolation of
        ``timm.data.resolve_model_data_config(model)``; the input channels of the model's first
        convolution.
    """
    timm_data = require("timm.data", "timm", "timm model preprocessing")
    config = timm_data.resolve_model_data_config(model)
    interpolation = str(config.get("interpolation", "bicubic"))
    if interpolation not in _INTERPOLATIONS:
        # timm also knows e.g. "lanczos" and "random"; bicubic is the closest eval choice
        logger.info("timm interpolation %r is not supported; using bicubic", interpolation)
        interpolation = "bicubic"
    _, height, width = config["input_size"]
    channels = with_model_channels(Preprocessing(), model)
    preprocess = Preprocessing(
        input_size=(int(height), int(width)),
        # timm keeps its 3 RGB values for a 1-channel model; Preprocessing averages them
        mean=tuple(float(v) for v in config["mean"]),
        std=tuple(float(v) for v in config["std"]),
        crop_pct=float(config.get("crop_pct") or 1.0),
        interpolation=interpolation,
        channels=channels.channels,
    )
    return preprocess.with_sources(TIMM_CONFIG, channels=channels.source["channels"])


def set_timm_input_size(
    model: torch.nn.Module, input_size: tuple[int, int]
) -> tuple[int, int] | None:
    """Rebuild a timm ViT's patch grid for a new input size, if the model supports it.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model.
    input_size : tuple of int
        The new ``(height, width)``.

    Returns
    -------
    tuple of int or None
        The new patch grid, or ``None`` when the model has no patch embedding (CNNs accept any
        size as they are).
    """
    if not hasattr(model, "patch_embed") or not hasattr(model, "set_input_size"):
        return None
    # resamples the position embedding, as timm does when fine-tuning at another resolution
    model.set_input_size(img_size=tuple(input_size))
    return _patch_grid(model)


def _patch_grid(model: Any) -> tuple[int, int] | None:
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None:
        return None
    height, width = grid
    return (int(height), int(width))


def _has_module(model: torch.nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:  # absent, or an attribute that is not a module (ViT's global_pool)
        return False
    return True
