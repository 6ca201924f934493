"""Image transforms as a list of named steps, and what each step makes of an image.

The dataset browser shows what a model sees after every step of its input pipeline. This module
turns the transforms people use into a flat list of :class:`Step` objects
(:func:`resolve_transform`) and runs one image through them, keeping every intermediate output
as a numpy array (:func:`trace`):

* a torchvision ``transforms.Compose`` or ``transforms.v2.Compose`` (its ``.transforms``; nested
  ``Compose`` and ``nn.Sequential`` are flattened);
* timm's ``create_transform`` for a model spec: ``timm:resnet50`` (the model's pretrained data
  config, built with ``pretrained=False``: nothing is downloaded) or a built-in
  ``demo:efficientnet-lite0`` / ``demo:digits`` (its own preprocessing), for ``phase="train"``
  (the training augmentation) or ``"eval"``;
* ``tv:resnet50``: the preset of the torchvision model's default weights, spelled out as
  resize, centre crop, to-tensor, normalise (train: random resized crop and flip instead of the
  resize and crop);
* any callable, or ``py:package.module:name`` naming one: a transform object, a function taking
  the image, or a zero-argument factory that returns a transform. **A py: spec runs code**: the
  module is imported as with ``python -c "import ..."``. A callable that is not a ``Compose`` is
  one step.

Outputs become numpy arrays here (tensors ``(C, H, W)`` are laid out ``(H, W, C)``), so that the
renderer never needs torch. torch and timm are imported only by the functions that need them.
"""

from __future__ import annotations

import inspect
import numbers
import random
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from featscope.errors import ModelSpecError, ParameterError

__all__ = [
    "DEFAULT_TRANSFORM",
    "PHASES",
    "Pipeline",
    "Step",
    "StepOutput",
    "resolve_transform",
    "step_name",
    "trace",
]

#: The transform of the built-in default: EfficientNet-Lite0's timm training augmentation.
DEFAULT_TRANSFORM = "demo:efficientnet-lite0"
#: The phases a model-spec transform can be built for.
PHASES = ("train", "eval")

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# Containers whose ``.transforms`` run one after the other (flattened into steps). Random
# containers (RandomApply, RandomChoice, RandomOrder) stay one step: their children do not all
# run, or not in this order.
_SEQUENTIAL = frozenset({"Compose", "Sequential"})


# --------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class Step:
    """One step of a pipeline.

    Attributes
    ----------
    name : str
        Class or function name with its key arguments, e.g. ``"RandomResizedCrop(224)"``.
    fn : callable
        The step itself; called with the previous step's output.
    """

    name: str
    fn: Callable[[Any], Any]

    def __call__(self, value: Any) -> Any:
        """Apply the step to ``value``."""
        return self.fn(value)


@dataclass(frozen=True)
class Pipeline:
    """A transform resolved into steps.

    Attributes
    ----------
    steps : tuple of Step
        The steps, in order.
    source : str
        Where it came from: the spec and phase (``"timm:resnet18 (train)"``) or the class name.
    """

    steps: tuple[Step, ...]
    source: str

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def names(self) -> tuple[str, ...]:
        """The step names, in order."""
        return tuple(step.name for step in self.steps)


