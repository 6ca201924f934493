"""mmpretrain: specs: models by name or config, their stages, preprocessing, checkpoints."""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from featscope.capture.hooks import capture
from featscope.errors import ModelSpecError
from featscope.models import load_model
from featscope.models.mmpretrain_adapter import (
    MM_PIPELINE,
    MM_PREPROCESSOR,
    mmpretrain_preprocessing,
)

mmpretrain = pytest.importorskip("mmpretrain")
pytestmark = pytest.mark.filterwarnings("ignore:Fail to import ``MultiScaleDeformableAttention``")

CONFIGS = Path(mmpretrain.__file__).parent / ".mim" / "configs"
CIFAR = "mmpretrain:resnet18_8xb16_cifar10"


@pytest.fixture(scope="module")
def cifar():
    return load_model(CIFAR)


def test_stages_are_those_of_extract_feat(cifar) -> None:
    assert set(cifar.aliases) == {"backbone", "neck", "pre_logits", "logits"}
    assert (cifar.family, cifar.weights, cifar.num_prefix_tokens) == ("mmpretrain", "random", 0)
    x = torch.randn(2, 3, 32, 32)
    with capture(cifar, ["backbone", "neck", "pre_logits", "logits", "backbone.layer4"]) as tap:
        out = tap.run(x)
    assert [tuple(t.shape) for t in out["backbone"]] == [(2, 512, 4, 4)]
    assert [tuple(t.shape) for t in out["neck"]] == [(2, 512)]
    assert tuple(out["pre_logits"].shape) == (2, 512)
    assert tuple(out["logits"].shape) == (2, 10)
    model = cifar.module
    with torch.no_grad():
        for stage in ("backbone", "neck"):
            torch.testing.assert_close(out[stage][0], model.extract_feat(x, stage=stage)[0])
        torch.testing.assert_close(out["pre_logits"], model.extract_feat(x, stage="pre_logits"))
        torch.testing.assert_close(out["logits"], model(x))
    torch.testing.assert_close(out["backbone.layer4"], out["backbone"][0])


def test_cifar_preprocessing_from_the_config(cifar) -> None:
    pre = cifar.preprocess
    assert (pre.input_size, pre.crop_pct, pre.channels) == ((32, 32), 1.0, 3)
    assert pre.mean == pytest.approx((125.307 / 255, 122.961 / 255, 113.8575 / 255))
    assert pre.std == pytest.approx((51.5865 / 255, 50.847 / 255, 51.255 / 255))
    assert pre.source == {
        "input_size": "mmpretrain config (CIFAR dataset: 32 px)",
        "crop_pct": "mmpretrain config (CIFAR dataset: 32 px)",
        "interpolation": "assumed ImageNet default",
        "mean": MM_PREPROCESSOR,
        "std": MM_PREPROCESSOR,
        "channels": "model (backbone.conv1.in_channels)",
        "channel_order": "mmpretrain config (CIFAR10 arrays are RGB)",
    }


def test_config_file_with_a_test_pipeline() -> None:
    handle = load_model(f"mmpretrain:{CONFIGS / 'resnet' / 'resnet18_8xb32_in1k.py'}")
    pre = handle.preprocess
    assert (pre.input_size, pre.crop_pct, pre.interpolation) == ((224, 224), 0.875, "bilinear")
    assert pre.mean == pytest.approx((0.485, 0.456, 0.406), abs=1e-6)
    assert pre.source["input_size"] == pre.source["crop_pct"] == MM_PIPELINE
    assert handle.module.head.fc.out_features == 1000


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        (
            [{"type": "ResizeEdge", "scale": 256, "edge": "short", "interpolation": "bicubic"},
             {"type": "CenterCrop", "crop_size": 224}],
            ((224, 224), 0.875, "bicubic"),
        ),
        ([{"type": "Resize", "scale": (320, 240)}], ((240, 320), 1.0, "bilinear")),
        (
            [{"type": "EfficientNetCenterCrop", "crop_size": 240, "crop_padding": 32,
              "interpolation": "bicubic"}],
            ((240, 240), 240 / 272, "bicubic"),
        ),
        ([{"type": "Resize", "scale": 64, "interpolation": "lanczos"}], ((64, 64), 1.0, "bicubic")),
        ([{"type": "PackInputs"}], ((224, 224), 0.875, "bilinear")),
    ],
)  # fmt: skip
def test_pipeline_steps_read(pipeline, expected) -> None:
    config = {
        "model": {"data_preprocessor": {"mean": [127.5] * 3, "std": [127.5] * 3}},
        "test_dataloader": {"dataset": {"pipeline": pipeline}},
    }
    pre = mmpretrain_preprocessing(config)
    size, crop_pct, interpolation = expected
    assert (pre.input_size, pre.interpolation) == (size, interpolation)
    assert pre.crop_pct == pytest.approx(crop_pct)
    assert pre.mean == pre.std == (0.5, 0.5, 0.5)


def test_normalisation_fallbacks() -> None:
    raw = mmpretrain_preprocessing({"data_preprocessor": {"num_classes": 10}})
    assert raw.mean == (0.0, 0.0, 0.0)
    assert raw.std == pytest.approx((1 / 255,) * 3)  # the model sees its 0-255 pixels
    assert mmpretrain_preprocessing({}).source["mean"] == "assumed ImageNet default"


