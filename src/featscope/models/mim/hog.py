"""MaskFeat's HOG target, computed as MMSelfSup's ``HOGGenerator`` computes it.

Per colour channel: Sobel gradients on the reflect-padded image; orientation
``atan2(gx, gy) / pi * nbins``, floored, modulo ``nbins`` (so 9 unsigned bins of 20 degrees,
measured from the vertical axis: a vertical edge, whose gradient is horizontal, falls in bin
``nbins // 2`` = 4); magnitudes weighted by a Gaussian window of ``gaussian_window`` pixels
(std ``gaussian_window / 2``, tiled over the image), summed into 8x8-pixel cells per bin, then
L2-normalised over the bins of each cell and channel (cells that are flat up to
floating-point noise stay zero). Per patch of ``patch_size`` pixels, the
target is the ``channels x bins x (patch/cell) x (patch/cell)`` values flattened in that order
(108 values for 16-pixel patches).

:class:`HOGGenerator` keeps MMSelfSup's buffer names (``weight_x``, ``weight_y``,
``gaussian_kernel``) so that the ``target_generator.*`` entries of a MaskFeat checkpoint load.

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from featscope.errors import ParameterError

__all__ = [
    "FLAT_CELL_NORM",
    "HORIZONTAL_GRADIENT_BIN",
    "HOGGenerator",
    "hog_cells",
    "hog_to_patches",
    "patches_to_hog",
]

#: The bin of a horizontal gradient (a vertical edge) with 9 bins.
HORIZONTAL_GRADIENT_BIN = 4
#: Cells whose summed, window-weighted gradient histogram is shorter than this are flat: zero.
#: A one-grey-level step (about 0.017 after ImageNet normalisation) gives about 1e-4.
FLAT_CELL_NORM = 1e-6


class HOGGenerator(nn.Module):
    """Histograms of oriented gradients per cell and colour channel (MaskFeat's target).

    Parameters
    ----------
    nbins : int, default 9
        Orientation bins over 180 degrees.
    pool : int, default 8
        Cell side in pixels.
    gaussian_window : int, default 16
        Side of the Gaussian weighting window (0: no weighting).
    """

    def __init__(self, nbins: int = 9, pool: int = 8, gaussian_window: int = 16) -> None:
        super().__init__()
        self.nbins = nbins
        self.pool = pool
        self.gaussian_window = gaussian_window
        weight_x = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        weight_x = weight_x.view(1, 1, 3, 3).repeat(3, 1, 1, 1).contiguous()
        self.register_buffer("weight_x", weight_x)
        self.register_buffer("weight_y", weight_x.transpose(2, 3).contiguous())
        if gaussian_window:
            self.register_buffer(
                "gaussian_kernel", _gaussian(gaussian_window, gaussian_window // 2)
            )

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 3, nbins, H/pool, W/pool)`` normalised cell histograms.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, 3, H, W)`` images (MaskFeat feeds the normalised model input).

        Returns
        -------
        torch.Tensor
            float32 histograms, each ``(channel, cell)`` of unit L2 norm (or zero).

        Raises
        ------
        ParameterError
            When the image is not RGB or its sides are not multiples of the cell and window.
        """
        return hog_cells(self, images)


def _gaussian(size: int, std: float) -> torch.Tensor:
    n = torch.arange(0, size).float()
    n = (n - n.mean()) / std
    w = torch.exp(-0.5 * n**2)
    kernel = w[:, None] * w[None, :]
    return kernel / kernel.sum()


def hog_cells(generator: HOGGenerator, images: torch.Tensor) -> torch.Tensor:
    """Compute the cell histograms of :class:`HOGGenerator` (see its ``forward``)."""
    n, c, h, w = images.shape
    window = generator.gaussian_window or generator.pool
    if c != 3 or h % generator.pool or w % generator.pool or h % window or w % window:
        raise ParameterError(
            f"HOG needs RGB images whose sides are multiples of the {generator.pool}-pixel cell "
            f"and the {window}-pixel window; got shape {tuple(images.shape)}; resize to e.g. 224"
        )
    x = F.pad(images.float(), pad=(1, 1, 1, 1), mode="reflect")
    gx = F.conv2d(x, generator.weight_x, groups=3)
    gy = F.conv2d(x, generator.weight_y, groups=3)
    magnitude = torch.stack([gx, gy], dim=-1).norm(dim=-1)
    # MMSelfSup's convention: atan2(gx, gy), i.e. the angle from the vertical axis
    phase = torch.atan2(gx, gy) / math.pi * generator.nbins
    magnitude = magnitude.view(n, c, 1, h, w)
    phase = phase.view(n, c, 1, h, w)
    if generator.gaussian_window:
        kernel = generator.gaussian_kernel.repeat(h // window, w // window)
        magnitude = magnitude * kernel
    out = torch.zeros((n, c, generator.nbins, h, w), dtype=torch.float32, device=images.device)
    out.scatter_add_(2, phase.floor().long() % generator.nbins, magnitude)
    pool = generator.pool
    out = out.unfold(3, pool, pool).unfold(4, pool, pool).sum(dim=(-1, -2))
    # Unlike MMSelfSup, cells whose histogram is only floating-point noise (a flat region's
    # Sobel response is ~1e-8, not 0) stay zero instead of being blown up to unit length.
    flat = out.norm(p=2, dim=2, keepdim=True) < FLAT_CELL_NORM
    return F.normalize(out, p=2, dim=2).masked_fill(flat, 0.0)


def hog_to_patches(cells: torch.Tensor, cells_per_patch: int) -> torch.Tensor:
    """Group cell histograms by patch: ``(N, 3, B, gh*u, gw*u)`` -> ``(N, L, 3*B*u*u)``.

    MMSelfSup's ``HOGGenerator._reshape`` for any grid (it hard-codes 14 patches per side).

    Parameters
    ----------
    cells : torch.Tensor
        Output of :class:`HOGGenerator`.
    cells_per_patch : int
        ``u = patch_size / pool`` (2 for 16-pixel patches and 8-pixel cells).

    Returns
    -------
    torch.Tensor
        Per patch, the values ordered ``(channel, bin, cell row, cell column)``.
    """
    u = cells_per_patch
    n, c, b, hc, wc = cells.shape
    x = cells.reshape(n, c * b, hc, wc).permute(0, 2, 3, 1)
    x = x.unfold(1, u, u).unfold(2, u, u)  # (N, gh, gw, c*b, u, u)
    return x.flatten(1, 2).flatten(2)


def patches_to_hog(
    patches: torch.Tensor, grid: tuple[int, int], cells_per_patch: int, nbins: int = 9
) -> torch.Tensor:
    """Inverse of :func:`hog_to_patches`: ``(N, L, 3*B*u*u)`` -> ``(N, 3, B, gh*u, gw*u)``.

    Parameters
    ----------
    patches : torch.Tensor
        Per-patch HOG vectors (a MaskFeat prediction or target).
    grid : (int, int)
        Patches per column and per row.
    cells_per_patch : int
        Cells per patch side.
    nbins : int, default 9
        Orientation bins.

    Returns
    -------
    torch.Tensor
        Cell histograms.
    """
    n, _length, dim = patches.shape
    gh, gw = grid
    u = cells_per_patch
    c = dim // (nbins * u * u)
    x = patches.reshape(n, gh, gw, c, nbins, u, u)
    x = x.permute(0, 3, 4, 1, 5, 2, 6)  # (N, c, B, gh, u, gw, u)
    return x.reshape(n, c, nbins, gh * u, gw * u)
