"""Draw what a masked-image model fills in: the reconstruction panels and HOG pictures.

:func:`plot_reconstruction` draws one image's panels side by side from a reconstruction result
item (see :class:`featscope.results.ReconstructedImage`): *original*, *masked* (hidden patches
in the mask colour), *reconstruction* (the prediction everywhere, visible patches included) and
*reconstruction + visible* (the original on visible patches, the prediction on hidden ones). For
MaskFeat, whose target is a histogram of oriented gradients, the last three are HOG pictures:
*HOG of input*, *predicted HOG* and *predicted HOG + visible*.

:func:`hog_picture` and :func:`hog_rgb`, the HOG cell histograms as line glyphs, are
computed in :mod:`featscope.analysis.recon` (the result holds the pictures) and offered here too.

This module never imports torch; matplotlib is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.analysis.recon import hog_picture, hog_rgb
from featscope.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "hog_picture",
    "hog_rgb",
    "panel_titles",
    "panels",
    "plot_reconstruction",
    "plot_reconstruction_grid",
]

_PIXEL_TITLES = ("original", "masked", "reconstruction", "reconstruction + visible")
_HOG_TITLES = ("original", "masked", "HOG of input", "predicted HOG", "predicted HOG + visible")


def panels(item: Any) -> list[tuple[str, np.ndarray]]:
    """Return the ``(title, RGB uint8 picture)`` panels of one reconstructed image.

    Parameters
    ----------
    item : ReconstructedImage
        Needs ``original``, ``masked``, ``reconstruction``, ``pasted`` and ``hog_original``
        (``None`` unless the model predicts HOG).

    Returns
    -------
    list of (str, numpy.ndarray)
        Four panels, five for a HOG model.
    """
    if getattr(item, "hog_original", None) is not None:
        pictures = (item.original, item.masked, item.hog_original, item.reconstruction, item.pasted)
        return list(zip(_HOG_TITLES, pictures, strict=True))
    pictures = (item.original, item.masked, item.reconstruction, item.pasted)
    return list(zip(_PIXEL_TITLES, pictures, strict=True))


def panel_titles(hog: bool = False) -> tuple[str, ...]:
    """Return the panel titles, in order, for a pixel model or (``hog=True``) a HOG model."""
    return _HOG_TITLES if hog else _PIXEL_TITLES


def plot_reconstruction(
    item: Any,
    *,
    panel_size: float = 3.0,
    title: str | None = None,
    error_label: str = "masked-patch MSE",
) -> Figure:
    """Draw the panels of one reconstructed image on a new figure.

    Parameters
    ----------
    item : ReconstructedImage
        One image of a :class:`featscope.results.ReconstructionResult`.
    panel_size : float, default 3.0
        Width and height of a panel in inches.
    title : str, optional
        Figure title (default: the image id and the masked-patch error).
    error_label : str, default "masked-patch MSE"
        How the error is named in the default title.

    Returns
    -------
    matplotlib.figure.Figure
        A figure not managed by pyplot (save it with :func:`featscope.render.save_figure`).

    Raises
    ------
    ParameterError
        When ``panel_size`` is not positive.
    """
    from matplotlib.figure import Figure

    if not panel_size > 0:
        raise ParameterError(f"`panel_size` {panel_size} must be > 0 inches; pass e.g. 3")
    drawn = panels(item)
    fig = Figure(figsize=(panel_size * len(drawn), panel_size + 0.6), layout="constrained")
    axes = fig.subplots(1, len(drawn))
    for ax, (name, picture) in zip(np.atleast_1d(axes), drawn, strict=True):
        # nearest: a 28-pixel image shows its patches as they are, not blurred
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(name, fontsize=12)
        ax.set_axis_off()
    if title is None:
        title = f"{item.image_id}   {error_label} {item.error:.4g}"
    fig.suptitle(title, fontsize=12)
    return fig


def plot_reconstruction_grid(
    items: Any, *, panel_size: float = 1.6, error_label: str = "MSE"
) -> Figure:
    """Draw several reconstructed images on one figure, one row per image.

    Parameters
    ----------
    items : sequence of ReconstructedImage
        The images (e.g. a :class:`featscope.results.ReconstructionResult`).
    panel_size : float, default 1.6
        Width and height of a panel in inches.
    error_label : str, default "MSE"
        How the error is named in each row's label.

    Returns
    -------
    matplotlib.figure.Figure
        A figure not managed by pyplot.

    Raises
    ------
    ParameterError
        When ``items`` is empty or ``panel_size`` is not positive.
    """
    from matplotlib.figure import Figure

    rows = list(items)
    if not rows:
        raise ParameterError("`items` is empty; pass the images of a reconstruction result")
    if not panel_size > 0:
        raise ParameterError(f"`panel_size` {panel_size} must be > 0 inches; pass e.g. 1.6")
    drawn = [panels(item) for item in rows]
    cols = max(len(d) for d in drawn)
    fig = Figure(figsize=(panel_size * cols, panel_size * len(rows) + 0.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), cols, squeeze=False))
    for r, (item, row) in enumerate(zip(rows, drawn, strict=True)):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            if c >= len(row):
                continue
            name, picture = row[c]
            ax.imshow(picture, interpolation="nearest")
            if r == 0:
                ax.set_title(name, fontsize=9)
        axes[r, 0].text(
            -0.08,
            0.5,
            f"{error_label}\n{item.error:.4f}",
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    return fig
