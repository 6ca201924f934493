"""Class activation maps as pictures: each map over its photo with a title, and one sheet of all.

A map is drawn the way the feature maps are (:mod:`featscope.render.featmap`): resized
bilinearly to the photo's region the model saw, coloured with OpenCV's JET on the fixed range
[0, 1] (pytorch-grad-cam's maps are already scaled to it, so a weak map stays dark instead of
being stretched) and blended with ``alpha`` weighting the heat map. A title bar above it names
the method, the class and its probability. The sheet puts the pictures of each image in a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featscope.analysis.cam import ExplainedImage, cam_title, class_label
from featscope.analysis.resize import resize_bilinear
from featscope.errors import ParameterError
from featscope.render.featmap import heatmap_rgb, overlay_heatmap

__all__ = ["cam_sheet", "draw_cam", "draw_explained"]

#: Height in pixels of the title bar above each map.
TITLE_HEIGHT = 18
#: Longest side of a picture in the sheet (larger ones are scaled down for it).
SHEET_CELL = 320
#: The sheet shows at most this many images and pictures per image: it is an overview, and a
#: sheet of a thousand images would be gigapixels (every map is in its own file anyway).
SHEET_MAX_ROWS, SHEET_MAX_COLS = 32, 24
# gap between the cells of the sheet
_GAP = 4


def _font(size: int) -> tuple[Any, int]:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size), 0
    except (TypeError, ValueError, OSError):  # Pillow without FreeType: bitmap font only
        return ImageFont.load_default(), 0


def _titled(picture: np.ndarray, title: str) -> np.ndarray:
    """Put a white bar with ``title`` in black above the picture."""
    from PIL import Image, ImageDraw

    height, width = picture.shape[:2]
    canvas = Image.new("RGB", (width, height + TITLE_HEIGHT), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, TITLE_HEIGHT))
    font, _ = _font(12)
    ImageDraw.Draw(canvas).text((3, 2), title, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def draw_cam(
    values: np.ndarray,
    photo: np.ndarray | None = None,
    *,
    alpha: float = 0.5,
    title: str | None = None,
) -> np.ndarray:
    """Draw one class activation map, over a photo if given, with a title bar if given.

    Parameters
    ----------
    values : numpy.ndarray
        ``(H, W)`` map in [0, 1] (values outside are clipped).
    photo : numpy.ndarray, optional
        RGB uint8 ``(h, w, 3)``: the region of the photo the map covers; the map is resized to
        it. ``None``: the heat map alone at the map's size.
    alpha : float, default 0.5
        Weight of the heat map in the blend.
    title : str, optional
        Text of the title bar (``"gradcam: espresso 0.95"``).

    Returns
    -------
    numpy.ndarray
        RGB uint8 ``(h + title bar, w, 3)``.

    Raises
    ------
    ParameterError
        For a map that is not 2-D or not finite.
    """
    x = np.asarray(values, dtype=np.float32)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ParameterError(f"a class activation map is a finite (H, W) array; got {x.shape}")
    x = np.clip(x, 0.0, 1.0)
    if photo is not None and photo.shape[:2] != x.shape:
        x = np.clip(resize_bilinear(x[None], photo.shape[:2])[0], 0.0, 1.0)
    picture = heatmap_rgb(x, value_range=(0.0, 1.0))
    if photo is not None:
        picture = overlay_heatmap(picture, photo, alpha)
    return picture if title is None else _titled(picture, title)


def draw_explained(
    found: ExplainedImage,
    names: Sequence[str] | None,
    photo: np.ndarray | None,
    *,
    alpha: float = 0.5,
    by: str = "methods",
) -> list[tuple[str, int, int, str, np.ndarray]]:
    """Draw every map of one image, titled with the method, the class and its probability.

    Parameters
    ----------
    found : ExplainedImage
        The image's maps (:func:`featscope.analysis.cam.explain_image`).
    names : sequence of str or None
        The class names.
    photo : numpy.ndarray, optional
        The region of the photo the model saw (see :func:`draw_cam`).
    alpha : float, default 0.5
        Weight of the heat map.
    by : {"methods", "classes", "none"}
        The order: every class of the first method first, or every method of the first class.

    Returns
    -------
    list of (str, int, int, str, numpy.ndarray)
        ``(method, class index, position in found.classes, title, picture)`` in that order.
    """
    out = []
    for method, c, j in found.entries(by):
        title = cam_title(method, class_label(names, c), float(found.probabilities[c]))
        picture = draw_cam(found.maps[method][j], photo, alpha=alpha, title=title)
        out.append((method, c, j, title, picture))
    return out


def _fit(picture: np.ndarray) -> np.ndarray:
    from PIL import Image

    height, width = picture.shape[:2]
    if max(height, width) <= SHEET_CELL:
        return picture
    scale = SHEET_CELL / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.LANCZOS))


def cam_sheet(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str] = ()) -> np.ndarray:
    """Lay pictures out in rows (one per image), cells padded white to the widest picture.

    Pictures longer than :data:`SHEET_CELL` pixels are scaled down; the first
    :data:`SHEET_MAX_ROWS` rows and :data:`SHEET_MAX_COLS` pictures of each are shown (a note
    in the last row's label says how many images were left out).

    Parameters
    ----------
    rows : sequence of sequence of numpy.ndarray
        RGB uint8 pictures, row by row (rows may differ in length).
    labels : sequence of str, optional
        A label per row, written in a bar above it (the image's id).

    Returns
    -------
    numpy.ndarray
        RGB uint8 sheet.

    Raises
    ------
    ParameterError
        When there is no picture.
    """
    from PIL import Image, ImageDraw

    left_out = max(0, len(rows) - SHEET_MAX_ROWS)
    labels = [str(t) for t in labels][:SHEET_MAX_ROWS]
    rows = [[_fit(p) for p in row[:SHEET_MAX_COLS]] for row in rows[:SHEET_MAX_ROWS]]
    if left_out and labels:
        labels[-1] += f"  (+{left_out} more images, in their own files)"
    pictures = [p for row in rows for p in row]
    if not pictures:
        raise ParameterError("the sheet has no picture to show; draw at least one map")
    cell_w = max(p.shape[1] for p in pictures)
    cols = max(len(row) for row in rows)
    band = TITLE_HEIGHT if labels else 0
    # each row as high as its tallest picture: photos of other shapes leave no white band
    heights = [band + max((p.shape[0] for p in row), default=0) + _GAP for row in rows]
    canvas = Image.new("RGB", (cols * (cell_w + _GAP) + _GAP, sum(heights) + _GAP), "white")
    draw = ImageDraw.Draw(canvas)
    font, _ = _font(12)
    top = _GAP
    for r, row in enumerate(rows):
        if labels:
            draw.text((_GAP, top + 2), str(labels[r]), fill=(0, 0, 0), font=font)
        for c, picture in enumerate(row):
            left = _GAP + c * (cell_w + _GAP) + (cell_w - picture.shape[1]) // 2
            canvas.paste(Image.fromarray(picture), (left, top + band))
        top += heights[r]
    return np.asarray(canvas)
