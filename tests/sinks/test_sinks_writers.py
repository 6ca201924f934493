"""``run.write(result)``: each result type becomes its files, through one table of writers."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest
from _sinks_helpers import make_result

from featscope.errors import ParameterError
from featscope.results import FeatureSet, Provenance
from featscope.sinks import LocalRun, Sink, register_writer


def make_features(point="pre_logits", ids=("a/1.png", "a/2.png", "b,3.png", "c/4.png")):
    return FeatureSet(
        features=np.arange(12, dtype=np.float32).reshape(4, 3),
        labels=np.array([0, 2, 1, 2]),
        class_names=("cat", 'dog, "big"', "bird"),
        ids=ids,
        point=point,
        provenance=Provenance(model="timm:resnet18", source="demo:digits", seed=3),
    )


def test_write_embedding_csv_columns_and_quoting(tmp_path):
    result = make_result(n_components=3)
    with LocalRun(tmp_path, "tsne") as run:
        path = run.write_embedding(result, "neck")
        with pytest.raises(ParameterError, match="'neck' is already recorded"):
            run.write_embedding(result, "neck")
    assert path.name == "coords_neck.csv"
    with (run.final_path / "coords_neck.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "label", "class_name", "x", "y", "z"]
    assert rows[2] == ["a/2.png", "2", "bird", "1.0", "1.3333333333333333", "1.6666666666666667"]
    assert rows[3][:3] == ["b,3.png", "1", 'dog, "big"']
    raw = (run.final_path / "coords_neck.csv").read_text().splitlines()
    assert raw[3].startswith('"b,3.png",1,"dog, ""big""",')
    assert len(rows) == 5
    assert float(rows[4][5]) == result.coords[3, 2]


def test_write_dispatches_feature_sets_maps_and_figures(tmp_path):
    from featscope.render import plot_embedding

    result = make_result()
    with LocalRun(tmp_path, "tsne") as run:
        assert isinstance(run, Sink)
        first = run.write(make_features())
        second = run.write(make_features(point="layer4.1"))
        (coords,) = run.write(result)
        figure = run.write(plot_embedding(result).figure, name="tsne_pre_logits")
    final = run.final_path
    names = ["feat_pre_logits.npy", "labels.npy", "ids.txt", "class_names.txt"]
    assert [p.name for p in first] == names
    assert [p.name for p in second] == ["feat_layer4.1.npy"]  # the samples are written once
    assert coords.name == "coords_pre_logits.csv"
    assert [p.name for p in figure] == ["tsne_pre_logits.png"]
    # the layout the tsne view has always written
    np.testing.assert_array_equal(np.load(final / "feat_pre_logits.npy"), make_features().features)
    np.testing.assert_array_equal(np.load(final / "labels.npy"), [0, 2, 1, 2])
    assert (final / "ids.txt").read_text() == "a/1.png\na/2.png\nb,3.png\nc/4.png\n"
    assert (final / "class_names.txt").read_text() == 'cat\ndog, "big"\nbird\n'
    manifest = json.loads((final / "manifest.json").read_text())
    assert list(manifest["results"]) == ["pre_logits"]  # the map; feature files are data only
    assert manifest["results"]["pre_logits"]["method"] == "tsne"


def test_write_gives_the_same_table_as_write_embedding(tmp_path):
    result = make_result(n_components=3)
    with LocalRun(tmp_path, "tsne") as run:
        (by_type,) = run.write(result, name="a")
        by_name = run.write_embedding(result, "b")
        assert by_type.read_bytes() == by_name.read_bytes()
        with pytest.raises(ParameterError, match="'a' is already recorded"):
            run.write(result, name="a")


def test_feature_sets_of_other_samples_are_refused(tmp_path):
    with LocalRun(tmp_path, "tsne") as run:
        run.write(make_features())
        with pytest.raises(ParameterError, match=r"'neck' holds other samples .* ids\.txt"):
            run.write(make_features(point="neck", ids=("w", "x", "y", "z")))


