"""Turn any captured output into ``(N, C, H, W)`` feature maps.

Convolutional models give ``(N, C, H, W)`` maps already. Vision transformers give ``(N, L, C)``
tokens: :func:`tokens_to_map` drops the class and register tokens at the front and lays the
patch tokens out on the model's patch grid (row-major, the order timm and Hugging Face flatten
them in). Some models keep their maps channels-last: timm's Swin, MaxViT-style and other models
whose ``output_fmt`` is ``"NHWC"`` give ``(N, H, W, C)`` from their stages;
:func:`output_is_channels_last` tells which captured outputs are laid out that way and
:func:`to_feature_map` brings every layout to ``(N, C, H, W)``.

This module imports torch; ``import featscope`` never imports it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from featscope.errors import CaptureError

__all__ = [
    "model_is_channels_last",
    "output_is_channels_last",
    "to_feature_map",
    "tokens_to_map",
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


def tokens_to_map(
    tokens: torch.Tensor,
    num_prefix_tokens: int = 0,
    patch_grid: tuple[int, int] | None = None,
    *,
    name: str = "output",
) -> torch.Tensor:
    """Lay ``(N, L, C)`` transformer tokens out as ``(N, C, h, w)`` maps.

    The grid is chosen in this order, so that outputs with and without the prefix tokens
    (``blocks.3`` versus ``patch_embed``) both work:

    1. ``patch_grid`` (or, for hierarchical models such as Swin, the grid halved per stage)
       with ``h * w == L - num_prefix_tokens``: the first ``num_prefix_tokens`` tokens (class
       and register tokens) are dropped;
    2. such a grid with ``h * w == L``: the output has no prefix tokens, all are kept;
    3. a square grid of ``L - num_prefix_tokens`` tokens (prefix dropped), then of ``L``.

    Parameters
    ----------
    tokens : torch.Tensor
        ``(N, L, C)`` tokens, patch tokens in row-major order after the prefix tokens.
    num_prefix_tokens : int, default 0
        Class and register tokens at the front (``ModelHandle.num_prefix_tokens``).
    patch_grid : (int, int), optional
        ``(h, w)`` patch grid of the model's input (``ModelHandle.patch_grid``); needed for
        inputs that are not square.
    name : str, default "output"
        Name of the output in error messages (the capture point).

    Returns
    -------
    torch.Tensor
        ``(N, C, h, w)``, a view of the patch tokens (same dtype and device).

    Raises
    ------
    CaptureError
        When ``tokens`` is not 3-D, or no grid fits its number of tokens.
    """
    if tokens.ndim != 3:
        raise CaptureError(
            f"output {name!r} has shape {tuple(tokens.shape)}; tokens_to_map takes (N, L, C) tokens"
        )
    if isinstance(num_prefix_tokens, bool) or int(num_prefix_tokens) < 0:
        raise CaptureError(
            f"`num_prefix_tokens` {num_prefix_tokens!r} must be an integer >= 0 (class and "
            "register tokens at the front of the tokens)"
        )
    n, length, channels = tokens.shape
    prefix = int(num_prefix_tokens)
    patches = length - prefix
    grid: tuple[int, int] | None = None
    start = 0
    candidates = _grid_candidates(patch_grid)
    for count, skip in ((patches, prefix), (length, 0)):
        grid = next((g for g in candidates if g[0] * g[1] == count and count > 0), None)
        if grid is not None:
            start = skip
            break
    if grid is None:
        for count, skip in ((patches, prefix), (length, 0)):
            grid = _square(count) if count > 0 else None
            if grid is not None:
                start = skip
                break
    if grid is None:
        where = f"the patch grid {tuple(patch_grid)} (or its halvings)" if patch_grid else "none"
        raise CaptureError(
            f"output {name!r} has {length} tokens ({prefix} class/register tokens, {patches} "
            f"left), which is neither a square number nor fits {where}; featscope cannot lay "
            "them out as a map: use a square input size, or load the model with a spec that "
            "records its patch grid (timm:, hf:)"
        )
    h, w = grid
    return tokens[:, start:, :].transpose(1, 2).reshape(n, channels, h, w)


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

    In a channels-last model (:func:`model_is_channels_last`) every 4-D output is taken as
    channels-last, except the outputs of convolutions, batch/group norms and poolings, which
    PyTorch computes channels-first. Other models are channels-first throughout.

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
    if not model_is_channels_last(model):
        return False
    if module_path is None:
        return True
    try:
        target = model.get_submodule(module_path) if module_path else model
    except AttributeError:
        return True
    return not isinstance(target, _CHANNELS_FIRST_MODULES)


def to_feature_map(
    tensor: torch.Tensor,
    *,
    name: str = "output",
    num_prefix_tokens: int = 0,
    patch_grid: tuple[int, int] | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Bring a captured output to ``(N, C, H, W)``.

    Parameters
    ----------
    tensor : torch.Tensor
        ``(N, C, H, W)`` maps, ``(N, H, W, C)`` maps (with ``channels_last``) or ``(N, L, C)``
        tokens.
    name : str, default "output"
        Name of the output in error messages.
    num_prefix_tokens, patch_grid
        Token layout, see :func:`tokens_to_map`.
    channels_last : bool, default False
        The 4-D output is ``(N, H, W, C)`` (see :func:`output_is_channels_last`).

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)``.

    Raises
    ------
    CaptureError
        For vectors (``(N, D)``), scalars and outputs of more than 4 dimensions, which are not
        maps, and for tokens that fit no grid.
    """
    if tensor.ndim == 4:
        return tensor.permute(0, 3, 1, 2) if channels_last else tensor
    if tensor.ndim == 3:
        return tokens_to_map(tensor, num_prefix_tokens, patch_grid, name=name)
    what = "one vector per image" if tensor.ndim == 2 else f"a {tensor.ndim}-D tensor"
    raise CaptureError(
        f"output {name!r} has shape {tuple(tensor.shape)}, {what}, not a feature map; feature "
        "maps need (N, C, H, W) maps or (N, L, C) tokens: pick an earlier point such as a "
        "stage or block (list them with `featscope points --model ...`)"
    )
