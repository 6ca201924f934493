"""Bounds before allocation, code chosen only on the command line, no silent acceptance,
one-line argument errors (issue 19, 3, 6, 7, 10)."""

from __future__ import annotations

import os
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featscope.analysis.featmap import FeatmapStyle
from featscope.cli import main
from featscope.cli import tsne as tsne_cli
from featscope.cli.config import load_config, parse_cfg_options
from featscope.errors import CheckpointError, DataError, ParameterError
from featscope.models import load_model
from featscope.models.checkpoint import load_checkpoint
from featscope.options import Figures, Preprocess, Selection

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _cli(capsys, args, tmp_path):
    """Run ``featscope`` in-process; return (status, stderr lines)."""
    try:
        status = main([*args, "--work-dir", str(tmp_path / "wd")] if args[0] != "compare" else args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return status, err


def _no_run(tmp_path):
    wd = tmp_path / "wd"
    assert not wd.exists() or not any(wd.iterdir())


# --------------------------------------------------------------------------- 3: bounds


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--dpi", "100000"], r"`--dpi` must be an integer from 10 to 1200; got 100000"),
        (["--input-size", "100000"], r"`--input-size` must be 1 or 2 integers from 1 to 4096"),
        (["--input-size", "224", "0"], r"from 1 to 4096; got \[224, 0\]"),
        (["--input-size", "-5"], r"from 1 to 4096"),
    ],
    ids=["dpi", "input-size", "input-size-zero", "input-size-negative"],
)
def test_sizes_are_bounded_before_anything_is_allocated(capsys, tmp_path, args, match):
    status, err = _cli(capsys, ["tsne", *args], tmp_path)
    assert status == 2
    assert len(err) == 1
    assert err[0].startswith("error: ")
    assert __import__("re").search(match, err[0])
    _no_run(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("resize_shape", (100_000, 100_000), r"`resize_shape` \(100000, 100000\) is larger"),
        ("resize_shape", (224, 5000), r"larger than 4096"),
        ("arrangement", (10_000, 10_000), r"`arrangement` \(10000, 10000\) is larger than 256"),
    ],
    ids=["resize-huge", "resize-one-side", "arrangement"],
)  # fmt: skip
def test_feature_map_sizes_are_bounded(field, value, match):
    with pytest.raises(ParameterError, match=match):
        FeatmapStyle(**{field: value})


def test_featmap_cli_resize_shape_is_one_line(capsys, tmp_path):
    status, err = _cli(capsys, ["featmap", "--resize-shape", "100000", "100000"], tmp_path)
    assert status == 2
    assert err == [
        "error: `resize_shape` (100000, 100000) is larger than 4096 on a side, which would "
        "allocate gigabytes before drawing; pass e.g. resize_shape=(224, 224)"
    ]


def test_preprocess_and_figures_in_python_are_bounded():
    with pytest.raises(ParameterError, match="from 1 to 4096"):
        Preprocess(input_size=(5000, 5000))
    with pytest.raises(ParameterError, match="from 10 to 1200"):
        Figures(dpi=10**6)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_a_config_that_is_a_device_or_fifo_is_refused_without_reading(tmp_path, kind):
    path = tmp_path / "run.toml"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
    else:
        os.symlink("/dev/zero", path)  # reading it would never end
    with pytest.raises(ParameterError, match=r"is not a regular file \(a device, FIFO"):
        load_config(path, tsne_cli.build_parser())


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_data_that_is_a_device_or_fifo_is_one_line(tmp_path, kind):
    from featscope.data.sources import load_samples

    path = tmp_path / "data"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    with pytest.raises(DataError, match=r"data '.*' is not a regular file \(a device, FIFO"):
        load_samples(str(path))


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 100_000 + "]" * 100_000 + "\n",
        "a = " + "{b = " * 100_000 + "}" * 100_000 + "\n",
        "a = " + "[" * 2_000 + "]" * 2_000 + "\n",
    ],
    ids=["array-100000", "table-100000", "array-2000"],
)
def test_a_deeply_nested_config_is_one_line(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ParameterError, match="nested too deeply"):
        load_config(path, tsne_cli.build_parser())


def test_a_deeply_nested_cfg_option_is_one_line():
    with pytest.raises(ParameterError, match=r"--cfg-options value .* is nested too deeply"):
        parse_cfg_options(["class_idx=" + "[" * 100_000], tsne_cli.build_parser())


def _inflating_checkpoint(tmp_path, inflated):
    """A torch.save archive whose data record is deflated: small on disk, huge when read."""
    torch.save({"weight": torch.zeros(4)}, tmp_path / "small.pt")
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(tmp_path / "small.pt") as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data/0"):
                data = bytes(inflated)
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return bomb


