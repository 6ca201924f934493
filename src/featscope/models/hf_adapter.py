"""Hugging Face transformers vision models (``hf:<local dir or hub id>``).

The model class is the one the directory's ``config.json`` names in ``architectures`` (so a
``ViTForImageClassification`` or ``ViTMAEForPreTraining`` comes back whole), falling back to
``AutoModel``. Loading is offline (``local_files_only=True``) for a local directory, which brings
its own weights. A hub id gets its weights only with ``pretrained=True`` (``--pretrained``),
through ``from_pretrained`` and the Hugging Face cache; without it the architecture of the hub
config is built with random weights. With ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` set only the
cache is read, and what is not there fails with one line naming the cache folder.

Preprocessing is read from the directory's image-processor config (``AutoImageProcessor``: size,
crop size, image_mean, image_std, resample). A ``{"height", "width"}`` size without a centre crop
is taken as ``crop_pct=1``; featscope then resizes the short side and centre-crops instead of
squashing the image, which differs from the HF processor only for non-square images.

Aliases: ``backbone`` is the base model's ``last_hidden_state``; ``pre_logits`` the input of
``classifier`` when there is one, else the base model's ``pooler_output``; ``logits`` the
model output's ``logits`` field.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

from featscope._optional import require
from featscope.errors import FeatscopeError, ModelSpecError
from featscope.models._util import first_line
from featscope.models.generic import with_model_channels
from featscope.models.handle import ModelHandle, PointRef
from featscope.models.hub import hf_cache_dir, is_offline, weights_unavailable
from featscope.models.preprocessing import (
    ASSUMED,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocessing,
)

__all__ = ["hf_preprocessing", "load_hf"]

logger = logging.getLogger(__name__)

# model types whose token outputs start with a class token (DeiT adds a distillation token)
_PREFIX_TOKENS = {
    "vit": 1,
    "vit_mae": 1,
    "vit_msn": 1,
    "vit_hybrid": 1,
    "beit": 1,
    "data2vec-vision": 1,
    "dinov2": 1,
    "dinov2_with_registers": 1,
    "deit": 2,
}
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
#: The origins recorded for values read from Hugging Face (``Preprocessing.sources``).
HF_PROCESSOR = "Hugging Face image processor"
HF_CONFIG = "Hugging Face model config"


def load_hf(target: str, *, pretrained: bool = False, spec: str | None = None) -> ModelHandle:
    """Load a Hugging Face vision model from a local directory or the hub.

    Parameters
    ----------
    target : str
        A directory written by ``save_pretrained`` (``config.json`` + weights, ideally a
        ``preprocessor_config.json``), or a hub id such as ``"google/vit-base-patch16-224"``.
    pretrained : bool, default False
        For a hub id: load its weights with ``from_pretrained`` (the Hugging Face cache, then
        the network unless ``HF_HUB_OFFLINE`` is set). Without it a hub id gives the
        architecture of its config with random weights. A local directory always loads its
        own weights.
    spec : str, optional
        The spec string to record; defaults to ``"hf:<target>"``.

    Returns
    -------
    ModelHandle
        ``family="hf"``.

    Raises
    ------
    ModelSpecError
        When the directory is missing or is not a model directory, or a hub model is neither
        in the Hugging Face cache nor downloadable (one line naming the cache folder).
    MissingExtraError
        When transformers is not installed.
    """
    spec = spec or f"hf:{target}"
    local = Path(target).expanduser()
    is_local = local.is_dir()
    if not is_local:
        _check_hub_id(target, spec)
    transformers = require("transformers", "hf", "hf: model specs")
    source = str(local) if is_local else target
    # offline, the libraries look in their cache only and never open a connection
    cached_only = is_local or is_offline()
    try:
        config = transformers.AutoConfig.from_pretrained(source, local_files_only=cached_only)
    except RecursionError:
        raise ModelSpecError(
            f"model spec {spec!r}: the config.json of {source!r} is nested too deeply to be a "
            "model config; pass a directory written by model.save_pretrained(...)"
        ) from None
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        if not is_local:
            raise _hub_unavailable(spec, target, exc) from exc
        raise ModelSpecError(
            f"model spec {spec!r}: {source!r} is not a Hugging Face model ({first_line(exc)}); "
            "pass a directory written by model.save_pretrained(...)"
        ) from exc
    model_class = _model_class(transformers, config)
    if is_local or pretrained:
        model = _from_pretrained(transformers, model_class, source, spec, local=is_local)
    else:
        model = model_class(config)  # the architecture only: random weights
    num_prefix_tokens = _PREFIX_TOKENS.get(getattr(config, "model_type", ""), 0)
    if num_prefix_tokens:
        num_prefix_tokens += int(getattr(config, "num_register_tokens", 0) or 0)
    preprocess = hf_preprocessing(source, config, local_files_only=cached_only)
    channels = getattr(config, "num_channels", None)
    if isinstance(channels, int):
        preprocess = dataclasses.replace(preprocess, channels=channels).with_sources(
            channels=HF_CONFIG + " (num_channels)"
        )
    else:
        preprocess = with_model_channels(preprocess, model)
    return ModelHandle(
        module=model,
        spec=spec,
        family="hf",
        preprocess=preprocess,
        aliases=_aliases(model),
        num_prefix_tokens=num_prefix_tokens,
        patch_grid=_patch_grid(config) if num_prefix_tokens else None,
    )


def _from_pretrained(
    transformers: Any, model_class: Any, source: str, spec: str, *, local: bool
) -> Any:
    """Load the weights of a directory or hub model with ``from_pretrained``."""
    # transformers draws a "Loading weights" bar on stderr for every model; featscope's own
    # progress (and --quiet) should be the only output, so it is off while loading a local
    # directory (a hub download keeps its bar: it can take minutes)
    bars = transformers.utils.logging
    was_on = bars.is_progress_bar_enabled()
    if local:
        bars.disable_progress_bar()
    try:
        return model_class.from_pretrained(source, local_files_only=local or is_offline())
    except FeatscopeError:
        raise
    except Exception as exc:  # damaged files raise SafetensorError, UnpicklingError, KeyError...
        if not local and isinstance(exc, (OSError, ValueError)):
            raise weights_unavailable(spec, hf_cache_dir(), exc) from exc
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
            raise ModelSpecError(
                f"model spec {spec!r}: the weights in {source!r} are pickled data that can only "
                "be read by running code from the file, which featscope never does for hf: "
                "models; convert them to model.safetensors (save_pretrained(..., "
                "safe_serialization=True)) where you trust the file"
            ) from exc
        raise ModelSpecError(
            f"model spec {spec!r}: cannot load {model_class.__name__} from {source!r} "
            f"({type(exc).__name__}: {first_line(exc)}); the weights are damaged or the "
            "directory is incomplete: it needs config.json and the weights (model.safetensors) "
            "written by save_pretrained"
        ) from exc
    finally:
        if was_on:
            bars.enable_progress_bar()


def hf_preprocessing(source: str, config: Any, *, local_files_only: bool = True) -> Preprocessing:
    """Read the eval transform from a model directory's image-processor config.

    Parameters
    ----------
    source : str
        The model directory (or hub id).
    config : transformers.PretrainedConfig
        The model's config, used for ``image_size`` when there is no processor config.
    local_files_only : bool, default True
        Never reach the network.

    Returns
    -------
    Preprocessing
        Size, crop fraction, mean, std and interpolation of the processor; ImageNet defaults at
        ``config.image_size`` (with a warning) when the directory has no processor config.
    """
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        size = _as_pair(getattr(config, "image_size", 224))
        warnings.warn(
            f"hf model {source!r} has no image-processor config ({first_line(exc)}); using "
            f"ImageNet mean/std at {size[0]}x{size[1]}; save the processor next to the model "
            "(processor.save_pretrained(dir)) or pass input_size/mean/std",
            stacklevel=3,
        )
        return Preprocessing(input_size=size, crop_pct=1.0).with_sources(
            ASSUMED, input_size=HF_CONFIG + " (image_size)"
        )
    size = _size_dict(getattr(processor, "size", None))
    crop = _size_dict(getattr(processor, "crop_size", None))
    resize_edge = size.get("shortest_edge") or size.get("height")
    if getattr(processor, "do_center_crop", False) and crop.get("height"):
        input_size = (int(crop["height"]), int(crop["width"]))
        crop_pct = min(1.0, min(input_size) / resize_edge) if resize_edge else 1.0
    elif size.get("height"):
        input_size = (int(size["height"]), int(size["width"]))
        crop_pct = 1.0
    elif size.get("shortest_edge"):
        edge = int(size["shortest_edge"])
        input_size = (edge, edge)
        # ConvNeXt's processor resizes to edge / crop_pct and crops, but only below 384 px;
        # from 384 up it resizes straight to the square
        crop_pct = float(getattr(processor, "crop_pct", None) or 1.0) if edge < 384 else 1.0
    else:
        input_size = _as_pair(getattr(config, "image_size", 224))
        crop_pct = 1.0
    normalize = getattr(processor, "do_normalize", True)
    mean = getattr(processor, "image_mean", None) if normalize else (0.0, 0.0, 0.0)
    std = getattr(processor, "image_std", None) if normalize else (1.0, 1.0, 1.0)
    return Preprocessing(
        input_size=input_size,
        mean=_triple(mean, IMAGENET_MEAN),
        std=_triple(std, IMAGENET_STD),
        crop_pct=crop_pct,
        interpolation=_interpolation(getattr(processor, "resample", None)),
    ).with_sources(HF_PROCESSOR)


def _check_hub_id(target: str, spec: str) -> None:
    """Refuse a non-local target that looks like a path rather than a hub id."""
    if target.startswith((".", "/", "~", "\\")) or target.count("/") > 1 or os.sep in target[:1]:
        raise ModelSpecError(
            f"model spec {spec!r}: directory {target!r} does not exist; pass a directory written "
            "by model.save_pretrained(...)"
        )


def _hub_unavailable(spec: str, target: str, exc: BaseException) -> ModelSpecError:
    """Build the error for a hub id whose config is neither cached nor downloadable."""
    if is_offline():
        why = "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set and nothing may be downloaded"
        fix = "unset HF_HUB_OFFLINE to download it"
    else:
        why = f"it could not be fetched ({first_line(exc)})"
        fix = "check the hub id and the network"
    return ModelSpecError(
        f"model spec {spec!r}: {target!r} is not a local directory, so it would be a hub id, "
        f"but it is not in the Hugging Face cache {hf_cache_dir()} and {why}; pass the path "
        f"of a save_pretrained directory, or {fix}"
    )


def _model_class(transformers: Any, config: Any) -> Any:
    """Return the class named in ``config.architectures`` (as saved), else ``AutoModel``."""
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if cls is not None and hasattr(cls, "from_pretrained"):
            return cls
    return transformers.AutoModel


def _aliases(model: Any) -> dict[str, PointRef]:
    from torch import nn

    # a *ForImageClassification model holds its base model under base_model_prefix ("vit");
    # a bare AutoModel is the base model itself
    prefix = getattr(model, "base_model_prefix", "")
    base_path = prefix if prefix and isinstance(getattr(model, prefix, None), nn.Module) else ""
    base = model.get_submodule(base_path)
    aliases = {"backbone": PointRef(base_path, select="last_hidden_state")}
    classifier = getattr(model, "classifier", None)
    if classifier is not None and hasattr(classifier, "forward"):
        aliases["pre_logits"] = PointRef("classifier", io="input")
        aliases["logits"] = PointRef("", select="logits")
    elif getattr(base, "pooler", None) is not None:
        aliases["pre_logits"] = PointRef(base_path, select="pooler_output")
    return aliases


def _patch_grid(config: Any) -> tuple[int, int] | None:
    image = getattr(config, "image_size", None)
    patch = getattr(config, "patch_size", None)
    if image is None or patch is None:
        return None
    (ih, iw), (ph, pw) = _as_pair(image), _as_pair(patch)
    return (ih // ph, iw // pw)


def _size_dict(size: Any) -> dict[str, int]:
    """Turn a processor size (dict, SizeDict or int) into a dict of the keys that are set."""
    if size is None:
        return {}
    if isinstance(size, int):
        return {"height": size, "width": size}
    items = size.items() if hasattr(size, "items") else vars(size).items()
    return {k: int(v) for k, v in items if isinstance(v, (int, float)) and v}


def _interpolation(resample: Any) -> str:
    if resample is None:
        return "bilinear"
    value = getattr(resample, "value", resample)
    if isinstance(value, str):
        return value if value in _RESAMPLE.values() else "bicubic"
    return _RESAMPLE.get(int(value), "bicubic")


def _as_pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def _triple(value: Any, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    values = tuple(float(v) for v in value)
    return values if len(values) == 3 else default
