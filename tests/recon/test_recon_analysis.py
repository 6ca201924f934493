"""featscope.analysis.recon: the arithmetic after the forward pass, on hand-built arrays."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from featscope.analysis.recon import (
    NORM_PIX_EPS,
    ReconOptions,
    denormalize_patches,
    masked_mse,
    paste,
    patchify,
    pixel_mask,
    reconstruct_batch,
    to_uint8,
    unnormalize,
    unpatchify,
)
from featscope.errors import ParameterError
from featscope.options import Preprocess

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)


@dataclass(frozen=True)
class Batch:
    """A MaskedBatch built by hand (the attributes reconstruct_batch reads)."""

    inputs: np.ndarray
    patch_masks: np.ndarray
    prediction: np.ndarray
    ids: tuple = ("a",)
    stems: tuple = ("a",)
    mean: tuple = MEAN
    std: tuple = STD
    target: np.ndarray | None = None
    cell_size: int = 8


def _model(**overrides):
    values = {
        "spec": "fake:mae",
        "family": "mae",
        "target": "pixels",
        "input_size": (8, 8),
        "patch_size": 4,
        "norm_pix": False,
        "default_mask_ratio": 0.75,
        "default_mask_patch_size": 4,
        "preprocess": SimpleNamespace(mean=MEAN),
    }
    return SimpleNamespace(**{**values, **overrides})


def _params(**overrides):
    return {**ReconOptions(mask_color="black").resolve(_model()), **overrides}


def test_patchify_matches_the_torch_layout_and_round_trips():
    from featscope.models.mim import patchify as torch_patchify
    from featscope.models.mim.patches import NORM_PIX_EPS as TORCH_EPS

    images = np.random.default_rng(0).normal(size=(2, 3, 8, 12)).astype(np.float32)
    patches = patchify(images, 4)
    assert patches.shape == (2, 6, 48)
    np.testing.assert_array_equal(patches, torch_patchify(torch.from_numpy(images), 4).numpy())
    # patch 4 is row 1, column 1; its vector is (row, column, channel), channel last
    np.testing.assert_array_equal(patches[0, 4, :3], images[0, :, 4, 4])
    np.testing.assert_array_equal(unpatchify(patches, 4, (2, 3)), images)
    assert NORM_PIX_EPS == TORCH_EPS
    with pytest.raises(ParameterError, match="cannot be cut into patches of 5 pixels"):
        patchify(images, 5)
    with pytest.raises(ParameterError, match=r"do not fit a 3x3 grid"):
        unpatchify(patches, 4, (3, 3))


def test_norm_pix_prediction_is_put_back_with_each_patch_mean_and_std():
    from featscope.models.mim import normalize_patches

    reference = np.array([[[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]]])
    # patch 0: mean 3, unbiased var 14/3; patch 1 is flat: only the epsilon is left
    prediction = np.array([[[1.0, 0.0, -1.0, 2.0], [1.0, 1.0, -1.0, 0.0]]])
    std0 = np.sqrt(14 / 3 + 1e-6)
    expected = np.array([[[3 + std0, 3, 3 - std0, 3 + 2 * std0], [5.001, 5.001, 4.999, 5.0]]])
    np.testing.assert_allclose(denormalize_patches(prediction, reference), expected, atol=1e-9)
    # the inverse of the norm-pix target
    target = normalize_patches(torch.from_numpy(reference)).numpy()
    np.testing.assert_allclose(denormalize_patches(target, reference), reference, atol=1e-9)


def test_unnormalize_undoes_mean_and_std_and_clips():
    images = np.zeros((1, 3, 1, 2))
    images[0, :, 0, 1] = [1.0, -4.0, 10.0]  # +1 std, far below 0, far above 1
    pixels = unnormalize(images, MEAN, STD)
    assert pixels.shape == (1, 1, 2, 3)  # channel last
    np.testing.assert_allclose(pixels[0, 0, 0], MEAN)
    np.testing.assert_allclose(pixels[0, 0, 1], [0.7, 0.0, 1.0])
    np.testing.assert_array_equal(to_uint8(pixels[0, 0]), [[128, 102, 76], [178, 0, 255]])


def test_pasting_takes_the_prediction_on_hidden_patches_only():
    patch_masks = np.array([[[True, False], [False, True]]])
    mask = pixel_mask(patch_masks, 2)
    assert mask.shape == (1, 4, 4)
    np.testing.assert_array_equal(mask[0, :2, :2], True)
    np.testing.assert_array_equal(mask[0, :2, 2:], False)
    visible, hidden = np.zeros((1, 4, 4, 3)), np.ones((1, 4, 4, 3))
    pasted = paste(visible, hidden, mask)
    np.testing.assert_array_equal(pasted[..., 0], mask.astype(float))


def test_masked_error_averages_hidden_positions_only():
    target = np.zeros((2, 2, 2, 3))
    prediction = target.copy()
    prediction[0, 0, 0] = [0.3, 0.3, 0.3]  # hidden: squared error 0.09
    prediction[0, 1, 1] = [1.0, 1.0, 1.0]  # visible: does not count
    prediction[1, 0, 0] = [0.6, 0.0, 0.0]  # hidden: mean over channels 0.12
    mask = np.zeros((2, 2, 2), dtype=bool)
    mask[:, 0, :] = True  # two hidden positions per image
    np.testing.assert_allclose(masked_mse(prediction, target, mask), [0.045, 0.06])
    with pytest.raises(ParameterError, match="hides nothing"):
        masked_mse(prediction, target, np.zeros((2, 2, 2), dtype=bool))


@pytest.mark.parametrize("norm_pix", [False, True])
def test_a_batch_with_a_known_prediction(norm_pix):
    from featscope.models.mim import normalize_patches

    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(1, 3, 8, 8))
    patch_masks = np.array([[[True, False], [False, True]]])
    patches = patchify(inputs, 4)
    prediction = normalize_patches(torch.from_numpy(patches)).numpy() if norm_pix else patches
    prediction = prediction.copy()
    prediction[0, 0] += 0.5  # hidden patch 0: +0.5 std in normalised space
    batch = Batch(inputs, patch_masks, prediction)
    (image,) = reconstruct_batch(batch, _params(norm_pix=norm_pix))
    original = unnormalize(inputs, MEAN, STD)[0]
    np.testing.assert_array_equal(image.original, to_uint8(original))
    np.testing.assert_array_equal(image.masked[image.mask], 0)  # black
    np.testing.assert_array_equal(image.masked[~image.mask], image.original[~image.mask])
    np.testing.assert_array_equal(image.pasted[~image.mask], image.original[~image.mask])
    # hidden patch 3 is predicted exactly, hidden patch 0 is off by 0.5 std (before clipping)
    np.testing.assert_allclose(image.reconstruction[4:, 4:], image.original[4:, 4:], atol=1)
    # in the normalised input space the shift is 0.5, times the patch's std with norm-pix
    shift = 0.5 * (np.sqrt(np.var(patches[0, 0], ddof=1) + 1e-6) if norm_pix else 1.0)
    recon = unnormalize(inputs[:, :, :4, :4] + shift, MEAN, STD)[0]
    expected = ((recon - original[:4, :4]) ** 2).mean() / 2  # two hidden patches, one exact
    assert image.error == pytest.approx(expected, rel=1e-6)
    assert image.file == "recon_a"
    assert image.hog_original is None


def test_a_hog_batch_pastes_cells_and_measures_hidden_cells():
    # 2x2 patches of 16 pixels, 2x2 cells of 8 pixels each: a (1, 3, 9, 4, 4) cell grid
    target = np.zeros((1, 3, 9, 4, 4), dtype=np.float32)
    target[:, :, 4] = 1.0  # every cell: a vertical edge
    prediction = target.copy()
    prediction[0, :, 4, :2, :2] = 0.5  # hidden patch 0 (cells rows 0-1, columns 0-1): wrong
    patch_masks = np.array([[[True, False], [False, True]]])
    batch = Batch(np.zeros((1, 3, 32, 32)), patch_masks, prediction, target=target)
    (image,) = reconstruct_batch(batch, _params(patch_size=16))
    # per hidden cell: mean over 3 x 9 values of (0.5)**2 on 3 of them; patch 3 is exact
    assert image.error == pytest.approx(0.25 * 3 / 27 / 2)
    for picture in (image.original, image.masked, image.hog_original, image.pasted):
        assert picture.shape == (32, 32, 3)
    np.testing.assert_array_equal(image.hog_target, target[0])
    np.testing.assert_array_equal(image.hog_prediction, prediction[0])
    # visible patches of the pasted picture are the input's HOG, hidden ones the prediction
    np.testing.assert_array_equal(image.pasted[:16, 16:], image.hog_original[:16, 16:])
    np.testing.assert_array_equal(image.pasted[:16, :16], image.reconstruction[:16, :16])
    assert image.pasted[:16, :16].max() < image.hog_original[:16, :16].max()  # one scale


def test_options_are_checked_when_made():
    for kwargs, match in [
        ({"mask_ratio": 0.0}, "between 0 and 1"),
        ({"mask_ratio": True}, "between 0 and 1"),
        ({"seed": -1}, r"`--seed` must be an integer from 0 to 4294967295; got -1"),
        ({"seed": 1.5}, "`--seed` must be an integer"),
        ({"mask_patch_size": 0}, "`--mask-patch-size` 0 must be a positive integer"),
        ({"mask_color": "purplish"}, "`mask_color` 'purplish' is not a colour"),
        ({"norm_pix": "yes"}, "`--norm-pix` must be True, False or None"),
    ]:
        with pytest.raises(ParameterError, match=match):
            ReconOptions(**kwargs)
    assert ReconOptions(mask_color=[1, 2, 3]).mask_color == (1, 2, 3)


def test_options_resolve_to_the_model_defaults():
    params = ReconOptions().resolve(_model(norm_pix=True))
    assert params == {
        "mask_ratio": 0.75,
        "mask_patch_size": 4,
        "patch_size": 4,
        "seed": 0,
        "norm_pix": True,
        "mask_color": [128, 102, 76],  # the mean
        "input_size": [8, 8],
        "error": "mse_pixels_0_1",
    }
    assert (
        ReconOptions(norm_pix=False, mask_ratio=0.5).resolve(_model(norm_pix=True))["norm_pix"]
        is False
    )
    hog = ReconOptions().resolve(_model(family="maskfeat", target="hog"))
    assert hog["error"] == "mse_hog"


def test_options_that_do_not_fit_the_model_are_refused():
    with pytest.raises(ParameterError, match="multiple of the model's patch size 4 that divides"):
        ReconOptions(mask_patch_size=6).resolve(_model())
    with pytest.raises(ParameterError, match=r"`norm_pix` is for MAE models; fake:sim is a simmim"):
        ReconOptions(norm_pix=True).resolve(_model(spec="fake:sim", family="simmim"))
    with pytest.raises(ParameterError, match="takes 8x8 images only"):
        ReconOptions().resolve(_model(), Preprocess(input_size=(16, 16)))
    with pytest.raises(ParameterError, match="leave mean and std unset"):
        ReconOptions().resolve(_model(), Preprocess(mean=(0.5, 0.5, 0.5)))
    assert ReconOptions().resolve(_model(), Preprocess(input_size=(8, 8)))["input_size"] == [8, 8]
