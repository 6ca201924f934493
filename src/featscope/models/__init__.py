"""LOAD: turn a model spec, module or factory into a :class:`ModelHandle`.

:func:`load_model` is the entry point. It parses spec strings (:func:`parse_spec`), dispatches
to one adapter per family (``timm_adapter``, ``torchvision_adapter``, ``hf_adapter``,
``mmpretrain_adapter``, ``torchscript_adapter``, ``factory_adapter``, ``demo``), loads a
checkpoint (:func:`load_checkpoint`), applies preprocessing overrides and moves the model to its
device. It never changes the train/eval flags of the model: capture sets and restores them.

What weights the model holds is recorded on the handle as ``handle.weights`` (one of
:data:`WEIGHTS`; a model built by name with random weights is also logged as a warning), and the
preprocessing in effect, with where each value came from, is logged once at INFO
(``handle.preprocess.describe()``).

This package imports nothing heavy at import time; torch and the model zoos are imported by
the adapter that needs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from featscope.errors import ModelSpecError, ParameterError
from featscope.models.checkpoint import CheckpointReport, load_checkpoint
from featscope.models.handle import ALIASES, ModelHandle, PointInfo, PointRef
from featscope.models.hub import WEIGHTS, log_random_weights
from featscope.models.preprocessing import OVERRIDE, Preprocessing, as_preprocessing
from featscope.models.spec import PREFIXES, ModelSpec, parse_spec

__all__ = [
    "ALIASES",
    "PREFIXES",
    "WEIGHTS",
    "CheckpointReport",
    "ModelHandle",
    "ModelSpec",
    "PointInfo",
    "PointRef",
    "Preprocessing",
    "describe_preprocessing",
    "load_checkpoint",
    "load_model",
    "parse_size",
    "parse_spec",
    "resolve_device",
    "weights_of",
]

logger = logging.getLogger(__name__)

#: Spec kinds whose zoo has pretrained weights to download (``pretrained=True``).
_PRETRAINED_KINDS = ("timm", "tv", "hf", "mmpretrain")


def load_model(
    model: str | ModelHandle | Callable[[], Any] | Any,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    input_size: int | Sequence[int] | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    in_chans: int | None = None,
    device: str = "cpu",
    pretrained: bool = False,
    strict: bool = False,
) -> ModelHandle:
    """Load a model and describe it for capture.

    Parameters
    ----------
    model : str, torch.nn.Module, callable or ModelHandle
        A spec string (``"timm:resnet50"``, ``"tv:resnet18"``, ``"hf:./vit"``, ``"ts:m.pt"``,
        ``"mmpretrain:resnet18_8xb16_cifar10"``, ``"py:pkg.mod:build"``, ``"demo:<name>"``; see
        :mod:`featscope.models.spec`), a module,
        a zero-argument callable returning a module or handle, or a handle (used as is).
    checkpoint : str or os.PathLike, optional
        Weights to load into the model (see :func:`load_checkpoint`).
    input_size : int or (int, int), optional
        Overrides the model's input ``(height, width)``; an int means a square. A timm ViT built
        from a ``timm:`` spec is resized to it (position embeddings resampled).
    mean, std : float or 3 floats, optional
        Override the per-channel normalisation (on the [0, 1] scale; three RGB values are
        averaged for a 1-channel model).
    in_chans : int, optional
        The model's input channels (1 for grey, 3 for RGB). A ``timm:`` model is built with
        that many (timm's ``in_chans``), an ``mmpretrain:`` one with that backbone
        ``in_channels``; for other models it overrides what is read from the model (the first
        convolution's ``in_channels``, a Hugging Face config's ``num_channels``), with a warning
        when the two differ. Images are converted to it (grey for 1, RGB for 3).
    device : str, default "cpu"
        Where to put the model: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    pretrained : bool, default False
        For ``timm:``, ``tv:``, ``hf:<hub id>`` and ``mmpretrain:`` specs, the zoo's pretrained
        weights, through the zoo's own cache (downloaded when not cached, unless
        ``HF_HUB_OFFLINE`` is set). Never the default: featscope does not download unless
        asked, and such a model without a checkpoint has random weights (logged as a warning),
        drawn from seed 0: the same spec is the same network in every run, whatever
        ``torch.manual_seed`` was called before (the caller's random state is left as it was).
    strict : bool, default False
        Raise instead of warning when checkpoint keys do not all match.

    Returns
    -------
    ModelHandle
        The module on ``device``, its preprocessing (with the overrides and their origins) and
        its aliases; ``handle.weights`` says what weights it holds (see :data:`WEIGHTS`).

    Raises
    ------
    ModelSpecError
        When the spec cannot be parsed or the model cannot be built.
    CheckpointError
        When the checkpoint cannot be loaded (see :func:`load_checkpoint`).
    ParameterError
        When an override or the device is invalid, or ``pretrained`` is asked of a model that
        has no zoo weights (``ts:``, ``py:``, a module).
    """
    size = parse_size(input_size)
    mean_ = _channels("mean", mean)
    std_ = _channels("std", std)
    if std_ is not None and min(std_) <= 0:
        raise ParameterError(f"`std` must be positive per channel; got {std_}; pass e.g. 0.5")
    chans = _in_chans(in_chans)
    torch_device = resolve_device(device)
    spec = parse_spec(model) if isinstance(model, str) else None
    kind = spec.kind if spec is not None else None
    if pretrained and kind not in (*_PRETRAINED_KINDS, "demo"):
        raise ParameterError(
            f"`pretrained` applies to timm:, tv:, hf: and mmpretrain: specs, whose zoos publish "
            f"weights; {spec.raw if spec else type(model).__name__!r} brings its own weights: "
            "leave pretrained off (or pass a checkpoint)"
        )

    with _seeded_init(spec is not None and not pretrained):
        handle, built_here = _build(model, spec, pretrained=pretrained, in_chans=chans)
    weights = _weights(handle, spec, pretrained=pretrained)
    if checkpoint is not None:
        report = load_checkpoint(handle.module, checkpoint, strict=strict)
        handle = dataclasses.replace(
            handle, checkpoint=report.path, checkpoint_sha256=report.sha256
        )
        weights = "checkpoint"
    handle = _override(handle, size, mean_, std_, chans, resize_model=built_here)
    handle.module.to(torch_device)
    if handle is model:  # a handle given as it is stays untouched
        return handle
    handle.weights = weights
    if weights == "random":
        log_random_weights(handle.spec)
    logger.info("preprocessing of %s: %s", handle.spec, json.dumps(describe_preprocessing(handle)))
    return handle


def weights_of(handle: ModelHandle) -> str:
    """Return what weights a handle's model holds: one of :data:`WEIGHTS`.

    Parameters
    ----------
    handle : ModelHandle
        A handle from :func:`load_model`, or one built by hand (``"given"``).

    Returns
    -------
    str
        ``"random"``, ``"pretrained"``, ``"checkpoint"``, ``"shipped"`` or ``"given"``.
    """
    return str(getattr(handle, "weights", "given"))


def describe_preprocessing(handle: ModelHandle) -> dict[str, Any]:
    """Return the preprocessing in effect for a handle as a JSON-ready dict.

    Parameters
    ----------
    handle : ModelHandle
        Any handle (a hand-built preprocessing object is described as given with the model).

    Returns
    -------
    dict
        :meth:`Preprocessing.describe`: sizes, crop, interpolation, mean, std, channels and the
        origin of each.
    """
    return as_preprocessing(handle.preprocess).describe()


@contextlib.contextmanager
def _seeded_init(seeded: bool) -> Iterator[None]:
    """Build a model by name from seed 0, leaving the caller's random state as it was.

    A model built without weights is otherwise a different random network in every process, so
    the same command on the same data would give different features, maps and metrics.
    """
    if not seeded:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def _build(
    model: Any, spec: ModelSpec | None, *, pretrained: bool, in_chans: int | None
) -> tuple[ModelHandle, bool]:
    """Return the adapter's handle and whether featscope created the module (may resize it)."""
    if isinstance(model, ModelHandle):
        return model, False
    if spec is not None:
        return _from_spec(spec, pretrained=pretrained, in_chans=in_chans), True
    import torch

    from featscope.models.factory_adapter import from_callable, wrap_module

    if isinstance(model, torch.nn.Module):
        return wrap_module(model), False
    if callable(model):
        return from_callable(model), False
    raise ModelSpecError(
        f"`model` must be a spec string (e.g. 'timm:resnet50'), an nn.Module, a zero-argument "
        f"callable or a ModelHandle; got {type(model).__name__}"
    )


def _weights(handle: ModelHandle, spec: ModelSpec | None, *, pretrained: bool) -> str:
    """Return what weights a freshly built model holds, before any checkpoint (:data:`WEIGHTS`)."""
    if spec is None or spec.kind in ("ts", "py"):
        return weights_of(handle)
    if spec.kind == "demo":
        return "shipped"
    if spec.kind == "hf" and Path(spec.target).expanduser().is_dir():
        return "given"  # a save_pretrained directory brings its own weights
    return "pretrained" if pretrained else "random"


def _from_spec(spec: ModelSpec, *, pretrained: bool, in_chans: int | None) -> ModelHandle:
    if spec.kind == "timm":
        from featscope.models.timm_adapter import load_timm

        return load_timm(spec.target, pretrained=pretrained, in_chans=in_chans, spec=spec.raw)
    if spec.kind == "tv":
        from featscope.models.torchvision_adapter import load_torchvision

        return load_torchvision(spec.target, pretrained=pretrained, spec=spec.raw)
    if spec.kind == "hf":
        from featscope.models.hf_adapter import load_hf

        return load_hf(spec.target, pretrained=pretrained, spec=spec.raw)
    if spec.kind == "mmpretrain":
        from featscope.models.mmpretrain_adapter import load_mmpretrain

        return load_mmpretrain(spec.target, pretrained=pretrained, in_chans=in_chans, spec=spec.raw)
    if spec.kind == "ts":
        from featscope.models.torchscript_adapter import load_torchscript

        return load_torchscript(spec.target, spec=spec.raw)
    if spec.kind == "py":
        from featscope.models.factory_adapter import load_factory

        return load_factory(spec)
    from featscope.models.demo import load_demo

    return load_demo(spec.target)


def _override(
    handle: ModelHandle,
    size: tuple[int, int] | None,
    mean: tuple[float, float, float] | None,
    std: tuple[float, float, float] | None,
    in_chans: int | None,
    *,
    resize_model: bool,
) -> ModelHandle:
    """Apply the preprocessing overrides, resizing a timm ViT that featscope built."""
    changes: dict[str, Any] = {}
    if size is not None:
        changes["input_size"] = size
    if mean is not None:
        changes["mean"] = mean
    if std is not None:
        changes["std"] = std
    if in_chans is not None:
        changes["channels"] = in_chans
    if not changes:
        return handle
    current = as_preprocessing(handle.preprocess)
    # an adapter that built the model for `in_chans` (timm, mmpretrain) recorded it already
    if in_chans is not None and in_chans != current.channels:
        warnings.warn(
            f"`in_chans` {in_chans} differs from the {current.channels} input channels read "
            f"from {handle.spec} ({current.source['channels']}); using {in_chans}",
            stacklevel=3,
        )
    preprocess = dataclasses.replace(current, **changes).with_sources(
        **dict.fromkeys(changes, OVERRIDE)
    )
    patch_grid = handle.patch_grid
    if size is not None and size != current.input_size:
        if resize_model and handle.family == "timm":
            from featscope.models.timm_adapter import set_timm_input_size

            patch_grid = set_timm_input_size(handle.module, size) or patch_grid
        elif patch_grid is not None:
            warnings.warn(
                f"`input_size` {size} differs from the {current.input_size} this vision "
                f"transformer ({handle.spec}) was built for; featscope cannot resize it, so it "
                "may reject the input; use the model's own size or a timm: spec",
                stacklevel=3,
            )
    return dataclasses.replace(handle, preprocess=preprocess, patch_grid=patch_grid)


def _in_chans(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ParameterError(
            f"`in_chans` must be a positive integer (the model's input channels); got "
            f"{value!r}; pass 1 for grey or 3 for RGB"
        )
    return int(value)


def parse_size(value: int | Sequence[int] | None) -> tuple[int, int] | None:
    """Read an input size given as ``S``, ``(S,)`` or ``(H, W)``.

    Parameters
    ----------
    value : int or sequence of int or None
        The size; ``None`` means "the model's own".

    Returns
    -------
    (int, int) or None
        ``(height, width)``, or ``None``.

    Raises
    ------
    ParameterError
        For anything but one or two positive integers.
    """
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        values = [int(value)] * 2
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) in (1, 2)
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        values = [int(v) for v in value] * (3 - len(value))
    else:
        raise ParameterError(
            f"`input_size` must be an int or (height, width); got {value!r}; pass e.g. 224"
        )
    if min(values) < 1:
        raise ParameterError(f"`input_size` must be positive; got {value!r}; pass e.g. 224")
    return (values[0], values[1])


def _channels(
    name: str, value: float | Sequence[float] | None
) -> tuple[float, float, float] | None:
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (float(value),) * 3
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) in (1, 3)
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    ):
        values = tuple(float(v) for v in value)
        return values * 3 if len(values) == 1 else values  # type: ignore[return-value]
    raise ParameterError(
        f"`{name}` must be one float or three (R, G, B) floats on the [0, 1] scale; got "
        f"{value!r}; pass e.g. 0.485,0.456,0.406"
    )


def resolve_device(device: Any) -> Any:
    """Parse and check a device before any model is built or any image is read.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:<index>"`` or ``"mps"``.

    Returns
    -------
    torch.device
        The parsed device.

    Raises
    ------
    ParameterError
        When the string is not a device, or the device is not on this machine.
    """
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(
            f"`device` {device!r} is not a torch device; pass cpu, cuda, cuda:<index> or mps"
        ) from exc
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ParameterError(
                f"`device` {device!r} was requested but no CUDA device is available on this "
                "machine; pass --device cpu"
            )
        if parsed.index is not None and parsed.index >= count:
            raise ParameterError(
                f"`device` {device!r} is out of range: {count} CUDA device(s) (0-{count - 1})"
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError(
            f"`device` {device!r} was requested but MPS is not available; pass --device cpu"
        )
    return parsed
