"""Class activation maps: a model that answers from one region, every method, targets, ViT tokens.

The region model sees a red square in the top-left quadrant and a blue square in the bottom-right
one; by construction class 0 ("red") is decided by red pixels only and class 1 ("blue") by blue
ones, so a class-discriminative map of "red" must peak top-left and one of "blue" bottom-right.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import featscope
from featscope.analysis.cam import CAM_METHODS, CamOptions, resolve_targets
from featscope.capture.cam import CAM_CLASSES, CamSession, cam_layer, default_cam_point
from featscope.capture.maps import model_input
from featscope.errors import CaptureError, ParameterError
from featscope.models import load_model
from featscope.options import Output, Preprocess

pytest.importorskip("pytorch_grad_cam")

# methods whose map is specific to the class (EigenCAM is the first principal component of the
# activations, the same for every class; EigenGradCAM's sign is the SVD's)
DISCRIMINATIVE = [m for m in CAM_METHODS if not m.startswith("eigen")]
PLAIN = Preprocess(input_size=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


class RegionNet(nn.Module):
    """Channel 0 fires on red pixels, channel 1 on blue ones; class c is channel c's mean."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0]])[:, :, None, None])
            conv.bias.zero_()
        self.features = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(4))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
        with torch.no_grad():
            self.head[2].weight.copy_(4 * torch.eye(2))
            self.head[2].bias.zero_()
        self.config = types.SimpleNamespace(id2label={0: "red", 1: "blue"})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def squares(red: float = 1.0, blue: float = 1.0) -> np.ndarray:
    image = np.zeros((32, 32, 3), np.uint8)
    image[2:14, 2:14, 0] = round(255 * red)
    image[18:30, 18:30, 2] = round(255 * blue)
    return image


@pytest.fixture(scope="module")
def region():
    handle = load_model(RegionNet(), **PLAIN.to_dict())
    layer = cam_layer(handle, default_cam_point(handle))
    from PIL import Image

    x, _ = model_input(handle, Image.fromarray(squares(blue=0.8)))
    return handle, CamSession(handle, layer), x


