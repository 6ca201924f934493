"""Writing a reconstruction: its files in the run folder and its figure copies (``--out``).

The run folder holds one figure per image (``recon_<image>.<format>``), ``overview`` (all images,
one row each, when there are several), ``errors.csv`` and ``errors.json`` (the masked-patch
errors) and ``masks.npy`` (the hidden patches, ``(N, gh, gw)``); the manifest records the
result's parameters and provenance. The ``--out`` copies are made from the finished folder with
:func:`featscope.sinks.export.export_files`: the target's suffix names the format, and several
images give numbered copies ``<stem>_0.<format>``, ``<stem>_1.<format>``, ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featscope.errors import OutputError, ParameterError
from featscope.options import FIGURE_FORMATS
from featscope.results import ReconstructionResult
from featscope.sinks.export import export_files

__all__ = ["export_format", "export_reconstruction", "write_reconstruction"]


def write_reconstruction(
    run: Any,
    result: ReconstructionResult,
    figures: Sequence[Any],
    *,
    overview: Any = None,
    formats: Sequence[str] = ("png",),
    dpi: float = 150,
) -> None:
    """Write a reconstruction's figures, errors and masks into an open run folder.

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    result : ReconstructionResult
        What to write.
    figures : sequence of matplotlib.figure.Figure
        One per image, written as ``<image.file>.<format>``.
    overview : matplotlib.figure.Figure, optional
        All images on one figure, written as ``overview.<format>``.
    formats : sequence of str, default ("png",)
        Figure formats.
    dpi : float, default 150
        Resolution of raster figures.
    """
    for image, figure in zip(result, figures, strict=True):
        run.write_figure(figure, image.file, formats=formats, dpi=dpi)
    if overview is not None:
        run.write_figure(overview, "overview", formats=formats, dpi=dpi)
    run.write_csv("errors.csv", *result.error_table())
    run.write_json("errors.json", result.error_summary())
    run.write_array("masks.npy", result.patch_masks)
    run.add_result("reconstruction", result)
    run.add_metadata("family", result.family)


def export_format(target: str | os.PathLike[str] | None, work_dir: Any) -> str | None:
    """Return the figure format an export path asks for by its suffix; check it before a run.

    Parameters
    ----------
    target : path or None
        The ``--out`` path; ``None``: no export.
    work_dir : path or None
        The run folder's parent; the copies are made from the run folder, so one is needed.

    Returns
    -------
    str or None
        ``png``, ``pdf``, ``svg`` or ``jpg`` (``png`` without a suffix, ``jpg`` for ``.jpeg``).

    Raises
    ------
    ParameterError
        For a suffix that is not a figure format, or no work dir.
    OutputError
        When the target's folder does not exist.
    """
    if target is None:
        return None
    path = Path(target)
    fmt = path.suffix.lower().lstrip(".") or "png"
    fmt = "jpg" if fmt == "jpeg" else fmt
    if fmt not in FIGURE_FORMATS:
        raise ParameterError(
            f"`--out` {str(path)!r} has an unsupported suffix; use one of "
            f"{', '.join('.' + f for f in FIGURE_FORMATS)}"
        )
    if not path.parent.is_dir():
        raise OutputError(
            f"`--out` {str(path)!r}: folder {str(path.parent)!r} does not exist; create it or "
            "pass another path"
        )
    return fmt


def export_reconstruction(
    result: ReconstructionResult, run_dir: str | os.PathLike[str], target: str | os.PathLike[str]
) -> list[Path]:
    """Copy each image's figure from a finished run folder to ``target``, all or nothing.

    Parameters
    ----------
    result : ReconstructionResult
        The images whose figures the run folder holds (in the export's format).
    run_dir : path
        The finished run folder.
    target : path
        ``fig.png`` for one image; with several, ``fig_0.png``, ``fig_1.png``, ... beside it.

    Returns
    -------
    list of pathlib.Path
        The copies, in image order.

    Raises
    ------
    OutputError
        When a copy cannot be written (those already made are removed).
    """
    fmt = export_format(target, run_dir)
    stem = Path(target).with_suffix("")
    numbers = [""] if len(result) == 1 else [f"_{k}" for k in range(len(result))]
    names = [f"{stem.name}{number}.{fmt}" for number in numbers]
    sources = [Path(run_dir) / f"{image.file}.{fmt}" for image in result]
    return export_files(sources, stem.parent, names=names)
