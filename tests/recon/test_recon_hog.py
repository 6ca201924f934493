"""MaskFeat's HOG target and the HOG picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featscope.errors import ParameterError
from featscope.models.mim import (
    HORIZONTAL_GRADIENT_BIN,
    HOGGenerator,
    hog_to_patches,
    patches_to_hog,
)
from featscope.render.recon import hog_picture


def test_hog_of_a_constant_image_is_zero():
    cells = HOGGenerator()(torch.full((2, 3, 32, 32), 0.7))
    assert cells.shape == (2, 3, 9, 4, 4)
    assert cells.abs().max().item() == 0.0


def test_vertical_edge_peaks_in_the_horizontal_gradient_bin():
    image = torch.zeros(1, 3, 32, 32)
    image[..., 13:] = 1.0  # a vertical edge between columns 12 and 13, all rows
    cells = HOGGenerator()(image)[0]  # (3, 9, 4, 4)
    edge_cells = cells[:, :, :, 1]  # cell column 1 holds pixel columns 8-15
    assert HORIZONTAL_GRADIENT_BIN == 4
    assert (edge_cells.argmax(dim=1) == HORIZONTAL_GRADIENT_BIN).all()
    # normalised over bins: the edge cell is all in one bin
    torch.testing.assert_close(edge_cells.norm(dim=1), torch.ones(3, 4))
    assert cells[:, :, :, 3].abs().max().item() == 0.0  # far from the edge: nothing


def test_horizontal_edge_lands_in_bin_zero():
    image = torch.zeros(1, 3, 32, 32)
    image[..., 13:, :] = 1.0
    cells = HOGGenerator()(image)[0]
    assert (cells[:, :, 1, :].argmax(dim=1) == 0).all()


def test_hog_patch_vectors_round_trip():
    cells = torch.rand(2, 3, 9, 6, 4)  # 3x2 patches of 16 px
    patches = hog_to_patches(cells, 2)
    assert patches.shape == (2, 6, 108)
    # patch 3 = patch row 1, column 1: cells rows 2-3, columns 2-3, order (c, bin, row, col)
    torch.testing.assert_close(patches[0, 3].view(3, 9, 2, 2), cells[0, :, :, 2:4, 2:4])
    torch.testing.assert_close(patches_to_hog(patches, (3, 2), 2), cells)


def test_hog_refuses_sizes_off_the_window():
    with pytest.raises(ParameterError, match="multiples of the 8-pixel cell"):
        HOGGenerator()(torch.zeros(1, 3, 24, 24))


def test_hog_picture_draws_an_edge_bin_as_a_vertical_line():
    cells = np.zeros((9, 1, 1))
    assert hog_picture(cells).max() == 0
    cells[HORIZONTAL_GRADIENT_BIN, 0, 0] = 1.0
    picture = hog_picture(cells, 8)
    assert picture.shape == (8, 8)
    lit = np.argwhere(picture > 0)
    assert len(np.unique(lit[:, 1])) <= 2  # one (rounded) column
    assert np.ptp(lit[:, 0]) >= 6  # spanning the cell vertically
    assert picture.max() == 255
    with pytest.raises(ParameterError, match="bins, rows, cols"):
        hog_picture(np.zeros(9))
