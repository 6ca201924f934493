"""``--pretrained`` on the command line: the zoo's weights through its cache, or one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from featscope.cli import main

models = pytest.importorskip("torchvision.models")


@pytest.fixture
def cached_squeezenet(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """Put "the published weights" of tv:squeezenet1_1 where torch.hub keeps a download."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = models.get_model_weights("squeezenet1_1").DEFAULT.url
    weights = models.squeezenet1_1(weights=None).state_dict()
    cached = tmp_path / "torch" / "hub" / "checkpoints" / Path(url).name
    cached.parent.mkdir(parents=True)
    torch.save(weights, cached)
    return weights


def test_tsne_pretrained_records_the_weights(cached_squeezenet, tmp_path, caplog) -> None:
    work = tmp_path / "work"
    code = main(
        [
            "tsne", "--model", "tv:squeezenet1_1", "--pretrained", "--input-size", "64",
            "--point", "backbone", "--max-num-class", "3", "--max-num-samples", "8",
            "--method", "pca", "--no-html",
            "--work-dir", str(work), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    (run,) = work.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["results"]["backbone"]["provenance"]["weights"] == "pretrained"
    assert manifest["metadata"]["preprocessing"]["input_size"] == [64, 64]
    assert not [r for r in caplog.records if "random weights" in r.getMessage()]


def test_points_lists_the_pretrained_model(cached_squeezenet, capsys) -> None:
    assert main(["points", "--model", "tv:squeezenet1_1", "--pretrained"]) == 0
    assert capsys.readouterr().out.startswith("# tv:squeezenet1_1 (torchvision)")


def test_pretrained_offline_without_cache_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    work = tmp_path / "work"
    args = ["--model", "tv:resnet18", "--pretrained", "--work-dir", str(work)]
    assert main(["tsne", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "model spec 'tv:resnet18': its pretrained weights are not in the cache" in err
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in err
    assert not work.exists()


@pytest.mark.parametrize("command", [["tsne"], ["shape-bias"], ["featmap"]])
def test_pretrained_needs_a_model(command, capsys) -> None:
    assert main([*command, "--pretrained"]) == 2
    err = capsys.readouterr().err
    assert "--pretrained needs a model from a zoo: add --model timm:NAME" in err


def test_pretrained_refused_for_a_model_with_its_own_weights(capsys) -> None:
    assert main(["tsne", "--model", "py:featscope.models.demo:DigitsCNN", "--pretrained"]) == 2
    assert "`pretrained` applies to timm:, tv:, hf: and mmpretrain:" in capsys.readouterr().err
