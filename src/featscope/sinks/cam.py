"""Writing class activation maps into a run folder: pictures, raw maps, scores, the sheet.

Over :class:`~featscope.sinks.LocalRun`'s public methods, so that the view holds no file
handling: each map as ``<file>.<format>`` and ``<file>.npy`` with its manifest entry (its
probability and faithfulness score as metrics, mirrored to TensorBoard/W&B), the sheet, and
``scores.csv`` with one row per map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from featscope.render.featmap import encode_picture
from featscope.results import CamMap, CamRun, Provenance
from featscope.sinks.featmap import write_picture_result
from featscope.sinks.run import LocalRun

__all__ = ["SCORE_COLUMNS", "record_cam_run", "write_cam_map", "write_cam_sheet"]

#: Columns of ``scores.csv``.
SCORE_COLUMNS = ("image", "method", "class_index", "class_name", "probability", "metric", "score")


def write_cam_map(
    run: LocalRun, item: CamMap, formats: Sequence[str] = ("png",), dpi: float = 150
) -> list[Path]:
    """Write one map: ``<file>.<format>`` per format, ``<file>.npy``, its manifest entry.

    Parameters
    ----------
    run : LocalRun
        The open run folder; a ``.png`` also goes to its mirrors under the tag ``<file>``.
    item : CamMap
        The map; ``item.file`` is the file stem, unique in the run.
    formats : sequence of str, default ("png",)
        Picture formats (see :func:`featscope.render.featmap.encode_picture`).
    dpi : float, default 150
        Resolution recorded in the pictures.

    Returns
    -------
    list of pathlib.Path
        The pictures, then the ``.npy`` of the map (float32, in [0, 1], the model's input size).

    Raises
    ------
    ParameterError
        When the map has no file stem, or for an unknown format or a taken entry name.
    """
    from featscope.errors import ParameterError

    if not item.file:
        raise ParameterError(f"map {item.method} of {item.image_id!r} has no file stem")
    return write_picture_result(run, item, formats, dpi)


def write_cam_sheet(
    run: LocalRun, sheet: np.ndarray, formats: Sequence[str] = ("png",), dpi: float = 150
) -> list[Path]:
    """Write the sheet of every map as ``cam_sheet.<format>``."""
    return [run.write_bytes(f"cam_sheet.{fmt}", encode_picture(sheet, fmt, dpi)) for fmt in formats]


def record_cam_run(
    run: LocalRun,
    result: CamRun,
    provenance: Provenance,
    source: str,
    images: Sequence[Any],
    options: Mapping[str, Any],
) -> None:
    """Write ``scores.csv`` and record in the manifest what the run was asked for.

    Parameters
    ----------
    run : LocalRun
        The open run folder.
    result : CamRun
        The maps (their scores go to ``scores.csv``), point and skipped images.
    provenance : Provenance
        The model's spec, checkpoint and its sha256.
    source : str
        Where the images come from.
    images : sequence of PhotoItem
        Every image named (``id`` and file ``stem``), those skipped included.
    options : Mapping
        The run's options (:meth:`featscope.analysis.cam.CamOptions.to_dict`).
    """
    rows = [[row[c] for c in SCORE_COLUMNS] for row in result.scores]
    run.write_csv("scores.csv", SCORE_COLUMNS, rows)
    model = {
        "spec": provenance.model,
        "checkpoint": provenance.checkpoint,
        "sha256": provenance.checkpoint_sha256,
    }
    run.add_metadata("view", "cam")
    run.add_metadata("options", dict(options))
    run.add_metadata("models", [model])
    run.add_metadata("points", [result.point])
    run.add_metadata("source", source)
    run.add_metadata("images", [{"id": p.id, "stem": p.stem} for p in images])
    run.add_metadata("skipped", [list(s) for s in result.skipped])
