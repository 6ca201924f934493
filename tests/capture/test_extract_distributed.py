"""Data-parallel extraction: sharding, `tsne(nproc=2)` and `torchrun -m featscope tsne`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import featscope
from featscope.capture.distributed import launch, shard_range
from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions, Extraction, Output, Selection

COMMON = dict(
    selection=Selection(max_num_samples=6),  # 10 digit classes x 6 = 60 images
    embedding=EmbeddingOptions(method="pca"),
    html=False,
    thumbnails=0,
)
EXTRACT = Extraction(batch_size=8, progress=False)


@pytest.mark.parametrize(("n", "batch", "world"), [(60, 8, 2), (61, 8, 3), (10, 8, 4), (1, 4, 2)])
def test_shards_are_whole_batches_covering_every_sample_once(n, batch, world):
    shards = [shard_range(n, batch, r, world) for r in range(world)]
    assert [i for s in shards for i in s] == list(range(n))
    for s in shards[:-1]:
        assert len(s) % batch == 0  # every batch as in a single-process run
    sizes = sorted(len(s) // batch for s in shards if len(s))
    assert sizes[-1] - sizes[0] <= 1


def test_nproc_2_gives_identical_features_and_one_run_folder(tmp_path):
    single = featscope.tsne(output=Output(work_dir=tmp_path / "one"), extraction=EXTRACT, **COMMON)
    # with a cache folder: each rank streams its shard to disk, rank 0 merges the files
    cache = tmp_path / "cache"
    double = featscope.tsne(
        output=Output(work_dir=tmp_path / "two"),
        extraction=replace(EXTRACT, nproc=2, cache_dir=cache),
        **COMMON,
    )
    assert [fs.point for fs in double.features] == [fs.point for fs in single.features]
    for a, b in zip(single.features, double.features, strict=True):
        assert a.features.shape == (60, a.features.shape[1])
        assert np.array_equal(a.features, b.features), a.point
        assert a.ids == b.ids
        np.testing.assert_array_equal(a.labels, b.labels)
    # rank 1 wrote nothing the user sees: exactly one finished run folder
    folders = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert len(folders) == 1
    assert not folders[0].startswith(".")
    assert double.run_dir == tmp_path / "two" / folders[0]
    on_disk = np.load(double.run_dir / "feat_pre_logits.npy")
    assert np.array_equal(on_disk, single.features[-1].features)
    assert {p.name for p in cache.iterdir()} == {"rank0-of-2", "rank1-of-2", "merged"}


@pytest.mark.slow  # two processes importing torch: ~15 s on 2 cores
def test_torchrun_module_gives_identical_features(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "featscope", "tsne", "--max-num-samples", "6", "--batch-size", "8",
        "--method", "pca", "--no-html", "--thumbnails", "0", "--quiet",
        "--work-dir", str(tmp_path / "w"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results written to") == 1  # printed by rank 0 only
    (run_dir,) = (tmp_path / "w").iterdir()
    single = featscope.tsne(output=Output(work_dir=None), extraction=EXTRACT, **COMMON)
    for fs in single.features:
        assert np.array_equal(np.load(run_dir / f"feat_{fs.point}.npy"), fs.features), fs.point


def test_bad_nproc_is_refused():
    with pytest.raises(ParameterError, match="`nproc` must be an integer >= 1; got 0"):
        featscope.tsne(output=Output(work_dir=None), extraction=Extraction(nproc=0))
    with pytest.raises(ParameterError, match="`nproc` must be an integer >= 1"):
        launch(print, {}, -1)


@pytest.mark.slow  # starts two processes: ~15 s on 2 cores
def test_an_error_in_a_launched_rank_comes_back_as_one_line(tmp_path):
    from PIL import Image

    from featscope.errors import DataError

    for k, cls in enumerate(("a", "b")):
        (tmp_path / cls).mkdir()
        for i in range(4):
            Image.new("RGB", (8, 8), (40 * i, 60 * k, 0)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "b" / "3.png").write_bytes(b"")  # unreadable, in rank 1's shard
    with pytest.raises(DataError, match=r"3\.png"):
        featscope.tsne(
            model="demo:digits-cnn",
            data=tmp_path,
            extraction=replace(EXTRACT, nproc=2, batch_size=2),
            output=Output(work_dir=tmp_path / "w"),
            **COMMON,
        )
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_nproc_ranks_log_to_the_console(tmp_path, capfd):
    from featscope.cli import main

    args = "tsne --nproc 2 --max-num-samples 3 --batch-size 8 --method pca --no-html --thumbnails 0"
    code = main([*args.split(), "--work-dir", str(tmp_path)])
    err = capfd.readouterr().err
    assert code == 0, err
    # rank 0's messages as in a single-process run, the other rank's tagged with its rank
    assert "\nextracting " in "\n" + err, err
    assert "[rank 1] extracting " in err, err
