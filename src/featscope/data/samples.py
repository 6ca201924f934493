"""Image samples: ids, labels and class names, with images loaded on demand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["ImageSamples"]


@dataclass(frozen=True)
class ImageSamples:
    """A labelled set of images, read lazily.

    Attributes
    ----------
    ids : tuple of str
        Stable id per sample: the path relative to the data root, or ``"<source>:<index>"``.
    labels : numpy.ndarray
        ``(N,)`` int64 class indices into ``class_names``.
    class_names : tuple of str
        Names of all classes of the source, index = label.
    source : str
        Human-readable origin (``"demo:digits"``, a folder or a file-list path).
    loader : callable
        ``loader(i) -> PIL.Image.Image`` in RGB mode for the i-th *original* sample; raises
        :class:`featscope.errors.DataError` naming the file when it cannot be read.
    index : numpy.ndarray or None
        Positions in the original source of the samples kept by :meth:`subset`.
    """

    ids: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    loader: Callable[[int], Image.Image]
    index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> Image.Image:
        """Return sample ``i`` (position in this set) as an RGB image."""
        original = int(self.index[i]) if self.index is not None else int(i)
        return self.loader(original)

    def subset(self, positions: Sequence[int] | np.ndarray) -> ImageSamples:
        """Return the samples at ``positions`` (in that order), sharing the loader."""
        positions = np.asarray(positions, dtype=np.int64)
        base = self.index if self.index is not None else np.arange(len(self.ids))
        return ImageSamples(
            ids=tuple(self.ids[p] for p in positions),
            labels=np.asarray(self.labels)[positions],
            class_names=self.class_names,
            source=self.source,
            loader=self.loader,
            index=base[positions],
        )
