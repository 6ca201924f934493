"""Hostile inputs to the surfaces added together (cam, --color-by and metadata, load_run).

Each case was found by trying the feature cold from its docs: the input, what it did before, and
the one-line error it gives now.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

import featscope
from featscope.analysis.cam import resolve_targets
from featscope.cli import main
from featscope.errors import DataError, ParameterError
from featscope.options import Output
from featscope.sinks import load_run

NAMES = ["tabby, tabby cat", "espresso", "tiger cat"]


def test_cam_topk_above_the_number_of_classes_is_refused():
    # --topk 5000 on a 1000-class model ran 1000 sets of maps per image for minutes
    p = np.array([0.1, 0.6, 0.3])
    assert resolve_targets(p, NAMES, topk=3) == (1, 2, 0)
    with pytest.raises(ParameterError, match=r"`--topk` 4 is more than the model's 3 classes"):
        resolve_targets(p, NAMES, topk=4)


def test_cam_nearest_names_are_quoted():
    # an ImageNet name holds commas: unquoted, "tabby, tabby cat" read as two suggestions
    with pytest.raises(ParameterError, match=r"nearest: 'tabby cat', 'tabby', 'tabby, tabby cat'"):
        resolve_targets(np.array([0.1, 0.6, 0.3]), NAMES, ["tabby ca"])


def test_cam_model_with_nan_scores_is_refused(tmp_path, capsys):
    pytest.importorskip("pytorch_grad_cam")
    # NaN weights used to give a finished run of maps "predicted" with probability nan
    (tmp_path / "nets.py").write_text(
        "import torch.nn as nn\n"
        "def nan():\n"
        "    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),\n"
        "                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))\n"
        "    m[4].bias.data.fill_(float('nan'))\n"
        "    return m\n"
    )
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (120, 30, 200)).save(image)
    runs = tmp_path / "runs"
    argv = ["cam", str(image), "--model", f"py:{tmp_path / 'nets.py'}:nan", "--point", "0"]
    assert main([*argv, "--input-size", "16", "--work-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: model py:")
    assert "gives non-finite class scores (NaN or inf); check its weights" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_load_run_on_a_file_says_it_is_a_file(tmp_path):
    (tmp_path / "list.csv").write_text("a.png,0\n")
    with pytest.raises(DataError, match=r"'.*list\.csv' is a file, not a run folder; pass"):
        load_run(tmp_path / "list.csv")
    with pytest.raises(DataError, match=r"run folder '.*gone' does not exist"):
        load_run(tmp_path / "gone")


def _conv_classifier(tmp_path) -> str:
    (tmp_path / "nets.py").write_text(
        "import torch.nn as nn\n"
        "def full_res():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))\n"
    )
    return f"py:{tmp_path / 'nets.py'}:full_res"


@pytest.mark.parametrize("flag", [["--method", "eigencam"], ["--eigen-smooth"]])
def test_cam_svd_at_a_full_resolution_point_is_refused(tmp_path, capsys, flag):
    pytest.importorskip("pytorch_grad_cam")
    # pytorch-grad-cam's full SVD at a 224x224 point asked for 18.8 GiB and the run was killed;
    # at 160x160 it would ask 4.9 GiB: refused before it is tried
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (120, 30, 200)).save(image)
    runs = tmp_path / "runs"
    argv = ["cam", str(image), "--model", _conv_classifier(tmp_path), "--point", "1", *flag]
    assert main([*argv, "--input-size", "160", "--work-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "at point '1' (160x160) needs a 25600x25600 matrix (4.9 GiB)" in last, err
    assert "pick a coarser point" in last
    assert not runs.exists() or not any(runs.iterdir())
    # a coarse enough point runs
    assert main([*argv, "--input-size", "16", "--work-dir", str(runs), "--metric", "none"]) == 0
    assert len(list(runs.glob("cam_*/*.npy"))) == 1


def test_cam_run_indexed_by_one_key_and_targets_none(tmp_path):
    pytest.importorskip("pytorch_grad_cam")
    import featscope
    from featscope.options import Output

    # run[0] raised "cannot unpack non-iterable int", run["a.png"] "too many values to unpack";
    # CamOptions(targets=None) "'NoneType' object is not iterable"
    model = featscope.load_model(_conv_classifier(tmp_path))
    image = np.full((8, 8, 3), 90, np.uint8)
    opts = featscope.CamOptions(targets=None, metric="none")
    assert opts.targets == ()
    prep = featscope.Preprocess(input_size=(16, 16))
    run = featscope.cam([image], model, options=opts, preprocess=prep, output=Output(work_dir=None))
    first = run.maps[0]
    assert run[first.image_id, "gradcam", first.class_index] is first
    for key in (0, "image0", ("image0", "gradcam")):
        with pytest.raises(KeyError, match=r"indexed by \(image, method, class\)"):
            run[key]


def test_out_with_a_file_name_for_several_pictures(tmp_path, capsys):
    from featscope.errors import OutputError
    from featscope.sinks.export import export_files

    # `featscope cam many/ --out sheet.png` made a folder named sheet.png
    sources = []
    for name in ("a.png", "b.png"):
        Image.new("RGB", (2, 2)).save(tmp_path / name)
        sources.append(tmp_path / name)
    with pytest.raises(OutputError, match=r"'.*sheet\.png' names a file, but this run exports 2"):
        export_files(sources, tmp_path / "sheet.png")
    assert not (tmp_path / "sheet.png").exists()
    # a folder name, an existing folder, and one file to a file name still work
    assert len(export_files(sources, tmp_path / "sheet")) == 2
    (tmp_path / "x.png").mkdir()
    assert export_files(sources, tmp_path / "x.png")[0] == tmp_path / "x.png" / "a.png"
    assert export_files(sources[:1], tmp_path / "one.png") == [tmp_path / "one.png"]


def test_to_dataframe_of_a_loaded_run_without_maps(tmp_path):
    from featscope.sinks import LocalRun

    # load_run(cam folder).to_dataframe() gave an empty table with the tsne columns
    with LocalRun(tmp_path, "cam") as run:
        run.write_array("a_gradcam_1.npy", np.zeros((2, 2), np.float32))
    record = load_run(run.final_path)
    for call in (record.to_dataframe, record.metrics_dataframe):
        with pytest.raises(DataError, match=r"by featscope cam and holds no maps; .*read_csv"):
            call()


def test_work_dir_that_is_a_file(tmp_path, capsys):
    # said "cannot write to run folder 'list.csv': File exists"
    rng = np.random.default_rng(0)
    np.save(tmp_path / "f.npy", rng.normal(size=(12, 4)).astype(np.float32))
    (tmp_path / "list.csv").write_text("a.png,0\n")
    argv = ["tsne", "--features", str(tmp_path / "f.npy"), "--method", "pca", "--no-html"]
    assert main([*argv, "--work-dir", str(tmp_path / "list.csv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(r"error: .*'.*list\.csv' is a file, not a folder; choose another", err)
    assert (tmp_path / "list.csv").read_text() == "a.png,0\n"


def test_unlabelled_saved_features_report_no_label_metrics(tmp_path):
    """Saved features without labels are unlabelled data: no perfect one-class accuracy."""
    features = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    np.save(tmp_path / "f.npy", features)
    run = featscope.tsne(
        features=tmp_path / "f.npy",
        embedding=featscope.EmbeddingOptions(method="pca"),
        output=Output(work_dir=None),
    )
    metrics = run.results[0].metrics
    assert metrics["knn_accuracy_map"] is None
    assert metrics["cluster_purity"] is None
    assert metrics["skipped"]["knn_accuracy_features"] == "the samples have no labels"
    assert set(run.results[0].labels.tolist()) == {-1}
