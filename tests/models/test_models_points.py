"""The capture-point contract: what each point gives, known before any image is read."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from featscope.errors import CaptureError
from featscope.models import load_model
from featscope.models.handle import ModelHandle, PointInfo, PointRef, Preprocessing
from featscope.models.points import dry_run, feature_info, token_grid


def _forward_count(module: nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_timm_cnn_reads_feature_info_without_a_forward_pass() -> None:
    handle = load_model("timm:test_resnet")  # 160 x 160 input
    calls = _forward_count(handle.module.conv1)
    info = handle.point_info("layer2")
    assert calls == [0]  # channels and stride come from timm's feature_info
    assert info == PointInfo(
        "layer2",
        "NCHW",
        (48, 20, 20),
        channels=48,
        stride=8,
        grid=(20, 20),
        source="feature_info",
        input_size=(160, 160),
    )
    assert info.is_map
    assert list(feature_info(handle)) == ["act1", "layer1", "layer2", "layer3", "layer4"]


def test_timm_cnn_dry_run_agrees_with_feature_info_and_covers_the_rest() -> None:
    handle = load_model("timm:test_resnet")
    calls = _forward_count(handle.module.conv1)  # timm's forward calls forward_features
    table = dry_run(handle)
    assert calls == [1]  # one forward pass for every point
    dry_run(handle)
    assert calls == [1]  # cached on the handle
    for name, listed in feature_info(handle).items():
        measured = table[name]
        assert (measured.layout, measured.shape, measured.stride) == (
            listed.layout,
            listed.shape,
            listed.stride,
        )
        assert measured.source == "dry_run"
    backbone = handle.point_info("backbone")  # forward_features: an alias, not a module
    assert (backbone.layout, backbone.shape, backbone.stride) == ("NCHW", (96, 5, 5), 32)
    assert handle.point_info("pre_logits").layout == "NC"
    assert handle.point_info("pre_logits").channels == 96
    assert handle.point_info("logits").shape == (1000,)
    # a new input size is a new handle: the cache does not travel with dataclasses.replace
    bigger = dataclasses.replace(
        handle, preprocess=dataclasses.replace(handle.preprocess, input_size=(224, 224))
    )
    assert bigger.point_info("layer4").shape == (96, 7, 7)


def test_demo_cnn_by_dry_run_with_tuple_elements() -> None:
    handle = load_model("demo:digits-cnn")
    infos = {info.name: info for info in handle.points()}
    assert list(infos)[:4] == ["backbone", "neck", "pre_logits", "logits"]
    assert len(infos) == len(set(handle.point_names()))  # backbone, neck: alias and module
    assert infos["backbone"].describe() == "NCHW (128, 4, 4) stride 8"
    assert infos["backbone.0"].grid == (16, 16)
    assert all(info.source == "dry_run" for info in infos.values())


class _Levels(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, object]:
        return {"p3": x, "p4": nn.functional.avg_pool2d(x, 2), "none": None}


class _Pyramid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.neck = _Levels()
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.stem(x))["p4"].mean(dim=(2, 3))


def _pyramid_handle() -> ModelHandle:
    pre = Preprocessing(input_size=(16, 24))
    return ModelHandle(_Pyramid(), "pyramid", "factory", pre, aliases={"neck": PointRef("neck")})


def test_dict_outputs_list_their_elements_and_unused_modules_say_so() -> None:
    handle = _pyramid_handle()
    neck = handle.point_info("neck")
    assert neck.layout == "multi"
    assert list(neck.elements) == ["neck.p3", "neck.p4"]  # None values are not outputs
    assert neck.describe() == "2 outputs: neck.p3, neck.p4"
    assert handle.point_info("neck.p4").shape == (4, 4, 6)
    assert handle.point_info("neck.p4").stride == 4
    assert neck.element("neck.p3") is neck.elements["neck.p3"]
    assert handle.point_info("unused").layout == "none"
    assert handle.point_info("unused").describe() == "did not run"
    assert handle.point_info("").layout == "NC"  # the model itself


def test_unknown_point_and_a_model_that_fails_on_its_input_size() -> None:
    handle = _pyramid_handle()
    with pytest.raises(CaptureError, match=r"'nope' is not a capture point of pyramid"):
        handle.point_info("nope")

    class Fixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[-1] == 32, f"Input width ({x.shape[-1]}) doesn't match model (32)."
            return x

    fixed = ModelHandle(Fixed(), "fixed", "factory", aliases={"logits": PointRef("")})
    with pytest.raises(
        CaptureError, match=r"failed on the input \(1, 3, 224, 224\) .*\(32\).*--input-size"
    ):
        fixed.point_info("logits")


def test_timm_vit_token_grid_and_prefix_tokens() -> None:
    import timm

    from featscope.models.timm_adapter import build_timm_handle

    model = timm.create_model(
        "vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=8, depth=2, num_heads=1
    )
    handle = build_timm_handle(model, "vit")
    handle = dataclasses.replace(
        handle, preprocess=dataclasses.replace(handle.preprocess, input_size=(32, 32))
    )
    block = handle.point_info("blocks.1")  # from feature_info: no forward pass
    assert (block.source, block.layout, block.shape) == ("feature_info", "NLC", (17, 8))
    assert (block.grid, block.num_prefix_tokens, block.stride) == ((4, 4), 1, 8)
    assert "grid 4x4, 1 prefix" in block.describe()
    backbone = handle.point_info("backbone")  # forward_features, by the dry run
    assert (backbone.layout, backbone.grid, backbone.num_prefix_tokens) == ("NLC", (4, 4), 1)
    assert handle.point_info("blocks.1.attn.qkv").channels == 24
    # patch_embed's tokens have no class token in front
    embed = handle.point_info("patch_embed")
    assert (embed.layout, embed.grid, embed.num_prefix_tokens) == ("NLC", (4, 4), 0)


def test_torchvision_resnet_aliases_and_stages() -> None:
    handle = load_model("tv:resnet18")
    infos = {info.name: info for info in handle.points()}
    assert infos["layer1"].describe() == "NCHW (64, 56, 56) stride 4"
    assert infos["layer4"].describe() == "NCHW (512, 7, 7) stride 32"
    assert infos["backbone"].shape == (512, 7, 7)  # the input of avgpool
    assert infos["pre_logits"].describe() == "NC (512,)"  # the input of fc
    assert infos["logits"].channels == 1000
    assert not feature_info(handle)  # torchvision has no feature_info: all by the dry run


def test_torchvision_vit_class_token() -> None:
    from torchvision.models import VisionTransformer

    from featscope.models.generic import resolve_generic

    module = VisionTransformer(
        image_size=32, patch_size=8, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8
    )
    layout = resolve_generic(module)
    handle = ModelHandle(
        module,
        "tv-vit",
        "torchvision",
        Preprocessing(input_size=(32, 32)),
        aliases=layout.aliases,
        num_prefix_tokens=layout.num_prefix_tokens,
        patch_grid=layout.patch_grid,
    )
    info = handle.point_info("backbone")
    assert (info.layout, info.shape, info.grid, info.num_prefix_tokens) == (
        "NLC",
        (17, 8),
        (4, 4),
        1,
    )
    assert handle.point_info("conv_proj").describe() == "NCHW (8, 4, 4) stride 8"


def test_dry_run_restores_training_flags_and_removes_hooks() -> None:
    handle = _pyramid_handle()
    handle.module.train()
    handle.module.stem.eval()
    dry_run(handle)
    assert handle.module.training
    assert not handle.module.stem.training
    assert not handle.module._forward_hooks
    assert not handle.module.stem._forward_hooks


@pytest.mark.parametrize(
    ("length", "prefix", "grid", "expected"),
    [
        (17, 1, (4, 4), ((4, 4), 1)),  # class token dropped
        (16, 1, (4, 4), ((4, 4), 0)),  # patch_embed: no class token
        (4, 0, (4, 4), ((2, 2), 0)),  # a later Swin stage: the grid halved
        (10, 1, None, ((3, 3), 1)),  # square after the prefix
        (7, 1, None, None),
    ],
)
def test_token_grid_rules(length, prefix, grid, expected) -> None:
    assert token_grid(length, prefix, grid) == expected


def test_point_info_checks_its_layout() -> None:
    with pytest.raises(ValueError, match="layout 'NCWH' is not one of"):
        PointInfo("x", "NCWH")
