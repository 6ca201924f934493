"""The stages the shape-bias view composes: names, csv sets, mappings, scores, who is drawn."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from featscope.analysis.shape_bias import (
    CATEGORIES,
    HUMANS,
    CategoryMapping,
    as_mapping,
    check_mapping,
    class_scores,
    load_mapping,
    mapping_source,
    model_shape_bias,
    reference_humans,
    select_decision_makers,
    with_reference_humans,
)
from featscope.data.cue_conflict import (
    DecisionTable,
    check_model_name,
    csv_name,
    decision_csv_files,
    default_model_name,
    read_decision_csvs,
    read_stimuli,
)
from featscope.errors import CaptureError, DataError, ParameterError
from featscope.results import Provenance, ShapeBiasRun, ShapeBiasStats

STIMULI = Path("/work/shared/data/cue-conflict")
CSV_DIR = Path("/work/shared/data/model-vs-human-cue-conflict")


def _stats(name: str, n_shape: int, n_texture: int) -> ShapeBiasStats:
    counts = {"cat": {"n_shape": n_shape, "n_texture": n_texture, "n_other": 1}}
    return ShapeBiasStats.from_counts(name, counts)


# --------------------------------------------------------------------------- names


def test_csv_name_uses_dashes_as_model_vs_human():
    assert csv_name("vit_b_16") == "cue-conflict_vit-b-16_session-1.csv"
    assert csv_name("my-model") == "cue-conflict_my-model_session-1.csv"


@pytest.mark.parametrize("good", ["resnet50", "my_r50", "a.b+c-d", "9net"])
def test_model_names_that_can_name_a_row_and_a_file(good):
    assert check_model_name(good) == good


@pytest.mark.parametrize("bad", ["a/b", "", "_hidden", ".x", "a b", None, 3])
def test_model_names_that_cannot(bad):
    with pytest.raises(ParameterError, match=r"`model_name` .* cannot name a csv row and file"):
        check_model_name(bad)


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("timm:resnet50", "resnet50"),
        ("demo:efficientnet-lite0", "efficientnet_lite0"),
        ("hf:./models/vit-base/", "vit_base"),
        ("py:pkg.nets:build", "build"),
        ("ts:weights/model.pt", "model"),
        ("tv:resnet18", "resnet18"),
        ("my_pkg.models.Constant", "Constant"),
        ("ts:___.pt", "model"),
    ],
)
def test_default_model_name_from_the_spec(spec, name):
    assert default_model_name(spec) == name


# --------------------------------------------------------------------------- csv sets


def test_decision_csv_files_expands_folders_in_order(tmp_path):
    one = tmp_path / "one.csv"
    shutil.copy(CSV_DIR / "cue-conflict_alexnet_session-1.csv", one)
    files = decision_csv_files([one, CSV_DIR])
    assert files[0] == one
    assert files[1:] == sorted(CSV_DIR.glob("*.csv"))
    assert decision_csv_files(one) == [one]
    with pytest.raises(ParameterError, match="`paths` is empty"):
        decision_csv_files([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"folder '.*empty' holds no \.csv files"):
        decision_csv_files(tmp_path / "empty")
    with pytest.raises(DataError, match=r"'.*missing' does not exist"):
        decision_csv_files(tmp_path / "missing")


def test_read_decision_csvs_joins_files_and_refuses_a_subject_twice(tmp_path):
    alexnet = CSV_DIR / "cue-conflict_alexnet_session-1.csv"
    resnet = CSV_DIR / "cue-conflict_resnet50_session-1.csv"
    table, files = read_decision_csvs([alexnet, resnet])
    assert files == [alexnet, resnet]
    assert table.subjects() == ("alexnet", "resnet50")
    assert len(table) == 2 * 1280
    assert table.source == f"{alexnet}, {resnet}"
    shutil.copy(alexnet, tmp_path / "copy.csv")
    with pytest.raises(DataError, match=r"'alexnet' is in both '.*alexnet.*' and '.*copy.csv'"):
        read_decision_csvs([alexnet, tmp_path / "copy.csv"])
    (tmp_path / "header.csv").write_text("subj,object_response,category,imagename\n")
    with pytest.raises(DataError, match="hold no rows"):
        read_decision_csvs(tmp_path / "header.csv")


def test_decision_table_for_stimuli(tmp_path):
    for name in ("airplane/airplane1-bicycle2.png", "bicycle/bicycle1-airplane2.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STIMULI / name, tmp_path / name)
    table = DecisionTable.for_stimuli("m", ["bicycle", "bicycle"], read_stimuli(tmp_path))
    assert table.subj == ("m", "m")
    assert table.category == ("airplane", "bicycle")
    assert table.imagename == ("airplane1-bicycle2.png", "bicycle1-airplane2.png")
    assert table.object_response == ("bicycle", "bicycle")
    assert table.trial == ("1", "2")


def test_model_shape_bias_decides_counts_and_sets_the_humans_beside(tmp_path):
    names = [
        "airplane/airplane1-bicycle2.png",  # shape
        "bicycle/bicycle1-airplane2.png",  # texture
        "clock/clock1-bear1.png",  # other
        "airplane/airplane10-airplane1.png",  # excluded (no conflict)
    ]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STIMULI / name, tmp_path / name)
    stimuli = read_stimuli(tmp_path)
    logits = np.zeros((4, 16), dtype=np.float32)
    logits[:, CATEGORIES.index("airplane")] = 5.0  # always "airplane"
    origin = Provenance(model="test:constant", source=str(tmp_path))
    run = model_shape_bias("always_airplane", logits, stimuli, provenance=origin)
    assert isinstance(run, ShapeBiasRun)
    assert run.model_name == "always_airplane"
    assert run.shown == (HUMANS, "always_airplane")
    stats = run["always_airplane"]
    assert (stats.n_shape, stats.n_texture, stats.n_other, stats.n_excluded) == (1, 1, 1, 1)
    assert run.shape_bias == pytest.approx(0.5)
    assert run[HUMANS].shape_bias == pytest.approx(reference_humans().shape_bias)
    assert run.decisions.object_response == ("airplane",) * 4
    assert run.decisions.imagename == tuple(sid.rsplit("/", 1)[-1] for sid in stimuli.ids)
    assert run.params == {"mapping": "16 outputs (the categories)"}
    assert run.provenance is origin
    wide = check_mapping({c: [k] for k, c in enumerate(CATEGORIES)}, "map.json")
    padded = np.concatenate([logits, np.zeros((4, 4), dtype=np.float32)], axis=1)
    assert model_shape_bias("m", padded, stimuli, wide).params == {"mapping": "map.json"}
    assert model_shape_bias("m", logits, stimuli).provenance == Provenance()
    with pytest.raises(ParameterError, match=r"outputs 10 classes; shape bias needs 1000"):
        model_shape_bias("m", np.zeros((4, 10)), stimuli)


# --------------------------------------------------------------------------- mappings


def test_check_mapping_freezes_and_names_the_source():
    table = {c: [k] for k, c in enumerate(CATEGORIES)}
    table["dog"] = ["16", 17]  # integer strings are indices too
    mapping = check_mapping(table, "mine")
    assert mapping.indices["dog"] == (16, 17)
    assert mapping.source == "mine"
    assert mapping.min_outputs == 18
    with pytest.raises(DataError, match="mapping mine must map each category"):
        check_mapping([1, 2], "mine")
    with pytest.raises(DataError, match=r"missing: bear.*unknown: none"):
        check_mapping({c: [k] for k, c in enumerate(CATEGORIES) if c != "bear"}, "mine")
    with pytest.raises(DataError, match="class 0 is in both 'airplane' and 'bear'"):
        check_mapping({**table, "bear": [0]}, "mine")
    with pytest.raises(DataError, match="category 'cat' has the index -1"):
        check_mapping({**table, "cat": [-1]}, "mine")
    with pytest.raises(DataError, match="category 'cat' has no classes"):
        check_mapping({**table, "cat": []}, "mine")


def test_as_mapping_takes_files_dicts_and_tables(tmp_path):
    assert as_mapping(None) is None
    shipped = load_mapping()
    assert as_mapping(shipped) is shipped
    table = {c: [k] for k, c in enumerate(CATEGORIES)}
    from_dict = as_mapping(table)
    assert isinstance(from_dict, CategoryMapping)
    assert from_dict.source == "`mapping`"
    path = tmp_path / "map.json"
    path.write_text(json.dumps(table))
    assert as_mapping(path).indices == from_dict.indices
    assert as_mapping(str(path)).source == str(path)
    with pytest.raises(ParameterError, match=r"`mapping` must be a JSON/csv file.*got int"):
        as_mapping(3)


def test_mapping_source_says_which_table_decided():
    assert mapping_source(None, 1000) == "featscope:imagenet_16.json"
    assert mapping_source(None, 16) == "16 outputs (the categories)"
    table = check_mapping({c: [k] for k, c in enumerate(CATEGORIES)}, "map.json")
    assert mapping_source(table, 20) == "map.json"


def test_class_scores_takes_the_single_output():
    logits = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(class_scores({"logits": logits}), logits)
    with pytest.raises(CaptureError, match=r"returns 2 outputs \(logits.0, logits.1\)"):
        class_scores({"logits.0": logits, "logits.1": logits})


# --------------------------------------------------------------------------- who is drawn


def test_with_reference_humans_adds_them_only_when_missing():
    model = _stats("m", 1, 3)
    added = with_reference_humans({"m": model})
    assert list(added) == ["m", HUMANS]
    assert added[HUMANS].shape_bias == pytest.approx(0.9587, abs=5e-5)
    own = _stats(HUMANS, 9, 1)
    assert with_reference_humans({HUMANS: own, "m": model})[HUMANS] is own


def test_select_decision_makers_orders_by_shape_bias_and_puts_humans_first():
    stats = {
        "low": _stats("low", 1, 9),
        "subject-01": _stats("subject-01", 9, 1),
        "none": _stats("none", 0, 0),  # NaN shape bias: last
        "high": _stats("high", 8, 2),
        HUMANS: _stats(HUMANS, 9, 1),
    }
    assert select_decision_makers(stats) == (HUMANS, "high", "low", "none")
    assert select_decision_makers(stats, ["low", "high", "low"]) == (HUMANS, "low", "high")
    # humans named by the user keep their place
    assert select_decision_makers(stats, ["low", HUMANS]) == ("low", HUMANS)


def test_select_decision_makers_hints_underscores():
    stats = {"vit_b_16": _stats("vit_b_16", 1, 1), HUMANS: _stats(HUMANS, 1, 0)}
    with pytest.raises(DataError, match=r"'vit-b-16' not in the csvs \(did you mean vit_b_16\?\)"):
        select_decision_makers(stats, ["vit-b-16"])
    with pytest.raises(DataError, match=r"'nope' not in the csvs; they hold: vit_b_16"):
        select_decision_makers(stats, ["nope"])


# --------------------------------------------------------------------------- result types


def test_stats_metrics_and_the_run_result():
    model = _stats("m", 1, 3)
    assert model.metrics == {
        "shape_bias": 0.25,
        "shape_accuracy": 0.2,
        "texture_accuracy": 0.6,
        "n_shape": 1,
        "n_texture": 3,
        "n_other": 1,
    }
    run = ShapeBiasRun(stats={"m": model, HUMANS: reference_humans()}, model_name="m")
    assert run.shape_bias == 0.25
    assert run.metrics == model.metrics
    assert set(run.to_dict()) == {"m", HUMANS}
    assert run.provenance.model is None
    with pytest.raises(KeyError, match="no decision maker 'x'; this run has: m, humans"):
        run["x"]
    from_csvs = ShapeBiasRun(stats={"m": model})
    assert from_csvs.metrics is None
    with pytest.raises(ParameterError, match="made from csvs"):
        from_csvs.shape_bias  # noqa: B018


def test_from_counts_orders_categories_and_sums():
    counts = {
        "dog": {"n_shape": 1, "n_texture": 0, "n_other": 0},
        "bear": {"n_shape": 0, "n_texture": 0, "n_other": 2},
    }
    stats = ShapeBiasStats.from_counts("m", counts, n_excluded=4)
    assert list(stats.per_category) == ["bear", "dog"]
    assert (stats.n_shape, stats.n_texture, stats.n_other, stats.n_excluded) == (1, 0, 2, 4)
    assert math.isnan(stats.per_category["bear"]["shape_bias"])
    assert stats.texture_fraction("dog") == 0.0