def _quadrant(values: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(row >= values.shape[0] // 2), int(col >= values.shape[1] // 2)


def test_default_point_of_a_resnet_is_its_last_stage_not_a_layer_inside_it():
    import torchvision

    handle = load_model(torchvision.models.resnet18(num_classes=4), input_size=(64, 64))
    assert default_cam_point(handle) == "layer4"  # not layer4.1.bn2, before the residual sum


def test_default_point_is_the_last_spatial_stage_not_the_1x1_pool(region):
    _handle, session, _ = region
    # stride 4, 8x8: the Sequential around the pool (head.0 is a 1x1 "map", no place)
    assert session.layer.name == "features"
    assert session.num_classes() == 2


@pytest.mark.parametrize("method", CAM_METHODS)
def test_every_method_runs_and_gives_maps_in_unit_range(region, method):
    _, session, x = region
    maps = session.maps(x, method, [0, 1])
    assert maps.shape == (2, 32, 32)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert maps.min() >= 0
    assert maps.max() <= 1 + 1e-6
    assert maps.max() > 0.5  # not the all-zero map of a point without gradient


@pytest.mark.parametrize("method", DISCRIMINATIVE)
def test_the_map_peaks_on_the_region_the_class_is_decided_by(region, method):
    _, session, x = region
    red, blue = session.maps(x, method, [0, 1])
    assert _quadrant(red) == (0, 0)
    assert _quadrant(blue) == (1, 1)
    # and the other square carries (almost) nothing of that class
    assert red[18:30, 18:30].max() < 0.5 * red.max()


@pytest.mark.parametrize("method", ["gradcam", "ablationcam"])
def test_the_model_is_left_as_it_was_hooks_modes_and_grads(method):
    model = RegionNet()
    handle = load_model(model, **PLAIN.to_dict())
    model.train()  # a model in training (load_model leaves it as it finds it or in eval)
    model.features[0].weight.grad = torch.full_like(model.features[0].weight, 7.0)
    model.head[2].requires_grad_(False)
    session = CamSession(handle, cam_layer(handle, "features.2"))
    x = torch.rand(1, 3, 32, 32)
    session.maps(x, method, [0, 1])
    session.faithfulness(x, np.ones((1, 32, 32), np.float32), [0], "confidence")
    with pytest.raises(CaptureError, match=r"failed on the input \(1, 4, 32, 32\)"):
        session.maps(torch.rand(1, 4, 32, 32), method, [0, 1])  # an error inside the library
    with pytest.raises(ParameterError, match=r"class 5 is outside the model's 2 classes"):
        session.maps(x, method, [0, 5])
    assert all(m.training for m in model.modules())
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()) == 0
    assert torch.equal(model.features[0].weight.grad, torch.full((2, 3, 1, 1), 7.0))
    assert model.head[2].weight.grad is None
    assert model.features[0].weight.requires_grad
    assert not model.head[2].weight.requires_grad
    assert isinstance(model.features[2], nn.AvgPool2d)  # AblationCAM's swap undone


def test_eigen_smoothing_changes_the_map_and_aug_smoothing_undoes_its_flips(region):
    _, session, x = region
    plain = session.maps(x, "gradcam++", [0])[0]
    assert not np.allclose(session.maps(x, "gradcam++", [0], eigen_smooth=True)[0], plain)
    # the region model commutes with flips and its ReLU features scale with brightness, so the
    # flipped and rescaled passes, flipped back, give the same map: none is misplaced
    smoothed = session.maps(x, "gradcam++", [0], aug_smooth=True)[0]
    np.testing.assert_allclose(smoothed, plain, atol=1e-5)


def test_method_names_match_the_library_classes():
    import pytorch_grad_cam

    assert set(CAM_CLASSES) == set(CAM_METHODS)
    assert all(hasattr(pytorch_grad_cam, name) for name in CAM_CLASSES.values())
    assert CamOptions(methods=("GradCAM++", "ScoreCAM", "gradcam")).methods == (
        "gradcam++",
        "scorecam",
        "gradcam",
    )
    with pytest.raises(ParameterError, match=r"'GradCan'.*did you mean gradcam"):
        CamOptions(methods=("GradCan",))


def test_the_right_map_keeps_the_probability_and_the_wrong_one_loses_it(region):
    _, session, x = region
    red = session.maps(x, "gradcam", [0])
    for metric in ("confidence", "road"):
        right, wrong = session.faithfulness(x, np.concatenate([red, 1 - red]), [0, 0], metric)
        assert right > wrong, metric


def test_targets_by_index_name_synonym_and_topk():
    p = np.array([0.1, 0.6, 0.3])
    names = ["tabby, tabby cat", "espresso", "tiger cat"]
    assert resolve_targets(p, names, topk=2) == (1, 2)
    assert resolve_targets(p, names, ["Tabby Cat", "2", 0]) == (0, 2)
    with pytest.raises(ParameterError, match=r"'espreso' is no class.*nearest: 'espresso'"):
        resolve_targets(p, names, ["espreso"])
    with pytest.raises(ParameterError, match=r"3 is outside the model's 3 classes"):
        resolve_targets(p, names, ["3"])
    with pytest.raises(ParameterError, match=r"have no names; pass a class index 0\.\.2"):
        resolve_targets(p, None, ["cat"])


def test_view_explains_a_class_by_name_and_the_topk_predictions(tmp_path):
    photos = [("sq", squares(blue=0.8))]
    by_name = featscope.cam(
        photos,
        RegionNet(),
        options=CamOptions(targets=("BLUE",), metric="none"),
        preprocess=PLAIN,
        output=Output(work_dir=None),
    )
    (item,) = by_name.maps
    assert (item.class_index, item.class_name, item.score) == (1, "blue", None)
    assert _quadrant(item.values) == (1, 1)
    from PIL import Image

    handle = load_model(RegionNet(), **PLAIN.to_dict())
    x, _ = model_input(handle, Image.fromarray(squares(blue=0.8)))
    expected = torch.softmax(handle.module(x), dim=1)[0, 1].item()
    assert item.probability == pytest.approx(expected, rel=1e-6)
    assert item.probability < 0.5
    assert item.params["title"] == f"gradcam: blue {expected:.2f}"

    run = featscope.cam(
        photos,
        RegionNet(),
        options=CamOptions(methods=("gradcam", "layercam"), topk=2, sheet="classes"),
        preprocess=PLAIN,
        output=Output(work_dir=tmp_path),
    )
    assert [(m.method, m.class_name) for m in run] == [
        ("gradcam", "red"),
        ("layercam", "red"),
        ("gradcam", "blue"),
        ("layercam", "blue"),
    ]  # red is the more probable: its square is brighter
    assert run["sq", "layercam", "blue"].probability < run["sq", "gradcam", "red"].probability
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"sq_gradcam_0.png", "sq_gradcam_0.npy", "cam_sheet.png", "scores.csv"} <= files
    np.testing.assert_array_equal(np.load(run.run_dir / "sq_layercam_1.npy"), run.maps[3].values)
    scores = (run.run_dir / "scores.csv").read_text().splitlines()
    assert scores[0] == "image,method,class_index,class_name,probability,metric,score"
    assert len(scores) == 5
    assert scores[1].startswith("sq,gradcam,0,red,")
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["metadata"]["points"] == ["features"]
    # the sheet: one row of four titled pictures of the photo's region (32 px + title bar)
    assert run.sheet.shape[1] > 4 * 32
    assert run.sheet.shape[0] > 32


