"""What a run logs to its mirrors only: scalars over steps, images, embeddings.

The run folder already holds the data behind these (figures, ``feat_*.npy``, ``coords_*.csv``);
only the scalars are also kept in it, as ``scalars.jsonl`` (written when the run finishes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope.errors import ParameterError
from featscope.sinks.manifest import finite_scalars
from featscope.sinks.mirrors import MirrorFanout

if TYPE_CHECKING:  # pragma: no cover - typing only
    from featscope.results import EmbeddingResult, FeatureSet

__all__ = ["MirroredLogging"]


def _full_thumbnails(
    thumbnails: Any, indices: Any, n: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return ``(N, s, s, 3)`` thumbnails and which rows are real (None: all), or raise."""
    if thumbnails is None:
        if indices is not None:
            raise ParameterError("`thumbnail_indices` was given without `thumbnails`; pass both")
        return None, None
    thumbnails = np.asarray(thumbnails)
    count = n if indices is None else len(indices)
    if (
        thumbnails.dtype != np.uint8
        or thumbnails.ndim != 4
        or thumbnails.shape[-1] != 3
        or thumbnails.shape[0] != count
    ):
        raise ParameterError(
            f"`thumbnails` must be a ({count}, size, size, 3) uint8 array, one per "
            f"{'sample' if indices is None else 'thumbnail index'}; got {thumbnails.dtype} "
            f"{thumbnails.shape}; make them with featscope.data.thumbnails.make_thumbnails"
        )
    if indices is None:
        return thumbnails, None
    positions = np.asarray(indices)
    if positions.size and (
        not np.issubdtype(positions.dtype, np.integer)
        or positions.min() < 0
        or positions.max() >= n
    ):
        raise ParameterError(
            f"`thumbnail_indices` must be sample positions in 0..{n - 1}; got values from "
            f"{positions.min()} to {positions.max()}"
        )
    full = np.zeros((n, *thumbnails.shape[1:]), dtype=np.uint8)
    full[positions] = thumbnails
    present = np.zeros(n, dtype=bool)
    present[positions] = True
    return full, present


