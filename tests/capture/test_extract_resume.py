"""Resumable, bounded-memory extraction: the memmap store, kill -9 and resume, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from capture_helpers import TinyCNN, make_handle, make_samples

from featscope.capture import extract_features
from featscope.capture.store import PROGRESS_NAME, read_progress
from featscope.errors import OutputError, ParameterError

HERE = Path(__file__).parent
POINTS = ["backbone", "pre_logits", "logits"]

# A job that extracts slowly (the images take 50 ms each to "read"), so that it can be killed
# part-way; the model and samples are the ones the test rebuilds in-process.
JOB = """
import sys, time
sys.path.insert(0, {here!r})
import torch
from capture_helpers import TinyCNN, make_handle, make_samples, random_image
from featscope.capture import extract_features
torch.manual_seed(0)
net = TinyCNN()
def slow(i):
    time.sleep(0.05)
    return random_image(i)
extract_features(make_handle(net), make_samples({n}, loader=slow), {points!r},
                 batch_size={batch}, num_workers=0, progress=False, cache_dir={cache!r},
                 resume=True)
"""


def _net() -> TinyCNN:
    torch.manual_seed(0)
    return TinyCNN()


def _extract(n, cache_dir=None, resume=False, batch_size=4, net=None, points=POINTS, **kw):
    return extract_features(
        make_handle(net or _net()),
        make_samples(n),
        points,
        batch_size=batch_size,
        num_workers=0,
        progress=False,
        cache_dir=cache_dir,
        resume=resume,
        **kw,
    )


def test_store_gives_the_features_of_the_in_ram_loop_as_memory_maps(tmp_path):
    in_ram = _extract(10)
    stored = _extract(10, cache_dir=tmp_path / "c")
    for name in in_ram.features:
        # bounded memory: the features stay on disk, mapped, not copied into RAM
        assert isinstance(stored.features[name].base, np.memmap) or isinstance(
            stored.features[name], np.memmap
        )
        np.testing.assert_array_equal(stored.features[name], in_ram.features[name])
    np.testing.assert_array_equal(stored.kept, np.arange(10))
    record = json.loads((tmp_path / "c" / PROGRESS_NAME).read_text())
    assert record["complete"] is True
    assert record["batches_done"] == 3  # 4 + 4 + 2
    assert record["rows"] == 10
    assert record["fingerprint"]["points"] == POINTS


def test_killed_run_resumes_from_the_last_complete_batch_with_identical_features(tmp_path):
    cache = tmp_path / "cache"
    n, batch = 40, 4
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    script = JOB.format(here=str(HERE), n=n, points=POINTS, batch=batch, cache=str(cache))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = (read_progress(cache) or {}).get("batches_done", 0)
            except OutputError:  # never: the record is replaced atomically
                raise
            if done >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    record = read_progress(cache)
    assert 2 <= record["batches_done"] < n // batch
    assert not record["complete"]
    assert record["samples_done"] == record["batches_done"] * batch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed job, so that every kernel runs alike
    try:
        resumed = _extract(n, cache_dir=cache, resume=True, batch_size=batch)
        uninterrupted = _extract(n, batch_size=batch)
    finally:
        torch.set_num_threads(threads)
    assert read_progress(cache)["complete"] is True
    for name in uninterrupted.features:
        assert np.array_equal(resumed.features[name], uninterrupted.features[name]), name
    np.testing.assert_array_equal(resumed.kept, np.arange(n))


def test_finished_store_is_reused_without_running_the_model(tmp_path):
    first = _extract(6, cache_dir=tmp_path)
    net = _net()

    def boom(*args):
        raise AssertionError("the model ran")

    net.register_forward_pre_hook(boom)
    again = _extract(6, cache_dir=tmp_path, resume=True, net=net)
    for name in first.features:
        np.testing.assert_array_equal(again.features[name], first.features[name])


def test_existing_store_needs_resume(tmp_path):
    _extract(6, cache_dir=tmp_path)
    with pytest.raises(
        ParameterError, match=r"already holds an extraction \(6 of 6 samples.*--resume"
    ):
        _extract(6, cache_dir=tmp_path)


def test_resume_without_cache_dir_is_refused():
    with pytest.raises(ParameterError, match="--cache-dir DIR"):
        _extract(4, resume=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 5}, r"batch_size 4 there, 5 now"),
        ({"n": 7}, r"n_samples 6 there, 7 now; sample_ids_sha256 differs"),
        ({"points": ["backbone"]}, r"points \['backbone', 'pre_logits', 'logits'\] there"),
        ({"net": "other"}, r"weights_sha256 differs"),
        ({"skip_bad_images": True}, r"skip_bad_images False there, True now"),
    ],
)
def test_resume_with_changed_inputs_is_refused(tmp_path, change, message):
    _extract(6, cache_dir=tmp_path)
    kwargs = {"n": 6, **change}
    if kwargs.get("net") == "other":
        torch.manual_seed(1)
        kwargs["net"] = TinyCNN()
    n = kwargs.pop("n")
    with pytest.raises(ParameterError, match=rf"cannot resume the extraction in .*{message}"):
        _extract(n, cache_dir=tmp_path, resume=True, **kwargs)


def test_damaged_record_is_a_clear_error(tmp_path):
    (tmp_path / PROGRESS_NAME).write_text("{not json")
    with pytest.raises(OutputError, match="not a featscope extraction record"):
        _extract(4, cache_dir=tmp_path, resume=True)


def test_skipped_images_survive_in_the_record(tmp_path):
    with pytest.warns(UserWarning, match="skipped 1"):
        out = extract_features(
            make_handle(_net()),
            make_samples(9, bad={5}),
            ["backbone"],
            batch_size=4,
            num_workers=0,
            progress=False,
            skip_bad_images=True,
            cache_dir=tmp_path,
        )
    np.testing.assert_array_equal(out.kept, [0, 1, 2, 3, 4, 6, 7, 8])
    assert out.skipped[0][0] == "img_5.png"
    assert read_progress(tmp_path)["skipped"][0][0] == "img_5.png"


def test_cli_cache_dir_and_resume(tmp_path, capsys):
    from featscope.cli import main

    cache = str(tmp_path / "c")
    args = ["tsne", "--max-num-samples", "3", "--batch-size", "4", "--method", "pca",
            "--no-html", "--thumbnails", "0", "--quiet", "--cache-dir", cache]  # fmt: skip
    assert main([*args, "--work-dir", str(tmp_path / "a")]) == 0
    (first,) = (tmp_path / "a").iterdir()
    # as a kill after 2 batches leaves it: record at 2 batches, later rows garbage
    path = tmp_path / "c" / PROGRESS_NAME
    record = json.loads(path.read_text())
    assert record["complete"]
    assert record["batches_done"] == 8
    record.update(batches_done=2, samples_done=8, rows=8, complete=False)
    path.write_text(json.dumps(record))
    for info in record["outputs"].values():
        feats = np.lib.format.open_memmap(tmp_path / "c" / info["file"], mode="r+")
        feats[8:] = np.nan
        feats.flush()
        del feats
    capsys.readouterr()
    assert main([*args, "--work-dir", str(tmp_path / "b")]) == 2
    assert "already holds an extraction (8 of 30 samples done); pass --resume" in (
        capsys.readouterr().err
    )
    assert main([*args, "--work-dir", str(tmp_path / "b"), "--resume"]) == 0
    (second,) = (tmp_path / "b").iterdir()
    for name in ("backbone.1", "neck", "pre_logits"):  # the built-in default points
        a, b = np.load(first / f"feat_{name}.npy"), np.load(second / f"feat_{name}.npy")
        assert a.shape == (30, a.shape[1])
        assert np.array_equal(a, b), name
