"""The photos of a feature-map run (data.photos) and how a drawn map is written (sinks.featmap)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from featmap_view_helpers import photo, save_photo
from PIL import Image

from featscope.data.photos import PhotoItem, collect_photos, read_photos, reject_model
from featscope.errors import DataError, ParameterError
from featscope.results import FeatureMap, Provenance
from featscope.sinks import LocalRun
from featscope.sinks.featmap import record_featmap_run, write_feature_map


def test_collect_keeps_the_order_given_and_reads_no_pixel(tmp_path):
    first = save_photo(tmp_path / "a" / "cat.png", seed=1)
    save_photo(tmp_path / "b" / "cat.png", seed=2)
    save_photo(tmp_path / "b" / "dog.png", seed=3)
    array = np.zeros((4, 5, 3), np.uint8)
    photos, source = collect_photos([first, ("mine", photo(4)), tmp_path / "b", array])
    assert [p.id for p in photos] == [
        str(first),
        "mine",
        str(tmp_path / "b" / "cat.png"),
        str(tmp_path / "b" / "dog.png"),
        "image3",
    ]
    assert [p.stem for p in photos] == ["a_cat", "mine", "b_cat", "dog", "image3"]
    assert source.endswith(" ...")
    assert photos[-1].load().size == (5, 4)
    (single,), _ = collect_photos(array)
    assert single.id == "image0"


def test_collect_names_the_argument_in_its_errors(tmp_path):
    with pytest.raises(DataError, match=r"`images` is empty"):
        collect_photos([], name="images")
    with pytest.raises(DataError, match=r"`data` must be image files or folders"):
        collect_photos(3)
    (bad,), _ = collect_photos([("f", np.zeros((2, 2), np.float32))])
    with pytest.raises(DataError, match=r"image 'f' is a ndarray of shape \(2, 2\) and dtype"):
        bad.load()


def test_read_photos_skips_only_when_asked_and_fails_when_none_is_readable(tmp_path):
    good = save_photo(tmp_path / "good.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    photos, _ = collect_photos([broken, good])
    with pytest.raises(DataError, match=r"broken\.png"):
        list(read_photos(photos))
    skipped: list = []
    with pytest.warns(UserWarning, match=r"skipped image .*broken\.png"):
        read = list(read_photos(photos, skip_bad_images=True, skipped=skipped))
    assert [item.id for item, _ in read] == [str(good)]
    assert isinstance(read[0][1], Image.Image)
    assert [s[0] for s in skipped] == [str(broken)]
    only_bad, _ = collect_photos([broken])
    with (
        pytest.warns(UserWarning, match="skipped image"),
        pytest.raises(DataError, match=r"none of the 1 image\(s\) could be read"),
    ):
        list(read_photos(only_bad, skip_bad_images=True))


def _map(file: str | None = "p_layer1") -> FeatureMap:
    drawn = (np.random.default_rng(0).random((6, 8, 3)) * 255).astype(np.uint8)
    values = np.ones((3, 2, 2), np.float32)
    params = {"shape": [3, 2, 2]}
    return FeatureMap("p", "layer1", "layer1", values, drawn, file, params, Provenance("m"))


def test_write_feature_map_writes_every_format_the_raw_map_and_its_entry(tmp_path):
    fmap = _map()
    with LocalRun(tmp_path, "featmap") as run:
        files = write_feature_map(run, fmap, ["png", "jpg", "svg"], dpi=72)
        with pytest.raises(ParameterError, match=r"feature map 'layer1' of 'p' has no file stem"):
            write_feature_map(run, _map(None))
    assert [f.name for f in files] == [f"p_layer1.{s}" for s in ("png", "jpg", "svg", "npy")]
    folder = run.final_path
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "p_layer1.png")), fmap.drawn)
    np.testing.assert_array_equal(np.load(folder / "p_layer1.npy"), fmap.values)
    entry = json.loads((folder / "manifest.json").read_text())["results"]["p_layer1"]
    assert entry["point"] == "layer1"
    assert entry["params"] == {"shape": [3, 2, 2]}
    assert entry["provenance"]["model"] == "m"


def test_reject_model_points_to_the_call_with_images_first():
    import torch

    usage = "feature_maps(data, model=...)"
    for data in (torch.nn.Linear(2, 2), ["a.png", torch.nn.ReLU()]):
        with pytest.raises(
            ParameterError, match=r"`data` holds a model; .*feature_maps\(data, model"
        ):
            reject_model(data, usage)
    reject_model(["a.png", np.zeros((4, 4, 3), np.uint8)], usage)  # images pass
    reject_model(None, usage)


def test_record_featmap_run_keeps_the_request_in_the_manifest(tmp_path):
    origins = [
        Provenance("ts:a.pt", "a.pt", "0" * 64, "here"),
        Provenance("ts:b.pt", source="here"),
    ]
    images = [PhotoItem("x/1.png", "1", None), PhotoItem("bad.png", "bad", None)]
    with LocalRun(tmp_path, "featmap_diff") as run:
        record_featmap_run(
            run, "featmap_diff", {"alpha": 0.5}, origins, ["layer1"], "here", images,
            [("bad.png", "truncated")],
        )  # fmt: skip
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    assert manifest["metadata"]["view"] == "featmap_diff"
    assert manifest["metadata"]["options"] == {"alpha": 0.5}
    assert manifest["metadata"]["models"] == [
        {"spec": "ts:a.pt", "checkpoint": "a.pt", "sha256": "0" * 64},
        {"spec": "ts:b.pt", "checkpoint": None, "sha256": None},
    ]
    assert manifest["metadata"]["points"] == ["layer1"]
    assert manifest["metadata"]["source"] == "here"
    assert manifest["metadata"]["images"] == [
        {"id": "x/1.png", "stem": "1"},
        {"id": "bad.png", "stem": "bad"},
    ]
    assert manifest["metadata"]["skipped"] == [["bad.png", "truncated"]]
