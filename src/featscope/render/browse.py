"""Draw what a transform pipeline makes of an image: a grid of panels, one column per stage.

The dataset browser (:func:`featscope.browse`) hands this module plain numpy arrays (the tensor
conversion happens in :mod:`featscope.data.transforms`), so nothing here imports torch:

* :func:`to_display` turns any step output (uint8 or float, ``[0, 1]`` or normalised, grey or
  RGB) into a displayable RGB ``uint8`` image, undoing ``Normalize`` with its mean and std;
* :func:`overlay_mask` darkens the masked patches of a masked-image pipeline (SimMIM, MAE);
* :func:`step_panel` makes one traced step output a column (its views displayable, masks
  overlaid, a note with the output's type and value range);
* :func:`draw_browse` lays out the panels: columns are stages, rows are views (the views of a
  contrastive augmentation), each cell titled with the stage's name and the image size, and a
  label box on the top-left image;
* :func:`display_problem` and :func:`can_show` say whether a window can be opened here.

Unlike MMPretrain's ``browse_dataset.py``, the grid is a plain :class:`matplotlib.figure.Figure`
saved with ``bbox_inches="tight"``; it does not call matplotlib's private ``adjust_bbox``, which
gained a required argument in matplotlib 3.10 and made every grid mode of that tool crash.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "Panel",
    "can_show",
    "display_problem",
    "draw_browse",
    "label_text",
    "overlay_mask",
    "step_panel",
    "to_display",
    "wrap_title",
]

#: Mask overlay of the reference tool: masked patches drawn black at 80 % opacity.
MASK_COLOR = (0, 0, 0)
MASK_ALPHA = 0.8
_TITLE_WIDTH = 34  # characters per title line (8 pt monospace in a 2.4 in cell); longer wrap
_NON_INTERACTIVE = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def to_display(
    array: np.ndarray,
    stats: tuple[Sequence[float], Sequence[float]] | None = None,
) -> np.ndarray:
    """Turn one step output into an RGB ``uint8`` image for display.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` with C in 1-4; bool, integer or float.
    stats : (mean, std), optional
        Normalisation in effect (on the [0, 1] scale, 1 or 3 values each). Float values are
        mapped back with ``x * std + mean`` before display.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8. Floats are read as [0, 1] (after undoing ``stats``; values outside
        are clipped), or as 0-255 when they lie in [0, 255] but beyond 1, else stretched from
        their minimum to their maximum. uint16 is scaled to 8 bits. Grey images are repeated
        over the three channels; a fourth (alpha) channel is dropped; of two channels (grey +
        alpha) the first is shown.

    Raises
    ------
    ParameterError
        When the array is not 2-D or 3-D with 1-4 channels.
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4):
        channels = array.shape[-1]
    elif array.ndim == 2:
        channels = 1
        array = array[:, :, None]
    else:
        raise ParameterError(
            f"cannot display an array of shape {array.shape}; expected (H, W) or (H, W, C) with "
            "1-4 channels"
        )
    if channels == 2:
        array = array[:, :, :1]
    elif channels == 4:
        array = array[:, :, :3]
    values = _to_unit(array, stats)
    pixels = np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels)


def _to_unit(array: np.ndarray, stats: tuple[Sequence[float], Sequence[float]] | None) -> Any:
    """Map pixel values to [0, 1] floats (before clipping)."""
    if array.dtype == bool:
        return array.astype(np.float64)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if array.dtype.kind in "iu":
        if array.dtype.itemsize == 2 and array.dtype.kind == "u":
            return array.astype(np.float64) / 65535.0
        if array.min() >= 0 and array.max() <= 255:
            return array.astype(np.float64) / 255.0
        return _stretch(array.astype(np.float64))
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if stats is not None:
        channels = values.shape[-1]
        mean = _per_channel(stats[0], channels)
        std = _per_channel(stats[1], channels)
        return values * std + mean
    low, high = float(values.min()), float(values.max())
    if low >= -1e-3 and high <= 1 + 1e-3:
        return values
    if low >= 0 and high <= 255:
        return values / 255.0
    return _stretch(values)


def _per_channel(values: Sequence[float], channels: int) -> np.ndarray:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size != channels:
        flat = np.full(channels, flat.mean())  # a grey image after a 3-channel Normalize
    return flat


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def overlay_mask(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    alpha: float = MASK_ALPHA,
    color: Sequence[int] = MASK_COLOR,
) -> np.ndarray:
    """Darken the masked patches of an image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` uint8 image.
    mask : numpy.ndarray
        2-D mask, True (or 1) where the patch is masked; any size: it is scaled to the image by
        nearest neighbour (a ``(6, 6)`` patch mask over a 192-pixel image covers 32-pixel
        patches).
    alpha : float, default 0.8
        Opacity of ``color`` over masked pixels.
    color : 3 ints, default black
        Colour of the masked patches.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 blend; unmasked pixels are unchanged.
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ParameterError(f"mask must be 2-D; got shape {mask.shape}")
    height, width = image.shape[:2]
    rows = np.arange(height) * mask.shape[0] // height
    cols = np.arange(width) * mask.shape[1] // width
    full = mask[rows[:, None], cols[None, :]]
    out = image.astype(np.float64)
    out[full] = out[full] * (1 - alpha) + np.asarray(color, dtype=np.float64) * alpha
    return np.rint(out).astype(np.uint8)


