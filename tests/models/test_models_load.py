from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from featscope.errors import ParameterError
from featscope.models import ModelHandle, PointRef, Preprocessing, load_model


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"input_size": 96}, {"input_size": (96, 96)}),
        ({"input_size": (64, 80)}, {"input_size": (64, 80)}),
        ({"mean": 0.5, "std": [0.25]}, {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}),
        (
            {"mean": (0.1, 0.2, 0.3), "std": (1.0, 2.0, 3.0)},
            {"mean": (0.1, 0.2, 0.3), "std": (1.0, 2.0, 3.0)},
        ),
    ],
)
def test_preprocessing_overrides(kwargs: dict, expected: dict) -> None:
    handle = load_model(nn.Linear(2, 2), **kwargs)
    default = Preprocessing()
    for field in ("input_size", "mean", "std"):
        assert getattr(handle.preprocess, field) == expected.get(field, getattr(default, field))
    assert handle.preprocess.crop_pct == default.crop_pct


def test_overrides_do_not_mutate_given_handle() -> None:
    handle = ModelHandle(module=nn.Linear(2, 2), spec="mine", family="factory")
    changed = load_model(handle, input_size=32)
    assert changed.preprocess.input_size == (32, 32)
    assert handle.preprocess.input_size == (224, 224)


def test_input_size_on_fixed_vit_warns() -> None:
    handle = ModelHandle(module=nn.Linear(2, 2), spec="vit", family="hf", patch_grid=(14, 14))
    with pytest.warns(UserWarning, match=r"`input_size` \(96, 96\).*cannot resize"):
        load_model(handle, input_size=96)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 0}, "`input_size` must be positive"),
        ({"input_size": (1, 2, 3)}, r"`input_size` must be an int or \(height, width\)"),
        ({"input_size": "224"}, "`input_size` must be an int"),
        ({"mean": (0.1, 0.2)}, "`mean` must be one float or three"),
        ({"std": (0.1, 0.0, 0.2)}, "`std` must be positive"),
        ({"device": "gpu0"}, "`device` 'gpu0' is not a torch device"),
    ],
)
def test_invalid_overrides(kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        load_model(nn.Linear(2, 2), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_unavailable_is_a_parameter_error() -> None:
    with pytest.raises(
        ParameterError, match="no CUDA device is available on this machine; pass --device cpu"
    ):
        load_model(nn.Linear(2, 2), device="cuda")


def test_train_flag_left_alone_and_device_applied() -> None:
    module = nn.Linear(2, 2).train()
    handle = load_model(module, device="cpu")
    assert handle.module.training is True
    assert handle.module.weight.device.type == "cpu"
    eval_module = nn.Linear(2, 2).eval()
    assert load_model(eval_module).module.training is False


def test_checkpoint_recorded_on_handle(tmp_path) -> None:
    torch.manual_seed(3)
    source = nn.Linear(2, 2)
    path = tmp_path / "w.pt"
    torch.save({"model": source.state_dict()}, path)
    handle = load_model(nn.Linear(2, 2), checkpoint=path)
    assert handle.checkpoint == str(path)
    assert len(handle.checkpoint_sha256) == 64
    assert torch.equal(handle.module.weight, source.weight)


def test_demo_spec_dispatches_to_load_demo(monkeypatch) -> None:
    calls = []

    def load_demo(name: str) -> ModelHandle:
        calls.append(name)
        return ModelHandle(
            module=nn.Linear(2, 2),
            spec=f"demo:{name}",
            family="demo",
            aliases={"logits": PointRef("")},
        )

    fake = types.ModuleType("featscope.models.demo")
    fake.load_demo = load_demo
    monkeypatch.setitem(sys.modules, "featscope.models.demo", fake)
    handle = load_model("demo:tiny", mean=0.5)
    assert calls == ["tiny"]
    assert handle.family == "demo"
    assert handle.preprocess.mean == (0.5, 0.5, 0.5)


@pytest.mark.gpu
def test_load_model_moves_to_cuda_and_checks_index() -> None:
    handle = load_model(nn.Linear(2, 2), device="cuda")
    assert handle.module.weight.device.type == "cuda"
    count = torch.cuda.device_count()
    with pytest.raises(ParameterError, match=f"`device` 'cuda:{count}' is out of range"):
        load_model(nn.Linear(2, 2), device=f"cuda:{count}")