def test_unknown_types_and_nameless_figures_name_the_fix(tmp_path):
    from matplotlib.figure import Figure

    run = LocalRun(tmp_path, "tsne")
    with pytest.raises(RuntimeError, match="inside `with LocalRun"):
        run.write(make_result())
    with run:
        with pytest.raises(
            ParameterError, match=r"no writer for a dict; .*register_writer\(dict\)"
        ):
            run.write({"a": 1})
        with pytest.raises(ParameterError, match="a figure needs a file name: pass name="):
            run.write(Figure())
        with pytest.raises(ParameterError, match="path separator"):
            run.write(make_result(), name="../up")
    with pytest.raises(ParameterError, match="takes a class or its dotted name"):
        register_writer(3)


@dataclass(frozen=True)
class Scores:
    """A result type the writers do not know yet."""

    values: tuple[float, ...]


class MoreScores(Scores):
    pass


def test_register_writer_is_one_decorator(tmp_path):
    @register_writer(Scores)
    def write_scores(run, result, name):
        return [run.write_json(name or "scores", {"values": result.values})]

    with LocalRun(tmp_path, "tsne") as run:
        assert [p.name for p in run.write(Scores((0.5, 1.0)))] == ["scores.json"]
        # a subclass uses its nearest registered base
        assert [p.name for p in run.write(MoreScores((2.0,)), name="more")] == ["more.json"]
    assert json.loads((run.final_path / "more.json").read_text()) == {"values": [2.0]}

    # by dotted name, for a type whose module is costly to import; a later one replaces it
    @register_writer(f"{__name__}.MoreScores")
    def write_more(run, result, name):
        return [run.write_text(f"{name}.txt", str(result.values))]

    with LocalRun(tmp_path, "tsne") as run:
        assert [p.name for p in run.write(MoreScores((3.0,)), name="m")] == ["m.txt"]
        assert [p.name for p in run.write(Scores((3.0,)), name="s")] == ["s.json"]


def test_a_shape_bias_run_writes_its_decisions_and_numbers(tmp_path):
    from featscope.analysis.shape_bias import reference_humans
    from featscope.data.cue_conflict import DecisionTable, read_decisions
    from featscope.results import ShapeBiasRun, ShapeBiasStats

    table = DecisionTable.from_decisions(
        "my_net", ["cat", "dog"], ["cat", "cat"], ["cat1-dog2.png", "cat2-dog1.png"]
    )
    humans = reference_humans()
    mine = ShapeBiasStats.from_counts(
        "my_net", {"cat": {"n_shape": 1, "n_texture": 1, "n_other": 0}}
    )
    evaluated = ShapeBiasRun(
        stats={"my_net": mine, "humans": humans},
        model_name="my_net",
        decisions=table,
        params={"mapping": "m"},
    )
    drawn = ShapeBiasRun(stats={"humans": humans})  # from csvs: no decisions of its own
    with LocalRun(tmp_path / "a", "shape_bias") as run:
        paths = run.write(evaluated)
    assert [p.name for p in paths] == ["cue-conflict_my-net_session-1.csv", "shape_bias.json"]
    final = run.final_path
    assert read_decisions(final / paths[0].name).object_response == ("cat", "dog")
    assert set(json.loads((final / "shape_bias.json").read_text())) == {"my_net", "humans"}
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["results"]["my_net"]["params"] == {"mapping": "m"}
    with LocalRun(tmp_path / "b", "shape_bias") as run:
        assert [p.name for p in run.write(drawn)] == ["shape_bias.json"]
        run.write(drawn, name="again")  # the key is the name given
    results = json.loads((run.final_path / "manifest.json").read_text())["results"]
    assert sorted(results) == ["again", "shape_bias"]


def test_a_browse_result_writes_browse_json(tmp_path):
    from featscope.results import BrowseResult

    result = BrowseResult(
        samples=(), mode="pipeline", transform="t", steps=("a", "b"), source="here",
        params={"n": np.int64(3)},
    )  # fmt: skip
    with LocalRun(tmp_path, "browse") as run:
        (path,) = run.write(result)
    assert path.name == "browse.json"
    saved = json.loads((run.final_path / "browse.json").read_text())
    assert saved == {
        "source": "here", "transform": "t", "steps": ["a", "b"], "params": {"n": 3}, "samples": []
    }  # fmt: skip
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    assert list(manifest["results"]) == ["browse"]