def test_openmmlab_checkpoint_loads_into_the_whole_model(cifar, tmp_path) -> None:
    state = {k: torch.full_like(v, 0.25) if v.is_floating_point() else v
             for k, v in cifar.module.state_dict().items()}  # fmt: skip
    path = tmp_path / "epoch_200.pth"
    meta = {"epoch": 200, "dataset_meta": {"classes": ["airplane"]}, "mmengine": "0.10.7"}
    torch.save({"meta": meta, "state_dict": state, "message_hub": {}}, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handle = load_model(CIFAR, checkpoint=path)
    # every key matched: no warning about missing or unexpected keys
    assert [str(w.message) for w in caught if "checkpoint" in str(w.message)] == []
    assert handle.weights == "checkpoint"
    assert handle.checkpoint == str(path)
    assert torch.equal(handle.module.backbone.conv1.weight, state["backbone.conv1.weight"])


def test_in_chans_builds_the_backbone_for_it() -> None:
    handle = load_model(CIFAR, in_chans=1)
    assert handle.module.backbone.conv1.in_channels == 1
    assert (handle.preprocess.channels, handle.preprocess.source["channels"]) == (
        1,
        "user override",
    )
    assert handle.preprocess.mean == pytest.approx(((125.307 + 122.961 + 113.8575) / 765,))


def test_self_supervised_model_has_its_backbone() -> None:
    handle = load_model("mmpretrain:mae_vit-base-p16_8xb512-amp-coslr-300e_in1k")
    assert set(handle.aliases) == {"backbone"}
    assert (handle.num_prefix_tokens, handle.patch_grid) == (1, (14, 14))
    pre = handle.preprocess
    assert (pre.input_size, pre.crop_pct, pre.source["input_size"]) == (
        (224, 224), 0.875, "model (backbone.img_size)"
    )  # fmt: skip
    with capture(handle, ["backbone"]) as tap:
        out = tap.run(torch.randn(1, 3, 224, 224))
    assert [tuple(t.shape) for t in out["backbone"]] == [(1, 197, 768)]


def test_unknown_name_and_missing_config(tmp_path) -> None:
    with pytest.raises(
        ModelSpecError,
        match=r"no model 'resnet18_8xb16_cifar'; did you mean mmpretrain:resnet18_8xb16_cifar10",
    ):
        load_model("mmpretrain:resnet18_8xb16_cifar")
    with pytest.raises(ModelSpecError, match=r"config file .*absent\.py' does not exist"):
        load_model(f"mmpretrain:{tmp_path / 'absent.py'}")
    broken = tmp_path / "broken.py"
    broken.write_text("model = dict(type='NoSuchClassifier')\n")
    with pytest.raises(ModelSpecError, match=r"mmpretrain cannot build the model \(KeyError"):
        load_model(f"mmpretrain:{broken}")


def test_built_without_network_and_pretrained_offline_names_the_cache(
    tmp_path, monkeypatch
) -> None:
    attempts: list[object] = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: network access to {address!r} is not allowed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    handle = load_model("mmpretrain:resnet50_8xb16_cifar10")
    assert handle.module.backbone.depth == 50
    with pytest.raises(ModelSpecError) as info:
        load_model(CIFAR, pretrained=True)
    assert str(info.value).startswith(
        f"model spec {CIFAR!r}: its pretrained weights are not in the cache "
        f"{tmp_path / 'hub' / 'checkpoints'} and cannot be fetched (HF_HUB_OFFLINE is set"
    )
    assert attempts == []


def test_pretrained_from_the_torch_cache(cifar, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    url = cifar.module._metainfo.weights
    cached = tmp_path / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    state = {k: torch.zeros_like(v) for k, v in cifar.module.state_dict().items()}
    torch.save({"meta": {"epoch": 1}, "state_dict": state}, cached)
    handle = load_model(CIFAR, pretrained=True)
    assert (handle.weights, handle.checkpoint) == ("pretrained", str(cached))
    assert np.count_nonzero(handle.module.head.fc.weight.detach().numpy()) == 0


@pytest.mark.parametrize(
    ("preprocessor", "dataset", "order"),
    [
        ({"to_rgb": True}, "ImageNet", "RGB"),
        ({"to_rgb": False}, "CustomDataset", "BGR"),
        ({"bgr_to_rgb": False}, "ImageNet", "BGR"),
        ({"to_rgb": False}, "CIFAR100", "RGB"),
        ({}, "CustomDataset", "RGB"),
    ],
)
def test_channel_order_follows_to_rgb_and_the_dataset(preprocessor, dataset, order) -> None:
    from featscope.models.mmpretrain_adapter import mmpretrain_preprocessing

    config = {"dataset_type": dataset, "data_preprocessor": {"mean": [1, 2, 3], **preprocessor}}
    pre = mmpretrain_preprocessing(config)
    assert pre.channel_order == order
    assert pre.describe()["channel_order"] == order
    assert pre.source["channel_order"] != "given with the model"
