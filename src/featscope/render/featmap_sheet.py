"""One overview of a feature-map run: every image (rows) at every point (columns), titled.

``featscope featmap`` writes one file per image and point, which is what a paper figure needs;
the sheet is what a person looks at first: the same image across depths on one row, the same
point across images in one column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from featscope.results import FeatureMap

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["MAX_SHEET_IMAGES", "featmap_sheet"]

#: Rows of a sheet: more images would make cells too small to read (the files hold them all).
MAX_SHEET_IMAGES = 24
_CELL_INCHES = 2.2


def featmap_sheet(maps: Sequence[FeatureMap], title: str) -> Figure:
    """Draw the pictures of a feature-map run as a grid: images by points.

    Parameters
    ----------
    maps : sequence of FeatureMap
        The drawn maps, in the order they were made (image by image).
    title : str
        The sheet's title (the view and the model(s)).

    Returns
    -------
    matplotlib.figure.Figure
        Rows: the first :data:`MAX_SHEET_IMAGES` images, named on the left; columns: the maps'
        names (point, or ``<point>.<level>``), at the top. A missing cell stays empty.
    """
    from matplotlib.figure import Figure

    images = list(dict.fromkeys(m.image_id for m in maps))
    shown = images[:MAX_SHEET_IMAGES]
    columns = list(dict.fromkeys(m.name for m in maps if m.image_id in shown))
    cells = {(m.image_id, m.name): m.drawn for m in maps}
    rows, cols = max(1, len(shown)), max(1, len(columns))
    size = (_CELL_INCHES * cols + 1.0, _CELL_INCHES * rows + 0.6)
    fig = Figure(figsize=size, layout="constrained")
    note = f" (first {len(shown)} of {len(images)} images)" if len(images) > len(shown) else ""
    fig.suptitle(title + note, fontsize="medium")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, image_id in enumerate(shown):
        for c, name in enumerate(columns):
            ax = axes[r][c]
            picture = cells.get((image_id, name))
            if picture is not None:
                ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize="small")
            if c == 0:
                ax.set_ylabel(image_id, fontsize="small")
    return fig
