"""`featscope tsne`: its flags come from the option groups; config keys, help, --out, defaults."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import featscope
from featscope.cli import main
from featscope.cli import tsne as tsne_cli
from featscope.cli.config import apply_cfg_options, parse_cfg_options
from featscope.options import EmbeddingOptions, Extraction, Selection


@pytest.fixture(scope="module")
def parser():
    return tsne_cli.build_parser()


def test_help_shows_every_default_and_no_true_for_off_switches(parser, capsys):
    text = parser.format_help()
    assert "(default: True)" not in text
    assert "--no-html             do not write the interactive page embedding.html" in text
    assert "--quiet               no progress bars, warnings only (default: off)" in text
    assert "--point POINT [POINT ...], --vis-stage POINT [POINT ...]" in text
    assert "perplexity=50" in text  # the --cfg-options example uses tsne's own keys
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.default is None or action.default is argparse.SUPPRESS:
            continue
        shown = formatter._get_help_string(action)
        assert "default:" in shown, action.option_strings


def test_flag_names_and_defaults_are_those_of_vis_tsne(parser):
    args = parser.parse_args([])
    assert (args.method, args.n_components, args.perplexity) == ("tsne", 2, 30.0)
    assert (args.early_exaggeration, args.learning_rate, args.n_iter) == (12.0, "auto", 750)
    assert (args.n_iter_without_progress, args.init, args.pca_dims) == (300, "pca", 50)
    assert (args.max_num_class, args.max_num_samples, args.seed) == (20, 100, 0)
    assert (args.html, args.thumbnails, args.progress, args.formats) == (True, 20000, True, ["png"])
    lr = parser.parse_args(["--learning-rate", "200"]).learning_rate
    assert lr == 200.0
    assert isinstance(lr, float)
    assert parser.parse_args(["--vis-stage", "a", "b"]).points == ["a", "b"]
    assert parser.parse_args(["--point", "neck"]).points == ["neck"]


def test_config_keys_may_be_the_flag_names(parser, tmp_path):
    values = parse_cfg_options(
        ["format=svg", "quiet=true", "no_html=true", "vis_stage=neck", "backend=tensorboard"],
        parser,
    )
    assert values == {
        "formats": ["svg"],
        "progress": False,  # --quiet given: no progress bars
        "html": False,  # --no-html given
        "points": ["neck"],
        "backends": ["tensorboard"],
    }
    assert parse_cfg_options(["progress=false", "html=false"], parser) == {
        "progress": False,
        "html": False,
    }
    config = tmp_path / "run.toml"
    config.write_text("[tsne]\nquiet = false\nformats = ['pdf']\npoint = ['neck']\n")
    args = apply_cfg_options(parser, ["--config", str(config)])
    assert (args.progress, args.formats, args.points) == (True, ["pdf"], ["neck"])


def test_groups_are_built_from_the_flags(monkeypatch, tmp_path):
    seen = {}

    def fake_tsne(**kwargs):
        seen.update(kwargs)
        return featscope.TsneRun(results=(), features=(), run_dir=None)

    monkeypatch.setattr("featscope.views.embedding.tsne", fake_tsne)
    argv = ["tsne", "--point", "neck", "--perplexity", "5", "--max-num-samples", "0"]
    argv += ["--input-size", "16", "--quiet", "--batch-size", "8", "--legend", "--no-html"]
    argv += ["--work-dir", str(tmp_path), "--out", str(tmp_path / "copy")]
    assert main(argv) == 0
    assert seen["points"] == ["neck"]
    assert seen["embedding"] == EmbeddingOptions(perplexity=5.0)
    assert seen["selection"] == Selection(max_num_samples=0)
    assert seen["preprocess"].input_size == (16, 16)
    assert seen["extraction"] == Extraction(batch_size=8, progress=False)
    assert seen["figures"].legend is True
    assert seen["output"].work_dir == tmp_path
    assert seen["output"].export == tmp_path / "copy"
    assert seen["html"] is False


def test_out_copies_the_figures_of_the_finished_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "f.npy", rng.normal(size=(30, 4)).astype(np.float32))
    argv = ["tsne", "--features", str(tmp_path / "f.npy"), "--method", "pca", "--no-html"]
    argv += ["--quiet", "--work-dir", str(tmp_path / "w"), "--format", "png", "svg"]
    assert main([*argv, "--out", str(tmp_path / "figures")]) == 0
    (run_dir,) = (tmp_path / "w").iterdir()
    copies = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert copies == ["pca_f.png", "pca_f.svg"]
    assert (tmp_path / "figures" / "pca_f.svg").read_bytes() == (run_dir / "pca_f.svg").read_bytes()
    assert main([*argv[:-3], "--out", str(tmp_path / "one.png")]) == 0  # one file: a file
    assert (tmp_path / "one.png").read_bytes().startswith(b"\x89PNG")


def test_readme_call_without_groups_writes_under_work_dirs(tmp_path, monkeypatch):
    # README: featscope.tsne(model=..., data=..., points=[...]); run[...].metrics; run.run_dir
    monkeypatch.chdir(tmp_path)
    run = featscope.tsne(model="demo:digits-cnn", data="demo:digits", points=["pre_logits"])
    assert run["pre_logits"].metrics["knn_accuracy_map"] > 0.9
    assert run.run_dir.resolve().parent == (tmp_path / "work_dirs").resolve()
    assert (run.run_dir / "embedding.html").is_file()
    assert run.page == run.run_dir / "embedding.html"
