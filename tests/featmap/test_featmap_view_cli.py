"""``featscope featmap`` and ``featscope featmap-diff``: thin wrappers of the views."""

from __future__ import annotations

import re

import pytest
from featmap_view_helpers import save_photo

import featscope.cli.featmap as featmap_cli
import featscope.cli.featmap_diff as diff_cli
from featscope.errors import DataError, ParameterError

# a tiny timm model (a few thousand parameters), built without weights
TINY = "timm:test_resnet"


def _run(module, argv):
    return module.run(module.build_parser().parse_args(argv))


def test_featmap_command_writes_one_file_per_image_point_and_level(tmp_path, capsys):
    a = save_photo(tmp_path / "a" / "x.png", seed=1, size=(40, 40))
    b = save_photo(tmp_path / "b" / "x.png", seed=2, size=(40, 40))
    argv = [str(a), str(b), "--model", TINY, "--point", "layer1", "layer2"]
    argv += ["--channel-reduction", "none", "--topk", "4", "--arrangement", "2", "2"]
    argv += ["--overlaid", "--input-size", "32", "--work-dir", str(tmp_path / "wd")]
    assert _run(featmap_cli, argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 feature maps of 2 image(s) at layer1, layer2; written to")
    run_dir = next((tmp_path / "wd").glob("featmap_*"))
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert pngs == [
        "a_x_layer1.png",
        "a_x_layer2.png",
        "b_x_layer1.png",
        "b_x_layer2.png",
        "sheet.png",
    ]


def test_parser_defaults_follow_the_reference_names():
    args = featmap_cli.build_parser().parse_args([])
    assert (args.channel_reduction, args.topk, args.arrangement) == ("pixel_wise_max", 20, [4, 5])
    assert (args.alpha, args.overlaid, args.shared_scale, args.use_norm) == (
        0.5,
        None,
        False,
        False,
    )
    opts = featmap_cli.groups_from_args(
        featmap_cli.build_parser().parse_args(
            ["--channel-reduction", "none", "--resize-shape", "8", "9"]
        )
    )["style"]
    assert opts.channel_reduction is None
    assert opts.resize_shape == (8, 9)
    diff = diff_cli.build_parser().parse_args(["--model", "a", "--model", "b"])
    assert diff.shared_scale is True
    assert diff.models == ["a", "b"]
    off = diff_cli.build_parser().parse_args(["--no-shared-scale"])
    assert off.shared_scale is False
    with pytest.raises(SystemExit):
        featmap_cli.build_parser().parse_args(["--channel-reduction", "mean"])


def test_featmap_diff_command(tmp_path, capsys):
    img = save_photo(tmp_path / "p.png", size=(40, 40))
    argv = [str(img), "--model", TINY, "--model", TINY, "--point", "layer2"]
    argv += ["--input-size", "32", "--work-dir", str(tmp_path / "wd")]
    assert _run(diff_cli, argv) == 0
    assert "1 feature-map differences of 1 image(s) at layer2" in capsys.readouterr().out
    run_dir = next((tmp_path / "wd").glob("featmap_diff_*"))
    assert (run_dir / "p_layer2.png").exists()
    assert (run_dir / "manifest.json").exists()


def test_featmap_diff_needs_two_models_and_matching_checkpoints():
    with pytest.raises(ParameterError, match=r"`--model` must be given twice.*got 1"):
        _run(diff_cli, ["--model", TINY])
    with pytest.raises(ParameterError, match=r"`--checkpoint` must be given once per model"):
        _run(diff_cli, ["--model", TINY, "--model", TINY, "--checkpoint", "a.pth"])


def test_help_states_each_default_once_and_truly():
    featmap_help = " ".join(featmap_cli.build_parser().format_help().split())
    diff_help = " ".join(diff_cli.build_parser().format_help().split())
    for text in (featmap_help, diff_help):
        assert "(default: None)" not in text  # flags without a default say nothing false
        assert "(default: pixel_wise_max)" in text
        assert "heat-map weight in the blend (default: 0.5)" in text
        assert "at least min(channels, topk) cells (default: [4, 5])" in text
        assert "perplexity" not in text  # the shared --cfg-options example was t-SNE's
    assert "(default: on for the built-in demo, off otherwise)" in featmap_help
    # featmap-diff never overlays by default, whatever the images
    assert "draw over the photo (default: off)" in diff_help


def test_cfg_options_example_of_the_help_parses():
    from featscope.cli.config import apply_cfg_options

    argv = ["--cfg-options", "channel_reduction=none", "topk=6", "arrangement=[2,3]"]
    opts = featmap_cli.groups_from_args(apply_cfg_options(featmap_cli.build_parser(), argv))
    style = opts["style"]
    assert (style.channel_reduction, style.topk, style.arrangement) == (None, 6, (2, 3))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--point", "layer9"], r"error: capture point 'layer9' is not in this model .*nearest: "),
        (["--alpha", "1.5"], r"error: `alpha` 1\.5 is outside \[0, 1\]; it is the weight"),
        (
            ["--arrangement", "1", "2", "--channel-reduction", "none", "--topk", "3"],
            r"error: `arrangement` 1x2 has 2 cells but 3 tiles",
        ),
    ],
)
def test_command_line_errors_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    from featscope.cli import main

    img = save_photo(tmp_path / "p.png", size=(40, 40))
    argv = ["featmap", str(img), "--model", TINY, "--input-size", "32", "--quiet"]
    status = main([*argv, "--work-dir", str(tmp_path / "wd"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    # the untrained test model is announced once, on its own line, before any error
    err = [line for line in err if "has random weights: no --checkpoint" not in line]
    assert status == 2
    assert len(err) == 1
    assert re.match(message, err[0])
    assert not list((tmp_path / "wd").glob("*/manifest.json"))  # no finished run


def test_featmap_skips_unreadable_images_only_when_asked(tmp_path, capsys):
    import json

    good = save_photo(tmp_path / "good.png", seed=1, size=(40, 40))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    argv = [str(good), str(bad), "--model", TINY, "--point", "layer1", "--input-size", "32"]
    argv += ["--work-dir", str(tmp_path / "wd")]
    with pytest.raises(DataError, match=r"bad\.png.*--skip-bad-images"):
        _run(featmap_cli, argv)
    assert not list((tmp_path / "wd").glob("featmap_*"))  # nothing that looks finished

    with pytest.warns(UserWarning, match=r"skipped image .*bad\.png"):
        assert _run(featmap_cli, [*argv, "--skip-bad-images"]) == 0
    out = capsys.readouterr().out
    assert "1 feature maps of 1 image(s)" in out
    assert "skipped 1 unreadable image(s)" in out
    (run_dir,) = (tmp_path / "wd").glob("featmap_*")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [pair[0] for pair in manifest["metadata"]["skipped"]] == [str(bad)]


def test_featmap_diff_with_only_unreadable_images_fails_clearly(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    argv = [str(bad), "--model", TINY, "--model", TINY, "--point", "layer1"]
    argv += ["--input-size", "32", "--work-dir", str(tmp_path / "wd"), "--skip-bad-images"]
    with (
        pytest.warns(UserWarning, match="skipped image"),
        pytest.raises(DataError, match=r"none of the 1 image\(s\) could be read"),
    ):
        _run(diff_cli, argv)
    assert not list((tmp_path / "wd").glob("featmap_diff_*"))


def test_data_flag_and_positional_images_are_one_input(tmp_path):
    a, b = save_photo(tmp_path / "a.png", seed=1), save_photo(tmp_path / "b.png", seed=2)
    args = featmap_cli.build_parser().parse_args([str(a), "--data", str(b), "--point", "x"])
    assert args.data == [str(a), str(b)]
    assert featmap_cli.build_parser().parse_args(["--data", str(b)]).data == [str(b)]
    assert featmap_cli.build_parser().parse_args([]).data is None  # the demo photos


def test_formats_dpi_and_out_export(tmp_path, capsys):
    from PIL import Image

    img = save_photo(tmp_path / "p.png", size=(40, 40))
    out = tmp_path / "pictures"
    argv = ["--data", str(img), "--model", TINY, "--point", "layer1", "layer2", "--input-size"]
    argv += ["32", "--format", "png", "jpg", "--dpi", "300", "--out", str(out)]
    assert _run(featmap_cli, [*argv, "--work-dir", str(tmp_path / "wd")]) == 0
    assert "4 picture(s) copied to --out" in capsys.readouterr().out
    run_dir = next((tmp_path / "wd").glob("featmap_*"))
    expected = ["p_layer1.jpg", "p_layer1.png", "p_layer2.jpg", "p_layer2.png"]
    assert sorted(p.name for p in out.iterdir()) == expected
    assert sorted(p.name for p in run_dir.glob("p_layer*.*") if p.suffix != ".npy") == expected
    assert Image.open(out / "p_layer1.png").info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert (out / "p_layer1.png").read_bytes() == (run_dir / "p_layer1.png").read_bytes()


def test_show_on_a_headless_backend_warns_and_still_writes(tmp_path):
    img = save_photo(tmp_path / "p.png", size=(40, 40))
    argv = [str(img), "--model", TINY, "--model", TINY, "--point", "layer2", "--show"]
    argv += ["--input-size", "32", "--format", "svg", "--work-dir", str(tmp_path / "wd")]
    with pytest.warns(UserWarning, match="cannot show the figure"):
        assert _run(diff_cli, argv) == 0
    run_dir = next((tmp_path / "wd").glob("featmap_diff_*"))
    assert (run_dir / "p_layer2.svg").exists()
    assert not (run_dir / "p_layer2.png").exists()


def test_every_figures_and_output_flag_is_offered():
    for module in (featmap_cli, diff_cli):
        text = module.build_parser().format_help()
        for flag in ("--format", "--dpi", "--show", "--work-dir", "--out", "--data", "--point"):
            assert flag in text, (module.__name__, flag)
        assert "--vis-stage" not in text  # tsne's alias only (MMPretrain's t-SNE flag)


def test_points_command_shows_what_each_point_gives(capsys):
    import featscope.cli.points as points_cli

    assert _run(points_cli, ["--model", TINY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# timm:test_resnet (timm), shapes per image for a 160x160 input"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["backbone"].split(None, 1)[1].startswith("-> model API")
    assert "NCHW (96, 5, 5) stride 32" in rows["backbone"]
    assert "NC (96,)" in rows["pre_logits"]
    assert "NCHW (48, 20, 20) stride 8  [feature_info]" in rows["layer2"]
    assert "Sequential" in rows["layer2"]
    assert "NCHW (48, 20, 20) stride 8" in rows["layer2.0"]
    assert "[feature_info]" not in rows["layer2.0"]


def test_points_of_a_one_channel_model(tmp_path, capsys, monkeypatch):
    import featscope.cli.points as points_cli

    (tmp_path / "grey_net.py").write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU())\n"
    )
    spec = f"py:{tmp_path / 'grey_net.py'}:build"
    assert _run(points_cli, ["--model", spec, "--input-size", "28"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "NCHW (4, 13, 13) stride 2" in rows["0"]  # the dry run fed 1 channel, not 3
