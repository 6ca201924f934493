"""Patches, norm-pix targets and seeded masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featscope.analysis.recon import denormalize_patches, unpatchify
from featscope.errors import ParameterError
from featscope.models.mim import mask_count, normalize_patches, patchify, random_masks


def test_patchify_unpatchify_round_trip_and_layout():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 8, 12)
    patches = patchify(images, 4)
    assert patches.shape == (2, 6, 48)
    # patch 4 is row 1, column 1; its vector is (row in patch, column in patch, channel)
    expected = images[1, :, 4:8, 4:8].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(patches[1, 4], expected)
    # the way back is numpy, after the forward pass
    np.testing.assert_array_equal(unpatchify(patches.numpy(), 4, (2, 3)), images.numpy())


def test_patchify_matches_hugging_face_mae():
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    config = ViTMAEConfig(
        image_size=8,
        patch_size=4,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        decoder_hidden_size=8,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=1,
        decoder_intermediate_size=8,
    )
    images = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(patchify(images, 4), ViTMAEForPreTraining(config).patchify(images))


def test_patchify_rejects_sides_that_are_not_multiples():
    with pytest.raises(ParameterError, match="multiples of 4"):
        patchify(torch.zeros(1, 3, 10, 8), 4)
    with pytest.raises(ParameterError, match=r"expected \(N, 4, 48\)"):
        unpatchify(np.zeros((1, 5, 48)), 4, (2, 2))


def test_norm_pix_denormalisation_of_a_hand_made_patch():
    # one 2x2 RGB patch: values 0..11, mean 5.5, unbiased variance 13
    patch = torch.arange(12, dtype=torch.float32).view(1, 1, 12)
    normed = normalize_patches(patch)
    torch.testing.assert_close(normed, (patch - 5.5) / (13.0 + 1e-6) ** 0.5)
    # a prediction of 0 everywhere is the patch's mean; +1 is one std above it
    # (put back in numpy, after the forward pass)
    prediction = np.zeros((1, 1, 12))
    prediction[0, 0, 3] = 1.0
    restored = denormalize_patches(prediction, patch.numpy())
    assert restored[0, 0, 0] == pytest.approx(5.5)
    assert restored[0, 0, 3] == pytest.approx(5.5 + 13.0**0.5, rel=1e-5)
    np.testing.assert_allclose(
        denormalize_patches(normed.numpy(), patch.numpy()), patch.numpy(), rtol=1e-6, atol=1e-5
    )


def test_same_seed_same_mask_whatever_the_batch():
    whole = random_masks(5, (7, 7), 0.75, seed=3)
    again = random_masks(5, (7, 7), 0.75, seed=3)
    tail = random_masks(2, (7, 7), 0.75, seed=3, start=3)
    other = random_masks(5, (7, 7), 0.75, seed=4)
    np.testing.assert_array_equal(whole, again)
    np.testing.assert_array_equal(whole[3:], tail)
    assert not np.array_equal(whole, other)
    assert not np.array_equal(whole[0], whole[1])
    # MAE keeps int(49 * 0.25) = 12 patches: 37 hidden in every image
    assert whole.sum(axis=(1, 2)).tolist() == [37] * 5


def test_simmim_mask_patches_cover_whole_blocks():
    # 192 px Swin: 48x48 grid of 4-px patches, 32-px mask patches = 8x8 blocks, 6x6 of them
    masks = random_masks(1, (48, 48), 0.6, unit=8, seed=0)[0]
    blocks = masks.reshape(6, 8, 6, 8)
    assert set(blocks.all(axis=(1, 3)).ravel()) | set(blocks.any(axis=(1, 3)).ravel()) == {
        True,
        False,
    }
    np.testing.assert_array_equal(blocks.all(axis=(1, 3)), blocks.any(axis=(1, 3)))
    assert blocks.all(axis=(1, 3)).sum() == mask_count(36, 0.6) == 22


@pytest.mark.parametrize("ratio", [0, 1, 1.5, -0.1])
def test_mask_ratio_outside_zero_one_is_refused(ratio):
    with pytest.raises(ParameterError, match="between 0 and 1"):
        random_masks(1, (4, 4), ratio)


def test_mask_patch_that_does_not_tile_the_grid_is_refused():
    with pytest.raises(ParameterError, match="does not tile the 7x7 patch grid"):
        random_masks(1, (7, 7), 0.5, unit=2)
