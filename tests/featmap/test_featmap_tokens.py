"""Transformer tokens and channels-last maps become (N, C, H, W) maps, cells in the right place."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from featscope.capture.hooks import capture
from featscope.capture.tokens import (
    model_is_channels_last,
    output_is_channels_last,
    to_feature_map,
    tokens_to_map,
)
from featscope.errors import CaptureError
from featscope.options import Output


def _tokens(prefix: int, h: int, w: int, c: int = 3) -> torch.Tensor:
    # token value encodes (position, channel): prefix tokens are -1, patch p has 10 * p + ch
    patches = torch.arange(h * w, dtype=torch.float32)[:, None] * 10 + torch.arange(c)[None]
    front = -torch.ones(prefix, c)
    return torch.cat([front, patches])[None]


@pytest.mark.parametrize(("prefix", "grid"), [(0, (3, 3)), (1, (3, 3)), (5, (2, 4)), (1, (4, 2))])
def test_tokens_land_in_row_major_cells(prefix, grid):
    h, w = grid
    maps = tokens_to_map(_tokens(prefix, h, w), prefix, grid)
    assert maps.shape == (1, 3, h, w)
    for i in range(h):
        for j in range(w):
            assert maps[0, 2, i, j].item() == 10 * (i * w + j) + 2
    assert (maps >= 0).all()  # class/register tokens dropped


def test_square_grid_without_patch_grid_and_output_without_prefix():
    # 1 class token + 16 patches: square 4x4 after dropping it
    assert tokens_to_map(_tokens(1, 4, 4), 1).shape == (1, 3, 4, 4)
    # patch_embed output: the same grid, but no class token in front -> nothing dropped
    maps = tokens_to_map(_tokens(0, 2, 4), 1, (2, 4))
    assert maps[0, 0].flatten().tolist() == [10.0 * p for p in range(8)]


def test_hierarchical_grid_is_halved_per_stage():
    # Swin-like: input grid 8x12, a later stage has 4x6 tokens
    maps = tokens_to_map(_tokens(0, 4, 6), 0, (8, 12))
    assert maps.shape == (1, 3, 4, 6)
    assert maps[0, 0, 1, 0].item() == 10 * 6


def test_tokens_that_fit_no_grid_fail_clearly():
    with pytest.raises(CaptureError, match=r"'blocks.1' has 7 tokens \(1 class/register.*6 left"):
        tokens_to_map(_tokens(1, 2, 3), 1, None, name="blocks.1")
    with pytest.raises(CaptureError, match="patch grid \\(3, 3\\)"):
        tokens_to_map(_tokens(0, 2, 3), 0, (3, 3))
    with pytest.raises(CaptureError, match="takes \\(N, L, C\\)"):
        tokens_to_map(torch.zeros(1, 4), 0)


def test_vectors_are_not_maps():
    with pytest.raises(
        CaptureError, match=r"'pre_logits' has shape \(1, 8\), one vector per image"
    ):
        to_feature_map(torch.zeros(1, 8), name="pre_logits")


def test_channels_last_is_permuted():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # N H W C
    out = to_feature_map(x, channels_last=True)
    assert out.shape == (1, 4, 2, 3)
    assert out[0, 3, 1, 2].item() == x[0, 1, 2, 3].item()


def _timm_handle(model, size):
    from featscope.models.timm_adapter import build_timm_handle

    handle = build_timm_handle(model, "tiny")
    return dataclasses.replace(
        handle, preprocess=dataclasses.replace(handle.preprocess, input_size=(size, size))
    )


def test_timm_vit_with_class_token_patch_tokens_match_the_patch_convolution():
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=8, depth=1, num_heads=1
    ).eval()
    handle = _timm_handle(model, 32)
    assert (handle.num_prefix_tokens, handle.patch_grid) == (1, (4, 4))
    x = torch.randn(1, 3, 32, 32)
    with capture(handle, ["patch_embed.proj", "patch_embed", "blocks.0"]) as tap:
        out = tap.run(x)
    conv = out["patch_embed.proj"]  # (1, 8, 4, 4), channels first
    grid = handle.num_prefix_tokens, handle.patch_grid
    torch.testing.assert_close(tokens_to_map(out["patch_embed"], *grid), conv)
    block = out["blocks.0"]  # (1, 17, 8): class token first
    maps = tokens_to_map(block, *grid)
    torch.testing.assert_close(maps[0, :, 2, 3], block[0, 1 + 2 * 4 + 3])


def test_timm_vit_with_register_tokens_drops_all_five_prefix_tokens():
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "vit_small_patch16_224",
        img_size=(32, 48),
        patch_size=8,
        embed_dim=8,
        depth=1,
        num_heads=1,
        reg_tokens=4,
    ).eval()
    handle = _timm_handle(model, 32)
    assert (handle.num_prefix_tokens, handle.patch_grid) == (5, (4, 6))
    with capture(handle, ["backbone"]) as tap:
        tokens = tap.run(torch.randn(1, 3, 32, 48))["backbone"]
    assert tokens.shape == (1, 5 + 24, 8)
    maps = tokens_to_map(tokens, handle.num_prefix_tokens, handle.patch_grid)
    assert maps.shape == (1, 8, 4, 6)
    for i, j in [(0, 0), (1, 5), (3, 2)]:
        torch.testing.assert_close(maps[0, :, i, j], tokens[0, 5 + i * 6 + j])


def test_timm_swin_stages_are_channels_last_but_its_convolution_is_not():
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224",
        img_size=32,
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 1),
        window_size=4,
    ).eval()
    assert model_is_channels_last(model)
    assert output_is_channels_last(model, "layers.0")
    assert output_is_channels_last(model, None)  # forward_features
    assert not output_is_channels_last(model, "patch_embed.proj")
    handle = _timm_handle(model, 32)
    with capture(handle, ["patch_embed.proj", "patch_embed"]) as tap:
        out = tap.run(torch.randn(1, 3, 32, 32))
    conv = to_feature_map(out["patch_embed.proj"], channels_last=False)
    embedded = to_feature_map(out["patch_embed"], channels_last=True)
    with torch.inference_mode():
        expected = model.patch_embed.norm(conv.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(embedded, expected)
    assert not model_is_channels_last(torch.nn.Conv2d(1, 1, 1))
    assert tuple(embedded.shape) == (1, 8, 8, 8)


def test_hugging_face_vit_tokens_become_maps(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from featscope.views.featmap import feature_maps

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    from PIL import Image

    picture = Image.new("RGB", (40, 40), (200, 30, 30))
    points = ["backbone", "vit.embeddings.patch_embeddings"]
    run = feature_maps([("red", picture)], f"hf:{tmp_path}", points, output=Output(work_dir=None))
    tokens_map = run["red", "backbone"].values
    assert tokens_map.shape == (16, 4, 4)  # class token dropped, 4x4 patch grid
    assert run["red", "vit.embeddings.patch_embeddings"].values.shape == (16, 4, 4)
