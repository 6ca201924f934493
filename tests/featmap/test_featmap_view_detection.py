"""Detection and segmentation models: FPN levels, the detector's own resize and padding undone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from featmap_view_helpers import photo

from featscope.analysis.featmap import FeatmapStyle
from featscope.options import Output, Preprocess
from featscope.render.featmap import draw_featmap
from featscope.views.featmap import feature_maps


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    # small internal resize (64..96 px) keeps the test fast; weights_backbone=None: no download
    return torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=64, max_size=96
    ).eval()


def test_fpn_levels_are_drawn_per_level_cropped_to_the_photo(detector, tmp_path):
    picture = photo(1, size=(48, 80))
    run = feature_maps(
        [("street", picture)],
        detector,
        ["backbone.fpn"],
        style=FeatmapStyle(overlaid=True),
        output=Output(work_dir=tmp_path),
    )
    names = [m.name for m in run.maps]
    assert names == [f"backbone.fpn.{k}" for k in ("0", "1", "2", "3", "pool")]
    # where the detector's transform put the photo inside its padded batch
    x = torch.from_numpy(np.asarray(picture, np.float32).transpose(2, 0, 1) / 255)
    with torch.inference_mode():
        images, _ = detector.transform([x])
    (rh, rw), (ph, pw) = images.image_sizes[0], images.tensors.shape[-2:]
    assert (ph, pw) != (rh, rw)  # there is padding to cut off
    for item in run.maps:
        _, fh, fw = item.values.shape  # raw maps keep the padding
        kept = item.params["padding_cropped_to"]
        assert kept == [round(fh * rh / ph), round(fw * rw / pw)]
        # drawn over the whole photo, at the photo's size, nothing else on it (no boxes, no
        # labels): exactly draw_featmap of the map without its padding over the photo
        assert item.drawn.shape == (48, 80, 3)
        unpadded = item.values[:, : kept[0], : kept[1]]
        np.testing.assert_array_equal(item.drawn, draw_featmap(unpadded, np.asarray(picture)))
        assert (tmp_path / run.run_dir.name / f"street_{item.name}.png").exists()
    assert run.maps[0].values.shape == (256, ph // 4, pw // 4)


def test_segmentation_model_loads_and_draws_its_backbone():
    torch.manual_seed(0)
    model = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None
    ).eval()
    run = feature_maps(
        [("p", photo(2, size=(40, 60)))],
        model,
        ["backbone"],
        preprocess=Preprocess(input_size=(64, 64)),
        output=Output(work_dir=None),
    )
    item = run["p", "backbone.out"]  # the backbone returns a dict {"out": ...}
    assert item.values.shape == (2048, 8, 8)  # dilated: stride 8
    # the centre crop the model saw (87.5 % of the short side), at the photo's scale
    assert item.drawn.shape == (35, 35, 3)
