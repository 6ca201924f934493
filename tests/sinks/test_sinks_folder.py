"""The run folder's life: hidden while written, renamed when finished, gone (or kept) on failure."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import time

import numpy as np
import pytest
from _sinks_helpers import entries

from featscope.errors import OutputError, ParameterError
from featscope.sinks import LocalRun

FOLDER_RE = re.compile(r"^tsne_\d{8}_\d{6}(_\d+)?$")


def test_success_writes_final_folder_with_manifest_last(tmp_path):
    with LocalRun(tmp_path, "tsne") as run:
        partial = run.path
        assert re.fullmatch(r"\.tsne_\d{8}_\d{6}\.partial", partial.name)
        assert not (partial / "manifest.json").exists()
        run.write_array("feat_neck", np.ones((3, 2), dtype=np.float32))
        run.write_json("metrics", {"a": 1})
        run.write_text("notes.txt", "hello")
        run.write_csv("table", ["x", "y"], [[1, 2], [3, 4]])
        # the folder is not visible under a final name while the run is open
        assert [p.name for p in tmp_path.iterdir()] == [partial.name]
        time.sleep(0.01)

    final = run.final_path
    assert FOLDER_RE.match(final.name)
    assert entries(tmp_path) == [final.name]  # no .partial left behind
    assert entries(final) == sorted(
        ["feat_neck.npy", "manifest.json", "metrics.json", "notes.txt", "run.log", "table.csv"]
    )
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["view"] == "tsne"
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(entries(final)) - {"manifest.json"}
    for name, entry in listed.items():
        data = (final / name).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    newest = max(final.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == "manifest.json"
    np.testing.assert_array_equal(np.load(final / "feat_neck.npy"), np.ones((3, 2)))
    assert (final / "table.csv").read_text() == "x,y\n1,2\n3,4\n"


def fail_inside(run, exc, log=None):
    """Run a with-block that writes a file, optionally logs, and raises ``exc``."""
    with run:
        run.write_text("a.txt", "x")
        if log:
            logging.getLogger("featscope.views").info(log)
        raise exc


def test_exception_leaves_no_folder_and_propagates(tmp_path):
    run = LocalRun(tmp_path, "tsne")
    with pytest.raises(KeyError, match="boom"):
        fail_inside(run, KeyError("boom"))
    partial = run.path
    assert not partial.exists()
    assert list(tmp_path.iterdir()) == []
    assert not run.finished
    with pytest.raises(RuntimeError, match="final_path exists only after"):
        _ = run.final_path


def test_keep_failed_keeps_hidden_partial_without_manifest(tmp_path):
    with pytest.raises(ValueError, match="bad"):
        fail_inside(LocalRun(tmp_path, "tsne", keep_failed=True), ValueError("bad"), "step one")
    (kept,) = tmp_path.iterdir()
    assert re.fullmatch(r"\.tsne_\d{8}_\d{6}\.partial", kept.name)
    assert (kept / "a.txt").read_text() == "x"
    assert not (kept / "manifest.json").exists()
    log = (kept / "run.log").read_text()
    assert "INFO featscope.views: step one" in log
    assert "run failed: ValueError: bad" in log


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt: "20250101_120000")
    finals = []
    for _ in range(3):
        with LocalRun(tmp_path, "tsne") as run:
            run.write_text("x.txt", "1")
        finals.append(run.final_path.name)
    assert finals == ["tsne_20250101_120000", "tsne_20250101_120000_1", "tsne_20250101_120000_2"]


def test_concurrent_open_runs_get_distinct_names(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt: "20250101_120000")
    a = LocalRun(tmp_path, "tsne").open()
    b = LocalRun(tmp_path, "tsne").open()
    assert a.path != b.path
    b.finish()
    a.finish()
    assert {a.final_path.name, b.final_path.name} == {
        "tsne_20250101_120000",
        "tsne_20250101_120000_1",
    }


def test_rename_never_replaces_a_folder_finished_meanwhile(tmp_path):
    run = LocalRun(tmp_path, "tsne", name="fixed").open()
    (tmp_path / "fixed").mkdir()  # another process finished a run of the same name
    (tmp_path / "fixed" / "manifest.json").write_text("{}")
    run.finish()
    assert run.final_path.name == "fixed_1"
    assert (tmp_path / "fixed" / "manifest.json").read_text() == "{}"


def test_custom_name_and_bad_names(tmp_path):
    with LocalRun(tmp_path, "tsne", name="my_run") as run:
        for bad in ("../x", "a/b", "..", ".hidden", "manifest.json", "run.log", ""):
            with pytest.raises(ParameterError, match=r"file name|must be a non-empty|reserved"):
                run.write_text(bad, "x")
    assert run.final_path == tmp_path / "my_run"
    with pytest.raises(ParameterError, match="path separator"):
        LocalRun(tmp_path, "ts/ne")


def test_work_dir_under_a_file_is_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(
        OutputError,
        match=r"cannot write to run folder '.*file/runs': '.*file' is a file, not a folder; choose",
    ):
        LocalRun(blocker / "runs", "tsne").open()


def test_permission_denied_is_output_error(tmp_path, monkeypatch):
    # Tests run as root here, so chmod cannot make a folder unwritable: simulate the OS answer.
    def deny(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "mkdir", deny)
    with pytest.raises(OutputError, match=r"cannot write to run folder .*: Permission denied"):
        LocalRun(tmp_path, "tsne").open()


def test_writing_outside_the_with_block_is_refused(tmp_path):
    run = LocalRun(tmp_path, "tsne")
    with pytest.raises(RuntimeError, match="inside `with LocalRun"):
        run.write_text("a.txt", "x")
    with run:
        pass
    with pytest.raises(RuntimeError, match="the run is finished"):
        run.write_text("a.txt", "x")
    with pytest.raises(RuntimeError, match="already finished"):
        run.open()


def test_run_log_records_messages_and_handler_is_removed(tmp_path):
    package_logger = logging.getLogger("featscope")
    before_level = package_logger.level
    with LocalRun(tmp_path, "tsne") as run:
        logging.getLogger("featscope.analysis").info("Apply t-SNE to visualize %d samples", 42)
        assert len(package_logger.handlers) == 1
    assert package_logger.handlers == []
    assert package_logger.level == before_level
    logging.getLogger("featscope.analysis").warning("after the run")
    log = (run.final_path / "run.log").read_text()
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO featscope.analysis: "
        r"Apply t-SNE to visualize 42 samples$",
        log,
        re.M,
    )
    assert "after the run" not in log


def test_sinks_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, featscope.sinks; "
        "print(','.join(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
