"""Draw what a masked-image model fills in: the reconstruction panels and HOG pictures.

:func:`plot_reconstruction` draws one image's panels side by side from a reconstruction result
item (see :class:`featscope.views.recon.ReconstructedImage`): *original*, *masked* (hidden patches
in the mask colour), *reconstruction* (the prediction everywhere, visible patches included) and
*reconstruction + visible* (the original on visible patches, the prediction on hidden ones). For
MaskFeat, whose target is a histogram of oriented gradients, the last three are HOG pictures:
*HOG of input*, *predicted HOG* and *predicted HOG + visible*.

:func:`hog_picture` draws HOG cell histograms as the usual line glyphs (numpy only). Where it
differs from MMSelfSup's renderer on purpose: each bin's line is drawn through the cell's
centre (not its corner) along the edge direction of the bin (perpendicular to its gradient, 9
directions over 180 degrees rather than 9 lines at 0, 40, ..., 320 degrees), and the picture is
shown as grey on black instead of being pushed through the image de-normalisation.

This module never imports torch; matplotlib is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

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
        One image of a :class:`featscope.views.recon.ReconstructionResult`.
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
        The images (e.g. a :class:`featscope.views.recon.ReconstructionResult`).
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


def hog_picture(cells: np.ndarray, cell_size: int = 8, *, scale: float | None = None) -> np.ndarray:
    """Draw HOG cell histograms as line glyphs on a black picture.

    Parameters
    ----------
    cells : numpy.ndarray
        ``(C, B, hc, wc)`` histograms (``C`` colour channels, averaged, ``B`` bins over 180
        degrees in MMSelfSup's convention: bin ``k`` holds gradients at ``k * 180 / B`` to
        ``(k + 1) * 180 / B`` degrees from the vertical axis) or ``(B, hc, wc)``.
    cell_size : int, default 8
        Side of a cell in pixels.
    scale : float, optional
        Value drawn at full length and brightness (default: the largest value of ``cells``).

    Returns
    -------
    numpy.ndarray
        ``(hc * cell_size, wc * cell_size)`` uint8; a bin of value ``m`` (over ``scale``) is a
        line through the cell centre along its edge direction, ``m * cell_size`` pixels long,
        of brightness ``255 * sqrt(m)``; overlapping lines keep the brighter value.

    Raises
    ------
    ParameterError
        When ``cells`` is not 3-D or 4-D.
    """
    values = np.asarray(cells, dtype=np.float64)
    if values.ndim == 4:
        values = values.mean(axis=0)
    if values.ndim != 3:
        raise ParameterError(
            f"`cells` must be (C, bins, rows, cols) or (bins, rows, cols); got shape "
            f"{np.asarray(cells).shape}"
        )
    values = np.clip(values, 0.0, None)
    bins, hc, wc = values.shape
    canvas = np.zeros((hc * cell_size, wc * cell_size), dtype=np.float64)
    top = float(values.max()) if scale is None else float(scale)
    if top <= 0:
        return canvas.astype(np.uint8)
    m = np.clip(values / top, 0.0, 1.0)
    # gradient angle from the vertical axis: (gx, gy) = (sin t, cos t); the edge runs along
    # (cos t, -sin t) in (x, y) = (column, row) picture coordinates
    theta = (np.arange(bins) + 0.5) * np.pi / bins
    dx, dy = np.cos(theta), -np.sin(theta)
    steps = np.linspace(-0.5, 0.5, 4 * cell_size + 1)
    rows, cols = np.meshgrid(np.arange(hc), np.arange(wc), indexing="ij")
    cy = (rows + 0.5) * cell_size - 0.5
    cx = (cols + 0.5) * cell_size - 0.5
    for k in range(bins):
        length = m[k] * cell_size  # (hc, wc)
        t = length[..., None] * steps  # (hc, wc, S)
        x = np.rint(cx[..., None] + t * dx[k]).astype(np.int64)
        y = np.rint(cy[..., None] + t * dy[k]).astype(np.int64)
        value = np.broadcast_to((255.0 * np.sqrt(m[k]))[..., None], x.shape)
        keep = (x >= 0) & (x < canvas.shape[1]) & (y >= 0) & (y < canvas.shape[0])
        np.maximum.at(canvas, (y[keep], x[keep]), value[keep])
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _as_rgb(picture: np.ndarray) -> np.ndarray:
    return np.repeat(picture[..., None], 3, axis=-1) if picture.ndim == 2 else picture


def hog_rgb(cells: np.ndarray, cell_size: int = 8, *, scale: float | None = None) -> np.ndarray:
    """:func:`hog_picture` as an ``(H, W, 3)`` uint8 RGB picture."""
    return _as_rgb(hog_picture(cells, cell_size, scale=scale))
