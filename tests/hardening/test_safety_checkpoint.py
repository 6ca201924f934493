"""A checkpoint whose unpickling would run code is refused unless the user trusts it.

The malicious files are real: their pickles call ``exec`` to write a marker file, so a test can
see whether code from the file ran.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
import torch

from featscope.cli import main
from featscope.errors import CheckpointError
from featscope.models import load_model
from featscope.models.checkpoint import checkpoints_trusted, trusted_checkpoints

CUE_CONFLICT = Path("/work/shared/data/cue-conflict")
TSNE = ["tsne", "--method", "pca", "--max-num-samples", "3", "--no-html", "--quiet"]


class _Payload:
    """Unpickling this runs ``exec``: it writes ``marker``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code from the checkpoint ran')",))


def _evil_checkpoint(tmp_path, *, weights: bool = True):
    """A torch.save file with the demo model's weights and a payload; returns (file, marker)."""
    marker = tmp_path / "PWNED"
    state = dict(load_model("demo:digits-cnn").module.state_dict()) if weights else {}
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": state, "meta": _Payload(marker)}, path)
    return path, marker


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    return line


def test_malicious_checkpoint_is_refused_and_its_code_never_runs(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_model("demo:digits-cnn", checkpoint=path)
    message = str(info.value)
    assert "\n" not in message
    assert "contains the Python global exec" in message
    assert "weights_only=True" in message
    assert "--trust-checkpoint" in message
    assert "runs the file's code" in message
    assert not marker.exists()


def test_plain_pickle_with_a_payload_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match=r"global exec.*--trust-checkpoint"):
        load_model("demo:digits-cnn", checkpoint=path)
    assert not marker.exists()


def test_trusted_checkpoints_context_loads_it_after_a_warning(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    assert not checkpoints_trusted()
    with trusted_checkpoints():
        assert checkpoints_trusted()
        with pytest.warns(UserWarning, match="runs code from the file"):
            handle = load_model("demo:digits-cnn", checkpoint=path)
    assert marker.read_text() == "code from the checkpoint ran"
    assert handle.checkpoint is not None
    assert not checkpoints_trusted()  # the switch ends with the block
    marker.unlink()
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_model("demo:digits-cnn", checkpoint=path)
    assert not marker.exists()


def test_trusted_context_still_reads_safe_files_safely(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(load_model("demo:digits-cnn").module.state_dict(), path)
    with trusted_checkpoints(), warnings.catch_warnings():
        warnings.simplefilter("error")  # no "runs code" warning for a plain state dict
        load_model("demo:digits-cnn", checkpoint=path)


def test_cli_refuses_without_the_flag_and_loads_with_it(tmp_path, capsys):
    path, marker = _evil_checkpoint(tmp_path)
    work = tmp_path / "work"
    args = [*TSNE, "--model", "demo:digits-cnn", "--checkpoint", str(path), "--work-dir", str(work)]
    assert main(args) == 2
    line = _error_line(capsys)
    assert "--trust-checkpoint" in line
    assert not marker.exists()
    assert not work.exists() or list(work.iterdir()) == []

    assert main([*args, "--trust-checkpoint"]) == 0
    err = capsys.readouterr().err
    assert "warning: checkpoint" in err
    assert "runs code from the file" in err
    assert marker.exists()
    assert len(list(work.glob("*/manifest.json"))) == 1
    assert not checkpoints_trusted()  # main() leaves the process as it found it


@pytest.mark.parametrize(
    "argv",
    [
        ["tsne", "--model", "demo:digits-cnn", "--work-dir", "WORK"],
        ["featmap", "--model", "demo:digits-cnn", "--work-dir", "WORK"],
        ["points", "--model", "demo:digits-cnn"],
        ["shape-bias", "--data", str(CUE_CONFLICT), "--work-dir", "WORK"],
        ["recon", "--work-dir", "WORK"],
    ],
    ids=["tsne", "featmap", "points", "shape-bias", "recon"],
)
def test_every_command_with_checkpoint_refuses_and_names_the_flag(tmp_path, capsys, argv):
    path, marker = _evil_checkpoint(tmp_path, weights=False)
    work = tmp_path / "work"
    argv = [str(work) if item == "WORK" else item for item in argv]
    assert main([*argv, "--checkpoint", str(path)]) == 2
    assert "--trust-checkpoint" in _error_line(capsys)
    assert not marker.exists()
    assert not work.exists() or list(work.iterdir()) == []


def test_featmap_diff_refuses_and_names_the_flag(tmp_path, capsys):
    path, marker = _evil_checkpoint(tmp_path, weights=False)
    models = ["--model", "demo:digits-cnn", "--model", "demo:digits-cnn"]
    argv = ["featmap-diff", *models, "--checkpoint", "none", "--checkpoint", str(path)]
    assert main([*argv, "--work-dir", str(tmp_path / "work")]) == 2
    assert "--trust-checkpoint" in _error_line(capsys)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["tsne", "featmap", "featmap-diff", "recon", "shape-bias"])
def test_every_command_with_checkpoint_takes_the_flag(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--trust-checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize(
    "how",
    [["--cfg-options", "trust_checkpoint=true"], ["--config", "CONFIG"]],
    ids=["cfg-options", "config-file"],
)
def test_a_config_cannot_turn_trust_on(tmp_path, capsys, how):
    path, marker = _evil_checkpoint(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text("trust_checkpoint = true\n", encoding="utf-8")
    how = [str(config) if item == "CONFIG" else item for item in how]
    argv = [*TSNE, "--model", "demo:digits-cnn", "--checkpoint", str(path), *how]
    assert main([*argv, "--work-dir", str(tmp_path / "work")]) == 2
    line = _error_line(capsys)
    assert "only accepted on the command line: pass --trust-checkpoint" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    "content", [b"hello", b"PK\x03\x04 not really a zip", b""], ids=["text", "zip-head", "empty"]
)
def test_damaged_checkpoint_is_one_clear_error(tmp_path, content):
    path = tmp_path / "damaged.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"damaged\.pth") as info:
        load_model("demo:digits-cnn", checkpoint=path)
    assert "\n" not in str(info.value)
    assert "torch.save" in str(info.value)
