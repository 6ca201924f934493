"""Image samples: ids, labels and class names, with images loaded on demand."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from featscope.errors import ParameterError

__all__ = ["RESERVED_FIELDS", "UNLABELLED", "ImageSamples", "metadata_columns"]

#: The label of every sample of an unlabelled source (whose ``class_names`` is empty).
UNLABELLED = -1

#: Column names that belong to featscope (the map's own columns and the per-sample fields it
#: computes); a metadata column of the same name is renamed ``meta_<name>``.
RESERVED_FIELDS = frozenset(
    {"label", "id", "x", "y", "z", "class_name", "prediction", "confidence", "correct", "cluster"}
)


def metadata_columns(columns: Mapping[str, Sequence[Any]], n: int) -> dict[str, np.ndarray]:
    """Turn per-sample values by name into metadata columns featscope can carry.

    Numbers stay numbers (int64 or float64), anything else becomes str; a name that starts
    with an underscore or is one of :data:`RESERVED_FIELDS` is renamed ``meta_<name>``.

    Parameters
    ----------
    columns : Mapping of str to sequence
        Values by column name, one per sample.
    n : int
        The number of samples.

    Returns
    -------
    dict of str to numpy.ndarray
        1-D columns of length ``n``; columns of another length, or of values that are not
        scalars (arrays, lists), are left out.
    """
    out: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        values = list(values)
        if len(values) != n or any(isinstance(v, (list, tuple, dict, np.ndarray)) for v in values):
            continue
        key = str(name).lstrip("_")
        if not key or key in RESERVED_FIELDS or key != str(name):
            key = f"meta_{key}"
        out[key] = _column(values)
    return out


def _column(values: list[Any]) -> np.ndarray:
    """Numbers as int64/float64 (text cells that all read as numbers too), else str."""
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=bool)
    for kind in (np.int64, np.float64):
        try:
            array = np.asarray([v if not isinstance(v, str) else kind(v) for v in values])
            if array.dtype.kind in "iub" or (kind is np.float64 and array.dtype.kind == "f"):
                return array.astype(kind)
        except (TypeError, ValueError, OverflowError):
            continue
    return np.asarray(["" if v is None else str(v) for v in values], dtype=str)


@dataclass(frozen=True)
class ImageSamples:
    """A set of images, read lazily, with or without labels.

    Attributes
    ----------
    ids : tuple of str
        Stable id per sample: the path relative to the data root, or ``"<source>:<index>"``.
    labels : numpy.ndarray
        ``(N,)`` int64 class indices into ``class_names``; :data:`UNLABELLED` (-1) for every
        sample of unlabelled data.
    class_names : tuple of str
        Names of all classes of the source, index = label; empty for unlabelled data.
    source : str
        Human-readable origin (``"demo:digits"``, a folder, a file-list path, a ``py:``/``hf:``
        spec, or the kind and class of a Python object such as ``"torch Dataset TensorDataset"``).
    loader : callable
        ``loader(i)`` for the i-th *original* sample: an RGB ``PIL.Image.Image``, or when
        ``prepared`` is true a float ``(C, H, W)`` array (numpy or torch) that is already the
        model's input. Raises :class:`featscope.errors.DataError` naming the sample when it
        cannot be read.
    index : numpy.ndarray or None
        Positions in the original source of the samples kept by :meth:`subset`.
    prepared : bool, default False
        The loader gives model inputs (tensors already resized and normalised by the user's own
        transform): extraction feeds them to the model as they are, without the model's
        preprocessing.
    metadata : Mapping of str to numpy.ndarray
        Per-sample columns that travel with the samples (extra columns of a file list, extra
        fields of a Dataset's dict items, other columns of a Hugging Face dataset), each 1-D
        and in the order of ``ids``; :meth:`subset` keeps them in step.
    """

    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    loader: Callable[[int], Any]
    index: np.ndarray | None = None
    prepared: bool = False
    metadata: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> bool:
        """Whether the samples have classes (``class_names`` is not empty)."""
        return bool(self.class_names)

    def _original(self, i: int) -> int:
        return int(self.index[i]) if self.index is not None else int(i)

    def load(self, i: int) -> Image.Image:
        """Return sample ``i`` (position in this set) as an RGB image.

        For prepared samples this is a picture of the model input for display (thumbnails,
        overlays): each channel set stretched from its minimum to its maximum, since the
        normalisation the user applied is unknown.
        """
        value = self.loader(self._original(i))
        if not self.prepared:
            return value
        from featscope.data.items import display_image

        return display_image(value)

    def load_prepared(self, i: int) -> Any:
        """Return prepared sample ``i`` (position in this set): the model input, as given.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            A float ``(C, H, W)`` array.

        Raises
        ------
        ParameterError
            When the samples are images (``prepared`` is false): use :meth:`load`.
        """
        if not self.prepared:
            raise ParameterError(
                f"the samples from {self.source!r} are images, not prepared tensors; read them "
                "with load(i) and apply the model's preprocessing"
            )
        return self.loader(self._original(i))

    def subset(self, positions: Sequence[int] | np.ndarray) -> ImageSamples:
        """Return the samples at ``positions`` (in that order), sharing the loader."""
        positions = np.asarray(positions, dtype=np.int64)
        base = self.index if self.index is not None else np.arange(len(self.ids))
        return dataclasses.replace(
            self,
            ids=tuple(self.ids[p] for p in positions),
            labels=np.asarray(self.labels)[positions],
            index=base[positions],
            metadata={k: np.asarray(v)[positions] for k, v in self.metadata.items()},
        )

    def summary(self) -> dict[str, Any]:
        """Describe the samples for a manifest (JSON-ready).

        Returns
        -------
        dict
            ``source`` (str), ``n_samples`` (int), ``labelled`` (bool), ``n_classes`` (int, 0
            when unlabelled) and ``prepared`` (bool: the model's preprocessing was skipped).
        """
        return {
            "source": self.source,
            "n_samples": len(self),
            "labelled": self.labelled,
            "n_classes": len(self.class_names),
            "prepared": bool(self.prepared),
            **({"metadata": list(self.metadata)} if self.metadata else {}),
        }
