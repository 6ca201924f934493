from __future__ import annotations

import hashlib
from collections import OrderedDict

import pytest
import torch
from torch import nn

from featscope.errors import CheckpointError
from featscope.models import CheckpointReport, load_checkpoint


class Net(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, classes)


class Backbone(nn.Module):
    """A bare backbone, as loaded from an OpenMMLab classifier checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)


class Unsafe:
    """Pickling this needs code from the file: weights_only must refuse it."""


def _source(seed: int = 1, classes: int = 3) -> OrderedDict:
    torch.manual_seed(seed)
    return Net(classes).state_dict()


def _same(module: nn.Module, state: dict) -> bool:
    own = module.state_dict()
    return all(torch.equal(own[k], state[k]) for k in own)


def test_plain_state_dict_loads_and_reports_hash(tmp_path) -> None:
    state = _source()
    path = tmp_path / "plain.pt"
    torch.save(state, path)
    model = Net()
    report = load_checkpoint(model, path)
    assert isinstance(report, CheckpointReport)
    assert _same(model, state)
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report.missing == ()
    assert report.unexpected == ()
    assert report.prefix_stripped == ""
    assert report.wrapper == ""
    assert report.matched == len(state)


@pytest.mark.parametrize(
    "wrapper", ["state_dict", "model", "module", "state_dict_ema", "model_ema"]
)
def test_dict_wrappers_are_unwrapped(tmp_path, wrapper: str) -> None:
    state = _source()
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: state, "meta": {"epoch": 3}, "optimizer": {"lr": 0.1}}, path)
    model = Net()
    report = load_checkpoint(model, path)
    assert _same(model, state)
    assert report.wrapper == wrapper


@pytest.mark.parametrize(
    "prefix", ["module.", "model.", "_orig_mod.", "module._orig_mod.", "model.module."]
)
def test_key_prefixes_are_stripped(tmp_path, prefix: str) -> None:
    state = _source()
    path = tmp_path / "prefixed.pt"
    torch.save({"state_dict": {prefix + k: v for k, v in state.items()}}, path)
    model = Net()
    report = load_checkpoint(model, path)
    assert _same(model, state)
    assert report.prefix_stripped == prefix
    assert report.wrapper == "state_dict"


def test_wrapper_with_most_matches_wins_over_ema(tmp_path) -> None:
    # "model" matches every key; "state_dict_ema" only the fc layer
    state = _source(seed=1)
    ema = {k: v for k, v in _source(seed=2).items() if k.startswith("fc.")}
    path = tmp_path / "both.pt"
    torch.save({"model": state, "state_dict_ema": ema}, path)
    model = Net()
    report = load_checkpoint(model, path)
    assert report.wrapper == "model"
    assert _same(model, state)


def test_openmmlab_backbone_checkpoint_into_bare_backbone(tmp_path) -> None:
    state = _source()
    openmmlab = {
        ("backbone." + k if not k.startswith("fc.") else "head." + k): v for k, v in state.items()
    }
    openmmlab["neck.gap.dummy"] = torch.zeros(1)
    path = tmp_path / "mm.pth"
    torch.save({"meta": {}, "state_dict": openmmlab}, path)
    model = Backbone()
    with pytest.warns(UserWarning, match=r"OpenMMLab.*head\.fc\.bias") as record:
        report = load_checkpoint(model, path)
    assert "neck.gap.dummy" in str(record[0].message)
    assert report.prefix_stripped == "backbone."
    assert set(report.unexpected) == {"head.fc.weight", "head.fc.bias", "neck.gap.dummy"}
    assert report.missing == ()
    assert torch.equal(model.conv.weight, state["conv.weight"])


def test_openmmlab_checkpoint_into_openmmlab_model_keeps_prefix(tmp_path) -> None:
    class MMModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = Backbone()
            self.head = nn.Linear(4, 3)

    torch.manual_seed(0)
    source = MMModel().state_dict()
    path = tmp_path / "mm_full.pth"
    torch.save({"state_dict": source}, path)
    model = MMModel()
    report = load_checkpoint(model, path)
    assert report.prefix_stripped == ""
    assert _same(model, source)


def test_shape_mismatch_names_key_and_shapes(tmp_path) -> None:
    path = tmp_path / "ten_classes.pt"
    torch.save(_source(classes=10), path)
    with pytest.raises(CheckpointError, match=r"'fc\.weight' has shape \(10, 4\).*shape \(3, 4\)"):
        load_checkpoint(Net(classes=3), path)


def test_no_matching_key_names_expected_and_found(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"encoder.layer.0.weight": torch.zeros(2), "decoder.bias": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match=r"shares no key.*'conv\.weight'.*'decoder\.bias'"):
        load_checkpoint(Net(), path)


def test_missing_and_unexpected_warn_with_names(tmp_path) -> None:
    state = _source()
    del state["fc.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    model = Net()
    with pytest.warns(UserWarning, match=r"1 model key\(s\) missing.*'fc\.bias'.*'extra\.weight'"):
        report = load_checkpoint(model, path)
    assert report.missing == ("fc.bias",)
    assert report.unexpected == ("extra.weight",)
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_many_missing_keys_are_truncated_with_count(tmp_path) -> None:
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(8)])
    state = {k: v for k, v in model.state_dict().items() if k == "0.weight"}
    path = tmp_path / "few.pt"
    torch.save(state, path)
    with pytest.warns(UserWarning, match=r"15 model key\(s\) missing.*\(\+5 more\)"):
        load_checkpoint(model, path)


def test_strict_turns_mismatch_into_error(tmp_path) -> None:
    state = _source()
    del state["fc.bias"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing.*'fc\.bias'.*strict=False"):
        load_checkpoint(Net(), path, strict=True)


def test_unsafe_pickle_is_refused(tmp_path) -> None:
    path = tmp_path / "unsafe.pt"
    torch.save({"state_dict": _source(), "config": Unsafe()}, path)
    with pytest.raises(CheckpointError, match=r"Unsafe.*weights_only=True.*refuses to run code"):
        load_checkpoint(Net(), path)


def test_missing_file_and_garbage_file(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(Net(), tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"not a readable torch\.save file"):
        load_checkpoint(Net(), garbage)


def test_checkpoint_without_tensors(tmp_path) -> None:
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(CheckpointError, match=r"holds no tensors.*'epoch'"):
        load_checkpoint(Net(), path)


def test_safetensors_file(tmp_path) -> None:
    from safetensors.torch import save_file

    state = {"module." + k: v.contiguous() for k, v in _source().items()}
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    model = Net()
    report = load_checkpoint(model, path)
    assert report.prefix_stripped == "module."
    assert torch.equal(model.fc.weight, state["module.fc.weight"])
