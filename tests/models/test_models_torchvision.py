from __future__ import annotations

import pytest
import torch
from torch import nn

from featscope.errors import ModelSpecError
from featscope.models import PointRef, load_model
from featscope.models.generic import resolve_generic


def _resolve(module: nn.Module, ref: PointRef) -> nn.Module:
    return module.get_submodule(ref.module)


def test_tv_resnet18_aliases_and_preprocessing() -> None:
    handle = load_model("tv:resnet18")
    assert handle.family == "torchvision"
    assert handle.aliases == {
        "backbone": PointRef("avgpool", io="input"),
        "neck": PointRef("avgpool"),
        "pre_logits": PointRef("fc", io="input"),
        "logits": PointRef(""),
    }
    for ref in handle.aliases.values():
        _resolve(handle.module, ref)
    assert handle.preprocess.input_size == (224, 224)
    assert handle.preprocess.crop_pct == pytest.approx(224 / 256)
    assert handle.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))
    assert handle.preprocess.interpolation == "bilinear"


def test_tv_preprocessing_from_weights_metadata() -> None:
    handle = load_model("tv:regnet_y_400mf")
    # its V2 weights are evaluated at resize 232 / crop 224
    assert handle.preprocess.crop_pct == pytest.approx(224 / 232)


def test_tv_detection_and_segmentation_preprocessing_and_no_download() -> None:
    from featscope.models.torchvision_adapter import torchvision_preprocessing

    # detectors resize and normalise inside the model: featscope only scales to [0, 1]
    detection = torchvision_preprocessing("fasterrcnn_resnet50_fpn")
    assert detection.mean == (0.0, 0.0, 0.0)
    assert detection.std == (1.0, 1.0, 1.0)
    # segmentation weights normalise with ImageNet statistics at their resize size
    segmentation = torchvision_preprocessing("deeplabv3_resnet50")
    assert segmentation.mean == pytest.approx((0.485, 0.456, 0.406))
    assert segmentation.input_size == (520, 520)
    assert segmentation.crop_pct == 1.0
    # weights_backbone=None: building it must not try to download ImageNet weights
    handle = load_model("tv:deeplabv3_resnet50")
    assert handle.family == "torchvision"


def test_tv_mobilenet_features_and_classifier() -> None:
    handle = load_model("tv:mobilenet_v3_small")
    assert handle.aliases["backbone"] == PointRef("features")
    assert handle.aliases["pre_logits"] == PointRef("classifier.3", io="input")
    assert isinstance(_resolve(handle.module, handle.aliases["pre_logits"]), nn.Linear)


def test_tv_vit_encoder_tokens() -> None:
    from torchvision.models import VisionTransformer

    # a tiny ViT of torchvision's class: the resolver reads structure, not the name
    model = VisionTransformer(
        image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    layout = resolve_generic(model)
    assert layout.aliases["backbone"] == PointRef("encoder")
    assert layout.aliases["pre_logits"] == PointRef("heads.head", io="input")
    assert layout.num_prefix_tokens == 1
    assert layout.patch_grid == (4, 4)
    seen = {}

    def keep(module, inputs, output) -> None:
        seen["tokens"] = output

    model.encoder.register_forward_hook(keep)
    model(torch.randn(1, 3, 32, 32))
    assert seen["tokens"].shape == (1, 1 + 16, 16)


def test_openmmlab_style_module() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = nn.Linear(8, 8)
            self.fc = nn.Linear(8, 3)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 8))
            self.neck = nn.AdaptiveAvgPool2d(1)
            self.head = Head()

    layout = resolve_generic(Classifier())
    assert layout.aliases == {
        "backbone": PointRef("backbone"),
        "neck": PointRef("neck"),
        "pre_logits": PointRef("head.fc", io="input"),
        "logits": PointRef(""),
    }


def test_module_without_classifier_has_only_logits() -> None:
    layout = resolve_generic(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    assert layout.aliases == {"logits": PointRef("")}


def test_unknown_tv_model() -> None:
    with pytest.raises(ModelSpecError, match=r"torchvision has no model 'resnet19'.*tv:resnet18"):
        load_model("tv:resnet19")