def label_text(label: int | None, class_name: str | None) -> str | None:
    """Return the label box text, ``"Ground truth: 3 (cat)"`` (the reference's wording).

    Parameters
    ----------
    label : int or None
        Class index; None for unlabelled images.
    class_name : str or None
        Class name.

    Returns
    -------
    str or None
        The text, or None when there is no label.
    """
    if label is None:
        return None
    return f"Ground truth: {label}" + (f" ({class_name})" if class_name else "")


@dataclass(frozen=True)
class Panel:
    """One column of the grid: a stage and its output views.

    Attributes
    ----------
    title : str
        The stage name (``"Original"``, ``"RandomResizedCrop(224)"``, ``"transformed"``).
    images : tuple of numpy.ndarray
        ``(H, W, 3)`` uint8 images, one per view (drawn as rows).
    note : str
        Added after the size on the second title line (e.g. ``"tensor"``).
    """

    title: str
    images: tuple[np.ndarray, ...]
    note: str = ""

    def cell_title(self, row: int) -> str:
        """Return the title of the cell in ``row``: the name (and view number), then the size."""
        height, width = self.images[row].shape[:2]
        name = self.title if len(self.images) == 1 else f"{self.title} [{row}]"
        lines = wrap_title(name, _TITLE_WIDTH)
        size = f"{height}×{width}" + (f" · {self.note}" if self.note else "")
        return "\n".join([*lines, size])


def draw_browse(
    panels: Sequence[Panel],
    *,
    label: str | None = None,
    heading: str | None = None,
    cell_size: float = 2.4,
) -> Figure:
    """Draw panels side by side, views as rows, with a label box on the top-left image.

    Parameters
    ----------
    panels : sequence of Panel
        The columns, left to right.
    label : str, optional
        Text of the label box (see :func:`label_text`), drawn at the top-left of the first
        image in white monospace on a rounded black box.
    heading : str, optional
        A line above the grid (e.g. the sample's path).
    cell_size : float, default 2.4
        Width of one cell in inches.

    Returns
    -------
    matplotlib.figure.Figure
        A new figure, not managed by pyplot.

    Raises
    ------
    ParameterError
        When there are no panels or a panel has no image.
    """
    from matplotlib.figure import Figure

    if not panels:
        raise ParameterError("nothing to draw: `panels` is empty")
    for panel in panels:
        if not panel.images:
            raise ParameterError(f"panel {panel.title!r} has no image")
    n_cols = len(panels)
    n_rows = max(len(panel.images) for panel in panels)
    title_lines = max(
        panel.cell_title(row).count("\n") + 1
        for panel in panels
        for row in range(len(panel.images))
    )
    # cells as tall as the tallest image would be at cell width, plus room for the titles
    aspect = max(image.shape[0] / image.shape[1] for panel in panels for image in panel.images)
    cell_height = cell_size * min(max(aspect, 0.5), 1.5) + 0.17 * title_lines
    extra = 0.35 if heading else 0.0
    fig = Figure(figsize=(cell_size * n_cols, cell_height * n_rows + extra), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for col, panel in enumerate(panels):
        for row in range(n_rows):
            ax = axes[row][col]
            ax.set_axis_off()
            if row >= len(panel.images):
                continue
            ax.imshow(panel.images[row], interpolation="nearest" if _small(panel, row) else None)
            ax.set_anchor("N")  # images of all shapes hang from the same line below the titles
            ax.set_title(panel.cell_title(row), fontsize=8, family="monospace", loc="center")
    if label:
        first = axes[0][0]
        fontsize = 7 * float(np.clip(min(panels[0].images[0].shape[:2]) / 224, 0.8, 1.3))
        first.text(
            0.03,
            0.97,
            label,
            transform=first.transAxes,
            ha="left",
            va="top",
            color="white",
            family="monospace",
            fontsize=fontsize,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "black", "alpha": 0.5, "lw": 0},
        )
    if heading:
        fig.suptitle(heading, fontsize=9, family="monospace", x=0.01, ha="left")
    return fig


