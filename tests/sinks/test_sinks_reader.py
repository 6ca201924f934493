"""``load_run``: the one reader of a run folder gives back what was written, or one clear error."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from _sinks_helpers import make_result

import featscope
from featscope.errors import DataError
from featscope.results import FeatureSet
from featscope.sinks import LocalRun, RunRecord, load_run
from featscope.sinks.manifest import sha256


def _features(result, point):
    return FeatureSet(
        features=np.ones((len(result.ids), 3), dtype=np.float32),
        labels=result.labels,
        class_names=result.class_names,
        ids=result.ids,
        point=point,
    )


@pytest.fixture
def tsne_run(tmp_path):
    """Two maps with their feature sets, thumbnails for samples 1 and 3, a metrics file."""
    maps = [make_result(metrics={"knn": 0.5, "bad": float("nan")}), make_result(n_components=3)]
    maps[1] = dataclasses.replace(maps[1], point="neck", method="umap")
    with LocalRun(tmp_path, "tsne", name="run") as run:
        for result in maps:
            run.write(_features(result, result.point))
            run.write(result)
        run.write_array("thumbnails.npy", np.full((2, 4, 4, 3), 7, dtype=np.uint8))
        run.write_array("thumbnail_rows.npy", np.array([3, 1]))
        run.write_json("metrics.json", {"neck": {"knn": 1.0}})
        run.add_metadata("options", {"seed": 3})
    return run.final_path, maps


def test_load_run_gives_back_maps_samples_and_thumbnails(tsne_run):
    folder, (first, _) = tsne_run
    run = featscope.load_run(folder)
    assert featscope.load_run is load_run
    assert isinstance(run, RunRecord)
    assert run.path == folder
    assert run.view == "tsne"
    assert list(run.embeddings) == ["neck", "pre_logits"]  # the manifest's (sorted) order
    back = run.embedding("pre_logits")
    np.testing.assert_array_equal(back.coords, first.coords)  # full precision round trip
    np.testing.assert_array_equal(back.labels, first.labels)
    assert back.ids == first.ids
    assert back.class_names == first.class_names
    assert back.params == {"init": "pca", "perplexity": 30.0}
    assert back.metrics == {"knn": 0.5}  # NaN was written as null: left out
    assert back.provenance.model == "timm:resnet18"
    assert back.provenance.seed == 3
    assert run.embedding("neck").method == "umap"
    assert run.embedding("neck").n_components == 3
    assert run.ids == first.ids
    assert run.class_names == first.class_names
    np.testing.assert_array_equal(run.labels, first.labels)
    assert run.thumbnails.shape == (2, 4, 4, 3)
    assert run.thumbnail_rows.tolist() == [3, 1]
    uris = run.thumbnail_uris()
    assert sorted(uris) == [first.ids[1], first.ids[3]]
    assert all(u.startswith("data:image/webp;base64,") for u in uris.values())
    assert run.metadata["options"]["seed"] == 3
    assert run.results["neck"]["method"] == "umap"
    assert "coords_neck.csv" in run.files
    assert "manifest.json" not in run.files


def test_other_files_are_one_call_away(tsne_run):
    folder, (first, _) = tsne_run
    run = load_run(folder, view="tsne")
    assert run.read_json("metrics.json") == {"neck": {"knn": 1.0}}
    assert run.read_array("feat_neck.npy").shape == (4, 3)
    assert run.read_text("ids.txt").splitlines() == list(first.ids)
    header, rows = run.read_csv("coords_pre_logits.csv")
    assert header == ("id", "label", "class_name", "x", "y")
    assert len(rows) == 4
    with pytest.raises(DataError, match=r"'nope\.npy' is not a file of run .*lists \["):
        run.read_array("nope.npy")
    with pytest.raises(
        DataError, match=r"records no result 'layer9'; it has \['neck', 'pre_logits'\]"
    ):
        run.embedding("layer9")


def test_the_record_is_frozen(tsne_run):
    run = load_run(tsne_run[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.view = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.manifest["view"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        run.results["neck"]["params"]["x"] = 1  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        run.labels[0] = 5
    assert isinstance(run.manifest["files"], tuple)


def test_runs_of_other_views_and_without_maps(tmp_path):
    result = make_result()
    with LocalRun(tmp_path, "monitor") as run:
        run.write_array("pca_neck.npy", np.zeros(2))
        run.add_result("shape", object())  # a recorded result without a map
        run.log_metrics({"loss": 1.0})
    record = load_run(run.final_path)
    assert record.view == "monitor"
    assert dict(record.embeddings) == {}
    assert record.ids is None
    assert record.thumbnails is None
    assert record.thumbnail_uris() is None
    assert "scalars.jsonl" in record.files
    with pytest.raises(
        DataError, match=r"coords_shape\.csv' is missing; .*rerun featscope monitor"
    ):
        record.embedding("shape")
    with pytest.raises(
        DataError, match=r"holds a 'monitor' run, not a 'tsne' run; .*featscope tsne"
    ):
        load_run(run.final_path, view="tsne")
    assert result.point == "pre_logits"


def reseal(folder):
    """Rewrite the manifest's sizes and SHA-256 after a test edited files (a crafted folder)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        path = folder / entry["path"]
        entry["bytes"], entry["sha256"] = path.stat().st_size, sha256(path)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_folder_and_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="does not exist; pass a folder made by featscope tsne"):
        load_run(tmp_path / "gone", view="tsne")
    with (
        pytest.raises(ValueError, match="bad"),
        LocalRun(tmp_path, "tsne", keep_failed=True) as run,
    ):
        raise ValueError("bad")
    with pytest.raises(DataError) as info:
        load_run(run.path)  # the kept .partial folder of the failed run
    message = _one_line(info)
    assert "has no manifest.json, so it is not a finished featscope run" in message
    assert "pass a folder made by a featscope view" in message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", r"cannot read '.*manifest\.json': Expecting .*; the run folder is damaged"),
        ("[1, 2]", r"manifest\.json' is not a JSON object; the run folder is damaged"),
        (
            '{"schema_version": 99, "view": "tsne", "files": [], "results": {}, "metadata": {}}',
            r"schema_version 99, newer than this featscope reads \(1\); upgrade featscope",
        ),
        (
            '{"schema_version": 1, "view": 3, "files": [{}], "results": {"a": 1}}',
            r"malformed: missing or wrong view \(str\), metadata \(dict\), files\[\]\.path "
            r"\(str, relative, inside the folder\), results\.\* \(object\); .*rerun the view",
        ),
    ],
    ids=["not-json", "not-an-object", "newer-schema", "wrong-fields"],
)
def test_malformed_manifest_is_one_line_naming_the_file(tsne_run, text, match):
    folder = tsne_run[0]
    (folder / "manifest.json").write_text(text)
    with pytest.raises(DataError, match=match) as info:
        load_run(folder)
    _one_line(info)


