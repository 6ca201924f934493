"""Step outputs made displayable, masks overlaid, and the grid's layout."""

from __future__ import annotations

import numpy as np
import pytest
from browse_helpers import tiny_pipeline
from PIL import Image
from torchvision import transforms as T

from featscope.data.transforms import resolve_transform, trace
from featscope.errors import ParameterError
from featscope.render.browse import (
    Panel,
    draw_browse,
    label_text,
    overlay_mask,
    to_display,
    wrap_title,
)


def test_normalize_is_undone_for_display():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    pixels[3, 5] = (200, 17, 99)
    pipeline = resolve_transform(
        T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    )
    normalized = trace(pipeline, Image.fromarray(pixels))[-1]
    assert normalized.views[0].min() < 0  # really in the normalised space
    shown = to_display(normalized.views[0], normalized.stats)
    assert np.abs(shown[3, 5].astype(int) - (200, 17, 99)).max() <= 1
    assert np.abs(shown.astype(int) - pixels).max() <= 1


def test_float_grey_and_integer_outputs():
    unit = np.full((4, 6), 0.5, dtype=np.float32)
    assert to_display(unit).shape == (4, 6, 3)
    assert (to_display(unit) == 128).all()
    assert (to_display(np.full((4, 6, 1), 200.0)) == 200).all()  # 0-255 floats
    stretched = to_display(np.array([[-5.0, 5.0]]))
    assert stretched[0, :, 0].tolist() == [0, 255]
    assert (to_display(np.full((2, 2), 65535, dtype=np.uint16)) == 255).all()
    assert (to_display(np.ones((2, 2), dtype=bool)) == 255).all()
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 9
    assert to_display(rgba)[0, 0].tolist() == [9, 0, 0]
    with pytest.raises(ParameterError, match=r"shape \(2, 2, 7\)"):
        to_display(np.zeros((2, 2, 7)))


def test_overlay_mask_darkens_masked_patches_only():
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    mask = np.array([[1, 0], [0, 0]], dtype=bool)
    out = overlay_mask(image, mask)
    assert (out[:4, :4] == 40).all()  # 200 * (1 - 0.8)
    assert (out[4:, :] == 200).all()
    assert (out[:4, 4:] == 200).all()


def test_wrap_title_breaks_at_arguments():
    assert wrap_title("RandomResizedCropAndInterpolation(224)") == [
        "RandomResizedCropAndInterpolation",
        "(224)",
    ]
    assert wrap_title("ColorJitter(b=0.4, c=0.4)") == ["ColorJitter(b=0.4, c=0.4)"]
    assert all(len(line) <= 34 for line in wrap_title("x" * 80))


def test_grid_has_a_column_per_panel_and_a_row_per_view():
    one = np.zeros((10, 20, 3), dtype=np.uint8)
    square = np.zeros((8, 8, 3), dtype=np.uint8)
    fig = draw_browse(
        [Panel("Original", (one,), "PIL"), Panel("TwoViews", (square, square), "tensor")],
        label=label_text(1, "dog"),
        heading="dog/a.png",
    )
    axes = fig.axes
    assert len(axes) == 4  # 2 rows x 2 columns; the empty cell is blank
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "Original\n10×20 · PIL"
    assert titles[1] == "TwoViews [0]\n8×8 · tensor"
    assert titles[3] == "TwoViews [1]\n8×8 · tensor"
    assert titles[2] == ""
    texts = [t.get_text() for t in axes[0].texts]
    assert texts == ["Ground truth: 1 (dog)"]
    assert fig._suptitle.get_text() == "dog/a.png"
    assert label_text(None, None) is None


def test_pipeline_outputs_draw(tmp_path):
    image = Image.fromarray(np.full((40, 50, 3), 90, dtype=np.uint8))
    outputs = trace(resolve_transform(tiny_pipeline()), image)
    panels = [Panel(o.name, (to_display(o.views[0], o.stats),)) for o in outputs]
    fig = draw_browse(panels)
    assert len(fig.axes) == 6
    with pytest.raises(ParameterError, match="empty"):
        draw_browse([])