@dataclass(frozen=True)
class StepOutput:
    """What one step made of one image.

    Attributes
    ----------
    name : str
        The step's name (``"Original"`` for the loaded image).
    views : tuple of numpy.ndarray
        The output as ``(H, W)`` or ``(H, W, C)`` arrays, one per view (several for the lists of
        views of contrastive augmentations, or the crops of ``FiveCrop``).
    masks : tuple of (numpy.ndarray or None)
        Per view, the 2-D mask of a masked-image pipeline (output ``(image, mask)``), else None.
    kind : str
        What the step returned: ``"PIL"``, ``"tensor"`` or ``"ndarray"``.
    stats : (tuple of float, tuple of float) or None
        ``(mean, std)`` of the last ``Normalize`` step run so far (on the [0, 1] scale): the
        normalisation to undo for display. None before any.
    """

    name: str
    views: tuple[np.ndarray, ...]
    masks: tuple[np.ndarray | None, ...]
    kind: str
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the first view."""
        return (int(self.views[0].shape[0]), int(self.views[0].shape[1]))


# --------------------------------------------------------------------------- resolving


def resolve_transform(
    transform: Any = None, *, phase: str = "train", name: str | None = None
) -> Pipeline:
    """Turn a transform or a transform spec into a :class:`Pipeline` of named steps.

    Parameters
    ----------
    transform : str, callable or None
        ``None`` (:data:`DEFAULT_TRANSFORM`), a model spec (``"timm:resnet50"``, ``"tv:resnet50"``,
        ``"demo:efficientnet-lite0"``, ``"demo:digits"``), ``"py:package.module:name"``, a
        torchvision ``Compose`` (v1 or v2), a :class:`Pipeline`, or any callable taking an image.
    phase : {"train", "eval"}, default "train"
        For model specs: the training augmentation or the evaluation transform.
    name : str, optional
        Source description to record instead of the derived one.

    Returns
    -------
    Pipeline
        The flattened steps and their source.

    Raises
    ------
    ParameterError
        When ``phase`` is unknown, or ``transform`` is neither a spec nor a callable, or a py:
        target is not callable.
    ModelSpecError
        When a spec cannot be parsed, its module cannot be imported, or timm does not know the
        model.
    MissingExtraError
        When timm is needed but not installed.
    """
    if phase not in PHASES:
        raise ParameterError(
            f"`phase` {phase!r} is not one of {', '.join(PHASES)}; pass train or eval"
        )
    if isinstance(transform, Pipeline):
        return transform
    if transform is None:
        transform = DEFAULT_TRANSFORM
    if isinstance(transform, str):
        obj, source = _from_spec(transform, phase)
    elif callable(transform):
        obj, source = transform, _describe(transform)
    else:
        raise ParameterError(
            f"`transform` must be a spec (timm:NAME, demo:NAME, py:package.module:name) or a "
            f"callable; got {type(transform).__name__}"
        )
    steps = tuple(Step(step_name(fn), fn) for fn in _flatten(obj))
    if not steps:
        raise ParameterError(f"`transform` {source!r} has no steps; pass a non-empty Compose")
    return Pipeline(steps=steps, source=name or source)


def _from_spec(spec: str, phase: str) -> tuple[Any, str]:
    from featscope.models.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == "py":
        return _import_callable(parsed), parsed.raw
    if parsed.kind == "timm":
        return _timm_transform(parsed.target, phase, parsed.raw), f"{parsed.raw} ({phase})"
    if parsed.kind == "demo":
        return _demo_transform(parsed.target, phase, parsed.raw), f"{parsed.raw} ({phase})"
    if parsed.kind == "tv":
        return _torchvision_transform(parsed.target, phase, parsed.raw), f"{parsed.raw} ({phase})"
    raise ModelSpecError(
        f"transform spec {spec!r}: {parsed.kind}: models carry no transform featscope can read; "
        "pass timm:NAME, tv:NAME, demo:efficientnet-lite0 or py:package.module:name (your own "
        "transform)"
    )


def _import_callable(spec: Any) -> Any:
    """Import a py: target; call it when it is a zero-argument factory, else use it as is."""
    from featscope.models.factory_adapter import import_attribute

    target = import_attribute(spec, "transform")
    if not callable(target):
        raise ParameterError(
            f"transform spec {spec.raw!r} names a {type(target).__name__}, not a callable; name a "
            "transform, a function taking an image, or a function returning a transform"
        )
    if _is_factory(target):
        made = target()
        if not callable(made):
            raise ParameterError(
                f"transform spec {spec.raw!r}: the factory returned a {type(made).__name__}, not "
                "a callable transform"
            )
        return made
    return target


def _is_factory(target: Any) -> bool:
    """Tell a zero-argument factory from a transform.

    A class or function that needs no argument makes the transform; one that takes the image is
    the transform. Transform objects (instances) are used as they are.
    """
    if not (inspect.isfunction(target) or inspect.isclass(target)):
        return False
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    takes_any = any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
    return not required and not takes_any


def _timm_transform(name: str, phase: str, raw: str) -> Any:
    from featscope._optional import require

    require("timm", "timm", "timm transforms")
    import timm
    import timm.data

    try:
        # pretrained=False: the data config comes with the model's pretrained_cfg; no download
        model = timm.create_model(name, pretrained=False)
    except RuntimeError as exc:  # timm: "Unknown model (...)"
        close = timm.list_models(f"*{name}*")[:3]
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise ModelSpecError(f"transform spec {raw!r}: {exc}; {hint}") from exc
    config = timm.data.resolve_model_data_config(model)
    return timm.data.create_transform(**config, is_training=phase == "train")


def _demo_transform(name: str, phase: str, raw: str) -> Any:
    """Build timm's transform with a built-in model's preprocessing (weights not read)."""
    from featscope._optional import require

    timm_data = require("timm.data", "timm", "timm transforms")
    from featscope.models import demo

    canonical = demo._NAME_ALIASES.get(name.lower())
    preprocessing = {
        "efficientnet-lite0": demo.EFFICIENTNET_LITE0_PREPROCESSING,
        "digits-cnn": demo.DIGITS_PREPROCESSING,
    }.get(canonical or "")
    if preprocessing is None:
        raise ModelSpecError(
            f"transform spec {raw!r}: unknown demo model; the built-in ones are "
            "demo:efficientnet-lite0 and demo:digits"
        )
    return timm_data.create_transform(
        input_size=(3, *preprocessing.input_size),
        is_training=phase == "train",
        interpolation=preprocessing.interpolation,
        mean=preprocessing.mean,
        std=preprocessing.std,
        crop_pct=preprocessing.crop_pct,
    )


def _torchvision_transform(name: str, phase: str, raw: str) -> Any:
    """Spell out the preset of a torchvision model's default weights as a ``Compose``.

    ``weights.transforms()`` is one opaque module (``ImageClassification``); its parameters give
    the same steps one by one. Train: the classification reference recipe's basic preset
    (random resized crop, horizontal flip). Reading the preset downloads nothing.
    """
    from featscope._optional import require

    models = require("torchvision.models", "torchvision", "torchvision transforms")
    from torchvision import transforms as T

    try:
        preset = models.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, KeyError, AttributeError) as exc:
        raise ModelSpecError(
            f"transform spec {raw!r}: torchvision has no weights for {name!r} ({exc}); see "
            "torchvision.models.list_models()"
        ) from exc
    needed = ("crop_size", "resize_size", "mean", "std", "interpolation")
    if not all(hasattr(preset, attr) for attr in needed):
        raise ModelSpecError(
            f"transform spec {raw!r}: the weights' preset {type(preset).__name__} is not an "
            "image-classification transform; pass py:package.module:name with your own transform"
        )
    crop = list(preset.crop_size)
    tail = [T.PILToTensor(), T.ConvertImageDtype(_float32()), T.Normalize(preset.mean, preset.std)]
    if phase == "train":
        head = [
            T.RandomResizedCrop(crop, interpolation=preset.interpolation),
            T.RandomHorizontalFlip(0.5),
        ]
    else:
        head = [T.Resize(list(preset.resize_size), preset.interpolation), T.CenterCrop(crop)]
    return T.Compose(head + tail)


def _flatten(transform: Any) -> list[Callable[[Any], Any]]:
    children = getattr(transform, "transforms", None)
    if type(transform).__name__ in _SEQUENTIAL and children is None:
        children = list(transform.children()) if hasattr(transform, "children") else None
    if type(transform).__name__ in _SEQUENTIAL and isinstance(children, Sequence):
        return [step for child in children for step in _flatten(child)]
    return [transform]


def _describe(transform: Any) -> str:
    if inspect.isfunction(transform) or inspect.ismethod(transform):
        return f"{transform.__module__}:{transform.__qualname__}"
    return type(transform).__name__


# --------------------------------------------------------------------------- step names


def step_name(step: Any) -> str:
    """Name a step by its class (or function) and key arguments.

    Parameters
    ----------
    step : callable
        A transform.

    Returns
    -------
    str
        E.g. ``"RandomResizedCrop(224)"``, ``"RandomHorizontalFlip(p=0.5)"``,
        ``"ColorJitter(b=0.4, c=0.4, s=0.4)"``, ``"Normalize(ImageNet)"``, ``"ToTensor"``.
    """
    import functools

    if isinstance(step, functools.partial):
        return f"{getattr(step.func, '__name__', 'partial')}(...)"
    if inspect.isfunction(step) or inspect.ismethod(step) or inspect.isbuiltin(step):
        return step.__name__
    cls = type(step).__name__
    if cls == "Lambda" and hasattr(step, "lambd"):
        return f"Lambda({getattr(step.lambd, '__name__', '?')})"
    args = _key_args(step, cls)
    return f"{cls}({', '.join(args)})" if args else cls


def _key_args(step: Any, cls: str) -> list[str]:
    if cls == "Normalize":
        return _normalize_args(step)
    if cls == "ColorJitter":
        return _jitter_args(step)
    if cls in ("RandomApply",):
        inner = [step_name(t) for t in getattr(step, "transforms", [])]
        return [*inner, f"p={_num(getattr(step, 'p', ''))}"]
    if cls in ("RandomChoice", "RandomOrder"):
        return [step_name(t) for t in getattr(step, "transforms", [])]
    if cls in ("ToDtype", "ConvertImageDtype"):
        dtype = getattr(step, "dtype", None)
        text = str(dtype).replace("torch.", "") if not isinstance(dtype, dict) else "dict"
        return [text, "scale"] if getattr(step, "scale", False) else [text]
    args: list[str] = []
    size = getattr(step, "size", None)
    if size is not None and not callable(size):
        args.append(_size(size))
    for attr, label in (
        ("degrees", "degrees"),
        ("kernel_size", "k"),
        ("num_ops", "n"),
        ("magnitude", "m"),
        ("num_output_channels", "c"),
        ("policy", ""),
        ("p", "p"),
        ("probability", "p"),
    ):
        value = getattr(step, attr, None)
        if value is None or callable(value) or (attr == "p" and "p=" in " ".join(args)):
            continue
        if attr == "kernel_size":
            text = _size(value)
        else:
            text = _num(value) if not hasattr(value, "name") else value.name
        args.append(f"{label}={text}" if label else text)
    return args


def _normalize_args(step: Any) -> list[str]:
    stats = normalize_stats(step)
    if stats is None:
        return []
    mean, std = stats
    if np.allclose(mean, _IMAGENET[0], atol=1e-4) and np.allclose(std, _IMAGENET[1], atol=1e-4):
        return ["ImageNet"]
    if len(set(mean)) == 1 and len(set(std)) == 1:
        return [f"mean={_num(mean[0])}", f"std={_num(std[0])}"]
    return [f"mean={_num(mean)}", f"std={_num(std)}"]


def _jitter_args(step: Any) -> list[str]:
    args = []
    for attr, label in (("brightness", "b"), ("contrast", "c"), ("saturation", "s"), ("hue", "h")):
        value = getattr(step, attr, None)
        if value is None:
            continue
        if isinstance(value, Sequence) and len(value) == 2:
            low, high = float(value[0]), float(value[1])
            # torchvision stores (1 - x, 1 + x) (hue: (-x, x)); show the x the user passed
            value = (high - low) / 2
        if float(value) != 0:
            args.append(f"{label}={_num(value)}")
    return args


def _size(size: Any) -> str:
    if isinstance(size, numbers.Number):
        return str(size)
    values = list(size)
    if len(values) == 2 and values[0] == values[1]:
        return str(values[0])
    if len(values) == 1:
        return str(values[0])
    return "x".join(str(v) for v in values)


def _num(value: Any) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_num(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def normalize_stats(step: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Return ``(mean, std)`` of a normalising step, or None if it is not one.

    Parameters
    ----------
    step : object
        A transform. Any object with ``mean`` and ``std`` of 1 or 3 numbers counts (torchvision
        ``Normalize`` v1/v2, timm's, featscope's :class:`~featscope.models.Preprocessing`).

    Returns
    -------
    (tuple of float, tuple of float) or None
        Per-channel mean and std on the [0, 1] scale.
    """
    mean, std = getattr(step, "mean", None), getattr(step, "std", None)
    if mean is None or std is None or callable(mean) or callable(std):
        return None
    try:
        mean_ = tuple(float(v) for v in np.asarray(_plain(mean), dtype=float).reshape(-1))
        std_ = tuple(float(v) for v in np.asarray(_plain(std), dtype=float).reshape(-1))
    except (TypeError, ValueError):
        return None
    if len(mean_) not in (1, 3) or len(std_) not in (1, 3) or min(std_) <= 0:
        return None
    return mean_, std_


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