def test_view_is_deterministic_with_road():
    kwargs = {
        "options": CamOptions(methods=("scorecam",), metric="road"),
        "preprocess": PLAIN,
        "output": Output(work_dir=None),
    }
    a = featscope.cam([("sq", squares())], RegionNet(), **kwargs)
    b = featscope.cam([("sq", squares())], RegionNet(), **kwargs)
    np.testing.assert_array_equal(a.maps[0].values, b.maps[0].values)
    np.testing.assert_array_equal(a.maps[0].drawn, b.maps[0].drawn)
    assert a.maps[0].score == b.maps[0].score
    assert a.maps[0].metric == "road"


def _tiny_vit():
    import dataclasses

    import timm

    from featscope.models.timm_adapter import build_timm_handle

    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224",
        img_size=32,
        patch_size=8,
        embed_dim=8,
        depth=2,
        num_heads=1,
        num_classes=3,
    ).eval()
    handle = build_timm_handle(model, "tiny-vit")
    return dataclasses.replace(
        handle, preprocess=dataclasses.replace(handle.preprocess, input_size=(32, 32))
    )


def test_vit_tokens_are_laid_out_on_the_patch_grid_and_the_default_skips_the_dead_block():
    handle = _tiny_vit()
    point = default_cam_point(handle)
    # the last block's patch tokens never reach the head (only the class token does)
    assert point == "blocks.1.norm1"
    layer = cam_layer(handle, point)
    tokens = torch.randn(1, 1 + 16, 8)
    grid = layer.reshape(tokens)
    assert grid.shape == (1, 8, 4, 4)
    torch.testing.assert_close(grid[0, :, 2, 3], tokens[0, 1 + 2 * 4 + 3])
    session = CamSession(handle, layer)
    x = torch.randn(1, 3, 32, 32)
    for method in ("gradcam", "ablationcam"):
        maps = session.maps(x, method, [0])
        assert maps.shape == (1, 32, 32), method
        assert maps.max() > 0.5, method
    # a model that is not flip-invariant: aug smoothing does change its map
    smoothed = session.maps(x, "ablationcam", [0], aug_smooth=True)
    assert not np.allclose(smoothed, maps, atol=1e-3)
    # the last block itself gives an all-zero Grad-CAM: the reason for the default
    dead = CamSession(handle, cam_layer(handle, "blocks.1")).maps(x, "gradcam", [0])
    assert dead.max() == 0


def test_hugging_face_vit_names_its_classes_and_explains_at_the_last_pre_attention_norm(tmp_path):
    from PIL import Image
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        id2label={0: "cat", 1: "dog", 2: "tabby"},
        label2id={"cat": 0, "dog": 1, "tabby": 2},
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8))
    run = featscope.cam(
        [("noise", picture)],
        f"hf:{tmp_path}",
        options=CamOptions(targets=("dog",), metric="none"),
        output=Output(work_dir=None),
    )
    (item,) = run.maps
    # the final layernorm's patch tokens get no gradient: the last block's pre-attention norm
    assert run.point.endswith(".1.layernorm_before")  # the path differs across transformers
    assert (item.class_index, item.class_name) == (1, "dog")
    assert item.values.shape == (32, 32)
    assert item.values.max() > 0.5


def test_swin_channels_last_stage_runs_with_gradients_and_ablation():
    import dataclasses

    import timm

    from featscope.models.timm_adapter import build_timm_handle

    torch.manual_seed(0)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224",
        img_size=32,
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 1),
        window_size=4,
        num_classes=3,
    ).eval()
    handle = build_timm_handle(model, "tiny-swin")
    handle = dataclasses.replace(
        handle, preprocess=dataclasses.replace(handle.preprocess, input_size=(32, 32))
    )
    point = default_cam_point(handle)
    assert point == "layers.1"  # the last stage, (N, 4, 4, 16) channels-last
    layer = cam_layer(handle, point)
    nhwc = torch.randn(1, 4, 4, 16)
    torch.testing.assert_close(layer.reshape(nhwc), nhwc.permute(0, 3, 1, 2))
    session = CamSession(handle, layer)
    x = torch.randn(1, 3, 32, 32)
    for method in ("gradcam", "ablationcam", "scorecam"):
        maps = session.maps(x, method, [2])
        assert maps.shape == (1, 32, 32), method
        assert maps.max() > 0.5, method


