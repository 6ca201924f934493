"""Saving and showing figures: separate steps from drawing them."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featscope.errors import OutputError, ParameterError
from featscope.options import FIGURE_FORMATS, check_formats

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["FIGURE_FORMATS", "png_bytes", "save_figure", "show"]

# Dates embedded by the PDF and SVG backends would make two runs on the same inputs differ.
# matplotlib's built-in backends that cannot open a window.
_NON_INTERACTIVE = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})
_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}}


def save_figure(
    fig: Figure,
    path_without_suffix: str | os.PathLike[str],
    formats: str | Iterable[str] = ("png",),
    dpi: float = 150,
) -> list[Path]:
    """Write a figure in one or more formats.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (for an axes from :func:`plot_embedding`, pass ``ax.figure``).
    path_without_suffix : str or path-like
        Output path without the format suffix: ``"out/feat_0"`` writes ``out/feat_0.png``, ...
        The parent folder must exist.
    formats : str or iterable of str, default ("png",)
        Any of ``png``, ``pdf``, ``svg``, ``jpg``; duplicates are written once.
    dpi : float, default 150
        Resolution of raster formats (png, jpg).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Raises
    ------
    ParameterError
        If a format is unknown or ``dpi`` is not positive; nothing is written then.
    OutputError
        If a file cannot be written (the ``OSError`` is chained as ``__cause__``).
    """
    import matplotlib

    fmts = check_formats(formats)
    if not float(dpi) > 0:
        raise ParameterError(f"`dpi` {dpi} must be > 0; pass e.g. 150")
    stem = os.fspath(path_without_suffix)
    written: list[Path] = []
    # Each file is written under a hidden temporary name and renamed when complete; if one
    # fails, those this call already wrote are removed too, so a full disk or a killed process
    # never leaves a torn figure that looks finished. A fixed hash salt makes matplotlib's SVG
    # element ids reproducible.
    with matplotlib.rc_context({"svg.hashsalt": "featscope"}):
        for fmt in fmts:
            path = Path(f"{stem}.{fmt}")
            temp = path.with_name(f".{path.name}.partial")
            try:
                fig.savefig(
                    temp,
                    format=fmt,
                    dpi=dpi,
                    bbox_inches="tight",
                    metadata=_METADATA.get(fmt),
                )
                os.replace(temp, path)
            except Exception as exc:
                temp.unlink(missing_ok=True)
                for done in written:
                    done.unlink(missing_ok=True)
                cause = _os_error(exc)
                if cause is None:
                    raise
                raise OutputError(
                    f"cannot write figure '{path}': {cause.strerror or cause}; check that the "
                    "folder exists, is writable and has free space, or write elsewhere"
                ) from exc
            written.append(path)
    return written


def _os_error(exc: BaseException) -> OSError | None:
    """Return the OSError behind ``exc``, if any.

    matplotlib's PDF writer turns a full disk into an AttributeError raised while handling the
    OSError, so the chain is searched.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def show(fig: Figure, *, block: bool | None = None) -> None:
    """Show a figure in a window (the only place featscope touches pyplot).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure made by a featscope renderer (not managed by pyplot).
    block : bool, optional
        Passed to :func:`matplotlib.pyplot.show`.

    Notes
    -----
    With a non-interactive backend (Agg, headless machines) nothing is shown and a
    ``UserWarning`` says so. After a blocking show the figure is released from pyplot, so showing
    many figures does not leak them (the reference tool never closed its figures).
    """
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    if backend.lower() in _NON_INTERACTIVE:
        warnings.warn(
            f"cannot show the figure: matplotlib backend {backend!r} is non-interactive "
            "(no display); save it with save_figure instead",
            UserWarning,
            stacklevel=2,
        )
        return
    plt.figure(fig)  # adopt the unmanaged figure into pyplot (matplotlib >= 3.8)
    plt.show(block=block)
    if block is not False:
        plt.close(fig)


def png_bytes(picture: Any) -> bytes:
    """Encode an RGB (or grey) uint8 picture as PNG, for a run folder or a tracker.

    Parameters
    ----------
    picture : array-like
        ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8 (a drawn feature map, a thumbnail sheet).

    Returns
    -------
    bytes
        The PNG file's content.

    Raises
    ------
    ParameterError
        If the picture is not uint8 of one of those shapes.
    """
    import io

    import numpy as np
    from PIL import Image

    array = np.ascontiguousarray(picture)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)
    ):
        raise ParameterError(
            f"a PNG picture must be (H, W, 3) or (H, W) uint8; got shape {array.shape} dtype "
            f"{array.dtype}"
        )
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