# --------------------------------------------------------------------------- running


@contextmanager
def _seeded(seed: int):
    """Seed torch's, numpy's and Python's global generators, and restore them afterwards.

    Transforms draw from these global streams; restoring them means browsing never changes the
    caller's random numbers.
    """
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 - the transforms' own stream
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)  # noqa: NPY002


def trace(
    pipeline: Pipeline, image: Image.Image, *, seed: int = 0, image_id: str = "image"
) -> list[StepOutput]:
    """Run one image through every step, keeping each output.

    Parameters
    ----------
    pipeline : Pipeline
        The steps (see :func:`resolve_transform`).
    image : PIL.Image.Image
        The loaded image.
    seed : int, default 0
        Seed of the random augmentations (torch, numpy and Python generators are seeded and then
        restored).
    image_id : str, default "image"
        Named in errors.

    Returns
    -------
    list of StepOutput
        ``"Original"`` (the image as loaded) followed by one output per step.

    Raises
    ------
    ParameterError
        When a step raises, or returns something that is not an image (a PIL image, a 2-D/3-D
        array or tensor, a list of them, or an ``(image, mask)`` pair); the step is named.
    """
    outputs = [_record("Original", image, None, 0, image_id)]
    stats = None
    value: Any = image
    with _seeded(seed):
        for number, step in enumerate(pipeline.steps, start=1):
            try:
                value = step(value)
            except Exception as exc:  # a user transform may raise anything; name the step
                raise ParameterError(
                    f"transform step {number} {step.name!r} failed on image {image_id!r}: "
                    f"{type(exc).__name__}: {_one_line(exc)}; check the transform accepts the "
                    "previous step's output"
                ) from exc
            stats = normalize_stats(step.fn) or stats
            outputs.append(_record(step.name, value, stats, number, image_id))
    return outputs


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _record(name: str, value: Any, stats: Any, number: int, image_id: str) -> StepOutput:
    kind = _kind(value)
    views, masks = _views(value)
    if views is None:
        where = f"transform step {number} {name!r}" if number else "the loaded image"
        raise ParameterError(
            f"{where} returned {_what(value)} for image {image_id!r}, not an image; every step "
            "must return a PIL image, an (H, W[, C]) array, a (C, H, W) tensor, a list of those "
            "(views) or an (image, mask) pair"
        )
    return StepOutput(name=name, views=tuple(views), masks=tuple(masks), kind=kind, stats=stats)


