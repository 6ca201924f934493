"""MAE in the layout of the official research code (facebookresearch/mae ``models_mae.py``).

:class:`MaskedAutoencoderViT` has exactly the parameter names of the research code's model
(``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.*``, ``norm``, ``mask_token``,
``decoder_embed``, ``decoder_pos_embed``, ``decoder_blocks.*``, ``decoder_norm``,
``decoder_pred``), so its checkpoints (``{"model": state_dict}``, e.g.
``mae_visualize_vit_large.pth``, which keeps the decoder) load with no key renamed. The
encoder-only ``mae_pretrain_*`` checkpoints have no decoder and cannot reconstruct.

Unlike the research code, the mask is an input (:meth:`MaskedAutoencoderViT.forward_masked`):
featscope chooses it (seeded), the model only fills it in.

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from featscope.errors import ModelSpecError, ParameterError
from featscope.models.mim._blocks import PatchEmbed, TimmBlock, sincos_pos_embed, xavier_init

__all__ = ["DEMO_MAE_CONFIG", "MAE_ARCHS", "MAEConfig", "MaskedAutoencoderViT", "build_mae"]


@dataclass(frozen=True)
class MAEConfig:
    """Sizes of an MAE: encoder, decoder and input.

    Attributes
    ----------
    img_size, patch_size, in_chans : int
        Input side, patch side and channels.
    embed_dim, depth, num_heads : int
        Encoder width, blocks and heads.
    decoder_embed_dim, decoder_depth, decoder_num_heads : int
        Decoder width, blocks and heads.
    mlp_ratio : float
        MLP hidden width over the block width.
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0


#: The architectures of the research code (``mae_vit_base_patch16`` ...), by featscope name.
MAE_ARCHS = {
    "vit_base_patch16": MAEConfig(patch_size=16, embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16": MAEConfig(patch_size=16, embed_dim=1024, depth=24, num_heads=16),
    "vit_huge_patch14": MAEConfig(patch_size=14, embed_dim=1280, depth=32, num_heads=16),
}

#: The built-in ``demo:mae``: 28x28 Fashion-MNIST, 4-pixel patches (a 7x7 grid).
DEMO_MAE_CONFIG = MAEConfig(
    img_size=28,
    patch_size=4,
    in_chans=3,
    embed_dim=64,
    depth=4,
    num_heads=4,
    decoder_embed_dim=64,
    decoder_depth=2,
    decoder_num_heads=4,
)


class MaskedAutoencoderViT(nn.Module):
    """Masked autoencoder with a ViT encoder and a small ViT decoder (He et al. 2022).

    Parameters
    ----------
    config : MAEConfig
        The sizes.
    """

    def __init__(self, config: MAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, c.in_chans, c.embed_dim)
        grid = self.patch_embed.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        # fixed sine-cosine tables, parameters without gradient as in the research code (so that
        # they are in the state dict under the same names)
        self.pos_embed = nn.Parameter(sincos_pos_embed(c.embed_dim, grid), requires_grad=False)
        self.blocks = nn.ModuleList(
            TimmBlock(c.embed_dim, c.num_heads, c.mlp_ratio) for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(c.embed_dim, c.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            sincos_pos_embed(c.decoder_embed_dim, grid), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            TimmBlock(c.decoder_embed_dim, c.decoder_num_heads, c.mlp_ratio)
            for _ in range(c.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(c.decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(c.decoder_embed_dim, c.patch_size**2 * c.in_chans)
        self._init_weights()

    def _init_weights(self) -> None:
        xavier_init(self)
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    @property
    def num_patches(self) -> int:
        """Number of patches of an input."""
        return self.patch_embed.num_patches

    def forward_masked(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict every patch from the visible ones.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, in_chans, img_size, img_size)`` normalised images.
        mask : torch.Tensor
            ``(N, L)`` bool, True where a patch is removed; every row masks the same number of
            patches (the encoder sees a dense ``(N, L_visible, C)`` batch).

        Returns
        -------
        torch.Tensor
            ``(N, L, p*p*in_chans)`` predicted patches (layout of
            :func:`featscope.models.mim.patches.patchify`).

        Raises
        ------
        ParameterError
            When the image size, the mask shape or the per-row masked counts do not fit.
        """
        n = images.shape[0]
        length = self.num_patches
        side = self.config.img_size
        if tuple(images.shape[-2:]) != (side, side):
            raise ParameterError(
                f"image of {tuple(images.shape[-2:])} pixels for an MAE built for {side}x{side}; "
                f"pass images of {side}x{side} (input_size={side})"
            )
        if tuple(mask.shape) != (n, length):
            raise ParameterError(
                f"mask of shape {tuple(mask.shape)} for {n} image(s) of {length} patches; "
                f"pass a ({n}, {length}) bool mask"
            )
        counts = mask.sum(dim=1)
        if bool((counts != counts[0]).any()):
            raise ParameterError(
                f"every image of a batch must mask the same number of patches; got "
                f"{counts.tolist()}; use one mask ratio for the batch"
            )
        keep = length - int(counts[0])
        tokens = self.patch_embed(images) + self.pos_embed[:, 1:, :]
        # visible patches first, in patch order (a stable sort), then the masked ones
        ids_shuffle = torch.sort(mask.to(torch.int64), dim=1, stable=True).indices
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        x = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(n, -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.decoder_embed(self.norm(x))
        mask_tokens = self.mask_token.expand(n, length - keep, -1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def forward(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Alias of :meth:`forward_masked`."""
        return self.forward_masked(images, mask)


def build_mae(arch: str) -> MaskedAutoencoderViT:
    """Build an untrained MAE of one of the research code's architectures.

    Parameters
    ----------
    arch : str
        A key of :data:`MAE_ARCHS` (``"vit_base_patch16"``, ``"vit_large_patch16"``,
        ``"vit_huge_patch14"``); the research code's names ``mae_vit_large_patch16`` are accepted.

    Returns
    -------
    MaskedAutoencoderViT
        In eval mode.

    Raises
    ------
    ModelSpecError
        For an unknown architecture.
    """
    key = arch.strip().lower()
    key = key[4:] if key.startswith("mae_") else key
    if key not in MAE_ARCHS:
        raise ModelSpecError(
            f"unknown MAE architecture {arch!r} in `mae:{arch}`: choose from "
            f"{', '.join(MAE_ARCHS)}; e.g. mae:vit_large_patch16"
        )
    return MaskedAutoencoderViT(MAE_ARCHS[key]).eval()
