"""Transformer blocks in the two key layouts masked-image checkpoints use.

:class:`TimmBlock` has the parameter names of timm's ``Block`` (``norm1``, ``attn.qkv``,
``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``), which the official MAE research code builds
its encoder and decoder from; :class:`MMBlock` has the names of MMPretrain's
``TransformerEncoderLayer`` (``ln1``, ``attn.qkv``, ``attn.proj``, ``ln2``, ``ffn.layers.0.0``,
``ffn.layers.1``), which MMSelfSup's MaskFeat ViT uses. Written here, rather than taken from timm,
so that the built-in demo runs without the optional ``timm`` extra; the arithmetic is the same
(pre-norm, fused qkv with bias, GELU MLP, LayerNorm eps 1e-6).

This module imports torch at the top: it is only imported lazily, by the MIM loaders.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Attention", "MMBlock", "PatchEmbed", "TimmBlock", "sincos_pos_embed", "xavier_init"]


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the ``(N, L, C)`` tokens."""
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TimmBlock(nn.Module):
    """A pre-norm transformer block with timm's parameter names."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply attention then the MLP, each with a residual connection."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _FFN(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        # MMCV's FFN: layers = [Sequential(Linear, GELU, Dropout), Linear, Dropout]
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU()), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MMBlock(nn.Module):
    """A pre-norm transformer block with MMPretrain's parameter names."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = _FFN(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply attention then the feed-forward layers, each with a residual connection."""
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class PatchEmbed(nn.Module):
    """Cut the image into ``patch_size`` squares and embed them with one strided convolution.

    Parameters
    ----------
    img_size, patch_size, in_chans, embed_dim : int
        Input side, patch side, input channels and embedding width.
    conv_name : str, optional
        Attribute name of the convolution: ``"proj"`` (timm, MAE) or ``"projection"`` (MMCV).
    """

    def __init__(
        self, img_size: int, patch_size: int, in_chans: int, embed_dim: int, conv_name: str = "proj"
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid = img_size // patch_size
        self.num_patches = self.grid**2
        self._conv_name = conv_name
        setattr(self, conv_name, nn.Conv2d(in_chans, embed_dim, patch_size, patch_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(N, L, C)`` patch tokens for ``(N, in_chans, img_size, img_size)`` images."""
        return getattr(self, self._conv_name)(x).flatten(2).transpose(1, 2)


def sincos_pos_embed(dim: int, grid: int, cls_token: bool = True) -> torch.Tensor:
    """Return MAE's fixed 2-D sine-cosine position embedding, ``(1, grid**2 [+1], dim)``.

    The same table as ``get_2d_sincos_pos_embed`` of the MAE research code (a zero row for the
    class token first).

    Parameters
    ----------
    dim : int
        Embedding width (divisible by 4).
    grid : int
        Patches per side.
    cls_token : bool, default True
        Prepend a zero row for the class token.

    Returns
    -------
    torch.Tensor
        float32 table.
    """
    # MAE's get_2d_sincos_pos_embed: meshgrid(grid_w, grid_h), the column index first
    cols, rows = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64))
    halves = [_sincos_1d(dim // 2, g.reshape(-1)) for g in (cols, rows)]
    table = np.concatenate(halves, axis=1)
    if cls_token:
        table = np.concatenate([np.zeros((1, dim)), table], axis=0)
    return torch.from_numpy(table).float().unsqueeze(0)


def _sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def xavier_init(module: nn.Module) -> None:
    """Initialise linear layers as the MAE code does (xavier uniform, zero bias)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
