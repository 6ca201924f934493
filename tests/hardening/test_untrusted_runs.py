"""Run folders from anywhere (compare, load_run) and resume records (issue 19, 4 and 5).

Every file load_run reads is checked against the manifest's size and SHA-256 first; a manifest,
csv, class-name file or progress record that is malformed is one ``DataError`` /
``OutputError`` line, and no record makes featscope read or write outside its folder.
"""

from __future__ import annotations

import copy
import json
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import featscope
from featscope.capture.store import PROGRESS_NAME, FeatureStore, read_progress
from featscope.errors import DataError, FeatscopeError, OutputError
from featscope.options import Output
from featscope.results import EmbeddingResult, FeatureSet
from featscope.sinks import LocalRun, load_run
from featscope.sinks.manifest import sha256

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _write_run(work_dir, name="run"):
    ids = ("a/1.png", "a/2.png", "b/3.png")
    labels = np.array([0, 0, 1])
    result = EmbeddingResult(
        coords=np.arange(6, dtype=float).reshape(3, 2),
        labels=labels,
        class_names=("a", "b"),
        ids=ids,
        point="neck",
        method="tsne",
    )
    features = FeatureSet(
        features=np.ones((3, 2), dtype=np.float32),
        labels=labels,
        class_names=("a", "b"),
        ids=ids,
        point="neck",
    )
    with LocalRun(work_dir, "tsne", name=name) as run:
        run.write(features)
        run.write(result)
        run.write_array("thumbnails.npy", np.zeros((1, 2, 2, 3), dtype=np.uint8))
        run.write_array("thumbnail_rows.npy", np.array([2]))
    return run.final_path


@pytest.fixture
def run_dir(tmp_path):
    return _write_run(tmp_path)


