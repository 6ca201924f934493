"""feature_map_difference(): |F_a - F_b| paired by name, shape mismatch names both shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from featmap_view_helpers import photo, tiny_handle

from featscope.analysis.featmap import FeatmapStyle
from featscope.capture.hooks import capture
from featscope.errors import CaptureError, ParameterError
from featscope.options import Output
from featscope.views.featmap import feature_map_difference


def _neck(handle, picture):
    with capture(handle, ["neck"]) as tap:
        return tap.run(handle.preprocess(picture)[None])["neck"]


def test_levels_are_paired_by_name_not_by_order(tmp_path):
    a = tiny_handle(seed=0, as_dict=True)
    b = tiny_handle(seed=1, as_dict=True, reverse=True)  # {"p4": ..., "p3": ...}
    picture = photo(1)
    run = feature_map_difference(
        [("p", picture)], (a, b), ["neck"], output=Output(work_dir=tmp_path)
    )
    assert [m.name for m in run.maps] == ["neck.p3", "neck.p4"]
    fa, fb = _neck(a, picture), _neck(b, picture)
    for level in ("p3", "p4"):
        expected = np.abs(fa[level][0].numpy() - fb[level][0].numpy())
        np.testing.assert_allclose(run["p", f"neck.{level}"].values, expected, rtol=0, atol=0)
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["view"] == "featmap_diff"
    assert [m["spec"] for m in manifest["metadata"]["models"]] == ["tiny-0", "tiny-1"]
    assert run.run_dir.name.startswith("featmap_diff_")


def test_identical_models_differ_nowhere_and_the_scale_starts_at_zero():
    a, b = tiny_handle(seed=3), tiny_handle(seed=3)
    run = feature_map_difference([("p", photo(2))], (a, b), ["neck"], output=Output(work_dir=None))
    for item in run:
        assert not item.values.any()
        assert item.params["value_range"] == [0.0, 0.0]
        # a constant map is the low end of JET everywhere (dark blue)
        assert (item.drawn == np.array([0, 0, 128], np.uint8)).all()


def test_shared_scale_is_on_by_default_and_anchored_at_zero():
    run = feature_map_difference(
        [("p", photo(2))],
        (tiny_handle(seed=0), tiny_handle(seed=1)),
        ["neck"],
        output=Output(work_dir=None),
    )
    low, high = run["p", "neck.0"].params["value_range"]
    assert low == 0.0
    assert high > 0
    assert run["p", "neck.1"].params["value_range"] == [low, high]
    off = feature_map_difference(
        [("p", photo(2))],
        (tiny_handle(seed=0), tiny_handle(seed=1)),
        ["neck"],
        style=FeatmapStyle(shared_scale=False),
        output=Output(work_dir=None),
    )
    assert off["p", "neck.0"].params["value_range"] is None


def test_shape_mismatch_names_both_shapes():
    a, b = tiny_handle(seed=0), tiny_handle(seed=0, width=5)
    with pytest.raises(
        CaptureError,
        match=r"'stage' of image 'p': model A \(tiny-0\) gives \(C, H, W\) = \(6, 8, 8\) and "
        r"model B \(tiny-0\) gives \(5, 8, 8\)",
    ):
        feature_map_difference([("p", photo(2))], (a, b), ["stage"], output=Output(work_dir=None))


class _OnlyP3(torch.nn.Module):
    def forward(self, x):
        return {"p3": x}


def test_outputs_in_one_model_only_are_skipped_with_a_warning():
    a = tiny_handle(seed=0, as_dict=True)
    b = tiny_handle(seed=1, as_dict=True)
    b.module.neck = _OnlyP3()
    with pytest.warns(UserWarning, match=r"outputs \['neck.p4'\] exist only in model A"):
        run = feature_map_difference(
            [("p", photo(2))], (a, b), ["neck"], output=Output(work_dir=None)
        )
    assert [m.name for m in run.maps] == ["neck.p3"]
    c = tiny_handle(seed=1)  # tuple output: levels "0", "1" instead of "p3", "p4"
    with (
        pytest.warns(UserWarning, match="only in model B"),
        pytest.raises(CaptureError, match="none has the same name"),
    ):
        feature_map_difference([("p", photo(2))], (a, c), ["neck"], output=Output(work_dir=None))


def test_two_models_are_required():
    with pytest.raises(ParameterError, match="`models` must be two models"):
        feature_map_difference(
            [("p", photo(2))], (tiny_handle(),), ["neck"], output=Output(work_dir=None)
        )
    with pytest.raises(ParameterError, match="`models` must be two models"):
        feature_map_difference([("p", photo(2))], "timm:resnet18", output=Output(work_dir=None))
    with pytest.raises(ParameterError, match="one checkpoint \\(or None\\) per model"):
        feature_map_difference(
            [("p", photo(2))], (tiny_handle(), tiny_handle()), checkpoints=["a.pth"]
        )


def test_a_point_missing_in_model_b_fails_before_any_image_is_read(tmp_path):
    from featscope.models.handle import ModelHandle

    other = ModelHandle(torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3)), "seq", "factory")
    with pytest.raises(CaptureError, match="capture point 'stage' is not in this model \\(seq\\)"):
        feature_map_difference([tmp_path / "missing.png"], (tiny_handle(), other), ["stage"])