def step_panel(output: Any) -> Panel:
    """Turn one traced step output into a column of the grid.

    Parameters
    ----------
    output : featscope.data.transforms.StepOutput
        A step's output (``name``, ``views``, ``masks``, ``kind``, ``stats``), e.g. one of
        :func:`featscope.data.browse.trace_columns`.

    Returns
    -------
    Panel
        Titled with the output's name; each view made displayable (:func:`to_display`, the
        normalisation undone) with its mask overlaid (:func:`overlay_mask`); the note says the
        output's type and, for floats, the range of values the model is fed.
    """
    images = []
    for view, mask in zip(output.views, output.masks, strict=True):
        picture = to_display(view, output.stats)
        images.append(picture if mask is None else overlay_mask(picture, mask))
    first = output.views[0]
    note = output.kind
    if first.dtype.kind == "f" and first.size:
        note = f"{output.kind} [{float(first.min()):.2g}, {float(first.max()):.2g}]"
    return Panel(title=output.name, images=tuple(images), note=note)


def display_problem() -> str | None:
    """Say why no window can be opened here, or return None when one can.

    Returns
    -------
    str or None
        The reason (a non-interactive matplotlib backend, or no ``DISPLAY`` on Linux).
    """
    import matplotlib

    backend = matplotlib.get_backend()
    if backend.lower() in _NON_INTERACTIVE:
        return f"matplotlib backend {backend!r} is non-interactive"
    if backend.lower().startswith("module://"):
        return None  # notebook backends draw inline
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "there is no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None


def can_show(what: str = "the figures") -> bool:
    """Whether a window can be opened here; if not, warn that ``what`` are only written.

    Parameters
    ----------
    what : str, default "the figures"
        What would have been shown, named in the warning.

    Returns
    -------
    bool
        True when :func:`display_problem` finds none.
    """
    problem = display_problem()
    if problem is not None:
        warnings.warn(
            f"cannot show {what}: {problem}; they are written to the output folder instead "
            "(open them there), or run where there is a display",
            UserWarning,
            stacklevel=2,
        )
    return problem is None


def wrap_title(text: str, width: int = _TITLE_WIDTH) -> list[str]:
    """Wrap a step name at its argument boundaries rather than inside words.

    Parameters
    ----------
    text : str
        E.g. ``"RandomResizedCropAndInterpolation(224)"``.
    width : int
        Characters per line.

    Returns
    -------
    list of str
        Lines broken before the first ``(`` and after ``, `` where needed; a part longer than
        ``width`` on its own is cut.
    """
    lines: list[str] = []
    current = ""
    name, paren, args = text.partition("(")
    parts = [name, *re.split(r"(?<=, )", paren + args)] if paren else [name]
    for part in parts:
        if current and len(current) + len(part.rstrip()) > width:
            lines.append(current.rstrip())
            current = ""
        current += part
        while len(current.rstrip()) > width:
            lines.append(current[:width])
            current = current[width:]
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def _small(panel: Panel, row: int) -> bool:
    """Whether an image is so small (digits, 32 px) that smoothing would blur its pixels."""
    return min(panel.images[row].shape[:2]) < 64
