"""MMPretrain's MAE and SimMIM behind the masked-image-model interface (featscope recon)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featscope.cli import main
from featscope.models.mim import load_mim, random_masks
from featscope.models.mim.patches import patchify

pytest.importorskip("mmpretrain")
pytestmark = pytest.mark.filterwarnings("ignore:Fail to import ``MultiScaleDeformableAttention``")

PREPROCESSOR = (
    "data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53], "
    "std=[58.395, 57.12, 57.375], to_rgb=True)"
)
MAE = f"""model = dict(
    type='MAE', {PREPROCESSOR},
    backbone=dict(type='MAEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                  feedforward_channels=64), img_size=32, patch_size=8, mask_ratio=0.75),
    neck=dict(type='MAEPretrainDecoder', patch_size=8, in_chans=3, embed_dim=32,
              decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2, num_patches=16),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=8,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')))
"""
SIMMIM = f"""model = dict(
    type='SimMIM', {PREPROCESSOR},
    backbone=dict(type='SimMIMSwinTransformer', arch=dict(embed_dims=16, depths=[1, 1],
                  num_heads=[1, 1]), img_size=64, out_indices=(1,),
                  stage_cfgs=dict(block_cfgs=dict(window_size=4))),
    neck=dict(type='SimMIMLinearDecoder', in_channels=32, encoder_stride=8),
    head=dict(type='SimMIMHead', patch_size=4,
              loss=dict(type='PixelReconstructionLoss', criterion='L1', channel=3)))
"""


@pytest.fixture
def configs(tmp_path):
    (tmp_path / "mae_tiny.py").write_text(MAE)
    (tmp_path / "simmim_tiny.py").write_text(SIMMIM)
    return tmp_path


def test_mae_prediction_is_that_of_its_own_masking(configs) -> None:
    mim = load_mim(f"mmpretrain:{configs / 'mae_tiny.py'}")
    assert (mim.family, mim.input_size, mim.patch_size, mim.grid) == ("mae", (32, 32), 8, (4, 4))
    assert (mim.norm_pix, mim.default_mask_ratio, mim.preprocess.crop_pct) == (True, 0.75, 1.0)
    x = torch.randn(2, 3, 32, 32)
    module = mim.module
    with torch.no_grad():
        torch.manual_seed(0)
        latent, mask, ids_restore = module.backbone(x, mask=True)  # MAE's own random mask
        expected = module.neck(latent, ids_restore)
    got = mim.predict(x, mask.bool())
    assert got.shape == (2, 16, 8 * 8 * 3)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert "random_masking" not in vars(module.backbone)  # the instance patch is removed


def test_simmim_prediction_is_its_reconstruction_in_patches(configs) -> None:
    mim = load_mim(f"mmpretrain:{configs / 'simmim_tiny.py'}")
    assert (mim.family, mim.input_size, mim.patch_size, mim.grid) == (
        "simmim",
        (64, 64),
        4,
        (16, 16),
    )
    assert (mim.default_mask_ratio, mim.default_mask_patch_size) == (0.6, 32)
    mask = random_masks(2, mim.grid, 0.6, unit=8, seed=0).reshape(2, -1)
    mask = torch.from_numpy(mask)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = mim.module.neck(mim.module.backbone(x, mask.reshape(2, 16, 16))[0])
    torch.testing.assert_close(mim.predict(x, mask), patchify(expected, 4))


def test_recon_command_runs_an_mmpretrain_mae(configs, tmp_path) -> None:
    image = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(image)
    spec = f"mmpretrain:{configs / 'mae_tiny.py'}"
    argv = ["recon", str(image), "--model", spec, "--work-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    assert len(list((tmp_path / "runs").glob("*/manifest.json"))) == 1


MASKFEAT = f"""model = dict(
    type='MaskFeat', {PREPROCESSOR},
    backbone=dict(type='MaskFeatViT', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                  feedforward_channels=64), img_size=32, patch_size=16),
    neck=dict(type='LinearNeck', in_channels=32, out_channels=108, norm_cfg=None),
    head=dict(type='MIMHead', loss=dict(type='PixelReconstructionLoss', criterion='L2',
              channel=3)),
    target_generator=dict(type='HOGGenerator', nbins=9, pool=8, gaussian_window=16))
"""


def test_maskfeat_predicts_hog_as_its_training_loss_does(tmp_path) -> None:
    (tmp_path / "maskfeat_tiny.py").write_text(MASKFEAT)
    mim = load_mim(f"mmpretrain:{tmp_path / 'maskfeat_tiny.py'}")
    assert (mim.family, mim.target, mim.input_size, mim.patch_size) == (
        "maskfeat",
        "hog",
        (32, 32),
        16,
    )
    x = torch.randn(2, 3, 32, 32)
    mask = torch.tensor([[True, False, False, True], [False, True, True, False]])
    module = mim.module
    with torch.no_grad():
        latent = module.backbone(x, mask)
        expected = module.neck((latent.flatten(0, 1),))[0].view(2, 5, -1)[:, 1:]
    got = mim.predict(x, mask)
    assert got.shape == (2, 4, 108)
    torch.testing.assert_close(got, expected)
    # the target: the HOG of the model's generator settings, 108 values per 16-px patch
    target = mim.hog_target(x)
    assert target.shape == (2, 4, 108)
    # MMPretrain's own generator lays its cells out for 224 px only (at 32 px it fails); there
    # it computes the same cells as the one featscope uses
    with pytest.raises(RuntimeError):
        module.target_generator(x)
    photo = torch.randn(1, 3, 224, 224)
    reference = module.target_generator(photo)
    torch.testing.assert_close(mim.hog(photo), module.target_generator.out)
    assert reference.shape == (1, 196, 108)


def test_recon_command_on_an_mmpretrain_maskfeat(tmp_path, capsys) -> None:
    (tmp_path / "maskfeat_tiny.py").write_text(MASKFEAT)
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)).save(image)
    code = main(
        ["recon", str(image), "--model", f"mmpretrain:{tmp_path / 'maskfeat_tiny.py'}",
         "--work-dir", str(tmp_path / "runs"), "--quiet", "--dpi", "30"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "manifest.json").is_file()
    assert (run / "recon_img.png").is_file()
