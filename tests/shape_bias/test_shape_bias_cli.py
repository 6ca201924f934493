"""``featscope shape-bias`` (evaluation) and ``featscope shape-bias plot`` in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from featscope.cli import main

STIMULI = Path("/work/shared/data/cue-conflict")
CSV_DIR = Path("/work/shared/data/model-vs-human-cue-conflict")

FACTORY = '''
import torch
from torch import nn


class Texture(nn.Module):
    """1000 logits; always ImageNet class 671 (mountain bike = "bicycle")."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1000)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.bias[671] = 3.0

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def build():
    return Texture()


def build_ten():
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
'''


@pytest.fixture
def stimuli(tmp_path, monkeypatch):
    root = tmp_path / "cc"
    for name in ("airplane/airplane1-bicycle2.png", "bicycle/bicycle1-airplane2.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STIMULI / name, root / name)
    (tmp_path / "sb_cli_factory.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return root


def test_cli_evaluates_a_model(stimuli, tmp_path, capsys):
    status = main(
        [
            "shape-bias",
            "--model",
            "py:sb_cli_factory:build",
            "--data",
            str(stimuli),
            "--model-name",
            "my-model",
            "--work-dir",
            str(tmp_path / "runs"),
            "--format",
            "png",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    # airplane1-bicycle2 -> bicycle = texture; bicycle1-airplane2 -> bicycle = shape
    assert "my-model" in out
    assert "50.0 %" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    csv_text = (run_dir / "cue-conflict_my-model_session-1.csv").read_text()
    assert (
        csv_text.splitlines()[1] == "my-model,1,1,NaN,bicycle,airplane,NaN,airplane1-bicycle2.png"
    )
    assert json.loads((run_dir / "shape_bias.json").read_text())["my-model"]["shape_bias"] == 0.5
    assert (run_dir / "shape_bias.png").exists()
    assert not (run_dir / "shape_bias.pdf").exists()


def test_cli_out_copies_the_decision_csv(stimuli, tmp_path, capsys):
    args = ["shape-bias", "--model", "py:sb_cli_factory:build", "--data", str(stimuli)]
    args += ["--work-dir", str(tmp_path / "runs"), "--format", "png", "--quiet"]
    assert main([*args, "-o", str(tmp_path / "mine.csv")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    written = run_dir / "cue-conflict_build_session-1.csv"
    assert (tmp_path / "mine.csv").read_bytes() == written.read_bytes()
    folder = tmp_path / "model-vs-human"
    folder.mkdir()
    assert main([*args, "--out", str(folder)]) == 0  # a folder: the csv under its own name
    assert [p.name for p in folder.iterdir()] == ["cue-conflict_build_session-1.csv"]
    assert f"copied to {folder / written.name}" in capsys.readouterr().out


def test_cli_help_has_the_shared_groups(capsys):
    with pytest.raises(SystemExit):
        main(["shape-bias", "--help"])
    out = capsys.readouterr().out
    for flag in ("--input-size", "--device", "--batch-size", "--skip-bad-images", "--quiet"):
        assert flag in out
    assert "--out PATH, -o PATH, --out-dir PATH" in out
    assert "images per forward pass (default: 32)" in out  # shape bias's own default
    assert "perplexity" not in out


def test_cli_plot_from_csvs(tmp_path, capsys):
    out_dir = tmp_path / "figs"
    status = main(
        [
            "shape-bias",
            "plot",
            "--csv-dir",
            str(CSV_DIR),
            "--models",
            "resnet50",
            "vit_b_16",
            "--colors",
            "tab:blue",
            "255,128,0",
            "--markers",
            "o",
            "s",
            "--out-dir",
            str(out_dir),
            "--work-dir",
            str(tmp_path / "runs"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:4]}
    assert "95.9 %" in lines["humans"]
    assert "21.4 %" in lines["resnet50"]
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "shape_bias.json",
        "shape_bias.pdf",
        "shape_bias.png",
    ]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "manifest.json").is_file()
    assert f"results written to {run_dir}/" in out
    assert f"copied to {out_dir / 'shape_bias.json'}" in out


def test_cli_errors(stimuli, tmp_path, capsys):
    assert main(["shape-bias", "plot", "--out-dir", str(tmp_path)]) == 2
    assert "needs --csv-dir" in capsys.readouterr().err
    assert main(["shape-bias", "plot", "--csv-dir", str(CSV_DIR), "--model", "tv:resnet18"]) == 2
    assert "--model evaluate a model" in capsys.readouterr().err
    assert main(["shape-bias", "plot", "--csv-dir", str(CSV_DIR), "--skip-bad-images"]) == 2
    assert "--skip-bad-images evaluate a model" in capsys.readouterr().err
    assert main(["shape-bias", "plot", "--csv-dir", str(CSV_DIR), "--input-size", "300"]) == 2
    assert "--input-size evaluate a model" in capsys.readouterr().err
    assert main(["shape-bias", "--csv-dir", str(CSV_DIR)]) == 2
    assert "add `plot`" in capsys.readouterr().err
    args = ["shape-bias", "--model", "py:sb_cli_factory:build_ten", "--data", str(stimuli)]
    assert main([*args, "--work-dir", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the model outputs 10 classes")
    assert "--mapping" in err
    assert not (tmp_path / "runs").exists() or not any(
        p.name.startswith("shape_bias") for p in (tmp_path / "runs").iterdir()
    )


def test_cli_unreadable_stimulus(stimuli, tmp_path, capsys):
    (stimuli / "bicycle" / "bicycle1-airplane2.png").write_bytes(b"not a png")
    args = ["shape-bias", "--model", "py:sb_cli_factory:build", "--data", str(stimuli)]
    args += ["--work-dir", str(tmp_path / "runs"), "--format", "png", "--quiet"]
    assert main(args) == 2
    assert "error: cannot read image" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert main([*args, "--skip-bad-images"]) == 0
    assert "warning: skipped 1 unreadable image" in capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = (run_dir / "cue-conflict_build_session-1.csv").read_text().splitlines()
    assert rows[1:] == ["build,1,1,NaN,bicycle,airplane,NaN,airplane1-bicycle2.png"]
