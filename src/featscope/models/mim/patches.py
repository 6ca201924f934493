"""Patches in torch: MAE's patch layout and its norm-pix targets.

A patch vector is ordered ``(row in patch, column in patch, channel)``, channel last: the
``nchpwq -> nhwpqc`` layout of the MAE research code, Hugging Face ``ViTMAEForPreTraining``
and MMSelfSup. Patches are numbered row by row. The way back (patches to images, a norm-pix
prediction to pixels) happens after the forward pass, in numpy, in :mod:`featscope.analysis.recon`
(``unpatchify``, ``denormalize_patches``).

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

import torch

from featscope.errors import ParameterError

__all__ = ["NORM_PIX_EPS", "normalize_patches", "patchify"]

#: The epsilon of MAE's norm-pix target: ``(x - mean) / sqrt(var + 1e-6)``.
NORM_PIX_EPS = 1e-6


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut ``(N, C, H, W)`` images into ``(N, L, p*p*C)`` patch vectors.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, H, W)``; ``H`` and ``W`` multiples of ``patch_size``.
    patch_size : int
        Side of a square patch in pixels.

    Returns
    -------
    torch.Tensor
        ``(N, (H/p)*(W/p), p*p*C)``, patches row by row, each ``(p, p, C)`` flattened.

    Raises
    ------
    ParameterError
        When the image sides are not multiples of the patch size.
    """
    n, c, h, w = images.shape
    p = int(patch_size)
    if p < 1 or h % p or w % p:
        raise ParameterError(
            f"image of {h}x{w} pixels cannot be cut into patches of {p} pixels: both sides must "
            f"be multiples of {p}; resize the images (e.g. input_size={max(p, h // p * p)})"
        )
    x = images.reshape(n, c, h // p, p, w // p, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (h // p) * (w // p), p * p * c)


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """Return MAE's norm-pix target: each patch minus its mean, over ``sqrt(var + 1e-6)``.

    Mean and (unbiased) variance are taken over all ``p*p*C`` values of the patch, as in the MAE
    code's ``forward_loss`` and ``ViTMAEForPreTraining``.

    Parameters
    ----------
    patches : torch.Tensor
        ``(N, L, D)`` patch vectors.

    Returns
    -------
    torch.Tensor
        Same shape.
    """
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + NORM_PIX_EPS) ** 0.5
