"""Official MAE and MMSelfSup MaskFeat layouts, family detection and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featscope.analysis.recon import ReconOptions
from featscope.errors import CheckpointError, ModelSpecError, ParameterError
from featscope.models.mim import (
    MAEConfig,
    MaskedAutoencoderViT,
    MaskFeat,
    MaskFeatConfig,
    build_mae,
    build_maskfeat,
    load_mim,
)
from featscope.options import Output, Preprocess
from featscope.views.recon import reconstruct

NO_RUN = Output(work_dir=None)

TINY_MAE = MAEConfig(
    img_size=16,
    patch_size=4,
    embed_dim=16,
    depth=1,
    num_heads=2,
    decoder_embed_dim=8,
    decoder_depth=1,
    decoder_num_heads=2,
)
TINY_MASKFEAT = MaskFeatConfig(img_size=32, patch_size=16, embed_dim=16, depth=1, num_heads=2)
_BLOCK = [
    "norm1.weight",
    "norm1.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
]


def _official_mae_keys(depth: int, decoder_depth: int) -> set[str]:
    """The state-dict keys of facebookresearch/mae models_mae.MaskedAutoencoderViT."""
    keys = {"cls_token", "pos_embed", "mask_token", "decoder_pos_embed"}
    keys |= {"patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"}
    keys |= {"decoder_embed.weight", "decoder_embed.bias", "decoder_norm.weight"}
    keys |= {"decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias"}
    keys |= {f"blocks.{i}.{k}" for i in range(depth) for k in _BLOCK}
    keys |= {f"decoder_blocks.{i}.{k}" for i in range(decoder_depth) for k in _BLOCK}
    return keys


def test_official_mae_vit_large_has_the_research_code_keys_and_shapes():
    with torch.device("meta"):
        model = build_mae("mae_vit_large_patch16")
    state = model.state_dict()
    assert set(state) == _official_mae_keys(24, 8)
    assert tuple(state["pos_embed"].shape) == (1, 197, 1024)
    assert tuple(state["decoder_pos_embed"].shape) == (1, 197, 512)
    assert tuple(state["decoder_pred.weight"].shape) == (16 * 16 * 3, 512)
    assert tuple(state["blocks.23.attn.qkv.weight"].shape) == (3072, 1024)


def test_official_layout_checkpoint_loads_with_no_missing_keys(tmp_path):
    from featscope.models import load_checkpoint

    torch.manual_seed(0)
    source = MaskedAutoencoderViT(TINY_MAE)
    path = tmp_path / "mae_visualize_tiny.pth"
    torch.save({"model": source.state_dict()}, path)  # the research code's wrapper
    torch.manual_seed(1)
    target = MaskedAutoencoderViT(TINY_MAE)
    report = load_checkpoint(target, path, strict=True)
    assert report.missing == ()
    assert report.unexpected == ()
    assert report.wrapper == "model"
    mim = load_mim(target)
    images = torch.randn(2, 3, 16, 16)
    mask = torch.from_numpy(np.tile(np.arange(16) % 4 != 0, (2, 1)))
    torch.testing.assert_close(
        mim.predict(images, mask), source.eval().forward_masked(images, mask)
    )


def test_encoder_only_mae_checkpoint_is_refused(tmp_path):
    state = MaskedAutoencoderViT(TINY_MAE).state_dict()
    encoder = {k: v for k, v in state.items() if not k.startswith(("decoder", "mask_token"))}
    path = tmp_path / "mae_pretrain_tiny.pth"
    torch.save({"model": encoder}, path)
    with pytest.raises(CheckpointError, match=r"has no MAE decoder .* mae_visualize"):
        reconstruct(model=MaskedAutoencoderViT(TINY_MAE), checkpoint=path, output=NO_RUN)


def test_maskfeat_mmselfsup_checkpoint_loads_and_predicts_hog(tmp_path):
    torch.manual_seed(0)
    source = MaskFeat(TINY_MASKFEAT)
    keys = set(source.state_dict())
    for key in (
        "backbone.patch_embed.projection.weight",
        "backbone.mask_token",
        "backbone.layers.0.ln1.weight",
        "backbone.layers.0.ffn.layers.0.0.weight",
        "backbone.layers.0.ffn.layers.1.bias",
        "backbone.ln1.weight",
        "neck.fc.weight",
        "target_generator.gaussian_kernel",
    ):
        assert key in keys
    assert tuple(source.neck.fc.weight.shape) == (108, 16)
    path = tmp_path / "maskfeat.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": source.state_dict()}, path)
    result = reconstruct(
        [("noise", _photo(0, 40, 30))], MaskFeat(TINY_MASKFEAT), checkpoint=path, output=NO_RUN
    )
    item = result[0]
    assert result.family == "maskfeat"
    assert result.params["error"] == "mse_hog"
    for name in ("original", "masked", "reconstruction", "pasted", "hog_original"):
        assert getattr(item, name).shape == (32, 32, 3), name
    assert item.hog_prediction.shape == item.hog_target.shape == (3, 9, 4, 4)
    # the loaded weights are used: predict the same HOG as the source model
    patch_mask = torch.from_numpy(item.patch_mask.reshape(1, -1))
    x = load_mim(MaskFeat(TINY_MASKFEAT)).preprocess(_pil(_photo(0, 40, 30)))[None]
    expected = source.eval()(x, patch_mask).detach()
    from featscope.models.mim import patches_to_hog

    np.testing.assert_allclose(
        item.hog_prediction, patches_to_hog(expected, (2, 2), 2)[0].numpy(), atol=1e-5
    )
    # visible patches of the pasted HOG are the input's HOG
    visible = ~item.patch_mask.repeat(2, 0).repeat(2, 1)
    assert visible.any()
    assert item.error > 0


def test_maskfeat_checkpoint_without_its_hog_head_is_refused(tmp_path):
    state = MaskFeat(TINY_MASKFEAT).state_dict()
    backbone = {k: v for k, v in state.items() if k.startswith("backbone.")}
    path = tmp_path / "maskfeat_backbone.pth"
    torch.save({"state_dict": backbone}, path)
    with pytest.raises(CheckpointError, match=r"has no MaskFeat HOG head .*'neck\.fc\.weight'"):
        reconstruct(model=MaskFeat(TINY_MASKFEAT), checkpoint=path, output=NO_RUN)


def test_maskfeat_architectures_are_named():
    with torch.device("meta"):
        model = build_maskfeat("b")
    assert model.config.embed_dim == 768
    assert model.config.hog_dim == 108
    with pytest.raises(ModelSpecError, match="unknown MaskFeat architecture 'vit_tiny'"):
        build_maskfeat("vit_tiny")
    with pytest.raises(ModelSpecError, match="choose from vit_base_patch16, vit_large_patch16"):
        load_mim("mae:vit_small_patch16")


def test_a_classifier_is_not_a_masked_image_model():
    with pytest.raises(ModelSpecError, match=r"'demo:digits-cnn' \(DigitsCNN\) is not a masked"):
        reconstruct(model="demo:digits-cnn", output=NO_RUN)


def test_wrong_input_size_for_a_fixed_size_model():
    model = MaskedAutoencoderViT(TINY_MAE)
    with pytest.raises(ParameterError, match=r"takes 16x16 images only"):
        reconstruct(
            [("x", _photo(0))], model, preprocess=Preprocess(input_size=(20, 20)), output=NO_RUN
        )
    mim = load_mim(model)
    with pytest.raises(ParameterError, match=r"takes \(3, 16, 16\) inputs"):
        mim.predict(torch.zeros(1, 3, 20, 20), torch.zeros(1, 25, dtype=torch.bool))


def test_norm_pix_is_only_for_mae():
    with pytest.raises(ParameterError, match="`norm_pix` is for MAE models"):
        reconstruct(
            [("x", _photo(0))], MaskFeat(TINY_MASKFEAT), options=ReconOptions(norm_pix=True),
            output=NO_RUN,
        )  # fmt: skip


def _photo(seed: int, h: int = 24, w: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _pil(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array)
