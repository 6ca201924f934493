from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from featscope.errors import ModelSpecError
from featscope.models import PointRef, Preprocessing, load_model
from featscope.models.torchscript_adapter import HOOKS_SUPPORTED


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


class TwoOutputs(Tiny):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.conv(x).mean((2, 3))
        return pooled, self.fc(pooled)


def _save(module: nn.Module, path, *, script: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in torch 2.9+
        example = torch.randn(1, 3, 8, 8)
        compiled = torch.jit.script(module) if script else torch.jit.trace(module, example)
        compiled.save(str(path))


@pytest.mark.parametrize("script", [True, False])
def test_torchscript_loads_and_exposes_logits(tmp_path, script: bool) -> None:
    torch.manual_seed(0)
    model = Tiny().eval()
    path = tmp_path / "tiny.pt"
    _save(model, path, script=script)
    handle = load_model(f"ts:{path}")
    assert handle.family == "torchscript"
    assert handle.aliases == {"logits": PointRef(None)}
    assert handle.preprocess == Preprocessing()
    x = torch.randn(2, 3, 8, 8)
    out, extras = handle.forward(handle.module, x)
    assert torch.allclose(out, model(x), atol=1e-6)
    assert extras["logits"] is out


def test_torchscript_tuple_output_is_the_logits_extra(tmp_path) -> None:
    path = tmp_path / "two.pt"
    _save(TwoOutputs(), path, script=True)
    handle = load_model(f"ts:{path}")
    _, extras = handle.forward(handle.module, torch.randn(1, 3, 8, 8))
    assert isinstance(extras["logits"], tuple)
    assert [t.shape for t in extras["logits"]] == [(1, 4), (1, 2)]


def test_hooks_do_not_fire_on_loaded_scriptmodules(tmp_path) -> None:
    # what the adapter's docstring records; if torch starts supporting this, revisit the adapter
    path = tmp_path / "tiny.pt"
    _save(Tiny(), path, script=True)
    handle = load_model(f"ts:{path}")
    assert not HOOKS_SUPPORTED
    with pytest.raises(RuntimeError, match="not supported on ScriptModules"):
        handle.module.get_submodule("conv").register_forward_hook(lambda *a: None)


def test_torchscript_checkpoint_loads(tmp_path) -> None:
    path = tmp_path / "tiny.pt"
    _save(Tiny(), path, script=True)
    torch.manual_seed(5)
    weights = Tiny().state_dict()
    ckpt = tmp_path / "weights.pth"
    torch.save({"state_dict": weights}, ckpt)
    handle = load_model(f"ts:{path}", checkpoint=ckpt)
    assert torch.equal(handle.module.fc.weight, weights["fc.weight"])
    assert handle.checkpoint == str(ckpt)


def test_state_dict_given_as_torchscript(tmp_path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(Tiny().state_dict(), path)
    with pytest.raises(ModelSpecError, match=r"not a TorchScript archive.*checkpoint"):
        load_model(f"ts:{path}")


def test_missing_torchscript_file(tmp_path) -> None:
    with pytest.raises(ModelSpecError, match="does not exist"):
        load_model(f"ts:{tmp_path / 'absent.pt'}")
