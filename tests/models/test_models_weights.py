"""What weights a model holds (handle.weights), the random-weights warning, pretrained offline."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from featscope.errors import ModelSpecError, ParameterError
from featscope.models import ModelHandle, load_model, weights_of

SRC = str(Path(__file__).resolve().parents[2] / "src")
RANDOM = "has random weights: no --checkpoint and no --pretrained; its features show an untrained"


def random_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "random weights" in r.getMessage()]


def test_model_built_by_name_is_random_and_warned_once(caplog) -> None:
    pytest.importorskip("timm")
    with caplog.at_level(logging.INFO, logger="featscope.models"):
        handle = load_model("timm:test_resnet")
    assert handle.weights == weights_of(handle) == "random"
    assert random_warnings(caplog) == [f"timm:test_resnet {RANDOM} network"]
    assert [r.levelname for r in caplog.records if "random" in r.getMessage()] == ["WARNING"]


def test_checkpoint_shipped_and_given_weights_are_not_warned(tmp_path, caplog) -> None:
    pytest.importorskip("timm")
    path = tmp_path / "w.pth"
    torch.save(load_model("timm:test_resnet").module.state_dict(), path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="featscope.models"):
        assert load_model("timm:test_resnet", checkpoint=path).weights == "checkpoint"
        assert load_model("demo:digits").weights == "shipped"
        assert load_model(nn.Linear(2, 2)).weights == "given"
        assert load_model(lambda: nn.Linear(2, 2)).weights == "given"
    assert random_warnings(caplog) == []
    handle = ModelHandle(module=nn.Linear(2, 2), spec="mine", family="factory")
    assert load_model(handle) is handle
    assert weights_of(handle) == "given"


def test_hf_directory_brings_its_weights(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=16, patch_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16,
    )  # fmt: skip
    transformers.ViTModel(config).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="no image-processor config"):
        assert load_model(f"hf:{tmp_path}").weights == "given"


@pytest.mark.parametrize("spec", ["py:featscope.models.demo:DigitsCNN", "ts:absent.pt"])
def test_pretrained_refused_where_the_model_brings_its_weights(spec: str) -> None:
    with pytest.raises(
        ParameterError, match=r"`pretrained` applies to timm:, tv:, hf: and mmpretrain:"
    ):
        load_model(spec, pretrained=True)
    with pytest.raises(ParameterError, match="`pretrained` applies to"):
        load_model(nn.Linear(2, 2), pretrained=True)


def test_torchvision_pretrained_offline_names_model_and_cache(tmp_path, monkeypatch) -> None:
    pytest.importorskip("torchvision")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    with pytest.raises(ModelSpecError) as info:
        load_model("tv:resnet18", pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        f"model spec 'tv:resnet18': its pretrained weights are not in the cache {cache} and "
        "cannot be fetched (HF_HUB_OFFLINE is set, so nothing is downloaded)"
    )


def test_torchvision_pretrained_from_the_cache(tmp_path, monkeypatch) -> None:
    models = pytest.importorskip("torchvision.models")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # put "the published weights" where torch.hub keeps them, as a download would
    url = models.get_model_weights("squeezenet1_1").DEFAULT.url
    weights = models.squeezenet1_1(weights=None).state_dict()
    weights = {
        k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in weights.items()
    }
    cached = tmp_path / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    torch.save(weights, cached)
    handle = load_model("tv:squeezenet1_1", pretrained=True)
    assert handle.weights == "pretrained"
    assert torch.equal(handle.module.features[0].weight, weights["features.0.weight"])


def test_timm_and_hf_pretrained_offline_name_model_and_cache(tmp_path) -> None:
    pytest.importorskip("timm")
    pytest.importorskip("transformers")
    script = textwrap.dedent(
        """
        import json
        from featscope.errors import ModelSpecError
        from featscope.models import load_model
        out = {}
        for spec in ("timm:resnet18", "hf:google/vit-base-patch16-224"):
            try:
                load_model(spec, pretrained=True)
            except ModelSpecError as exc:
                out[spec] = str(exc)
        print(json.dumps(out))
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "TORCH_HOME": str(tmp_path / "torch"),
    }
    env.pop("HF_HUB_CACHE", None)
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stderr
    messages = json.loads(run.stdout.strip().splitlines()[-1])
    cache = tmp_path / "hf" / "hub"
    assert messages["timm:resnet18"] == (
        f"model spec 'timm:resnet18': its pretrained weights are not in the cache {cache} and "
        "cannot be fetched (HF_HUB_OFFLINE is set, so nothing is downloaded); download them once "
        "with network access (unset HF_HUB_OFFLINE), or pass a checkpoint file (--checkpoint) "
        "instead of --pretrained"
    )
    hf = messages["hf:google/vit-base-patch16-224"]
    assert "\n" not in hf
    assert hf.startswith("model spec 'hf:google/vit-base-patch16-224': ")
    assert f"not in the Hugging Face cache {cache}" in hf
    assert "HF_HUB_OFFLINE" in hf
