"""Config files (``--config``) and ``--cfg-options``: every bad value is one ParameterError line."""

from __future__ import annotations

import pytest

from featscope.cli import main
from featscope.cli import tsne as tsne_cli
from featscope.cli.config import apply_cfg_options, load_config, parse_cfg_options
from featscope.errors import ParameterError


@pytest.fixture
def parser():
    return tsne_cli.build_parser()


def _toml(tmp_path, text: str):
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("perplexity = \n", r"is not valid TOML: .*fix the file"),
        ("perplexity = 5\nperplexity = 6\n", r"is not valid TOML"),
        ("[tsne\n", r"is not valid TOML"),
    ],
    ids=["no-value", "duplicate-key", "unclosed-table"],
)
def test_bad_toml(tmp_path, parser, text, match):
    with pytest.raises(ParameterError, match=match):
        load_config(_toml(tmp_path, text), parser)


def test_config_not_utf8_missing_or_a_folder(tmp_path, parser):
    (tmp_path / "latin1.toml").write_bytes(b'model = "caf\xe9"\n')
    with pytest.raises(ParameterError, match=r"'.*latin1\.toml' is not UTF-8 text"):
        load_config(tmp_path / "latin1.toml", parser)
    with pytest.raises(ParameterError, match=r"cannot read --config '.*nope\.toml': No such file"):
        load_config(tmp_path / "nope.toml", parser)
    with pytest.raises(ParameterError, match=r"cannot read --config '.*': Is a directory"):
        load_config(tmp_path, parser)


def test_unknown_key_suggests_the_nearest(tmp_path, parser):
    with pytest.raises(
        ParameterError, match=r"unknown option 'perplexty' .*did you mean perplexity"
    ):
        load_config(_toml(tmp_path, "perplexty = 5\n"), parser)


def test_table_of_another_subcommand_is_an_unknown_key(tmp_path, parser):
    with pytest.raises(ParameterError, match=r"unknown option 'featmap'"):
        load_config(_toml(tmp_path, "[featmap]\ntopk = 3\n"), parser)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dpi = 'abc'", r"`--dpi` in --config .* takes a whole number; got 'abc'"),
        ("dpi = 1.5", r"`--dpi` .* takes a whole number; got 1\.5"),
        ("dpi = true", r"`--dpi` .* takes a whole number; got True"),
        ("perplexity = [1, 2]", r"`--perplexity` .* takes one value; got the list \[1, 2\]"),
        ("perplexity = {a = 1}", r"`--perplexity` .* is a table \(\{'a': 1\}\)"),
        ("legend = 'yes'", r"`--legend` .* is an on/off flag; got 'yes'; use true or false"),
        ("method = 'tnse'", r"`--method` .* must be one of tsne, umap, pca; got 'tnse'"),
        ("format = ['png', 'gif']", r"`--format` .* must be one of png, pdf, svg, jpg; got 'gif'"),
        ("class_idx = [0, 'a']", r"`--class-idx` .* takes a whole number; got 'a'"),
        ("class_idx = [[0]]", r"`--class-idx` .* takes plain values; got \[0\] inside a list"),
        ("mean = [0.5, 0.5]", r"`--mean` .* takes 3 values; got 2"),
        ("model = 5", r"`--model` .* takes text; got 5; quote it"),
        ("work_dir = 1979-05-27", r"`--work-dir` .* got the TOML date/time .*; quote it"),
        ("learning_rate = 'fast'", r"`--learning-rate` .* takes a learning rate; got 'fast'"),
    ],
)
def test_config_value_of_the_wrong_type(tmp_path, parser, text, match):
    with pytest.raises(ParameterError, match=match):
        load_config(_toml(tmp_path, text + "\n"), parser)


def test_config_values_are_converted_like_flags(tmp_path, parser):
    text = (
        "[tsne]\nperplexity = 5\nn_iter = 300.0\nformat = 'svg'\nclass-idx = 2\n"
        "learning_rate = 'auto'\nmean = [0.5, 0.5, 0.5]\nhtml = false\n"
    )
    args = apply_cfg_options(parser, ["--config", str(_toml(tmp_path, text))])
    assert args.perplexity == 5.0
    assert isinstance(args.perplexity, float)
    assert args.n_iter == 300
    assert args.formats == ["svg"]  # the Figures field; `format` is its flag's name
    assert args.class_idx == [2]
    assert args.learning_rate == "auto"
    assert args.mean == [0.5, 0.5, 0.5]
    assert args.html is False


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("perplexity", r"--cfg-options takes key=value pairs; got 'perplexity'"),
        ("=5", r"takes key=value pairs; got '=5'"),
        ("dpi=abc", r"`--dpi` in --cfg-options takes a whole number; got 'abc'"),
        ("dpi={a=1}", r"`--dpi` in --cfg-options is a table"),
        ("n_iter=1e400", r"`--n-iter` .* takes a whole number; got inf"),
        ("legend=3", r"`--legend` .* is an on/off flag; got 3"),
        ("n_components=4", r"`--n-components` .* must be one of 2, 3; got 4"),
        ("arrangement=[2,3]", r"unknown option 'arrangement' in --cfg-options"),
    ],
)
def test_cfg_options_errors(parser, item, match):
    with pytest.raises(ParameterError, match=match):
        parse_cfg_options([item], parser)


def test_cfg_options_keep_the_text_of_bare_values_for_text_flags(parser):
    values = parse_cfg_options(
        ["work_dir=2024", "model=timm:resnet50", "format=pdf", "class_idx=5", "seed=3"], parser
    )
    assert values == {
        "work_dir": "2024",
        "model": "timm:resnet50",
        "formats": ["pdf"],
        "class_idx": [5],
        "seed": 3,
    }
    # a TOML date reached the view as a datetime (a traceback); the text is kept instead
    dated = parse_cfg_options(["work_dir=1979-05-27T07:32:00Z", "checkpoint=07:32:00"], parser)
    assert dated == {"work_dir": "1979-05-27T07:32:00Z", "checkpoint": "07:32:00"}


@pytest.mark.parametrize(
    "item", ["dpi=abc", "dpi={a=1}", "class_idx=[[1]]", "perplexity=[1,2]", "legend=3"]
)
def test_cli_bad_cfg_option_is_one_error_line_exit_2(tmp_path, capsys, item):
    # these used to reach the view as a str, dict or int and end in a traceback
    argv = ["tsne", "--cfg-options", item, "--work-dir", str(tmp_path / "wd")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: `--")
    assert not (tmp_path / "wd").exists()


def test_cli_bad_config_file_is_one_error_line_exit_2(tmp_path, capsys):
    config = _toml(tmp_path, "dpi = 'high'\n")
    assert main(["tsne", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: `--dpi` in --config {config} takes a whole number; got 'high' "
        "(invalid literal for int() with base 10: 'high')"
    ]
