"""The option groups: values checked once, flags declared beside defaults, parsed back."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from featscope.cli.common import new_parser
from featscope.cli.groups import add_group, group_from_args
from featscope.errors import ParameterError
from featscope.options import (
    FIGURE_FORMATS,
    Extraction,
    Figures,
    Output,
    Preprocess,
    Selection,
    check_formats,
    flag_spec,
)

GROUPS = [Selection, Preprocess, Extraction, Figures, Output]


def test_defaults_match_the_reference_tool():
    sel = Selection()
    assert (sel.class_idx, sel.max_num_class, sel.max_num_samples) == (None, 20, 100)
    assert (sel.sample, sel.seed) == ("random", 0)
    assert Figures().formats == ("png",)
    assert Output().work_dir == Path("work_dirs")
    assert Extraction().progress is True


def test_groups_are_frozen_and_normalised():
    sel = Selection(class_idx=[3, 1])
    assert sel.class_idx == (3, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sel.seed = 1  # type: ignore[misc]
    assert Preprocess(input_size=[224]).input_size == (224, 224)
    assert Preprocess(input_size=(224, 192), mean=[0.5, 0.5, 0.5]).to_dict() == {
        "input_size": (224, 192),
        "mean": (0.5, 0.5, 0.5),
    }
    assert Output(backends=["local", "tensorboard", "tensorboard"]).backends == (
        "local",
        "tensorboard",
    )
    assert Output(backends=["local", "wandb"]).mirrored == ("wandb",)
    assert Figures(formats=["PNG", ".pdf", "jpeg", "png"]).formats == ("png", "pdf", "jpg")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Selection(seed=-1), r"`--seed` must be an integer from 0 to 4294967295; got -1"),
        (lambda: Selection(seed=2**32), r"`--seed` must be an integer from 0 to 4294967295"),
        (lambda: Selection(sample="all"), r"`--sample` must be one of random, first; got 'all'"),
        (lambda: Extraction(batch_size=0), r"`--batch-size` must be an integer >= 1; got 0"),
        (lambda: Extraction(batch_size=True), r"`--batch-size` must be an integer >= 1"),
        (lambda: Extraction(num_workers=-1), r"`--num-workers` must be an integer >= 0; got -1"),
        (lambda: Extraction(amp="fp8"), r"`--amp` must be one of auto, off, bf16, fp16"),
        (lambda: Figures(dpi=0), r"`--dpi` must be an integer from 10 to 1200; got 0"),
        (lambda: Figures(dpi=30000), r"`--dpi` must be an integer from 10 to 1200; got 30000"),
        (lambda: Figures(formats=["gif"]), r"figure format 'gif' is not supported"),
        (lambda: Figures(formats=[]), r"`formats` is empty"),
        (lambda: Output(backends=["mlflow"]), r"`--backend` must be one of local, tensorboard"),
        (lambda: Output(work_dir=None, backends=["wandb"]), r"work_dir is None; pass a work_dir"),
        (lambda: Preprocess(input_size=(1, 2, 3)), r"`--input-size` takes 1 or 2 integers"),
    ],
)
def test_bad_values_name_their_flag(make, message):
    with pytest.raises(ParameterError, match=message):
        make()


def test_check_formats_is_the_one_format_rule():
    assert check_formats("svg") == ("svg",)
    assert set(FIGURE_FORMATS) == {"png", "pdf", "svg", "jpg"}


@pytest.mark.parametrize("group", GROUPS)
def test_every_flag_has_help_and_round_trips_its_default(group):
    parser = argparse.ArgumentParser()
    add_group(parser, group, "g")
    args = parser.parse_args([])
    assert group_from_args(group, args) == group()
    for f in dataclasses.fields(group):
        if f.metadata.get("flags"):
            assert flag_spec(group, f.name)["help"], f.name


def test_parsed_flags_fill_the_groups():
    parser = new_parser("demo", "test")
    for group, title in [(Selection, "data"), (Extraction, "extraction"), (Figures, "figure")]:
        add_group(parser, group, title)
    add_group(parser, Output, "output", aliases={"export": ["--out-file"]})
    args = parser.parse_args(
        [
            "--class-idx",
            "4",
            "2",
            "--seed",
            "7",
            "--batch-size",
            "8",
            "--quiet",
            "--format",
            "png",
            "pdf",
            "--dpi",
            "300",
            "--legend",
            "--backend",
            "tensorboard",
            "--work-dir",
            "runs",
            "--out-file",
            "x.png",
        ]
    )
    assert group_from_args(Selection, args) == Selection(class_idx=(4, 2), seed=7)
    assert group_from_args(Extraction, args) == Extraction(batch_size=8, progress=False)
    assert group_from_args(Figures, args) == Figures(formats=("png", "pdf"), dpi=300, legend=True)
    out = group_from_args(Output, args)
    assert (out.work_dir, out.backends, out.export) == (
        Path("runs"),
        ("tensorboard",),
        Path("x.png"),
    )


def test_only_offers_the_chosen_flags_and_defaults_can_differ():
    parser = new_parser("demo", "test")
    add_group(parser, Figures, "figure", only=["formats", "dpi"], defaults={"dpi": 72})
    args = parser.parse_args([])
    assert not hasattr(args, "legend")
    assert group_from_args(Figures, args) == Figures(dpi=72)
    help_text = parser.format_help()
    assert "--dpi DPI" in help_text
    assert "(default: 72)" in help_text
    assert "--legend" not in help_text
    with pytest.raises(ValueError, match="has no flag for"):
        add_group(parser, Figures, "again", only=["nonsense"])


def test_overrides_win_and_bad_values_from_flags_are_checked():
    parser = argparse.ArgumentParser()
    add_group(parser, Selection, "data")
    args = parser.parse_args(["--seed", "-3"])
    with pytest.raises(ParameterError, match="`--seed` must be an integer"):
        group_from_args(Selection, args)
    assert group_from_args(Selection, args, seed=5).seed == 5


def test_a_single_number_is_a_size_and_export_needs_a_run_folder(tmp_path):
    assert Preprocess(input_size=20).input_size == (20, 20)
    with pytest.raises(ParameterError, match=r"`--out` .* work_dir is None; pass a work_dir"):
        Output(work_dir=None, export=tmp_path / "x.png")


def test_switches_do_not_print_a_default():
    parser = new_parser("demo", "test")
    add_group(parser, Extraction, "extraction", only=["progress", "batch_size", "device"])
    text = " ".join(parser.format_help().split())
    assert "--quiet no progress bars, warnings only" in text
    assert "(default: True)" not in text
    assert "(default: cpu)" in text
    # a help that states its default gets none appended
    assert "(default: 64, and on a CPU fewer for large inputs: 8 at 224 px" in text
    assert "(default: None)" not in text


def test_no_early_stop_flag_turns_both_stops_off():
    from featscope.options import EmbeddingOptions

    parser = argparse.ArgumentParser()
    add_group(parser, EmbeddingOptions, "embedding")
    options = group_from_args(
        EmbeddingOptions, parser.parse_args(["--n-iter", "1000", "--no-early-stop"])
    )
    assert options == EmbeddingOptions(n_iter=1000, early_stop=False)
    params = options.reducer_params()
    assert (params["n_iter"], params["kl_rtol"], params["n_iter_without_progress"]) == (
        1000,
        None,
        None,
    )
    assert group_from_args(EmbeddingOptions, parser.parse_args([])).early_stop is True
