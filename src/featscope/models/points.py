"""The capture-point contract: what every point of a model gives, known before any image is read.

Like timm's ``feature_info``, a :class:`~featscope.models.handle.ModelHandle` says for each
capture point its layout (``NCHW``/``NHWC`` maps, ``NLC`` tokens, ``NC`` vectors, a tuple or
dict of outputs), its channels, its stride or token grid and its prefix tokens
(:class:`~featscope.models.handle.PointInfo`). Two sources, in this order:

1. timm's ``model.feature_info`` (timm models and the built-in EfficientNet-Lite0), for the
   modules it lists: channels and reduction come from it, no forward pass is run. The layout
   follows timm's conventions: channels-last models (``output_fmt == "NHWC"``, Swin) give
   ``NHWC`` maps, vision transformers (``num_prefix_tokens``, a patch grid) give ``NLC`` tokens
   on the patch grid, the rest ``NCHW`` maps of ``ceil(input / reduction)`` cells.
2. everything else: one **dry run**, a forward pass of a zero image of the model's input size
   (``handle.preprocess.input_size``) with a hook on every module that records shapes only
   (nothing is copied), made once per handle and cached. A model that fails on its own input
   size fails here, before any image is read.

Capture (:func:`featscope.capture.tokens.to_feature_map`) reads the layout, the token grid and
the prefix tokens from this contract instead of guessing them per output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from featscope.errors import CaptureError, FeatscopeError
from featscope.models._util import first_line
from featscope.models.handle import ModelHandle, PointInfo

__all__ = [
    "device_and_dtype",
    "dry_run",
    "feature_info",
    "forward_errors",
    "is_detector",
    "model_is_channels_last",
    "module_table",
    "output_is_channels_last",
    "point_info",
    "token_grid",
]

# Modules whose output is channels-first even inside a channels-last model (timm's Swin patch
# embedding convolves in NCHW before it permutes).
_CHANNELS_FIRST_MODULES = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.GroupNorm,
)
# Hierarchical transformers (Swin) halve the grid per stage; try this many halvings.
_MAX_HALVINGS = 6
# What a model failing on an input it was not built for raises (assertions of fixed-size
# models, shape mismatches); anything else is a bug and propagates.
_FORWARD_ERRORS = (RuntimeError, AssertionError, ValueError, TypeError, IndexError)
_MISSING = object()


# --------------------------------------------------------------------------- layout rules


def model_is_channels_last(module: Any) -> bool:
    """Whether a model keeps its feature maps channels-last (timm ``output_fmt == "NHWC"``).

    Parameters
    ----------
    module : torch.nn.Module
        The model.

    Returns
    -------
    bool
        ``True`` for timm models such as Swin whose stages return ``(N, H, W, C)``.
    """
    fmt = getattr(module, "output_fmt", None)
    fmt = getattr(fmt, "value", fmt)  # timm's Format enum or a plain string
    return isinstance(fmt, str) and fmt.upper() == "NHWC"


def output_is_channels_last(model: Any, module_path: str | None) -> bool:
    """Whether the 4-D output of a capture point is ``(N, H, W, C)``.

    Inside a channels-last model (:func:`model_is_channels_last`), or inside a module that is
    itself channels-last (timm's ``PatchEmbed`` with ``output_fmt="NHWC"`` in ViTs of dynamic
    image size), every 4-D output is taken as channels-last, except the outputs of
    convolutions, batch/group norms and poolings, which PyTorch computes channels-first.
    Everything else is channels-first.

    Parameters
    ----------
    model : torch.nn.Module
        The whole model.
    module_path : str or None
        The hooked module's path (``None`` for values the model's API returns, such as timm's
        ``forward_features``).

    Returns
    -------
    bool
        ``True`` when the output must be permuted to ``(N, C, H, W)``.
    """
    if module_path is None:
        return model_is_channels_last(model)
    try:
        target = model.get_submodule(module_path) if module_path else model
    except AttributeError:
        return model_is_channels_last(model)
    if isinstance(target, _CHANNELS_FIRST_MODULES):
        return False
    parts = module_path.split(".") if module_path else []
    for depth in range(len(parts), -1, -1):
        try:
            owner = model.get_submodule(".".join(parts[:depth])) if depth else model
        except AttributeError:
            continue
        if model_is_channels_last(owner):
            return True
    return False


def is_detector(module: Any) -> bool:
    """Whether ``module`` resizes and pads its input itself (torchvision's detectors).

    Parameters
    ----------
    module : torch.nn.Module
        The model.

    Returns
    -------
    bool
        ``True`` for models with a ``GeneralizedRCNNTransform``-like ``transform`` (Faster
        R-CNN, RetinaNet, FCOS, ...).
    """
    transform = getattr(module, "transform", None)
    return all(hasattr(transform, a) for a in ("size_divisible", "image_mean", "min_size"))


def _grid_candidates(patch_grid: tuple[int, int] | None) -> list[tuple[int, int]]:
    if patch_grid is None:
        return []
    h, w = (int(v) for v in patch_grid)
    grids = [(h, w)]
    for _ in range(_MAX_HALVINGS):
        # patch merging pads odd sizes, so each stage's grid is the ceiling of half the last
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        grids.append((h, w))
    return grids


def _square(n: int) -> tuple[int, int] | None:
    side = math.isqrt(n)
    return (side, side) if side > 0 and side * side == n else None


def token_grid(
    length: int, num_prefix_tokens: int = 0, patch_grid: tuple[int, int] | None = None
) -> tuple[tuple[int, int], int] | None:
    """Find the grid ``L`` tokens lie on, and how many tokens at the front are not on it.

    Tried in this order, so that outputs with and without the prefix tokens (``blocks.3``
    versus ``patch_embed``) both fit:

    1. ``patch_grid`` (or, for hierarchical models such as Swin, the grid halved per stage)
       with ``h * w == L - num_prefix_tokens``: the prefix tokens are dropped;
    2. such a grid with ``h * w == L``: the output has no prefix tokens;
    3. a square grid of ``L - num_prefix_tokens`` tokens (prefix dropped), then of ``L``.

    Parameters
    ----------
    length : int
        Number of tokens ``L``.
    num_prefix_tokens : int, default 0
        Class and register tokens the model puts in front.
    patch_grid : (int, int), optional
        ``(h, w)`` patch grid of the model's input.

    Returns
    -------
    ((int, int), int) or None
        The grid ``(h, w)`` and the number of leading tokens to drop, or ``None`` when no grid
        fits.
    """
    prefix = int(num_prefix_tokens)
    patches = length - prefix
    candidates = _grid_candidates(patch_grid)
    for count, skip in ((patches, prefix), (length, 0)):
        grid = next((g for g in candidates if g[0] * g[1] == count and count > 0), None)
        if grid is not None:
            return grid, skip
    for count, skip in ((patches, prefix), (length, 0)):
        grid = _square(count) if count > 0 else None
        if grid is not None:
            return grid, skip
    return None


# --------------------------------------------------------------------------- the contract


def point_info(handle: ModelHandle, name: str) -> PointInfo:
    """Say what capture point ``name`` of a model gives (see :meth:`ModelHandle.point_info`).

    Parameters
    ----------
    handle : ModelHandle
        The model.
    name : str
        An alias, a module path, or an element of a tuple/dict output (``"neck.0"``).

    Returns
    -------
    PointInfo
        From timm's ``feature_info`` for the modules it lists (``source="feature_info"``),
        else from the dry run (``source="dry_run"``).

    Raises
    ------
    CaptureError
        When ``name`` is no capture point of the model, or the dry run fails.
    """
    if name not in handle.aliases:
        listed = feature_info(handle).get(name)
        if listed is not None:
            return listed
    table = dry_run(handle)
    info = table.get(name)
    if info is not None:
        return info
    for parent in table.values():
        element = parent.elements.get(name)
        if element is not None:
            return element
    raise CaptureError(
        f"{name!r} is not a capture point of {handle.spec}; list them with "
        f"`featscope points --model {handle.spec}`"
    )


def feature_info(handle: ModelHandle) -> dict[str, PointInfo]:
    """Read timm's ``model.feature_info`` into the contract, without a forward pass.

    Parameters
    ----------
    handle : ModelHandle
        The model; models without a ``feature_info`` list give nothing.

    Returns
    -------
    dict of str to PointInfo
        By module path, for the listed modules that exist in the model, in timm's order.
    """
    model = handle.module
    listed = getattr(model, "feature_info", None)
    listed = getattr(listed, "info", listed)  # features_only models wrap the list
    if not isinstance(listed, list):
        return {}
    modules = {name for name, _ in model.named_modules()}
    height, width = handle.preprocess.input_size
    # timm's vision transformers give (N, L, C) tokens on the patch grid from every block
    tokens = hasattr(model, "num_prefix_tokens") and handle.patch_grid is not None
    channels_last = model_is_channels_last(model)
    infos: dict[str, PointInfo] = {}
    for entry in listed:
        path = entry.get("module") if isinstance(entry, Mapping) else None
        channels, reduction = (entry.get(k) if path else None for k in ("num_chs", "reduction"))
        if path not in modules or not isinstance(channels, int) or not isinstance(reduction, int):
            continue
        common = {"channels": channels, "stride": reduction, "source": "feature_info"}
        if tokens:
            grid = (int(handle.patch_grid[0]), int(handle.patch_grid[1]))  # type: ignore[index]
            prefix = int(handle.num_prefix_tokens)
            shape: tuple[int, ...] = (prefix + grid[0] * grid[1], channels)
            layout = "NLC"
        else:
            grid, prefix = (math.ceil(height / reduction), math.ceil(width / reduction)), 0
            shape = (*grid, channels) if channels_last else (channels, *grid)
            layout = "NHWC" if channels_last else "NCHW"
        infos[path] = PointInfo(
            path,
            layout,
            shape,
            grid=grid,
            num_prefix_tokens=prefix,
            input_size=(height, width),
            **common,
        )
    return infos


def dry_run(handle: ModelHandle) -> dict[str, PointInfo]:
    """Run a zero image through the model once and describe every capture point.

    The result is cached on the handle. Every module gets a hook that records the shapes of
    its output (and, for aliases that read a module's input, of that input); the model is put
    in eval mode under ``torch.inference_mode()`` and every module's ``training`` flag is
    restored afterwards, as :func:`featscope.capture.capture` does.

    Parameters
    ----------
    handle : ModelHandle
        The model, on its device.

    Returns
    -------
    dict of str to PointInfo
        By alias and module path (``""`` is the model itself); a module that did not run has
        layout ``"none"``.

    Raises
    ------
    CaptureError
        When the model fails on a ``(1, 3, H, W)`` input of its preprocessing's size.
    """
    if handle._dry_run is None:
        handle._dry_run = _describe_all(handle)
    return handle._dry_run


def module_table(module: Any) -> dict[str, Any]:
    """Map every module path of ``module`` to its submodule (``""`` is ``module`` itself).

    Parameters
    ----------
    module : torch.nn.Module
        The model.

    Returns
    -------
    dict of str to torch.nn.Module
        Every path, including the extra paths of modules shared by several parents.
    """
    try:
        # a module shared by two parents is hooked once but may be named by either path
        return dict(module.named_modules(remove_duplicate=False))
    except TypeError:  # modules overriding named_modules() without the keyword
        return dict(module.named_modules())


def device_and_dtype(module: Any) -> tuple[torch.device, torch.dtype]:
    """Return the device and floating dtype of a model's first floating parameter or buffer.

    Parameters
    ----------
    module : torch.nn.Module
        The model.

    Returns
    -------
    (torch.device, torch.dtype)
        Where and in which precision its input must be (CPU float32 for a model without
        floating tensors).
    """
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _shapes(value: Any) -> Any:
    """Replace every tensor in ``value`` by its shape (containers kept, ``None`` dropped)."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if hasattr(value, "tensors") and hasattr(value, "image_sizes"):  # a detector's ImageList
        return tuple(value.tensors.shape)
    if isinstance(value, Mapping):
        return {k: _shapes(v) for k, v in value.items() if v is not None}
    if isinstance(value, (tuple, list)):
        return [_shapes(v) for v in value]
    return _MISSING


def _select(value: Any, select: str | int | None) -> Any:
    if select is None or value is _MISSING:
        return value
    try:
        if isinstance(value, Mapping):
            return list(value.values())[select] if isinstance(select, int) else value[select]
        return value[int(select)]
    except (IndexError, KeyError, TypeError, ValueError):
        return _MISSING


def _run_with_hooks(handle: ModelHandle, x: torch.Tensor, inputs: Iterable[str]) -> tuple:
    model = handle.module
    paths = module_table(model)
    outputs: dict[str, Any] = {}
    read_inputs: dict[str, Any] = {}
    names_of: dict[int, list[str]] = {}
    for path, sub in paths.items():
        names_of.setdefault(id(sub), []).append(path)
    wanted_inputs = set(inputs)
    hooks = []
    training = [(m, bool(m.training)) for m in model.modules()]

    def record_output(sub: Any, _args: Any, output: Any) -> None:
        for path in names_of[id(sub)]:
            outputs[path] = _shapes(output)

    def record_input(sub: Any, args: tuple, kwargs: dict) -> None:
        first = args[0] if args else next(iter(kwargs.values()), None)
        for path in names_of[id(sub)]:
            if path in wanted_inputs:
                read_inputs[path] = _shapes(first)

    try:
        seen: set[int] = set()
        for sub in paths.values():
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            try:
                hooks.append(sub.register_forward_hook(record_output))
                if wanted_inputs & set(names_of[id(sub)]):
                    hooks.append(sub.register_forward_pre_hook(record_input, with_kwargs=True))
            except (RuntimeError, AttributeError):  # TorchScript modules take no Python hooks
                continue
        model.eval()
        with torch.inference_mode():
            _output, extras = handle.forward(model, x)
    finally:
        for hook in hooks:
            hook.remove()
        for module, flag in training:
            module.training = flag
    return paths, outputs, read_inputs, {k: _shapes(v) for k, v in (extras or {}).items()}


@contextmanager
def forward_errors(handle: ModelHandle, x: torch.Tensor) -> Iterator[None]:
    """Turn a model failing on its input into one :class:`CaptureError` naming the input size.

    Parameters
    ----------
    handle : ModelHandle
        The model being run.
    x : torch.Tensor
        Its input, made by its preprocessing.

    Raises
    ------
    CaptureError
        Instead of the ``RuntimeError``, ``AssertionError``, ``ValueError``, ``TypeError`` or
        ``IndexError`` the model raised (featscope's own errors pass through).
    """
    try:
        yield
    except _FORWARD_ERRORS as exc:
        # featscope's own errors, and running out of memory (a batch-size matter), pass through
        if isinstance(exc, FeatscopeError) or "OutOfMemoryError" in type(exc).__name__:
            raise
        raise CaptureError(
            f"model {handle.spec} failed on the input {tuple(x.shape)} made by its preprocessing "
            f"(input_size {handle.preprocess.input_size}, {x.shape[1]} channels): "
            f"{first_line(exc)}; pass the input size and channels the model was built for "
            "(input_size=... / --input-size, in_chans=... / --in-chans)"
        ) from exc


def _describe_all(handle: ModelHandle) -> dict[str, PointInfo]:
    height, width = handle.preprocess.input_size
    device, dtype = device_and_dtype(handle.module)
    channels = getattr(handle.preprocess, "channels", None) or 3
    x = torch.zeros(1, channels, height, width, device=device, dtype=dtype)
    inputs = [r.module for r in handle.aliases.values() if r.io == "input" and r.module is not None]
    with forward_errors(handle, x):
        paths, outputs, read_inputs, extras = _run_with_hooks(handle, x, inputs)
    reference = (height, width)
    if is_detector(handle.module):
        # detector maps are relative to the resized, padded batch its transform made
        padded = outputs.get("transform")
        if isinstance(padded, list) and padded and isinstance(padded[0], tuple):
            reference = tuple(padded[0][-2:])  # type: ignore[assignment]
    describe = _Describer(handle, reference)
    infos = {path: describe(path, outputs.get(path, _MISSING), path) for path in paths}
    for alias, ref in handle.aliases.items():
        if ref.module is None:
            raw = extras.get(alias, _MISSING)
        else:
            raw = (read_inputs if ref.io == "input" else outputs).get(ref.module, _MISSING)
        infos[alias] = describe(alias, _select(raw, ref.select), ref.module)
    return infos


class _Describer:
    """Turn the recorded shapes of one point into its :class:`PointInfo`."""

    def __init__(self, handle: ModelHandle, reference: tuple[int, int]) -> None:
        self.handle = handle
        self.reference = reference  # the (H, W) strides are measured against
        self.input_size = tuple(handle.preprocess.input_size)

    def __call__(self, name: str, shapes: Any, module_path: str | None) -> PointInfo:
        if shapes is _MISSING:
            return PointInfo(name, "none", input_size=self.input_size)
        if isinstance(shapes, (dict, list)):
            elements: dict[str, PointInfo] = {}
            self._flatten(elements, name, shapes, module_path)
            return PointInfo(name, "multi", elements=elements, input_size=self.input_size)
        return self._tensor(name, shapes, module_path)

    def _flatten(self, into: dict, name: str, shapes: Any, module_path: str | None) -> None:
        # the names of featscope.capture.pooling.flatten_outputs: <point>.<index or key>
        items = shapes.items() if isinstance(shapes, dict) else enumerate(shapes)
        for key, value in items:
            child = f"{name}.{key}" if name else str(key)
            if isinstance(value, (dict, list)):
                self._flatten(into, child, value, module_path)
            elif value is not _MISSING:
                into[child] = self._tensor(child, value, module_path)

    def _stride(self, grid: tuple[int, int]) -> int | None:
        return max(1, round(self.reference[0] / grid[0])) if grid[0] > 0 else None

    def _tensor(self, name: str, shape: tuple[int, ...], module_path: str | None) -> PointInfo:
        per_image = tuple(int(v) for v in shape[1:])
        common: dict[str, Any] = {"shape": per_image, "input_size": self.input_size}
        if len(shape) < 2 or shape[0] != 1:
            return PointInfo(name, "other", **common)  # no batch axis of one image
        if len(shape) == 2:
            return PointInfo(name, "NC", channels=per_image[0], **common)
        if len(shape) == 4:
            if output_is_channels_last(self.handle.module, module_path):
                (h, w, c), layout = per_image, "NHWC"
            else:
                (c, h, w), layout = per_image, "NCHW"
            return PointInfo(
                name, layout, channels=c, grid=(h, w), stride=self._stride((h, w)), **common
            )
        if len(shape) == 3:
            length, channels = per_image
            found = token_grid(length, self.handle.num_prefix_tokens, self.handle.patch_grid)
            if found is None:
                return PointInfo(name, "NLC", channels=channels, **common)
            grid, prefix = found
            return PointInfo(
                name,
                "NLC",
                channels=channels,
                grid=grid,
                num_prefix_tokens=prefix,
                stride=self._stride(grid),
                **common,
            )
        return PointInfo(name, "other", **common)
