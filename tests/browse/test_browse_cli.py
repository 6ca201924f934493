"""``featscope browse`` on the command line, in-process."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from browse_helpers import class_folder

from featscope.cli import main


@pytest.fixture
def aug_module(tmp_path, monkeypatch):
    """A user module with a torchvision train transform, importable as ``my_browse_aug``."""
    (tmp_path / "my_browse_aug.py").write_text(
        textwrap.dedent(
            """
            from torchvision import transforms as T

            train_transform = T.Compose(
                [T.RandomResizedCrop(24), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)]
            )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_browse_aug", raising=False)
    return "py:my_browse_aug:train_transform"


def test_cli_writes_one_image_per_sample_to_out_dir(tmp_path, aug_module, capsys):
    data = class_folder(tmp_path / "train")
    out = tmp_path / "browse"
    code = main(
        [
            "browse",
            str(data),
            "--transform",
            aug_module,
            "--mode",
            "concat",
            "-n",
            "2",
            "--seed",
            "1",
            "--out-dir",
            str(out),
            "--dpi",
            "40",
            "--work-dir",
            str(tmp_path / "runs"),
        ]
    )
    assert code == 0
    index = json.loads((out / "browse.json").read_text())
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == sorted(f"{s['file']}.png" for s in index["samples"])
    assert len(files) == 2
    assert index["steps"] == ["RandomResizedCrop(24)", "ToTensor", "Normalize(mean=0.5, std=0.5)"]
    assert index["samples"][0]["columns"] == ["original", "transformed"]
    stdout = capsys.readouterr().out
    assert f"2 image(s) from {data} through {aug_module}" in stdout
    assert f"written to {out}/" in stdout
    # the copies come from the finished run folder, which holds the same pictures and index
    (run_dir,) = (tmp_path / "runs").glob("browse_*")
    assert sorted(p.name for p in run_dir.glob("*.png")) == files
    assert json.loads((run_dir / "browse.json").read_text()) == index
    assert f"run folder {run_dir}/" in stdout


def test_cli_timm_spec_in_run_folder(tmp_path, capsys):
    data = class_folder(tmp_path / "train")
    code = main(
        [
            "browse",
            str(data),
            "--transform",
            "timm:resnet18",
            "--phase",
            "eval",
            "-n",
            "0",
            "--work-dir",
            str(tmp_path / "runs"),
            "--dpi",
            "40",
            "--show",
        ]
    )
    assert code == 0
    (run_dir,) = (tmp_path / "runs").glob("browse_*")
    assert sorted(p.name for p in run_dir.glob("*.png")) == [
        "000_cat_a.png",
        "001_cat_b.png",
        "002_dog_a.png",
    ]
    index = json.loads((run_dir / "browse.json").read_text())
    assert index["samples"][0]["columns"][1:] == [
        "Resize(235)",
        "CenterCrop(224)",
        "MaybeToTensor",
        "Normalize(ImageNet)",
    ]
    assert "warning: cannot show the images" in capsys.readouterr().err


def test_cli_data_positional_or_flag(tmp_path, capsys):
    data = class_folder(tmp_path / "train")
    common = ["-m", "original", "-n", "1", "--dpi", "30", "--quiet", "--work-dir"]
    assert main(["browse", "--data", str(data), *common, str(tmp_path / "a")]) == 0
    assert f"1 image(s) from {data} " in capsys.readouterr().out
    assert main(["browse", str(data), *common, str(tmp_path / "b")]) == 0
    assert f"1 image(s) from {data} " in capsys.readouterr().out
    assert main(["browse", *common, str(tmp_path / "c"), "--cfg-options", f"data={data}"]) == 0
    assert f"1 image(s) from {data} " in capsys.readouterr().out


def test_cli_help_shows_the_groups_and_own_examples(capsys):
    with pytest.raises(SystemExit):
        main(["browse", "--help"])
    out = capsys.readouterr().out
    for flag in ("--data", "--mode", "--seed", "--format", "--dpi", "--show", "--work-dir"):
        assert flag in out
    assert "--out PATH, -o PATH, --out-dir PATH" in out
    assert "mode=concat" in out
    assert "perplexity" not in out


def test_cli_user_errors_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["browse", str(tmp_path / "empty"), "--work-dir", str(tmp_path)]) == 2
    assert "error: data folder" in capsys.readouterr().err
    assert main(["browse", "--transform", "hf:x", "--work-dir", str(tmp_path)]) == 2
    assert "hf: models carry no transform" in capsys.readouterr().err
    assert main(["browse", "-n", "-3", "--work-dir", str(tmp_path)]) == 2
    assert "`-n` -3 must be >= 0" in capsys.readouterr().err
    assert not list(tmp_path.glob("browse_*"))


def test_cli_corrupt_image_fails_in_one_line_or_is_skipped(tmp_path, capsys):
    from browse_helpers import class_folder

    data = class_folder(tmp_path / "data")
    (data / "dog" / "zz.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    work = tmp_path / "runs"
    args = ["browse", str(data), "-m", "original", "--dpi", "30", "-o", str(out), "--quiet"]
    args += ["--work-dir", str(work)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read image"), err
    assert "Traceback" not in err
    assert not out.exists()
    assert not work.exists() or list(work.iterdir()) == []
    assert main([*args, "--skip-bad-images"]) == 0
    assert "3 image(s)" in capsys.readouterr().out
    assert len(list(out.glob("*.png"))) == 3