def test_damaged_files_name_the_file(tsne_run):
    folder = tsne_run[0]
    (folder / "coords_neck.csv").write_text("id,label,class_name,x,y,z\na,1,cat,0.5\n")
    reseal(folder)
    with pytest.raises(
        DataError, match=r"line 2 of '.*coords_neck\.csv' has 4 values, its header 6"
    ):
        load_run(folder)
    (folder / "coords_neck.csv").write_text("id,label,class_name,x,y\na,cat,cat,0.5,1\n")
    reseal(folder)
    with pytest.raises(DataError, match=r"line 2 of '.*coords_neck\.csv' is malformed \(invalid"):
        load_run(folder)
    (folder / "coords_neck.csv").write_text("id,label,x,y\n")
    reseal(folder)
    with pytest.raises(DataError, match=r"does not start with the columns id,label,class_name"):
        load_run(folder)
    (folder / "coords_neck.csv").unlink()
    with pytest.raises(DataError, match=r"coords_neck\.csv' is missing; the run folder is"):
        load_run(folder)


def test_inconsistent_samples_and_thumbnails_are_refused(tsne_run):
    folder = tsne_run[0]
    np.save(folder / "thumbnail_rows.npy", np.array([3, 4]))
    reseal(folder)
    with pytest.raises(DataError, match=r"thumbnails of .* do not match its ids\.txt"):
        load_run(folder)
    np.save(folder / "labels.npy", np.zeros(3, dtype=np.int64))
    reseal(folder)
    with pytest.raises(DataError, match=r"labels\.npy' has 3 labels but ids\.txt 4 ids"):
        load_run(folder)
    (folder / "labels.npy").write_bytes(b"not an array")
    reseal(folder)
    with pytest.raises(DataError, match=r"cannot read '.*labels\.npy'.*damaged"):
        load_run(folder)
