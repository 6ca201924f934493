"""Each file of a run folder is written whole or not at all; a full disk ends the run at once."""

from __future__ import annotations

import errno
import json
import logging
import os

import numpy as np
import pytest
from _sinks_helpers import make_result

from featscope.errors import OutputError, ParameterError
from featscope.sinks import LocalRun


def test_json_is_sorted_indented_and_nan_is_null(tmp_path):
    with LocalRun(tmp_path, "tsne") as run:
        path = run.write_json("m.json", {"b": float("nan"), "a": np.float32(0.5), "c": [np.inf]})
        run.add_result("neck", make_result(metrics={"knn_accuracy_map": float("nan")}))
    text = (run.final_path / path.name).read_text()
    assert text == '{\n  "a": 0.5,\n  "b": null,\n  "c": [\n    null\n  ]\n}\n'
    manifest_text = (run.final_path / "manifest.json").read_text()
    assert "NaN" not in manifest_text
    manifest = json.loads(manifest_text)
    assert manifest["results"]["neck"]["metrics"] == {"knn_accuracy_map": None}


def test_write_figure_writes_formats_atomically(tmp_path):
    from featscope.render import plot_embedding

    ax = plot_embedding(make_result())
    with LocalRun(tmp_path, "tsne") as run:
        paths = run.write_figure(ax.figure, "tsne_neck", formats=("png", "svg"), dpi=30)
        assert [p.name for p in paths] == ["tsne_neck.png", "tsne_neck.svg"]
        assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []
        with pytest.raises(ParameterError, match="'gif' is not supported"):
            run.write_figure(ax.figure, "x", formats=("gif",))
    assert (run.final_path / "tsne_neck.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((run.final_path / "manifest.json").read_text())
    assert {"tsne_neck.png", "tsne_neck.svg"} <= {f["path"] for f in manifest["files"]}


def test_non_json_value_is_parameter_error(tmp_path):
    with (
        LocalRun(tmp_path, "tsne") as run,
        pytest.raises(ParameterError, match=r"cannot write 'x\.json' as JSON"),
    ):
        run.write_json("x", {"a": object()})


def disk_full_on(monkeypatch, suffix: str) -> None:
    """Make ``os.replace`` fail with ENOSPC (disk full) for targets ending in ``suffix``."""
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)


def test_enospc_is_output_error_and_removes_partial(tmp_path, monkeypatch):
    disk_full_on(monkeypatch, "big.npy")
    run = LocalRun(tmp_path, "tsne").open()
    run.write_text("small.txt", "ok")
    partial = run.path
    with pytest.raises(OutputError, match=r"no space left .* 'big\.npy'"):
        run.write_array("big", np.zeros(10))
    # removed at once, even before (or without) the with-block unwinding
    assert not partial.exists()
    with pytest.raises(RuntimeError, match="the run is failed"):
        run.write_text("more.txt", "x")
    run.__exit__(None, None, None)  # a later clean exit must not resurrect the folder
    assert list(tmp_path.iterdir()) == []
    assert logging.getLogger("featscope").handlers == []


def test_enospc_while_writing_manifest(tmp_path, monkeypatch):
    disk_full_on(monkeypatch, "manifest.json")
    with pytest.raises(OutputError, match="no space left"), LocalRun(tmp_path, "tsne") as run:
        run.write_text("a.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_enospc_while_saving_a_figure(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    fig = Figure()
    monkeypatch.setattr(Figure, "savefig", full_disk)
    run = LocalRun(tmp_path, "tsne").open()
    with pytest.raises(OutputError, match=r"no space left .*'tsne_neck\.\*'"):
        run.write_figure(fig, "tsne_neck")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_array_on_a_really_full_device_is_a_full_disk(tmp_path):
    # the temporary file of the next write is a link to /dev/full, whose every write fails
    # with ENOSPC from the kernel: a real full device, not an injected OSError
    run = LocalRun(tmp_path, "tsne").open()
    partial = run.path
    (partial / f".big.npy.tmp-{os.getpid()}").symlink_to("/dev/full")
    with pytest.raises(OutputError, match=r"no space left on the device while writing 'big\.npy'"):
        run.write_array("big", np.zeros((256, 1024), dtype=np.float32))
    assert not partial.exists()
    assert list(tmp_path.iterdir()) == []
