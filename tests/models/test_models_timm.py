from __future__ import annotations

import pytest
import timm
import torch

from featscope.errors import ModelSpecError
from featscope.models import PointRef, load_model


def test_timm_cnn_preprocessing_and_aliases() -> None:
    handle = load_model("timm:test_resnet")
    cfg = handle.module.pretrained_cfg
    assert handle.family == "timm"
    assert handle.spec == "timm:test_resnet"
    assert handle.preprocess.input_size == tuple(cfg["input_size"][1:])
    assert handle.preprocess.mean == pytest.approx(cfg["mean"])
    assert handle.preprocess.std == pytest.approx(cfg["std"])
    assert handle.preprocess.crop_pct == pytest.approx(cfg["crop_pct"])
    assert handle.preprocess.interpolation == cfg["interpolation"]
    assert handle.aliases["neck"] == PointRef("global_pool")
    assert handle.aliases["backbone"] == PointRef(None)
    assert handle.num_prefix_tokens == 0
    assert handle.patch_grid is None
    # the module's own train flag is left alone (capture handles it)
    assert handle.module.training is True


def test_timm_cnn_forward_extras_shapes() -> None:
    handle = load_model("timm:test_resnet")
    handle.module.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, extras = handle.forward(handle.module, x)
        reference = handle.module(x)
    assert out.shape == (2, 1000)
    assert torch.allclose(out, reference)
    assert extras["backbone"].ndim == 4
    assert extras["backbone"].shape[0] == 2
    assert extras["pre_logits"].shape == (2, handle.module.num_features)
    assert extras["logits"] is out


def test_timm_vit_tokens_prefix_and_grid() -> None:
    handle = load_model("timm:test_vit")
    model = handle.module
    assert handle.num_prefix_tokens == model.num_prefix_tokens == 1
    assert handle.patch_grid == tuple(model.patch_embed.grid_size)
    assert "neck" not in handle.aliases  # ViT's global_pool is a string, not a module
    size = handle.preprocess.input_size
    with torch.no_grad():
        _, extras = handle.forward(model.eval(), torch.randn(1, 3, *size))
    grid = handle.patch_grid[0] * handle.patch_grid[1]
    assert extras["backbone"].shape == (1, grid + 1, model.embed_dim)
    assert extras["pre_logits"].shape == (1, model.embed_dim)


def test_timm_vit_input_size_override_resizes_model() -> None:
    handle = load_model("timm:test_vit", input_size=(48, 64))
    patch = handle.module.patch_embed.patch_size
    assert handle.preprocess.input_size == (48, 64)
    assert handle.patch_grid == (48 // patch[0], 64 // patch[1])
    with torch.no_grad():
        _, extras = handle.forward(handle.module.eval(), torch.randn(1, 3, 48, 64))
    assert extras["backbone"].shape[1] == handle.patch_grid[0] * handle.patch_grid[1] + 1


def test_timm_convnext_neck_is_head_global_pool() -> None:
    handle = load_model("timm:test_convnext")
    assert handle.aliases["neck"] == PointRef("head.global_pool")
    handle.module.get_submodule("head.global_pool")


def test_unknown_timm_model_suggests_close_names() -> None:
    with pytest.raises(ModelSpecError, match=r"timm has no model 'resnet5o'.*timm:resnet50"):
        load_model("timm:resnet5o")


def test_timm_module_passed_directly_keeps_timm_aliases() -> None:
    model = timm.create_model("test_resnet", pretrained=False)
    handle = load_model(model)
    assert handle.family == "timm"
    assert handle.module is model
    assert handle.aliases["neck"] == PointRef("global_pool")