def _what(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)}"
    return f"a {type(value).__name__}"


def _kind(value: Any) -> str:
    if isinstance(value, Image.Image):
        return "PIL"
    if isinstance(value, np.ndarray):
        return "ndarray"
    if isinstance(value, (list, tuple)) and value:
        return _kind(value[0])
    return "tensor" if _is_tensor(value) else type(value).__name__


def _is_tensor(value: Any) -> bool:
    module = type(value).__module__ or ""
    return module.startswith("torch") and hasattr(value, "detach")


def _views(value: Any) -> tuple[list[np.ndarray] | None, list[np.ndarray | None]]:
    """Split an output into image arrays (H, W[, C]) and their masks; None if not an image."""
    if isinstance(value, (list, tuple)):
        if not value:
            return None, []
        if len(value) == 2:
            image, mask = _image_array(value[0]), _mask_array(value[1])
            if image is not None and mask is not None and (image.ndim == 3 or mask.dtype == bool):
                return [image], [mask]
        views: list[np.ndarray] = []
        for item in value:
            array = _image_array(item)
            if array is None:
                batch = _batch(item)
                if batch is None:
                    return None, []
                views += batch
            else:
                views.append(array)
        return views, [None] * len(views)
    batch = _batch(value)
    if batch is not None:
        return batch, [None] * len(batch)
    array = _image_array(value)
    return ([array], [None]) if array is not None else (None, [])