def reseal(folder):
    """Make the manifest match edited files: a crafted folder, not an edited one."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        path = folder / entry["path"]
        entry["bytes"], entry["sha256"] = path.stat().st_size, sha256(path)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _one_line(call, error=DataError, match=None):
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ids.txt", b"a/1.png\nb/3.png\na/2.png\n"),  # swapped ids: thumbnails on the wrong samples
        ("class_names.txt", b"b\na\n"),
        ("coords_neck.csv", b"id,label,class_name,x,y\n"),
        ("labels.npy", None),
    ],
    ids=["ids-swapped", "class-names-swapped", "coords-emptied", "labels-truncated"],
)
def test_a_file_changed_after_the_run_is_refused(run_dir, name, content):
    path = run_dir / name
    path.write_bytes(content if content is not None else path.read_bytes()[:-8])
    _one_line(
        lambda: load_run(run_dir),
        match=rf"/{re.escape(name)}' (does not match the SHA-256|has [\d,]+ bytes but the "
        r"manifest records)",
    )


def test_compare_refuses_an_edited_run(tmp_path):
    a, b = _write_run(tmp_path, "a"), _write_run(tmp_path, "b")
    (b / "ids.txt").write_text("a/2.png\na/1.png\nb/3.png\n")
    _one_line(
        lambda: featscope.compare([a, b], output=Output(work_dir=None)),
        match=r"ids\.txt' does not match the SHA-256 in its manifest",
    )


def test_a_listed_file_replaced_by_a_link_or_fifo_is_refused(run_dir, tmp_path):
    (tmp_path / "elsewhere.txt").write_text("x\n")
    (run_dir / "ids.txt").unlink()
    os.symlink(tmp_path / "elsewhere.txt", run_dir / "ids.txt")
    _one_line(lambda: load_run(run_dir), match=r"ids\.txt' is not a regular file")
    (run_dir / "ids.txt").unlink()
    os.mkfifo(run_dir / "ids.txt")
    _one_line(lambda: load_run(run_dir), match=r"ids\.txt' is not a regular file")


def _edit_manifest(folder, edit):
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["files"].append({"path": "../../etc/passwd", "bytes": 1, "sha256": "0" * 64}),
         r"files\[\]\.path \(str, relative, inside the folder\)"),
        (lambda m: m["files"].append({"path": "/etc/passwd", "bytes": 1, "sha256": "0" * 64}),
         r"files\[\]\.path"),
        (lambda m: m["files"][0].update(sha256=None), r"files\[\]\.sha256"),
        (lambda m: m["files"][0].update(bytes=-1), r"files\[\]\.bytes"),
        (lambda m: m["files"][0].pop("bytes"), r"files\[\]\.bytes"),
        (lambda m: m.update(results=[]), r"results \(dict\)"),
        (lambda m: m.pop("view"), r"view \(str\)"),
        (lambda m: m["results"]["neck"].update(params=[1]), r"result 'neck' has a wrong params"),
        (lambda m: m["results"]["neck"].update(point=5), r"result 'neck' has a wrong point"),
        (lambda m: m["results"]["neck"].update(provenance="x"), r"wrong provenance \(object\)"),
    ],
    ids=["dotdot-path", "absolute-path", "sha-null", "bytes-negative", "bytes-missing",
         "results-list", "view-missing", "params-list", "point-int", "provenance-str"],
)  # fmt: skip
def test_malformed_manifests_are_one_line(run_dir, edit, match):
    _edit_manifest(run_dir, edit)
    _one_line(lambda: load_run(run_dir), match=match)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("ids.txt", b"a/1.png\n\xff\xfe\n b\n", r"ids\.txt'.*can't decode|cannot read .*ids\.txt"),
        ("class_names.txt", b"a\n\xe9\n", r"cannot read .*class_names\.txt"),
        ("coords_neck.csv", b"id,label,class_name,x,y\na/1.png,-7,a,0,1\na/2.png,0,a,1,1\n"
         b"b/3.png,1,b,2,2\n", r"line 2 .* has label -7"),
        ("coords_neck.csv", b"id,label,class_name,x,y\na/1.png,0,a,nan,1\na/2.png,0,a,1,1\n"
         b"b/3.png,1,b,2,2\n", r"line 2 .* NaN or infinite coordinate"),
        ("coords_neck.csv", b"id,label,class_name,x,y\na/1.png,0,a,inf,1\na/2.png,0,a,1,1\n"
         b"b/3.png,1,b,2,2\n", r"line 2 .* NaN or infinite coordinate"),
        ("coords_neck.csv", b"id,label,class_name,x,y\na/1.png,9,a,0,1\na/2.png,0,a,1,1\n"
         b"b/3.png,1,b,2,2\n", r"holds label 9, but the run has 2 class names"),
        ("coords_neck.csv", b"id,label,class_name,x,y\na/1.png,99999999999,a,0,1\n",
         r"has label 99999999999"),
    ],
    ids=["ids-not-utf8", "names-not-utf8", "negative-label", "nan", "inf", "label-past-names",
         "label-huge"],
)  # fmt: skip
def test_malformed_files_of_a_crafted_run_are_one_line(run_dir, name, content, match):
    (run_dir / name).write_bytes(content)
    reseal(run_dir)  # a crafted folder whose manifest agrees with its files
    _one_line(lambda: load_run(run_dir), match=match)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, -3, 1]), r"negative label -3"),
        (np.array([0.0, 1.0, 1.0]), r"not one integer label per sample"),
        (np.array([[0, 1, 1]]), r"not one integer label per sample"),
        (np.array([0, 5, 1]), r"holds label 5, but the run has 2 class names"),
    ],
    ids=["negative", "float", "2-d", "past-names"],
)
def test_bad_labels_arrays_are_one_line(run_dir, labels, match):
    np.save(run_dir / "labels.npy", labels)
    reseal(run_dir)
    _one_line(lambda: load_run(run_dir), match=match)


@pytest.mark.parametrize(
    "text",
    ['{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 100_000 + "]" * 100_000],
    ids=["object-100000-deep", "array-100000-deep"],
)
def test_a_manifest_nested_100000_deep_is_one_line(run_dir, text):
    (run_dir / "manifest.json").write_text(text)
    _one_line(lambda: load_run(run_dir), match=r"manifest\.json' is nested too deeply")


def test_a_huge_or_special_manifest_is_refused_before_reading(run_dir, monkeypatch):
    import featscope._bounded as bounded

    monkeypatch.setattr(bounded, "MAX_TEXT_BYTES", 100)
    monkeypatch.setattr(
        bounded.read_bounded_text, "__kwdefaults__", {"limit": 100, "error": DataError}
    )
    _one_line(
        lambda: load_run(run_dir), match=r"manifest\.json' is [\d,]+ bytes, more than the 100"
    )
    (run_dir / "manifest.json").unlink()
    os.symlink("/dev/zero", run_dir / "manifest.json")
    _one_line(lambda: load_run(run_dir), match=r"has no manifest\.json|not a regular file")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*prefix, i))


@FUZZ
@given(data=st.data())
def test_any_value_anywhere_in_the_manifest_loads_or_is_a_data_error(tmp_path_factory, data):
    """Fuzz: replace one value of a real manifest by random JSON; load_run never crashes."""
    folder = _write_run(tmp_path_factory.mktemp("fuzz"))
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = [p for p in _paths(manifest) if p]
    where = data.draw(st.sampled_from(paths))
    value = data.draw(_JSON)
    edited = copy.deepcopy(manifest)
    target = edited
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    (folder / "manifest.json").write_text(json.dumps(edited))
    try:
        run = load_run(folder)
    except DataError as exc:
        message = str(exc)
    else:
        message = ""
        assert run.ids is None or len(run.ids) == 3
    assert "\n" not in message


# --------------------------------------------------------------------------- resume records


def _store(folder, n=4):
    return FeatureStore(folder, {"n_samples": n, "model": "m"}, batch_size=2)


def _finished_store(folder):
    import torch

    store = _store(folder)
    store.add({"out": (torch.ones(2, 3), "mean")}, [0, 1])
    store.commit(2)
    store.close()
    return json.loads((folder / PROGRESS_NAME).read_text())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda r: r["outputs"]["out"].update(file="../../outside.npy"), r"not a file name"),
        (lambda r: r["outputs"]["out"].update(file="/tmp/x.npy"), r"not a file name"),
        (lambda r: r["outputs"]["out"].update(file="progress.json"), r"not a file name"),
        (lambda r: r["outputs"]["out"].update(dim="3"), r"has no dim"),
        (lambda r: r.pop("rows"), r"rows missing"),
        (lambda r: r.update(rows=-1), r"rows missing or not a count"),
        (lambda r: r.update(rows=10**9), r"disagree"),
        (lambda r: r.update(samples_done="2"), r"samples_done missing"),
        (lambda r: r.update(skipped=[["a"]]), r"skipped"),
        (lambda r: r.update(complete="yes"), r"complete"),
        (lambda r: r.pop("fingerprint"), r"fingerprint"),
        (lambda r: r.update(outputs=[]), r"outputs missing"),
    ],
    ids=["dotdot", "absolute", "own-record", "dim-str", "rows-missing", "rows-negative",
         "rows-huge", "done-str", "skipped-short", "complete-str", "no-fingerprint",
         "outputs-list"],
)  # fmt: skip
def test_damaged_progress_records_are_one_line(tmp_path, edit, match):
    record = _finished_store(tmp_path / "cache")
    edit(record)
    (tmp_path / "cache" / PROGRESS_NAME).write_text(json.dumps(record))
    _one_line(lambda: read_progress(tmp_path / "cache"), OutputError, match=match)


def test_no_record_writes_outside_the_cache_folder(tmp_path):
    """A record naming ../victim.npy was followed: 2,168 rows were written outside."""
    cache = tmp_path / "cache"
    record = _finished_store(cache)
    victim = tmp_path / "victim.npy"
    np.save(victim, np.zeros((4, 3), dtype=np.float32))
    before = victim.read_bytes()
    record["outputs"]["out"]["file"] = "../victim.npy"
    (cache / PROGRESS_NAME).write_text(json.dumps(record))
    with pytest.raises(OutputError):
        FeatureStore(cache, {"n_samples": 4, "model": "m"}, batch_size=2, resume=True)
    # a feature file replaced by a link to a file outside is not written through either
    record["outputs"]["out"]["file"] = "feat_00_out.npy"
    (cache / PROGRESS_NAME).write_text(json.dumps(record))
    (cache / "feat_00_out.npy").unlink()
    os.symlink(victim, cache / "feat_00_out.npy")
    _one_line(
        lambda: FeatureStore(cache, {"n_samples": 4, "model": "m"}, batch_size=2, resume=True),
        OutputError,
        match=r"damaged \(feat_00_out\.npy is missing or not a plain file\)",
    )
    assert victim.read_bytes() == before


def test_a_record_nested_deep_or_on_a_fifo_is_one_line(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / PROGRESS_NAME).write_text("[" * 100_000)
    _one_line(lambda: read_progress(cache), OutputError, match="nested too deeply")
    (cache / PROGRESS_NAME).unlink()
    os.mkfifo(cache / PROGRESS_NAME)
    _one_line(lambda: read_progress(cache), OutputError, match="not a regular file")


@FUZZ
@given(data=st.data())
def test_any_value_anywhere_in_a_record_reads_or_is_one_line(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("rec") / "cache"
    record = _finished_store(folder)
    where = data.draw(st.sampled_from([p for p in _paths(record) if p]))
    target = record
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = data.draw(_JSON)
    (folder / PROGRESS_NAME).write_text(json.dumps(record))
    try:
        store = FeatureStore(folder, {"n_samples": 4, "model": "m"}, batch_size=2, resume=True)
    except FeatscopeError as exc:  # a damaged record, or one made for other inputs
        message = str(exc)
    else:
        message = ""
        store.close()
    assert "\n" not in message
    assert sorted(os.listdir(folder.parent)) == ["cache"]  # nothing written beside the cache
