"""reconstruct(): the panels and the error from a model whose prediction is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from featscope.analysis.recon import ReconOptions, parse_mask_color
from featscope.errors import ParameterError
from featscope.models.handle import Preprocessing
from featscope.models.mim import MIMModel, normalize_patches, patchify
from featscope.options import Extraction, Figures, Output
from featscope.views.recon import reconstruct

NO_RUN = Output(work_dir=None)
PRE = Preprocessing(input_size=(16, 16), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), crop_pct=1.0)


def _oracle(norm_pix: bool, shift: float = 0.0) -> MIMModel:
    """An 'MAE' that predicts every patch exactly (norm-pix or plain), plus ``shift``."""

    def predict(module, x, mask):
        patches = patchify(x, 4)
        return (normalize_patches(patches) if norm_pix else patches) + shift

    return MIMModel(
        torch.nn.Linear(1, 1),
        "oracle",
        "mae",
        PRE,
        4,
        norm_pix=norm_pix,
        default_mask_ratio=0.75,
        default_mask_patch_size=4,
        _predict=predict,
    )


def _images(count: int = 3):
    rng = np.random.default_rng(0)
    return [(f"img{i}", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for i in range(count)]


@pytest.mark.parametrize("norm_pix", [False, True])
def test_a_perfect_prediction_reconstructs_the_original(norm_pix):
    # de-normalised once (not twice, the reference's bug without --norm-pix)
    result = reconstruct(_images(), _oracle(norm_pix), output=NO_RUN)
    for item in result:
        np.testing.assert_allclose(item.reconstruction, item.original, atol=1)
        np.testing.assert_allclose(item.pasted, item.original, atol=1)
        assert item.error < 1e-5
    assert result.params["norm_pix"] is norm_pix


def test_panels_mask_and_error_of_a_shifted_prediction():
    # +0.5 in normalised space is +0.5 * std in 0-1 pixels, on every hidden pixel
    black = ReconOptions(mask_color="black")
    result = reconstruct(_images(), _oracle(False, shift=0.5), options=black, output=NO_RUN)
    item = result[0]
    assert item.mask.shape == (16, 16)
    assert item.patch_mask.shape == (4, 4)
    assert item.patch_mask.sum() == 12  # MAE: keep int(16 * 0.25) = 4
    np.testing.assert_array_equal(item.mask, item.patch_mask.repeat(4, 0).repeat(4, 1))
    np.testing.assert_array_equal(item.masked[item.mask], 0)
    np.testing.assert_array_equal(item.masked[~item.mask], item.original[~item.mask])
    np.testing.assert_array_equal(item.pasted[~item.mask], item.original[~item.mask])
    np.testing.assert_array_equal(item.pasted[item.mask], item.reconstruction[item.mask])
    recon = item.reconstruction.astype(float) / 255
    orig = item.original.astype(float) / 255
    manual = ((recon - orig) ** 2).mean(axis=-1)[item.mask].mean()
    assert item.error == pytest.approx(manual, abs=2e-3)
    assert item.error > 0.005


def test_same_seed_same_masks_for_any_batch_size():
    seed7 = ReconOptions(seed=7)
    a, b = (
        reconstruct(
            _images(5),
            _oracle(False),
            options=seed7,
            extraction=Extraction(batch_size=size),
            output=NO_RUN,
        )
        for size in (2, 5)
    )
    c = reconstruct(_images(5), _oracle(False), options=ReconOptions(seed=8), output=NO_RUN)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)
    assert a.original.shape == (5, 16, 16, 3)
    assert a.errors.shape == (5,)


def test_run_folder_holds_figures_errors_and_masks(tmp_path):
    result = reconstruct(
        _images(2),
        _oracle(False, shift=0.2),
        figures=Figures(dpi=30),
        output=Output(work_dir=tmp_path, export=tmp_path / "out.png"),
    )
    run = result.run_dir
    assert sorted(p.name for p in run.iterdir()) == [
        "errors.csv",
        "errors.json",
        "manifest.json",
        "masks.npy",
        "overview.png",
        "recon_img0.png",
        "recon_img1.png",
        "run.log",
    ]
    errors = json.loads((run / "errors.json").read_text())
    assert errors["images"]["img1"] == pytest.approx(result[1].error)
    lines = (run / "errors.csv").read_text().splitlines()
    assert lines[0] == "image,figure,error,hidden_patches,patches"
    assert lines[1].startswith("img0,recon_img0,")
    assert lines[1].endswith(",12,16")
    np.testing.assert_array_equal(np.load(run / "masks.npy"), result.mask[:, ::4, ::4])
    assert [p.name for p in result.files] == ["out_0.png", "out_1.png"]
    assert all(p.is_file() for p in result.files)


def test_mask_colours():
    assert parse_mask_color(None, (0.485, 0.456, 0.406)) == (124, 116, 104)
    assert parse_mask_color("white", PRE.mean) == (255, 255, 255)
    assert parse_mask_color("#ff8000", PRE.mean) == (255, 128, 0)
    assert parse_mask_color("10, 20,30", PRE.mean) == (10, 20, 30)
    assert parse_mask_color([1, 2, 3], PRE.mean) == (1, 2, 3)
    with pytest.raises(ParameterError, match="`mask_color` 'purplish' is not a colour"):
        parse_mask_color("purplish", PRE.mean)
    with pytest.raises(ParameterError, match="is not a colour"):
        parse_mask_color("300,0,0", PRE.mean)


def test_bad_option_values_are_refused_when_the_group_is_made():
    with pytest.raises(ParameterError, match="between 0 and 1"):
        ReconOptions(mask_ratio=1.0)
    with pytest.raises(ParameterError, match="`--batch-size` must be an integer >= 1"):
        Extraction(batch_size=0)


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ({"options": ReconOptions(mask_patch_size=6)}, "multiple of the model's patch size 4"),
        ({"output": Output(export="fig.bmp")}, "unsupported suffix"),
    ],
)
def test_bad_options_are_refused(groups, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match=match):
        reconstruct(_images(1), _oracle(False), **{"output": NO_RUN, **groups})
    assert list(tmp_path.iterdir()) == []  # refused before a run folder is made


def _files(tmp_path, count: int = 2):
    from PIL import Image

    paths = []
    for name, array in _images(count):
        path = tmp_path / f"{name}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return paths, bad


def test_unreadable_images_stop_the_run_or_are_skipped(tmp_path):
    from featscope.errors import DataError

    (good0, good1), bad = _files(tmp_path)
    with pytest.raises(DataError, match=r"cannot read image .*bad\.png"):
        reconstruct([good0, bad], _oracle(False), output=NO_RUN)
    seed3, skip = ReconOptions(seed=3), Extraction(batch_size=8, skip_bad_images=True)
    both = reconstruct([good0, good1], _oracle(False), options=seed3, output=NO_RUN)
    with pytest.warns(UserWarning, match=r"skipped image .*bad\.png.*: cannot read image"):
        result = reconstruct(
            [bad, good1], _oracle(False), options=seed3, extraction=skip, output=NO_RUN
        )
    assert [item.image_id for item in result] == [str(good1)]
    assert [name for name, _ in result.skipped] == [str(bad)]
    assert "--skip-bad-images" not in result.skipped[0][1]
    # the image keeps the mask of its position (1), as without the bad image before it
    np.testing.assert_array_equal(result[0].patch_mask, both[1].patch_mask)
    with (
        pytest.warns(UserWarning, match="skipped image"),
        pytest.raises(DataError, match="none of the 1 image"),
    ):
        reconstruct([bad], _oracle(False), extraction=skip, output=NO_RUN)


def test_cli_lists_skipped_images(tmp_path, capsys):
    from featscope.cli import main

    (good0, _), bad = _files(tmp_path)
    args = ["recon", str(bad), str(good0), "--work-dir", str(tmp_path / "wd"), "--dpi", "30"]
    assert main(args) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main([*args, "--skip-bad-images", "--out-file", str(tmp_path / "o.png")]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped image" in captured.err
    printed = captured.out
    assert "reconstructed 1 image(s)" in printed
    assert "skipped 1 unreadable image(s): " in printed
    assert (tmp_path / "o.png").is_file()  # one image: not numbered


def test_a_failed_out_file_leaves_no_finished_looking_figure(tmp_path, monkeypatch):
    import errno
    import shutil

    from featscope.errors import OutputError
    from featscope.sinks import export

    real = shutil.copyfile
    calls = []

    def failing_second(source, destination):
        calls.append(destination)
        if len(calls) == 2:  # the second copy finds the disk full half-way through
            Path(destination).write_bytes(b"half a picture")
            raise OSError(errno.ENOSPC, "disk full", str(destination))
        return real(source, destination)

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(export.shutil, "copyfile", failing_second)
    output = Output(work_dir=tmp_path / "work", export=out / "f.png")
    with pytest.raises(OutputError, match="disk full"):
        reconstruct(_images(3), _oracle(False), figures=Figures(dpi=20), output=output)
    assert len(calls) == 2
    assert sorted(p.name for p in out.iterdir()) == []
    # the copies go out after the run folder is finished: that complete result is kept
    (run_dir,) = (tmp_path / "work").iterdir()
    assert (run_dir / "manifest.json").is_file()


def test_out_flags_and_data_flag_are_one_vocabulary(tmp_path, capsys):
    from featscope.cli import main

    (good0, good1), _ = _files(tmp_path)
    work = ["--work-dir", str(tmp_path / "wd"), "--dpi", "20", "--quiet"]
    assert main(["recon", str(good0), "--data", str(good1), *work, "-o", str(tmp_path / "a")]) == 0
    assert "reconstructed 2 image(s)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.glob("a_*")) == ["a_0.png", "a_1.png"]  # png default
    assert main(["recon", "--data", str(good0), *work, "--out", str(tmp_path / "b.jpeg")]) == 0
    assert (tmp_path / "b.jpg").is_file()  # as before: the suffix names the format, jpeg is jpg
    # the run folder holds the exported format too, so the export is a copy of a run file
    (run,) = [p for p in (tmp_path / "wd").iterdir() if (p / "recon_img0.jpg").is_file()]
    assert (run / "recon_img0.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()
    assert main(["recon", str(good0), *work, "--out-file", str(tmp_path / "no" / "c.png")]) == 2
    assert "folder" in capsys.readouterr().err


def test_cli_help_shows_one_seed_flag_and_defaults(capsys):
    from featscope.cli.recon import build_parser

    parser = build_parser()
    text = parser.format_help()
    assert text.count("[--seed SEED]") == 1  # one seed: the masks'
    assert "perplexity" not in text  # --cfg-options shows this subcommand's keys
    for flag in ("--format", "--dpi", "--show", "--data", "--out", "--out-file", "--quiet"):
        assert flag in text, flag
    assert "(default: 8)" in text  # --batch-size
    assert "(default: 0)" in text  # --seed
    assert "(default: 150)" in text  # --dpi
    args = parser.parse_args(["x.png", "--data", "y.png", "--norm-pix", "-o", "f.pdf"])
    assert args.data == ["x.png", "y.png"]
    assert args.norm_pix is True
    assert str(args.export) == "f.pdf"


def test_cli_images_from_a_config_file_give_way_to_the_command_line(tmp_path):
    from featscope.cli.config import apply_cfg_options
    from featscope.cli.recon import build_parser

    config = tmp_path / "recon.toml"
    config.write_text('data = ["cfg.png"]\nseed = 4\n', encoding="utf-8")
    for argv, data in [
        ([], ["cfg.png"]),
        (["a.png"], ["a.png"]),
        (["--data", "b.png", "a.png"], ["b.png", "a.png"]),
    ]:
        args = apply_cfg_options(build_parser(), ["--config", str(config), *argv])
        assert (args.data, args.seed) == (data, 4)


def test_manifest_records_the_preprocessing_in_effect(tmp_path):
    result = reconstruct(_images(1), _oracle(False), output=Output(work_dir=tmp_path))
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    (entry,) = manifest["results"].values()
    described = entry["provenance"]["preprocessing"]
    assert described["input_size"] == [16, 16]
    assert described["mean"] == pytest.approx(list(PRE.mean))
    assert set(described["source"]) >= {"input_size", "mean", "std"}