def _to_numpy(value: Any) -> tuple[np.ndarray, bool] | None:
    """Return the array and whether it is channels-first (tensors), or None."""
    if isinstance(value, Image.Image):
        if value.mode == "1":
            return np.asarray(value, dtype=bool), False
        if value.mode in ("P", "CMYK", "YCbCr", "LAB", "HSV", "LA", "PA"):
            value = value.convert("RGBA" if "A" in value.mode else "RGB")
        return np.asarray(value), False
    if isinstance(value, np.ndarray):
        return value, False
    if _is_tensor(value):
        tensor = value.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype != _float32():
            tensor = tensor.float()
        if tensor.is_complex():
            return None
        return tensor.numpy(), True
    return None


def _float32() -> Any:
    import torch

    return torch.float32


def _image_array(value: Any) -> np.ndarray | None:
    converted = _to_numpy(value)
    return None if converted is None else _layout(*converted)


def _layout(array: np.ndarray, channels_first: bool) -> np.ndarray | None:
    """Lay an image array out as (H, W) or (H, W, C); None if it is not an image."""
    if array.dtype.kind not in "biuf":
        return None
    if array.ndim == 2:
        return array
    if array.ndim != 3:
        return None
    if channels_first and array.shape[0] in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)
    elif not channels_first and array.shape[-1] not in (1, 2, 3, 4) and array.shape[0] in (1, 3):
        array = np.moveaxis(array, 0, -1)  # a (C, H, W) numpy array
    if array.shape[-1] not in (1, 2, 3, 4):
        return None
    return array


def _batch(value: Any) -> list[np.ndarray] | None:
    """Split a stacked (N, C, H, W) tensor or array (``FiveCrop`` + stack) as N views."""
    converted = _to_numpy(value)
    if converted is None:
        return None
    array, channels_first = converted
    if array.ndim != 4:
        return None
    views = [_layout(view, channels_first) for view in array]
    return None if any(v is None for v in views) else views  # type: ignore[return-value]


def _mask_array(value: Any) -> np.ndarray | None:
    converted = _to_numpy(value)
    if converted is None:
        return None
    array = np.squeeze(converted[0])
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        return None
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        return None
    return array.astype(bool)