def _as_rgb(image: Any, tag: str) -> np.ndarray:
    """Return ``image`` as ``(H, W, 3)`` uint8, or raise naming the tag."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] in (3, 4):
        return np.ascontiguousarray(arr[:, :, :3])
    raise ParameterError(
        f"image {tag!r} must be a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4); got "
        f"{arr.dtype} {arr.shape}; convert with (x * 255).clip(0, 255).astype('uint8')"
    )


class MirroredLogging:
    """The ``log_*`` methods of :class:`~featscope.sinks.run.LocalRun` (a base class of it).

    The run provides its mirrors (``_fanout``), the open check (``_require_open``), the scalar
    rows kept for ``scalars.jsonl`` (``_scalar_rows``) and the default :attr:`step`.
    """

    step: int | None
    _fanout: MirrorFanout
    _scalar_rows: list[dict[str, Any]]

    if TYPE_CHECKING:  # provided by LocalRun; declared here for the type checker only

        def _require_open(self) -> None: ...

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int | None = None, *, prefix: str = ""
    ) -> dict[str, float]:
        """Log scalars: a line in ``scalars.jsonl`` and a point in every mirror's charts.

        Parameters
        ----------
        metrics : Mapping of str to number
            Values by name (``{"pre_logits/knn_accuracy_map": 0.93}``). Values that are not
            finite real numbers (NaN, None, strings, bools) are left out.
        step : int, optional
            Step (epoch) of the values; default :attr:`step` (or 0).
        prefix : str, optional
            Prepended to every name (``"pre_logits/"``).

        Returns
        -------
        dict of str to float
            The values logged.

        Raises
        ------
        ParameterError
            If ``metrics`` is not a mapping or ``step`` is not a non-negative integer.
        """
        self._require_open()
        if not isinstance(metrics, Mapping):
            raise ParameterError(
                f"`metrics` must be a mapping of names to numbers; got {type(metrics).__name__}"
            )
        at = self._step(step)
        scalars = finite_scalars(metrics, prefix)
        if scalars:
            self._scalar_rows.append({"step": at, **scalars})
            self._fanout.call("log_scalars", scalars, at)
        return scalars

    def log_image(self, tag: str, image: Any, step: int | None = None) -> None:
        """Log an image to the backends only (the folder gets files from :meth:`write_bytes`).

        Parameters
        ----------
        tag : str
            Image name; the same tag at later steps makes a series.
        image : array-like
            ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8 (alpha dropped).
        step : int, optional
            Step (epoch); default :attr:`step` (or 0).

        Raises
        ------
        ParameterError
            If ``tag`` is empty or the image is not one of those shapes and uint8.
        """
        self._require_open()
        if not isinstance(tag, str) or not tag:
            raise ParameterError(f"image tag {tag!r} must be a non-empty string, e.g. 'tsne/neck'")
        rgb = _as_rgb(image, tag)
        at = self._step(step)
        self._fanout.call("log_image", tag, rgb, at)

    def log_embedding(
        self,
        features: FeatureSet | None,
        result: EmbeddingResult | None = None,
        thumbnails: Any = None,
        *,
        thumbnail_indices: Any = None,
        tag: str | None = None,
        step: int | None = None,
    ) -> None:
        """Log feature vectors and/or their map to the mirrors' embedding views.

        TensorBoard gets projector entries (the features and the map, with a metadata table of
        label, class name and id, and a sprite of the thumbnails); W&B gets a Table of the map
        coordinates with id, class and thumbnail. The run folder already holds the same data
        (``feat_*.npy``, ``coords_*.csv``), so nothing is written to it.

        Parameters
        ----------
        features : FeatureSet or None
            Feature vectors with labels, class names and ids.
        result : EmbeddingResult, optional
            Their map (same samples, same order).
        thumbnails : numpy.ndarray, optional
            ``(N, s, s, 3)`` uint8, one per sample in order (see
            :func:`featscope.data.thumbnails.make_thumbnails`), or ``(M, s, s, 3)`` for the
            samples at ``thumbnail_indices``.
        thumbnail_indices : array-like of int, optional
            Positions of the samples the ``M`` thumbnails belong to (when only some samples have
            one, e.g. under a ``--thumbnails`` cap): the others get a black sprite tile and no
            W&B image.
        tag : str, optional
            Name of the embedding; default the capture point.
        step : int, optional
            Step (epoch); default :attr:`step` (or 0).

        Raises
        ------
        ParameterError
            If both ``features`` and ``result`` are None, or their lengths (or the thumbnails')
            differ.
        """
        self._require_open()
        if features is None and result is None:
            raise ParameterError("log_embedding needs `features`, `result` or both; got neither")
        n = len(features.labels) if features is not None else len(result.labels)  # type: ignore[union-attr]
        if result is not None and len(result.labels) != n:
            raise ParameterError(
                f"`result` has {len(result.labels)} samples but `features` has {n}; pass the map "
                "of these features"
            )
        thumbnails, present = _full_thumbnails(thumbnails, thumbnail_indices, n)
        if tag is None:
            tag = features.point if features is not None else result.point  # type: ignore[union-attr]
        if not isinstance(tag, str) or not tag:
            raise ParameterError(f"embedding tag {tag!r} must be a non-empty string, e.g. 'neck'")
        self._fanout.call(
            "log_embedding", tag, features, result, thumbnails, self._step(step), present
        )

    def _step(self, step: int | None = None) -> int:
        """Return ``step``, else :attr:`step`, else 0, checked to be an integer >= 0."""
        value = self.step if step is None else step
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ParameterError(f"`step` must be an integer >= 0 (e.g. the epoch); got {value!r}")
        return int(value)