def test_bad_inputs_one_line_exit_2(tmp_path, capsys):
    from featscope.cli import main

    (tmp_path / "nets.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_cam import RegionNet\n"
        "import torch.nn as nn\n"
        "def region():\n    return RegionNet()\n"
        "def maps():\n    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU())\n"
    )
    from PIL import Image

    image = tmp_path / "sq.png"
    Image.fromarray(squares()).save(image)
    base = ["cam", str(image), "--input-size", "32", "--work-dir", str(tmp_path / "runs")]
    spec = f"py:{tmp_path / 'nets.py'}"
    cases = [
        (["--model", f"{spec}:region", "--target-category", "bleu"], r"'bleu'.*nearest: 'blue'"),
        (
            ["--model", f"{spec}:region", "--target-layers", "head.2"],
            r"'head.2' gives NC .*features.2",
        ),
        (["--model", f"{spec}:maps"], r"not a classifier output"),
        (["--model", f"{spec}:region", "--method", "gradcan"], r"did you mean gradcam"),
        (["--model", f"{spec}:region", "--point", "features", "head.0"], r"takes one capture"),
    ]
    for args, pattern in cases:
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err.strip()
        # the last line is the error, one line, no traceback (lines before it are the log)
        assert "Traceback" not in err, err
        assert err.count("error:") == 1, err
        last = err.splitlines()[-1]
        assert last.startswith("error:"), err
        assert re.search(pattern, last), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("cam_*"))


def test_cli_writes_a_run_and_says_the_scores(tmp_path, capsys):
    from PIL import Image

    from featscope.cli import main

    for name in ("a", "b"):
        Image.fromarray(squares()).save(tmp_path / f"{name}.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    (tmp_path / "nets.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_cam import RegionNet\n"
        "def region():\n    return RegionNet()\n"
    )
    args = ["cam", str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(bad)]
    args += ["--model", f"py:{tmp_path / 'nets.py'}:region", "--input-size", "32"]
    args += ["--mean", "0", "0", "0", "--std", "1", "1", "1", "--skip-bad-images"]
    args += ["--method", "GradCAM", "EigenCAM", "--work-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 class activation map(s) of 2 image(s) at features" in out
    assert "gradcam confidence" in out
    assert "skipped 1 unreadable image" in out
    (run,) = (tmp_path / "runs").glob("cam_*")
    assert len(list(run.glob("*.npy"))) == 4
    assert (run / "cam_sheet.png").is_file()


def test_sheet_is_bounded_and_scales_large_pictures_down():
    from featscope.render.cam import SHEET_CELL, SHEET_MAX_COLS, SHEET_MAX_ROWS, cam_sheet

    big = np.zeros((2 * SHEET_CELL, SHEET_CELL, 3), np.uint8)
    rows = [[big] * (SHEET_MAX_COLS + 5)] * (SHEET_MAX_ROWS + 3)
    sheet = cam_sheet(rows, [f"img{i}" for i in range(len(rows))])
    assert sheet.shape[0] < (SHEET_MAX_ROWS + 1) * (SHEET_CELL + 30)
    assert sheet.shape[1] < (SHEET_MAX_COLS + 1) * (SHEET_CELL // 2 + 10)
    with pytest.raises(ParameterError, match="no picture"):
        cam_sheet([[]])


def test_tensorboard_receives_every_picture_the_sheet_and_the_scores(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = featscope.cam(
        [("sq", squares())],
        RegionNet(),
        options=CamOptions(methods=("gradcam", "xgradcam")),
        preprocess=PLAIN,
        output=Output(work_dir=tmp_path, backends=("tensorboard",)),
    )
    events = EventAccumulator(
        str(tmp_path / "tensorboard" / run.run_dir.name), size_guidance={"images": 0, "scalars": 0}
    )
    events.Reload()
    assert sorted(events.Tags()["images"]) == sorted(["sq_gradcam_0", "sq_xgradcam_0", "cam_sheet"])
    (score,) = events.Scalars("sq_gradcam_0/faithfulness_confidence")
    assert score.value == pytest.approx(run["sq", "gradcam", 0].score, abs=1e-6)


def test_prepared_tensors_of_a_dataset_are_explained_as_given():
    from torch.utils.data import TensorDataset

    # the model input itself: a red square top-left, already "preprocessed" (mean 0, std 1)
    x = torch.from_numpy(squares(blue=0.0).transpose(2, 0, 1).astype(np.float32) / 255.0)
    x[0] *= 3.0  # outside what the preprocessing of a photo gives: used as given or not at all
    run = featscope.cam(
        TensorDataset(x[None], torch.tensor([0])),
        RegionNet(),
        options=CamOptions(metric="none"),
        preprocess=PLAIN,
        output=Output(work_dir=None),
    )
    (item,) = run.maps
    logits = RegionNet()(x[None])
    assert item.probability == pytest.approx(torch.softmax(logits, 1)[0, 0].item(), rel=1e-6)
    assert _quadrant(item.values) == (0, 0)
