"""Writing feature maps into a run folder: the pictures in every format, the raw map, the entry.

A writer for :class:`~featscope.results.FeatureMap` over :class:`~featscope.sinks.LocalRun`'s
public methods, so that the feature-map views hold no file handling of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from featscope.render.featmap import encode_picture
from featscope.results import FeatureMap
from featscope.sinks.run import LocalRun

__all__ = ["write_feature_map"]


def write_feature_map(
    run: LocalRun, fmap: FeatureMap, formats: Sequence[str] = ("png",), dpi: float = 150
) -> list[Path]:
    """Write one feature map: ``<file>.<format>`` per format, ``<file>.npy``, its manifest entry.

    Parameters
    ----------
    run : LocalRun
        The open run folder; a ``.png`` also goes to its mirrors (TensorBoard, W&B) under the
        tag ``<file>``.
    fmap : FeatureMap
        The map; ``fmap.file`` is the file stem, unique in the run.
    formats : sequence of str, default ("png",)
        Picture formats (``png`` and ``jpg`` pixel-exact; ``pdf``, ``svg`` a page of the
        picture, see :func:`featscope.render.featmap.encode_picture`).
    dpi : float, default 150
        Resolution recorded in the pictures.

    Returns
    -------
    list of pathlib.Path
        The pictures, in the order of ``formats``, then the ``.npy`` of the raw map.

    Raises
    ------
    ParameterError
        When the map has no file stem, or for an unknown format or a taken entry name.
    OutputError
        When a file cannot be written.
    """
    from featscope.errors import ParameterError

    if not fmap.file:
        raise ParameterError(f"feature map {fmap.name!r} of {fmap.image_id!r} has no file stem")
    written = [
        run.write_bytes(f"{fmap.file}.{fmt}", encode_picture(fmap.drawn, fmt, dpi))
        for fmt in formats
    ]
    written.append(run.write_array(f"{fmap.file}.npy", fmap.values))
    run.add_result(fmap.file, fmap)
    return written
