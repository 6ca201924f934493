"""Turn any captured output into ``(N, C, H, W)`` feature maps.

Convolutional models give ``(N, C, H, W)`` maps already. Vision transformers give ``(N, L, C)``
tokens: :func:`tokens_to_map` drops the class and register tokens at the front and lays the
patch tokens out on the model's patch grid (row-major, the order timm and Hugging Face flatten
them in). Some models keep their maps channels-last: timm's Swin, MaxViT-style and other models
whose ``output_fmt`` is ``"NHWC"`` give ``(N, H, W, C)`` from their stages.
:func:`to_feature_map` brings every layout to ``(N, C, H, W)``, reading the layout, the token
grid and the prefix tokens from the model's capture-point contract
(:meth:`~featscope.models.handle.ModelHandle.point_info`) when it is given one;
:func:`output_is_channels_last` and :func:`token_grid` (from :mod:`featscope.models.points`)
are the rules the contract is made with.

This module imports torch; ``import featscope`` never imports it.
"""

from __future__ import annotations

import torch

from featscope.errors import CaptureError
from featscope.models.handle import PointInfo
from featscope.models.points import model_is_channels_last, output_is_channels_last, token_grid

__all__ = [
    "model_is_channels_last",
    "output_is_channels_last",
    "to_feature_map",
    "token_grid",
    "tokens_to_map",
]


def tokens_to_map(
    tokens: torch.Tensor,
    num_prefix_tokens: int = 0,
    patch_grid: tuple[int, int] | None = None,
    *,
    name: str = "output",
) -> torch.Tensor:
    """Lay ``(N, L, C)`` transformer tokens out as ``(N, C, h, w)`` maps.

    The grid is the first of :func:`token_grid`'s rules that fits: the patch grid (or its
    halvings) after dropping the prefix tokens, then without dropping them, then a square.

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
    length = tokens.shape[1]
    prefix = int(num_prefix_tokens)
    found = token_grid(length, prefix, patch_grid)
    if found is None:
        where = f"the patch grid {tuple(patch_grid)} (or its halvings)" if patch_grid else "none"
        raise CaptureError(
            f"output {name!r} has {length} tokens ({prefix} class/register tokens, "
            f"{length - prefix} left), which is neither a square number nor fits {where}; "
            "featscope cannot lay them out as a map: use a square input size, or load the model "
            "with a spec that records its patch grid (timm:, hf:)"
        )
    grid, start = found
    return _on_grid(tokens, grid, start)


def _on_grid(tokens: torch.Tensor, grid: tuple[int, int], start: int) -> torch.Tensor:
    n, _, channels = tokens.shape
    return tokens[:, start:, :].transpose(1, 2).reshape(n, channels, *grid)


def to_feature_map(
    tensor: torch.Tensor,
    *,
    name: str = "output",
    num_prefix_tokens: int = 0,
    patch_grid: tuple[int, int] | None = None,
    channels_last: bool = False,
    info: PointInfo | None = None,
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
    info : PointInfo, optional
        The output's entry in the capture-point contract; when given, its layout decides
        channels-last, and tokens are laid out on its grid after its prefix tokens whenever
        their count matches (otherwise the rules of :func:`tokens_to_map` apply).

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
    if info is not None:
        channels_last = info.layout == "NHWC"
    if tensor.ndim == 4:
        return tensor.permute(0, 3, 1, 2) if channels_last else tensor
    if tensor.ndim == 3:
        if info is not None and info.layout == "NLC" and info.grid is not None:
            (h, w), start = info.grid, info.num_prefix_tokens
            if tensor.shape[1] == start + h * w:
                return _on_grid(tensor, (h, w), start)
        return tokens_to_map(tensor, num_prefix_tokens, patch_grid, name=name)
    what = "one vector per image" if tensor.ndim == 2 else f"a {tensor.ndim}-D tensor"
    raise CaptureError(
        f"output {name!r} has shape {tuple(tensor.shape)}, {what}, not a feature map; feature "
        "maps need (N, C, H, W) maps or (N, L, C) tokens: pick an earlier point such as a "
        "stage or block (list them with `featscope points --model ...`)"
    )
