"""A run folder read back as the objects the view returned, for notebooks.

:func:`featscope.load_run` gives a :class:`~featscope.sinks.reader.RunRecord`; this module
turns it back into the view's result where the folder holds what the result needs (a ``tsne``
run becomes a :class:`~featscope.results.TsneRun` with its maps, features, thumbnails and
page), and gives every record a short repr, a display and its maps as a table, so that a loaded
run reads like a fresh one.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.errors import DataError
from featscope.results import FeatureSet, TsneRun
from featscope.sinks.layout import PAGE_NAME, features_name

if TYPE_CHECKING:  # pragma: no cover - typing only
    from featscope.sinks.reader import RunRecord

__all__ = ["record_as_run", "record_mimebundle", "record_repr"]

#: Views whose run folder is read back into the view's own result type.
AS_RUN_VIEWS = ("tsne",)
_MAX_PICTURES = 24


def record_as_run(record: RunRecord) -> TsneRun:
    """Return a ``tsne`` run folder as the :class:`TsneRun` the view returned.

    Parameters
    ----------
    record : RunRecord
        A run read by :func:`featscope.load_run`.

    Returns
    -------
    TsneRun
        The maps (coordinates, metrics, parameters, provenance), the features of each map when
        the folder kept them, the thumbnails, the page (``page_html`` reads it) and the run
        folder; timings and skipped images are not recorded in the folder.

    Raises
    ------
    DataError
        When the run was written by another view, or a feature file does not match the samples.
    """
    if record.view not in AS_RUN_VIEWS:
        raise DataError(
            f"run '{record.path}' was written by featscope {record.view}; only "
            f"{', '.join(AS_RUN_VIEWS)} runs load back as their result: read its files with "
            "record.read_array / read_json / read_csv"
        )
    results = tuple(record.embeddings.values())
    features = []
    for key, result in record.embeddings.items():
        name = features_name(key)
        if name not in record.files:
            continue
        array = record.read_array(name)
        if array.ndim != 2 or len(array) != len(result.labels):
            raise DataError(
                f"'{record.path / name}' holds shape {array.shape}, not one row per sample of "
                f"'{key}' ({len(result.labels)}); the run folder is damaged"
            )
        features.append(
            FeatureSet(
                features=array,
                labels=result.labels,
                class_names=result.class_names,
                ids=result.ids,
                point=result.point,
                pooling=result.pooling,
                provenance=result.provenance,
            )
        )
    return TsneRun(
        results=results,
        features=tuple(features),
        run_dir=record.path,
        page=record.path / PAGE_NAME if PAGE_NAME in record.files else None,
        thumbnails=record.thumbnails,
        thumbnail_rows=record.thumbnail_rows,
    )


def record_repr(record: RunRecord) -> str:
    """Return a short description of a loaded run: view, maps, metrics and files."""
    lines = [f"{len(record.files)} files, {len(record.results)} results recorded"]
    for key, result in list(record.embeddings.items())[:8]:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in result.metrics.items() if isinstance(v, float))
        lines.append(f"{key} ({result.method}, {len(result.labels):,} samples): {shown}")
    if len(record.embeddings) > 8:
        lines.append(f"... and {len(record.embeddings) - 8} more maps")
    text = "\n".join([f"RunRecord {record.view} at {record.path}", *(f"  {x}" for x in lines)])
    return f"<{text[:1990]}>"


def record_mimebundle(record: RunRecord) -> dict[str, Any]:
    """Return the display of a loaded run: its page for a ``tsne`` run, else its pictures."""
    from featscope.render.notebook import mimebundle, pictures_html

    if record.view in AS_RUN_VIEWS and record.embeddings:
        bundle = mimebundle(record_as_run(record))
        return {**bundle, "text/plain": record_repr(record)}
    pictures = []
    for name in record.files:
        if name.lower().endswith(".png") and len(pictures) < _MAX_PICTURES:
            pictures.append((name, _read_png(record, name)))
    if pictures:
        body = pictures_html(pictures, f"{record.view}: {record.path.name}")
    else:
        body = f"<div>{html.escape(record_repr(record))}</div>"
    return {"text/plain": record_repr(record), "text/html": body}


def _read_png(record: RunRecord, name: str) -> np.ndarray:
    from PIL import Image

    path = record.file(name)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read '{path}' ({exc}); the run folder is damaged") from exc
