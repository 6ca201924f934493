"""Patches and pixels: MAE's patch layout, and norm-pix targets and their inverse.

A patch vector is ordered ``(row in patch, column in patch, channel)``, channel last: the
``nchpwq -> nhwpqc`` layout of the MAE research code, Hugging Face ``ViTMAEForPreTraining``
and MMSelfSup. Patches are numbered row by row.

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

import torch

from featscope.errors import ParameterError

__all__ = ["NORM_PIX_EPS", "denormalize_patches", "normalize_patches", "patchify", "unpatchify"]

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


def unpatchify(
    patches: torch.Tensor, patch_size: int, grid: tuple[int, int], channels: int = 3
) -> torch.Tensor:
    """Put ``(N, L, p*p*C)`` patch vectors back into ``(N, C, H, W)`` images.

    Parameters
    ----------
    patches : torch.Tensor
        ``(N, L, p*p*C)`` in the layout of :func:`patchify`.
    patch_size : int
        Side of a patch in pixels.
    grid : (int, int)
        Patches per column and per row, ``(H/p, W/p)``.
    channels : int, default 3
        Channels per pixel.

    Returns
    -------
    torch.Tensor
        ``(N, C, gh*p, gw*p)``.

    Raises
    ------
    ParameterError
        When the shape does not match ``grid``, ``patch_size`` and ``channels``.
    """
    n, length, dim = patches.shape
    p = int(patch_size)
    gh, gw = grid
    if length != gh * gw or dim != p * p * channels:
        raise ParameterError(
            f"patches of shape {tuple(patches.shape)} do not fit a {gh}x{gw} grid of {p}-pixel "
            f"patches with {channels} channels (expected (N, {gh * gw}, {p * p * channels}))"
        )
    x = patches.reshape(n, gh, gw, p, p, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, channels, gh * p, gw * p)


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


def denormalize_patches(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bring a norm-pix prediction back to the scale of the input patches.

    ``prediction * sqrt(var + 1e-6) + mean`` with the mean and variance of each patch of the
    input, the inverse of :func:`normalize_patches` (MMSelfSup's MAE ``reconstruct`` and the
    MAE demo notebook do the same). The statistics come from the true patches, including the
    masked ones: the picture shows the predicted structure at the true brightness and contrast.

    Parameters
    ----------
    prediction : torch.Tensor
        ``(N, L, D)`` predicted norm-pix patches.
    reference : torch.Tensor
        ``(N, L, D)`` input patches (in the model's normalised input space).

    Returns
    -------
    torch.Tensor
        ``(N, L, D)`` patches in the space of ``reference``.
    """
    mean = reference.mean(dim=-1, keepdim=True)
    var = reference.var(dim=-1, keepdim=True)
    return prediction * (var + NORM_PIX_EPS) ** 0.5 + mean
