"""The 1000-to-16 mapping, decisions on hand-made probabilities, and the shape-bias formula."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from featscope.analysis.shape_bias import (
    CATEGORIES,
    HUMANS,
    category_probabilities,
    decide,
    decide_from_logits,
    human_order,
    load_mapping,
    reference_humans,
    shape_bias_by_subject,
    shape_bias_from_decisions,
    softmax,
)
from featscope.data.cue_conflict import concat_tables, read_decisions, split_imagename
from featscope.errors import DataError, ParameterError

SHARED = Path("/work/shared/data")
CSV_DIR = SHARED / "model-vs-human-cue-conflict"


# --------------------------------------------------------------------------- mapping


def test_mapping_has_207_classes_none_shared_and_matches_the_shared_table():
    mapping = load_mapping()
    assert tuple(mapping.indices) == CATEGORIES
    all_indices = [i for values in mapping.indices.values() for i in values]
    assert len(all_indices) == 207
    assert len(set(all_indices)) == 207  # no class in two categories
    assert mapping.n_classes == 207
    assert mapping.min_outputs <= 1000
    counts = {c: len(v) for c, v in mapping.indices.items()}
    assert counts["dog"] == 109
    assert counts["bird"] == 49
    assert counts["truck"] == 8
    assert mapping.indices["airplane"] == (404,)
    assert mapping.indices["knife"] == (499,)
    assert mapping.indices["oven"] == (766,)
    shared = json.loads((SHARED / "cue-conflict" / "imagenet_16class_indices.json").read_text())
    assert {c: list(v) for c, v in mapping.indices.items()} == shared["categories"]


def test_user_mapping_json_and_csv(tmp_path):
    table = {c: [2 * k, 2 * k + 1] for k, c in enumerate(CATEGORIES)}
    json_path = tmp_path / "map.json"
    json_path.write_text(json.dumps({"categories": table}))
    assert load_mapping(json_path).indices["bear"] == (2, 3)
    csv_path = tmp_path / "map.csv"
    rows = ["category,index"] + [f"{c},{i}" for c, v in table.items() for i in v]
    csv_path.write_text("\n".join(rows) + "\n")
    mapping = load_mapping(csv_path)
    assert mapping.indices == load_mapping(json_path).indices
    assert mapping.min_outputs == 32


def test_user_mapping_errors(tmp_path):
    table = {c: [k] for k, c in enumerate(CATEGORIES)}
    table["bear"] = [0]  # also airplane's
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(table))
    with pytest.raises(DataError, match=r"class 0 is in both 'airplane' and 'bear'"):
        load_mapping(path)
    del table["bear"]
    path.write_text(json.dumps({**table, "cats": [99]}))
    with pytest.raises(DataError, match=r"missing: bear; unknown: cats"):
        load_mapping(path)
    path.write_text(json.dumps({c: [-1] for c in CATEGORIES}))
    with pytest.raises(DataError, match="integers >= 0"):
        load_mapping(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_mapping(path)


# --------------------------------------------------------------------------- decisions


def _probs(assign: dict[int, float]) -> np.ndarray:
    p = np.zeros(1000)
    for index, value in assign.items():
        p[index] = value
    return p


def test_category_score_is_the_mean_not_the_sum_or_max():
    dog = load_mapping().indices["dog"]
    bear = load_mapping().indices["bear"]
    bicycle = load_mapping().indices["bicycle"]
    # sum rule would pick dog (109 * 0.004 = 0.436 > 0.1), mean picks airplane
    by_sum = _probs({404: 0.1, **{i: 0.004 for i in dog}})
    # max rule would pick bear (0.3), mean picks bicycle (0.12 > 0.3 / 4)
    by_max = _probs({bear[0]: 0.3, bicycle[0]: 0.12, bicycle[1]: 0.12})
    # classes outside the 207 are ignored, however likely
    ignored = _probs({0: 0.9, 499: 0.05, 766: 0.04})
    decisions = decide(np.stack([by_sum, by_max, ignored]))
    assert decisions.tolist() == ["airplane", "bicycle", "knife"]
    scores = category_probabilities(by_max[None])
    assert scores.shape == (1, 16)
    assert scores[0, CATEGORIES.index("bear")] == pytest.approx(0.075)
    assert scores[0, CATEGORIES.index("bicycle")] == pytest.approx(0.12)


def test_sixteen_outputs_are_the_categories_in_sorted_order():
    p = np.full((2, 16), 0.01)
    p[0, CATEGORIES.index("truck")] = 0.5
    p[1, CATEGORIES.index("cat")] = 0.5
    assert decide(p).tolist() == ["truck", "cat"]


def test_decide_from_logits_applies_softmax_first():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 1000)) * 4
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert decide_from_logits(logits).tolist() == decide(probs).tolist()
    # the mean of probabilities, not of logits: bear's logits average (27 - 20) / 4 = 1.75 < 3,
    # but three of its classes are far more probable than bicycle's two
    mapping = load_mapping()
    rows = np.full((1, 1000), -10.0)
    rows[0, list(mapping.indices["bear"])] = [9.0, 9.0, 9.0, -20.0]
    rows[0, list(mapping.indices["bicycle"])] = [3.0, 3.0]
    assert decide_from_logits(rows).tolist() == ["bear"]


def test_output_width_neither_1000_nor_16_needs_a_mapping():
    with pytest.raises(ParameterError, match=r"outputs 10 classes; shape bias needs 1000"):
        decide(np.ones((3, 10)) / 10)
    with pytest.raises(ParameterError, match=r"2-D"):
        decide(np.ones(1000))
    small = load_mapping()
    with pytest.raises(ParameterError, match=r"uses class indices up to 914"):
        decide(np.ones((1, 500)) / 500, small)


# --------------------------------------------------------------------------- the formula


def test_split_imagename_handles_the_humans_prefix():
    assert split_imagename("airplane1-bicycle2.png") == ("airplane", "bicycle")
    assert split_imagename("0001_s5n_s01_0_bird_00_bird3-clock2.png") == ("bird", "clock")
    with pytest.raises(DataError, match="not a cue-conflict stimulus name"):
        split_imagename("photo.png")


def test_same_shape_and_texture_images_are_excluded():
    images = [
        "airplane1-bicycle2.png",  # shape decision
        "airplane2-bicycle1.png",  # texture decision
        "airplane10-airplane1.png",  # no conflict: left out whatever the response
        "airplane3-airplane2.png",  # no conflict
        "bicycle1-airplane2.png",  # other decision
    ]
    shapes = ["airplane", "airplane", "airplane", "airplane", "bicycle"]
    responses = ["airplane", "bicycle", "airplane", "airplane", "na"]
    stats = shape_bias_from_decisions(responses, shapes, images, name="m")
    assert (stats.n_shape, stats.n_texture, stats.n_other, stats.n_excluded) == (1, 1, 1, 2)
    assert stats.shape_bias == pytest.approx(0.5)  # would be 0.75 with the excluded trials
    assert stats.shape_accuracy == pytest.approx(1 / 3)
    assert stats.texture_accuracy == pytest.approx(1 / 3)
    assert dict(stats.per_category["airplane"]) == {
        "shape_bias": 0.5,
        "n_shape": 1,
        "n_texture": 1,
        "n_other": 0,
    }
    assert math.isnan(stats.per_category["bicycle"]["shape_bias"])
    with pytest.raises(DataError, match="none of the 1 trials"):
        shape_bias_from_decisions(["car"], ["car"], ["car1-car2.png"])
    with pytest.raises(DataError, match=r"shape category 'cow'"):
        shape_bias_from_decisions(["car"], ["cow"], ["cow1-car2.png"])


@pytest.fixture(scope="module")
def published():
    tables = [read_decisions(p) for p in sorted(CSV_DIR.glob("*.csv"))]
    return shape_bias_by_subject(concat_tables(tables))


def test_published_shape_bias_from_the_shared_csvs(published):
    assert round(100 * published["resnet50"].shape_bias, 1) == 21.4
    assert round(100 * published[HUMANS].shape_bias, 1) == 95.9
    assert round(100 * published["resnet50_trained_on_SIN"].shape_bias, 1) == 81.4
    r50 = published["resnet50"]
    assert (r50.n_shape, r50.n_texture, r50.n_other, r50.n_excluded) == (169, 620, 411, 80)
    assert published[HUMANS].shape_bias == pytest.approx(0.9587, abs=5e-5)
    # every category has 75 conflict trials, so the ICLR script's per-category mean agrees
    assert set(r50.per_category) == set(CATEGORIES)
    for entry in r50.per_category.values():
        assert entry["n_shape"] + entry["n_texture"] + entry["n_other"] == 75
    # 10 subjects pooled
    assert sum(1 for name in published if name.startswith("subject-")) == 10
    assert published[HUMANS].n_excluded == 800


def test_shipped_human_reference_equals_the_pooled_subjects(published):
    shipped = reference_humans()
    assert shipped.to_dict() == published[HUMANS].to_dict()
    order = human_order(published[HUMANS])
    assert sorted(order) == list(CATEGORIES)
    fractions = [published[HUMANS].texture_fraction(c) for c in order]
    assert fractions == sorted(fractions)
