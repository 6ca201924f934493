from __future__ import annotations

import pytest
import torch

from featscope.errors import ModelSpecError
from featscope.models import PointRef, load_model


def tiny_vit_config(**extra):
    """A 32x32 ViT with 8x8 patches (a 4x4 grid), one layer of width 16."""
    from transformers import ViTConfig

    return ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        **extra,
    )


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory) -> str:
    from transformers import ViTForImageClassification, ViTImageProcessor

    path = tmp_path_factory.mktemp("hf_vit")
    torch.manual_seed(0)
    ViTForImageClassification(tiny_vit_config(num_labels=3)).save_pretrained(path)
    ViTImageProcessor(
        size={"height": 32, "width": 32},
        image_mean=[0.1, 0.2, 0.3],
        image_std=[0.4, 0.5, 0.6],
        resample=3,
    ).save_pretrained(path)
    return str(path)


def test_hf_vit_preprocessing_from_processor(vit_dir: str) -> None:
    handle = load_model(f"hf:{vit_dir}")
    assert handle.family == "hf"
    assert type(handle.module).__name__ == "ViTForImageClassification"
    assert handle.preprocess.input_size == (32, 32)
    assert handle.preprocess.mean == pytest.approx((0.1, 0.2, 0.3))
    assert handle.preprocess.std == pytest.approx((0.4, 0.5, 0.6))
    assert handle.preprocess.crop_pct == 1.0
    assert handle.preprocess.interpolation == "bicubic"


def test_hf_vit_aliases_and_tokens(vit_dir: str) -> None:
    handle = load_model(f"hf:{vit_dir}")
    assert handle.aliases == {
        "backbone": PointRef("vit", select="last_hidden_state"),
        "pre_logits": PointRef("classifier", io="input"),
        "logits": PointRef("", select="logits"),
    }
    assert handle.num_prefix_tokens == 1
    assert handle.patch_grid == (4, 4)
    seen = {}

    def keep_backbone(module, inputs, output) -> None:
        seen["backbone"] = output["last_hidden_state"]

    def keep_pre_logits(module, inputs, output) -> None:
        seen["pre_logits"] = inputs[0]

    handle.module.get_submodule("vit").register_forward_hook(keep_backbone)
    handle.module.get_submodule("classifier").register_forward_hook(keep_pre_logits)
    out, extras = handle.forward(handle.module, torch.randn(2, 3, 32, 32))
    assert extras == {}
    assert out["logits"].shape == (2, 3)
    assert seen["backbone"].shape == (2, 1 + 16, 16)
    assert seen["pre_logits"].shape == (2, 16)


def test_hf_base_model_without_processor(tmp_path) -> None:
    from transformers import ViTModel

    ViTModel(tiny_vit_config()).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="no image-processor config"):
        handle = load_model(f"hf:{tmp_path}")
    assert handle.preprocess.input_size == (32, 32)
    assert handle.aliases == {
        "backbone": PointRef("", select="last_hidden_state"),
        "pre_logits": PointRef("", select="pooler_output"),
    }


def test_hf_hub_id_refused_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match=r"'google/vit-base'.*HF_HUB_OFFLINE"):
        load_model("hf:google/vit-base")


def test_hf_missing_directory_and_non_model_directory(tmp_path) -> None:
    with pytest.raises(ModelSpecError, match="does not exist"):
        load_model(f"hf:{tmp_path}/absent")
    with pytest.raises(ModelSpecError, match="is not a Hugging Face model"):
        load_model(f"hf:{tmp_path}")


def test_hf_local_load_draws_no_progress_bar_and_restores_the_setting(vit_dir: str, capfd) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    capfd.readouterr()
    load_model(f"hf:{vit_dir}")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the user's setting is back
