"""End to end: `featscope tsne` and `featscope.tsne()` on the demo and on saved features."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import featscope
from featscope.cli import main
from featscope.errors import ParameterError
from featscope.options import EmbeddingOptions, Extraction, Output, Preprocess, Selection

FAST = ["--n-iter", "500", "--quiet"]
QUIET = Extraction(progress=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    return featscope.tsne(
        embedding=EmbeddingOptions(n_iter=500), extraction=QUIET, output=Output(work_dir=work)
    )


def _run_dirs(work: Path) -> list[Path]:
    return sorted(p for p in work.iterdir() if p.is_dir()) if work.exists() else []


def test_builtin_default_maps_three_points_and_separates_digits(demo_run):
    assert [r.point for r in demo_run.results] == ["backbone.1", "neck", "pre_logits"]
    pre = demo_run["pre_logits"]
    assert pre.coords.shape == (1000, 2)
    assert sorted(np.unique(pre.labels)) == list(range(10))
    assert np.bincount(pre.labels).tolist() == [100] * 10
    # real weights: the classifier's input separates the ten digits
    assert pre.metrics["knn_accuracy_features"] > 0.95
    assert pre.metrics["knn_accuracy_map"] > 0.9
    assert pre.provenance.model == "demo:digits-cnn"
    assert demo_run.features[0].pooling == "global_avg"  # backbone maps were average-pooled


def test_run_folder_holds_data_figures_and_manifest_last(demo_run):
    run_dir = demo_run.run_dir
    assert run_dir.name.startswith("tsne_")
    for name in (
        "feat_pre_logits.npy",
        "coords_pre_logits.csv",
        "metrics.json",
        "run.log",
        "tsne_pre_logits.png",
        "overview.png",
        "labels.npy",
        "ids.txt",
    ):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert "feat_backbone.1.npy" in listed
    assert "manifest.json" not in listed
    # how the model ran, as decided (the test suite pins amp "auto" to float32 on the CPU)
    ran = manifest["metadata"]["extraction"]
    assert ran["precision"] == "float32"
    assert ran["device"] == "cpu"
    assert ran["batch_size"] == 64  # 28 px digits: the CPU default keeps 64
    features = np.load(run_dir / "feat_neck.npy")
    assert features.shape == (1000, 128)
    assert features.dtype == np.float32
    header = (run_dir / "coords_pre_logits.csv").read_text().splitlines()[0]
    assert header.split(",")[:4] == ["id", "label", "class_name", "x"]
    png = Image.open(run_dir / "tsne_pre_logits.png")
    assert png.size[0] > 500


def test_same_seed_same_map_and_saved_features_redo_it(demo_run, tmp_path):
    run_dir = demo_run.run_dir
    again = featscope.tsne(
        features=run_dir / "feat_pre_logits.npy",
        labels=run_dir / "labels.npy",
        class_names=run_dir / "class_names.txt",
        embedding=EmbeddingOptions(n_iter=500),
        selection=Selection(max_num_samples=None),
        extraction=QUIET,
        output=Output(work_dir=None),
    )
    # the run's pre_logits map was turned onto its neck map (--align): the same turn redoes it
    # (features read from a file have ids of their own: the rows are the same samples)
    from dataclasses import replace

    from featscope.analysis.align import align_to

    same_ids = replace(again.results[0], ids=demo_run["neck"].ids)
    redone = align_to(same_ids, demo_run["neck"])
    np.testing.assert_allclose(redone.coords, demo_run["pre_logits"].coords, atol=1e-6)
    assert demo_run["pre_logits"].params["aligned_to"] == "neck"
    assert again.results[0].class_names[3] == "3"


def test_cli_on_saved_features_writes_figure_formats(tmp_path, capsys):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10, size=(3, 20))
    labels = np.repeat(np.arange(3), 30)
    feats = centres[labels] + rng.normal(size=(90, 20))
    np.save(tmp_path / "f.npy", feats.astype(np.float32))
    np.save(tmp_path / "l.npy", labels)
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    code = main(
        [
            "tsne",
            "--features",
            str(tmp_path / "f.npy"),
            "--labels",
            str(tmp_path / "l.npy"),
            "--class-names",
            str(tmp_path / "names.txt"),
            "--work-dir",
            str(tmp_path / "w"),
            "--format",
            "png",
            "svg",
            "--legend",
            *FAST,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "results written to" in out
    (run_dir,) = _run_dirs(tmp_path / "w")
    assert (run_dir / "tsne_f.svg").read_text().lstrip().startswith("<?xml")
    assert json.loads((run_dir / "metrics.json").read_text())["f"]["knn_accuracy_map"] == 1.0


def _expect_user_error(args, capsys, match, work: Path):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    assert match in err, err
    assert not any((d / "manifest.json").exists() for d in _run_dirs(work))
    assert _run_dirs(work) == []


def test_unknown_point_lists_nearest_names(tmp_path, capsys):
    _expect_user_error(
        ["tsne", "--vis-stage", "backbon", "--work-dir", str(tmp_path), *FAST],
        capsys,
        "backbone",
        tmp_path,
    )


def test_labels_of_wrong_length(tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    np.save(tmp_path / "l.npy", np.zeros(9, np.int64))
    _expect_user_error(
        [
            "tsne",
            "--features",
            str(tmp_path / "f.npy"),
            "--labels",
            str(tmp_path / "l.npy"),
            "--work-dir",
            str(tmp_path / "w"),
            *FAST,
        ],
        capsys,
        "10",
        tmp_path / "w",
    )


def test_nan_features_name_the_rows(tmp_path, capsys):
    feats = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    feats[[3, 11]] = np.nan
    np.save(tmp_path / "f.npy", feats)
    _expect_user_error(
        ["tsne", "--features", str(tmp_path / "f.npy"), "--work-dir", str(tmp_path / "w"), *FAST],
        capsys,
        "11",
        tmp_path / "w",
    )


def test_unwritable_work_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    _expect_user_error(
        ["tsne", "--work-dir", str(blocker / "runs"), *FAST],
        capsys,
        str(blocker),
        tmp_path / "nothing",
    )


def test_missing_class_is_named(tmp_path, capsys):
    _expect_user_error(
        ["tsne", "--class-idx", "3", "12", "--work-dir", str(tmp_path), *FAST],
        capsys,
        "12",
        tmp_path,
    )


def _image_folder(root: Path, bad: bool) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["circle", "square"]):
        (root / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8) // (c + 1)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    if bad:
        (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_unreadable_image_is_named_and_can_be_skipped(tmp_path, capsys):
    data = _image_folder(tmp_path / "data", bad=True)
    args = [
        "tsne",
        "--model",
        "demo:digits-cnn",
        "--data",
        str(data),
        "--perplexity",
        "3",
        "--work-dir",
        str(tmp_path / "w"),
        *FAST,
    ]
    _expect_user_error(args, capsys, "broken.png", tmp_path / "w")
    assert main([*args, "--skip-bad-images"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1" in out
    (run_dir,) = _run_dirs(tmp_path / "w")
    assert "broken.png" in (run_dir / "run.log").read_text()
    assert len(np.load(run_dir / "labels.npy")) == 12


def test_config_file_and_cfg_options(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "f.npy", rng.normal(size=(40, 5)).astype(np.float32))
    config = tmp_path / "run.toml"
    config.write_text(f'features = "{tmp_path / "f.npy"}"\nperplexity = 5\nmethod = "pca"\n')
    assert (
        main(
            [
                "tsne",
                "--config",
                str(config),
                "--cfg-options",
                "method=tsne",
                "n_iter=300",
                "--work-dir",
                str(tmp_path / "w"),
                "--quiet",
            ]
        )
        == 0
    )
    (run_dir,) = _run_dirs(tmp_path / "w")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (entry,) = manifest["results"].values()
    assert entry["method"] == "tsne"
    assert entry["params"]["perplexity"] == 5
    assert main(["tsne", "--cfg-options", "perplexty=5"]) == 2
    assert "perplexity" in capsys.readouterr().err


def test_timm_model_on_an_image_folder_at_three_points(tmp_path):
    data = _image_folder(tmp_path / "data", bad=False)
    run = featscope.tsne(
        model="timm:test_resnet",
        data=data,
        points=["backbone", "neck", "pre_logits"],
        embedding=EmbeddingOptions(perplexity=3, n_iter=300),
        preprocess=Preprocess(input_size=(32, 32)),
        extraction=QUIET,
        output=Output(work_dir=None),
    )
    # timm's test_resnet: neck and pre_logits are the pooled backbone, the same vectors;
    # they are mapped once and the run says so
    assert [r.point for r in run.results] == ["backbone"]
    assert run.features[0].aliases == ("neck", "pre_logits")
    assert run["pre_logits"] is run["backbone"]
    assert {fs.pooling for fs in run.features} == {"global_avg"}
    assert all(r.coords.shape == (12, 2) for r in run.results)
    assert run.results[0].ids[0] == "circle/0.png"


def test_torchscript_module_point_is_refused_before_reading_images(tmp_path, capsys):
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    torch.jit.trace(net, torch.zeros(1, 3, 16, 16)).save(str(tmp_path / "m.pt"))
    _expect_user_error(
        [
            "tsne",
            "--model",
            f"ts:{tmp_path / 'm.pt'}",
            "--vis-stage",
            "0",
            "--work-dir",
            str(tmp_path / "w"),
            *FAST,
        ],
        capsys,
        "cannot be hooked",
        tmp_path / "w",
    )
    # the model's own output works
    assert (
        main(
            [
                "tsne",
                "--model",
                f"ts:{tmp_path / 'm.pt'}",
                "--vis-stage",
                "logits",
                "--input-size",
                "16",
                "--max-num-samples",
                "20",
                "--perplexity",
                "5",
                "--work-dir",
                str(tmp_path / "w"),
                *FAST,
            ]
        )
        == 0
    )


def test_checkpoint_that_does_not_fit_names_the_keys(tmp_path, capsys):
    import torch

    torch.save({"state_dict": {"conv9.weight": torch.zeros(3)}}, tmp_path / "bad.pth")
    _expect_user_error(
        [
            "tsne",
            "--checkpoint",
            str(tmp_path / "bad.pth"),
            "--work-dir",
            str(tmp_path / "w"),
            *FAST,
        ],
        capsys,
        "conv9.weight",
        tmp_path / "w",
    )


def test_amp_choice_reaches_the_extraction(tmp_path, capsys):
    # argparse checks the choices; the Python API checks them in the Extraction group
    # (extract_features' own check: tests/capture/test_capture_extract.py).
    with pytest.raises(ParameterError, match="`--amp` must be one of auto, off, bf16, fp16"):
        featscope.tsne(extraction=Extraction(amp="fp8"), output=Output(work_dir=tmp_path))
    assert _run_dirs(tmp_path) == []
    with pytest.raises(SystemExit):
        main(["tsne", "--amp", "fp8", "--work-dir", str(tmp_path), *FAST])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_device_reaches_the_tsne_of_saved_features(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32))
    args = ["tsne", "--features", str(tmp_path / "f.npy"), "--device", "cuda"]
    _expect_user_error(
        [*args, "--work-dir", str(tmp_path / "w"), *FAST],
        capsys,
        "no CUDA device is available",
        tmp_path / "w",
    )


def test_unlabelled_folder_gives_a_map_csv_page_and_says_which_metrics_it_left_out(
    tmp_path, capsys
):
    rng = np.random.default_rng(3)
    data = tmp_path / "photos"  # loose images, no class sub-folders
    data.mkdir()
    for i in range(16):
        pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8) // (1 + i % 2)
        Image.fromarray(pixels).save(data / f"p{i:02d}.png")
    work = tmp_path / "w"
    args = ["tsne", "--model", "demo:digits-cnn", "--data", str(data), "--perplexity", "3"]
    assert main([*args, "--work-dir", str(work), "--max-num-samples", "12", *FAST]) == 0
    (run_dir,) = _run_dirs(work)
    rows = (run_dir / "coords_pre_logits.csv").read_text().splitlines()
    # unlabelled: predictions and clusters, but no "correct" column
    assert rows[0] == "id,label,class_name,x,y,prediction,confidence,cluster"
    assert len(rows) == 1 + 12  # --max-num-samples counts all samples when there are no labels
    assert all(row.split(",")[1:3] == ["-1", ""] for row in rows[1:])
    metrics = json.loads((run_dir / "metrics.json").read_text())["pre_logits"]
    assert metrics["trustworthiness"] > 0.5
    assert metrics["knn_accuracy_map"] is None
    assert metrics["skipped"]["knn_accuracy_map"] == "the samples have no labels"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["metadata"]["samples"]["labelled"] is False
    assert manifest["metadata"]["samples"]["n_samples"] == 12
    page = (run_dir / "embedding.html").read_text()
    assert "12 unlabelled samples" in page
    assert "left out: the samples have no labels" in page


def test_random_weights_are_said_in_the_title_the_results_and_the_manifest(tmp_path, caplog):
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    data = _image_folder(tmp_path / "data", bad=False)
    run = featscope.tsne(
        model="timm:test_resnet",
        data=data,
        points=["pre_logits"],
        embedding=EmbeddingOptions(perplexity=3),
        preprocess=Preprocess(input_size=32),
        output=Output(work_dir=tmp_path / "w"),
    )
    assert "timm:test_resnet has random weights" in caplog.text
    result = run["pre_logits"]
    assert result.provenance.weights == "random"
    from featscope.render.embedding import embedding_title

    assert embedding_title(result).startswith("timm:test_resnet (random weights) · pre_logits")
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["metadata"]["preprocessing"]["input_size"] == [32, 32]
    # a module brings its own weights: no notice
    given = featscope.tsne(
        model=net,
        data=data,
        points=["1"],
        embedding=EmbeddingOptions(perplexity=3),
        output=Output(work_dir=None),
    )
    assert given.results[0].provenance.weights == "given"


def test_a_one_channel_model_from_a_file_maps_rgb_photos(tmp_path, capsys):
    # An MNIST-style CNN (1 input channel) in a file of its own, given as py:FILE:factory.
    (tmp_path / "mnist_net.py").write_text(
        "import torch\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(\n"
        "        torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(),\n"
        "        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))\n"
    )
    data = _image_folder(tmp_path / "data", bad=False)
    work = tmp_path / "w"
    args = ["tsne", "--model", f"py:{tmp_path / 'mnist_net.py'}:build", "--data", str(data)]
    args += ["--point", "3", "--input-size", "20", "--perplexity", "3", "--work-dir", str(work)]
    assert main([*args, *FAST]) == 0
    (run_dir,) = _run_dirs(work)
    assert np.load(run_dir / "feat_3.npy").shape == (12, 4)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["metadata"]["preprocessing"]["channels"] == 1
    # --in-chans that the first layer cannot take is one line naming both
    capsys.readouterr()
    assert main([*args, "--in-chans", "3", *FAST]) == 2
    err = capsys.readouterr().err
    expected = r"error: model .*mnist_net.* failed on the input \(\d+, 3, 20, 20\) .*3 channels\): "
    assert re.search(expected + r".*channels.*--in-chans\)", err)
    assert "Traceback" not in err
    assert _run_dirs(work) == [run_dir]  # the failed run left no second folder


def test_an_unlabelled_run_reads_back(tmp_path):
    from featscope.sinks import load_run

    data = tmp_path / "photos"
    data.mkdir()
    for i in range(8):
        Image.fromarray(np.full((12, 12, 3), 30 * i, dtype=np.uint8)).save(data / f"p{i}.png")
    run = featscope.tsne(
        model="demo:digits-cnn", data=str(data), embedding=EmbeddingOptions(method="pca"),
        extraction=QUIET, output=Output(work_dir=tmp_path / "w"), html=False,
    )  # fmt: skip
    back = load_run(run.run_dir).embedding("pre_logits")
    assert back.class_names == ()
    assert back.labels.tolist() == [-1] * 8
    np.testing.assert_array_equal(back.fields["cluster"], run["pre_logits"].fields["cluster"])