def test_a_checkpoint_that_inflates_is_refused_before_torch_reads_it(tmp_path, monkeypatch):
    bomb = _inflating_checkpoint(tmp_path, 50_000_000)  # 50 MB of zeros in ~50 KB
    assert bomb.stat().st_size < 200_000
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(
        CheckpointError, match=r"inflate to 50,000,\d+ .*torch\.save never compresses"
    ):
        load_checkpoint(torch.nn.Linear(2, 2), bomb)
    assert calls == []  # nothing was inflated
    monkeypatch.undo()
    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.ones(4))
    load_checkpoint(model, tmp_path / "small.pt")  # a real checkpoint still loads
    assert float(model.weight.detach().sum()) == 0.0


def test_a_legacy_checkpoint_declaring_huge_storages_is_refused_before_torch_reads_it(tmp_path):
    """A 1 MB pre-1.6 format file whose storage claims 3 GB: torch allocates it before reading."""
    import struct

    path = tmp_path / "legacy.pt"
    torch.save({"weight": torch.zeros(250_003)}, path, _use_new_zipfile_serialization=False)
    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.ones(250_003))
    load_checkpoint(model, path)  # the real legacy file still loads
    assert float(model.weight.detach().abs().sum()) == 0.0
    data = path.read_bytes()
    at = data.index(b"J" + struct.pack("<i", 250_003))  # the storage's element count
    (tmp_path / "bomb.pt").write_bytes(
        data[: at + 1] + struct.pack("<i", 750_000_003) + data[at + 5 :]
    )
    with pytest.raises(
        CheckpointError, match=r"storages declare 3,000,000,012; torch would allocate"
    ):
        load_checkpoint(model, tmp_path / "bomb.pt")


# --------------------------------------------------------------------------- 6: code from configs


@pytest.mark.parametrize(
    ("how", "value"),
    [
        ("config", 'model = "py:evil:build"'),
        ("config", '[tsne]\nmodel = "ts:evil.pt"'),
        ("config", 'model = "mmpretrain:configs/evil.py"'),
        ("config", 'data = "py:evil_data:make"'),
        ("cfg", "model=py:evil:build"),
        ("cfg", "model=jit:evil.pt"),
        ("cfg", "data=py:evil.py:make"),
    ],
    ids=["config-py", "config-ts", "config-mm-py", "config-data-py", "cfg-py", "cfg-jit",
         "cfg-data-py"],
)  # fmt: skip
def test_a_config_cannot_choose_code(capsys, tmp_path, how, value):
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').close()\ndef build():\n    pass\n")
    if how == "config":
        (tmp_path / "run.toml").write_text(value + "\n")
        args = ["tsne", "--config", str(tmp_path / "run.toml")]
    else:
        args = ["tsne", "--cfg-options", value]
    status, err = _cli(capsys, args, tmp_path)
    assert status == 2
    assert len(err) == 1
    assert "was set by --config or --cfg-options" in err[0]
    assert "only the command line may choose it" in err[0]
    assert not (tmp_path / "RAN").exists()
    _no_run(tmp_path)


def test_the_command_line_may_still_choose_code_and_a_config_may_repeat_it(tmp_path):
    from featscope.cli import _parse

    parser = tsne_cli.build_parser()
    (tmp_path / "run.toml").write_text('model = "py:nets:build"\n')
    args = _parse(parser, ["--model", "py:nets:build", "--config", str(tmp_path / "run.toml")])
    assert args.model == "py:nets:build"
    args = _parse(tsne_cli.build_parser(), ["--cfg-options", "model=timm:resnet18"])
    assert args.model == "timm:resnet18"  # not code: allowed from a config


# --------------------------------------------------------------------------- 7: silent acceptance


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--max-num-samples", "-1"], r"`--max-num-samples` must be an integer >= 0; got -1"),
        (["--max-num-class", "-2"], r"`--max-num-class` must be an integer >= 0; got -2"),
    ],
    ids=["samples", "classes"],
)
def test_negative_counts_are_refused_not_taken_as_all(capsys, tmp_path, args, match):
    status, err = _cli(capsys, ["tsne", *args], tmp_path)
    assert status == 2
    assert len(err) == 1
    assert __import__("re").search(match, err[0])


def test_selection_refuses_negative_counts_in_python():
    with pytest.raises(ParameterError, match="max-num-samples"):
        Selection(max_num_samples=-1)
    assert Selection(max_num_samples=0, max_num_class=0).max_num_samples == 0


@pytest.fixture
def saved(tmp_path):
    import numpy as np

    path = tmp_path / "f.npy"
    np.save(path, np.random.default_rng(0).normal(size=(20, 4)).astype("float32"))
    return path


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--checkpoint", "x.pt"], "`checkpoint`"),
        (["--input-size", "64"], "`--input-size`"),
        (["--nproc", "2"], "`--nproc`"),
        (["--cache-dir", "c"], "`--cache-dir`"),
        (["--batch-size", "3"], "`--batch-size`"),
    ],
    ids=["checkpoint", "input-size", "nproc", "cache-dir", "batch-size"],
)
def test_extraction_options_beside_saved_features_are_refused(
    capsys, tmp_path, saved, extra, named
):
    status, err = _cli(capsys, ["tsne", "--features", str(saved), *extra], tmp_path)
    assert status == 2
    assert len(err) == 1
    assert named in err[0]
    assert "would be ignored" in err[0]
    _no_run(tmp_path)


