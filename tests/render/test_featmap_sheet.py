"""The overview sheet of a feature-map run: images by points, titled (issue 16, item 8)."""

from __future__ import annotations

import numpy as np

from featscope.render.featmap_sheet import MAX_SHEET_IMAGES, featmap_sheet
from featscope.results import FeatureMap


def _maps(images, names):
    out = []
    for k, image_id in enumerate(images):
        for j, name in enumerate(names):
            drawn = np.full((6, 8, 3), 10 * k + j, dtype=np.uint8)
            out.append(FeatureMap(image_id, name, name, np.zeros((1, 2, 2)), drawn))
    return out


def test_sheet_puts_images_in_rows_and_points_in_columns():
    fig = featmap_sheet(_maps(["cat.jpg", "dog.jpg"], ["layer2", "layer4", "neck.0"]), "maps")
    axes = fig.axes
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes[:3]] == ["layer2", "layer4", "neck.0"]
    assert [axes[0].get_ylabel(), axes[3].get_ylabel()] == ["cat.jpg", "dog.jpg"]
    # row 2, column 3 shows dog.jpg at neck.0
    assert axes[5].images[0].get_array()[0, 0, 0] == 12
    assert fig.get_suptitle() == "maps"


def test_sheet_keeps_the_first_images_and_says_so():
    images = [f"img{i}" for i in range(MAX_SHEET_IMAGES + 2)]
    fig = featmap_sheet(_maps(images, ["p"]), "maps")
    assert len(fig.axes) == MAX_SHEET_IMAGES
    assert fig.get_suptitle() == f"maps (first {MAX_SHEET_IMAGES} of {len(images)} images)"
