"""MaskFeat (Wei et al. 2022) in MMSelfSup's layout: a ViT with a mask token and a linear HOG head.

:class:`MaskFeat` has the parameter names of an MMSelfSup 1.x MaskFeat checkpoint
(``backbone.patch_embed.projection``, ``backbone.cls_token``, ``backbone.pos_embed``,
``backbone.mask_token``, ``backbone.layers.<i>.{ln1,attn.qkv,attn.proj,ln2,ffn.layers.0.0,
ffn.layers.1}``, ``backbone.ln1``, ``neck.fc``, ``target_generator.{weight_x,weight_y,
gaussian_kernel}``), so ``{"state_dict": ...}`` checkpoints load with no key renamed. Masked
patch embeddings are replaced by the mask token (MaskFeatViT), every token goes through the
encoder, and ``neck.fc`` maps each patch token to its HOG vector
(``3 x 9 x (patch/8) x (patch/8)`` values: 108 for 16-pixel patches).

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from featscope.errors import ModelSpecError, ParameterError
from featscope.models.mim._blocks import MMBlock, PatchEmbed
from featscope.models.mim.hog import HOGGenerator

__all__ = ["MASKFEAT_ARCHS", "MaskFeat", "MaskFeatConfig", "build_maskfeat"]


@dataclass(frozen=True)
class MaskFeatConfig:
    """Sizes of a MaskFeat ViT.

    Attributes
    ----------
    img_size, patch_size : int
        Input side and patch side (a multiple of the 8-pixel HOG cell).
    embed_dim, depth, num_heads : int
        Width, blocks and heads.
    mlp_ratio : float
        Feed-forward width over the block width.
    nbins, pool, gaussian_window : int
        HOG bins, cell side and Gaussian window (MMSelfSup: 9, 8, 16).
    """

    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    nbins: int = 9
    pool: int = 8
    gaussian_window: int = 16

    @property
    def hog_dim(self) -> int:
        """Length of the HOG vector of one patch."""
        return 3 * self.nbins * (self.patch_size // self.pool) ** 2


#: MMPretrain's ViT architectures used by MaskFeat checkpoints.
MASKFEAT_ARCHS = {
    "vit_base_patch16": MaskFeatConfig(),
    "vit_large_patch16": MaskFeatConfig(embed_dim=1024, depth=24, num_heads=16),
}


class _Backbone(nn.Module):
    def __init__(self, c: MaskFeatConfig) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, 3, c.embed_dim, "projection")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, c.embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.layers = nn.ModuleList(
            MMBlock(c.embed_dim, c.num_heads, c.mlp_ratio) for _ in range(c.depth)
        )
        self.ln1 = nn.LayerNorm(c.embed_dim, eps=1e-6)
        for p in (self.cls_token, self.pos_embed, self.mask_token):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        w = mask.unsqueeze(-1).to(x.dtype)
        x = x * (1 - w) + self.mask_token.expand_as(x) * w
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.ln1(x)


class _Neck(nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MaskFeat(nn.Module):
    """A MaskFeat model: masked ViT backbone, linear HOG neck and the HOG target generator.

    Parameters
    ----------
    config : MaskFeatConfig, optional
        The sizes (default: ViT-B/16, 224 pixels).
    """

    def __init__(self, config: MaskFeatConfig | None = None) -> None:
        super().__init__()
        self.config = config or MaskFeatConfig()
        c = self.config
        if c.patch_size % c.pool:
            raise ModelSpecError(
                f"MaskFeat patch size {c.patch_size} is not a multiple of the {c.pool}-pixel HOG "
                "cell; use e.g. patch_size=16"
            )
        self.backbone = _Backbone(c)
        self.neck = _Neck(c.embed_dim, c.hog_dim)
        self.target_generator = HOGGenerator(c.nbins, c.pool, c.gaussian_window)

    def forward(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict the HOG vector of every patch.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, 3, img_size, img_size)`` normalised images.
        mask : torch.Tensor
            ``(N, L)`` bool, True where a patch is replaced by the mask token.

        Returns
        -------
        torch.Tensor
            ``(N, L, hog_dim)`` predictions (class token dropped).

        Raises
        ------
        ParameterError
            When the image or mask shape does not fit the model.
        """
        side = self.config.img_size
        length = self.backbone.patch_embed.num_patches
        if tuple(images.shape[-2:]) != (side, side):
            raise ParameterError(
                f"image of {tuple(images.shape[-2:])} pixels for a MaskFeat ViT built for "
                f"{side}x{side}; pass images of {side}x{side} (input_size={side})"
            )
        if tuple(mask.shape) != (images.shape[0], length):
            raise ParameterError(
                f"mask of shape {tuple(mask.shape)} for {images.shape[0]} image(s) of {length} "
                f"patches; pass a ({images.shape[0]}, {length}) bool mask"
            )
        return self.neck(self.backbone(images, mask))[:, 1:, :]


def build_maskfeat(arch: str) -> MaskFeat:
    """Build an untrained MaskFeat of a named architecture.

    Parameters
    ----------
    arch : str
        A key of :data:`MASKFEAT_ARCHS` (``"vit_base_patch16"``, ``"vit_large_patch16"``);
        ``"b"``/``"base"`` and ``"l"``/``"large"`` are accepted.

    Returns
    -------
    MaskFeat
        In eval mode.

    Raises
    ------
    ModelSpecError
        For an unknown architecture.
    """
    key = arch.strip().lower()
    key = {"b": "vit_base_patch16", "base": "vit_base_patch16", "l": "vit_large_patch16"}.get(
        key, {"large": "vit_large_patch16"}.get(key, key)
    )
    if key not in MASKFEAT_ARCHS:
        raise ModelSpecError(
            f"unknown MaskFeat architecture {arch!r} in `maskfeat:{arch}`: choose from "
            f"{', '.join(MASKFEAT_ARCHS)}; e.g. maskfeat:vit_base_patch16"
        )
    return MaskFeat(MASKFEAT_ARCHS[key]).eval()
