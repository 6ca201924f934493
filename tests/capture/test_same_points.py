"""Points that resolve to the same output are mapped once, and dict-item fields travel along."""

from __future__ import annotations

import numpy as np

from featscope.capture import extract_feature_sets
from featscope.capture.feature_sets import same_outputs
from featscope.data import load_samples
from featscope.models import load_model
from featscope.options import Extraction


def test_same_outputs_groups_equal_features_within_rounding():
    a = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    groups = same_outputs({"x": a, "y": a + 1e-7, "z": a * 2, "w": a.copy(), "v": a[:, :4]})
    assert groups == {"x": ("y", "w")}
    assert same_outputs({"x": a, "z": -a}) == {}


class _DictItems:
    """A Dataset of dict items with extra scalar fields."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        image = np.full((8, 8), 40 * i, dtype=np.uint8)
        return {"image": image, "label": i % 2, "site": ["a", "b"][i // 3], "_id": i, "mask": image}


def test_demo_backbone_and_neck_are_the_same_and_dict_fields_travel():
    samples = load_samples(_DictItems())
    assert set(samples.metadata) == {"site", "meta_id"}  # the mask is not a scalar
    handle = load_model("demo:digits-cnn")
    out = extract_feature_sets(
        handle, samples, ["backbone", "neck", "backbone.1"], Extraction(progress=False)
    )
    assert [fs.point for fs in out.feature_sets] == ["backbone", "backbone.1"]
    assert out.duplicates == {"backbone": ("neck",)}
    fs = out.feature_sets[0]
    assert fs.aliases == ("neck",)
    assert fs.fields["site"].tolist() == ["a", "a", "a", "b", "b", "b"]
    assert fs.logits.shape == (6, 10)  # captured beside, not mapped
