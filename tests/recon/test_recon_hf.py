"""Hugging Face MAE and SimMIM (ViT, Swin) from save_pretrained directories, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featscope.cli import main
from featscope.models.mim import load_mim
from featscope.options import Output
from featscope.views.recon import reconstruct


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """Tiny random-weight HF models saved as directories (with their image processor)."""
    import transformers as tf

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    small = {"num_attention_heads": 2, "intermediate_size": 32}
    models = {
        "mae": tf.ViTMAEForPreTraining(
            tf.ViTMAEConfig(
                image_size=32,
                patch_size=8,
                hidden_size=16,
                num_hidden_layers=1,
                decoder_hidden_size=16,
                decoder_num_hidden_layers=1,
                decoder_num_attention_heads=2,
                decoder_intermediate_size=32,
                mask_ratio=0.75,
                norm_pix_loss=True,
                **small,
            )
        ),
        "vit": tf.ViTForMaskedImageModeling(
            tf.ViTConfig(
                image_size=32,
                patch_size=8,
                hidden_size=16,
                num_hidden_layers=1,
                encoder_stride=8,
                **small,
            )
        ),
        "swin": tf.SwinForMaskedImageModeling(
            tf.SwinConfig(
                image_size=64,
                patch_size=4,
                embed_dim=8,
                depths=[1, 1],
                num_heads=[1, 2],
                window_size=4,
                encoder_stride=8,
            )
        ),
    }
    dirs = {}
    for name, model in models.items():
        folder = root / name
        model.save_pretrained(folder)
        size = model.config.image_size
        tf.ViTImageProcessor(size={"height": size, "width": size}).save_pretrained(folder)
        dirs[name] = folder
    return dirs


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("name", "family", "size", "grid", "hidden"),
    [
        ("mae", "mae", 32, (4, 4), 12),  # keep int(16 * 0.25) = 4
        ("vit", "simmim", 32, (4, 4), 10),  # 8-px mask patches (32-px would cover all)
        ("swin", "simmim", 64, (16, 16), 3 * 64),  # 32-px mask patches: ceil(4 * 0.6) = 3
    ],
)
def test_hf_families_give_four_panels(hf_dirs, photo_file, name, family, size, grid, hidden):
    result = reconstruct(
        [photo_file, photo_file], f"hf:{hf_dirs[name]}", output=Output(work_dir=None)
    )
    assert result.family == family
    item = result[0]
    for panel in (item.original, item.masked, item.reconstruction, item.pasted):
        assert panel.shape == (size, size, 3)
        assert panel.dtype == np.uint8
    assert item.patch_mask.shape == grid
    assert int(item.patch_mask.sum()) == hidden
    assert np.isfinite(result.errors).all()
    assert (result.errors > 0).all()


@pytest.mark.parametrize("name", ["mae", "vit", "swin"])
def test_hidden_patches_do_not_reach_the_model(hf_dirs, name):
    # the model uses featscope's mask: changing hidden pixels changes no prediction
    mim = load_mim(f"hf:{hf_dirs[name]}")
    h, _ = mim.input_size
    torch.manual_seed(0)
    x = torch.randn(2, 3, h, h)
    from featscope.models.mim import random_masks

    unit = mim.default_mask_patch_size // mim.patch_size
    patch_masks = random_masks(2, mim.grid, mim.default_mask_ratio, unit=unit, seed=0)
    mask = torch.from_numpy(patch_masks.reshape(2, -1))
    pixels = torch.from_numpy(patch_masks.repeat(mim.patch_size, 1).repeat(mim.patch_size, 2))[
        :, None
    ]
    changed = torch.where(pixels, torch.randn_like(x), x)
    assert not torch.equal(changed, x)
    torch.testing.assert_close(mim.predict(changed, mask), mim.predict(x, mask))


def test_hf_mae_reads_norm_pix_from_its_config(hf_dirs):
    mim = load_mim(f"hf:{hf_dirs['mae']}")
    assert (mim.family, mim.norm_pix, mim.patch_size) == ("mae", True, 8)


def test_cli_recon_with_out_file(hf_dirs, photo_file, tmp_path, capsys):
    out = tmp_path / "mae.png"
    code = main(
        [
            "recon",
            str(photo_file),
            "--model",
            f"hf:{hf_dirs['mae']}",
            "--mask-ratio",
            "0.5",
            "--seed",
            "1",
            "--out-file",
            str(out),
            "--work-dir",
            str(tmp_path / "wd"),
            "--dpi",
            "30",
        ]
    )
    assert code == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert "reconstructed 1 image(s)" in printed
    assert "mask ratio 0.5, seed 1" in printed
    runs = list((tmp_path / "wd").iterdir())
    assert len(runs) == 1
    assert (runs[0] / "recon_photo.png").is_file()
    masks = np.load(runs[0] / "masks.npy")
    assert masks.shape == (1, 4, 4)
    assert masks.sum() == 8


def test_cli_recon_user_errors(hf_dirs, photo_file, tmp_path, capsys):
    args = [str(photo_file), "--work-dir", str(tmp_path)]
    assert main(["recon", *args, "--model", f"hf:{hf_dirs['vit']}", "--norm-pix"]) == 2
    assert "`norm_pix` is for MAE models" in capsys.readouterr().err
    assert main(["recon", *args, "--model", "demo:digits-cnn"]) == 2
    assert "is not a masked-image model" in capsys.readouterr().err
    assert main(["recon", *args, "--model", f"hf:{hf_dirs['mae']}", "--input-size", "48"]) == 2
    assert "takes 32x32 images only" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