def test_device_beside_saved_features_is_used_for_the_map(capsys, tmp_path, saved):
    status, _ = _cli(
        capsys, ["tsne", "--features", str(saved), "--device", "cpu", "--method", "pca",
                 "--no-html", "--quiet"], tmp_path)  # fmt: skip
    assert status == 0


def test_top_level_keys_beside_a_command_table_are_refused(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("perplexty = 5\n[tsne]\nperplexity = 10\n")
    with pytest.raises(
        ParameterError, match=r"has a \[tsne\] table and top-level keys \(perplexty\) that would be"
    ):
        load_config(path, tsne_cli.build_parser())
    path.write_text("[tsne]\nperplexity = 10\n[featmap]\ntopk = 3\n")  # shared file: fine
    assert load_config(path, tsne_cli.build_parser()) == {"perplexity": 10.0}


# --------------------------------------------------------------------------- 10: argument errors


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["tsne", "--max-num-samples"], "argument --max-num-samples: expected one argument"),
        (["tsne", "--perplexty", "5"],
         "unrecognized arguments: --perplexty 5; did you mean --perplexity?"),
        (["tsne", "--method", "tnse"], "argument --method: invalid choice: 'tnse'"),
        (["featmap", "--topk", "many"], "argument --topk: invalid int value: 'many'"),
    ],
    ids=["missing-value", "typo", "bad-choice", "not-int"],
)  # fmt: skip
def test_argument_errors_are_one_line_leading_with_the_error(capsys, tmp_path, args, expected):
    status, err = _cli(capsys, args, tmp_path)
    assert status == 2
    assert len(err) == 1  # was 26 lines of usage first
    assert err[0].startswith(f"error: {expected}")
    assert err[0].endswith(f"(see featscope {args[0]} --help for every option)")


@FUZZ
@given(words=st.lists(st.sampled_from(["--dpi", "--perplexity", "--max-num-samples", "-1", "abc",
                                       "--method", "x", "--input-size", "0", "--n-iter", "--",
                                       "1e9", "--format", "bmp"]), max_size=5))  # fmt: skip
def test_any_argument_soup_is_at_most_one_error_line(capsys, tmp_path, words):
    """Property: arguments that fail give exactly one stderr line (no usage, no traceback)."""
    from featscope.cli import _parse

    status, lines = 0, []
    try:
        _parse(tsne_cli.build_parser(), words)
    except SystemExit as exc:
        status, lines = exc.code, capsys.readouterr().err.strip().splitlines()
    except ParameterError as exc:
        status, lines = 2, ["error: " + str(exc)]
    assert status in (0, 2)
    assert len(lines) == (1 if status else 0)
    assert all(line.startswith("error: ") for line in lines)


# --------------------------------------------------------------------------- 8: hf: directories


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    import pickle
    import shutil

    root = tmp_path_factory.mktemp("hf")
    config = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        image_size=32, patch_size=8,
    )  # fmt: skip
    transformers.ViTModel(config).save_pretrained(root / "good")
    weights = (root / "good" / "model.safetensors").read_bytes()
    for name, data in {
        "truncated": weights[: len(weights) // 2],
        "bad-header": b"\xff" * 8 + weights[8:],
        "empty": b"",
    }.items():
        shutil.copytree(root / "good", root / name)
        (root / name / "model.safetensors").write_bytes(data)
    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copy(root / "good" / "config.json", pickled)

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(root / "RAN"),))

    (pickled / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Payload()}))
    torch.save({"w": Payload()}, pickled / "pytorch_model.bin")
    deep = root / "deep-config"
    shutil.copytree(root / "good", deep)
    (deep / "config.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    return root


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("truncated", r"cannot load ViTModel .*SafetensorError.*the weights are damaged"),
        ("bad-header", r"cannot load ViTModel .*the weights are damaged"),
        ("empty", r"cannot load ViTModel"),
        ("pickled", r"pickled data that can only be read by running code"),
        ("deep-config", r"config\.json .* is nested too deeply"),
    ],
)
def test_damaged_hf_directories_are_one_line(hf_dirs, name, match):
    from featscope.errors import ModelSpecError

    with pytest.raises(ModelSpecError, match=match) as info:
        load_model(f"hf:{hf_dirs / name}")
    assert "\n" not in str(info.value)
    assert not (hf_dirs / "RAN").exists()  # the pickle's payload never ran
