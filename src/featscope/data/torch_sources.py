"""Data as users hold it in Python: torch Datasets and DataLoaders, arrays, lists of images.

Every source becomes an :class:`~featscope.data.samples.ImageSamples` whose loader reads one item
on demand (:class:`ItemLoader`, picklable when the source is). What an item may be is the rule of
:mod:`featscope.data.items`; a float ``(C, H, W)`` first item makes the whole source *prepared*
(model inputs used as they are).

Labels come, cheapest first, from the source's ``targets`` or ``labels`` attribute (torchvision's
datasets, ``Subset`` of them), from a ``TensorDataset``'s second tensor, and else from the items
themselves (``(image, label, ...)`` tuples or dicts), which reads every item once. Class names come
from ``classes`` or ``class_to_idx`` when the source has them.

Nothing here imports torch at module level: a DataLoader is recognised only when torch is
imported (it must be, for the user to hold one).
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.data.items import (
    NotALabel,
    as_array,
    is_prepared,
    label_value,
    labels_from_values,
    to_image,
    to_input,
)
from featscope.data.samples import ImageSamples, metadata_columns
from featscope.errors import DataError, FeatscopeError

__all__ = ["ItemLoader", "image_arrays", "is_dataloader", "torch_dataloader", "torch_dataset"]

logger = logging.getLogger(__name__)

#: Keys tried, in order, for the image and the label of dict items (and Hugging Face columns).
IMAGE_KEYS = ("image", "img", "images", "pixel_values", "picture", "photo", "input", "x")
LABEL_KEYS = ("label", "labels", "target", "targets", "fine_label", "class", "y")


@dataclass(frozen=True)
class ItemLoader:
    """Read the image part of item ``i`` of an indexable source (picklable when it is).

    Attributes
    ----------
    items : Any
        Anything with ``__getitem__``.
    part : int, str or None
        Where the image is in an item: a tuple position, a dict key, or the item itself.
    name : str
        Names the source in messages.
    shape : tuple of int or None
        For prepared sources, the shape of every input (that of item 0); ``None`` for images.
    """

    items: Any
    part: int | str | None
    name: str
    shape: tuple[int, ...] | None = None

    def __call__(self, i: int) -> Any:
        """Return item ``i``'s image (RGB) or, for prepared sources, its model input."""
        where = f"item {i} of {self.name}"
        value = _read(self.items, i, self.name)
        if self.part is not None:
            value = value[self.part]
        if self.shape is not None:
            return to_input(value, where, self.shape)
        return to_image(value, where)


def _read(items: Any, i: int, name: str) -> Any:
    try:
        return items[i]
    except FeatscopeError:
        raise
    except Exception as exc:  # the user's __getitem__: any failure is a fault of the data
        raise DataError(
            f"reading item {i} of {name} raised {type(exc).__name__}: {exc}; fix the dataset's "
            "__getitem__ or its files"
        ) from exc


def _parts(item: Any, name: str) -> tuple[int | str | None, int | str | None]:
    """Where the image and the label are in an item: positions, keys, or (None, None)."""
    if isinstance(item, Mapping):
        keys = list(item)
        image = next((k for k in IMAGE_KEYS if k in item), None)
        if image is None:
            image = next((k for k in keys if _looks_like_image(item[k])), None)
        if image is None:
            raise DataError(
                f"item 0 of {name} is a dict without an image (keys: {', '.join(map(str, keys))}); "
                f"name the image {IMAGE_KEYS[0]!r} or return (image, label) tuples"
            )
        return image, next((k for k in LABEL_KEYS if k in item and k != image), None)
    if isinstance(item, (tuple, list)) and not _looks_like_image(item):
        if not item:
            raise DataError(
                f"item 0 of {name} is an empty {type(item).__name__}; return (image, label)"
            )
        return 0, (1 if len(item) > 1 else None)
    return None, None


def _looks_like_image(value: Any) -> bool:
    from PIL import Image

    if isinstance(value, Image.Image):
        return True
    array = as_array(value)
    return array is not None and array.ndim in (2, 3)


def _attribute(source: Any, name: str) -> Any:
    """Return an attribute of the source, or of the dataset a ``Subset`` wraps (indexed)."""
    value = getattr(source, name, None)
    if value is not None or not hasattr(source, "indices") or not hasattr(source, "dataset"):
        return value
    inner = _attribute(source.dataset, name)
    if name in ("targets", "labels") and inner is not None:
        array = as_array(inner) if as_array(inner) is not None else np.asarray(inner)
        return array[np.asarray(source.indices, dtype=np.int64)]
    return inner


def _attribute_labels(source: Any, n: int) -> np.ndarray | None:
    candidates = [_attribute(source, "targets"), _attribute(source, "labels")]
    tensors = getattr(source, "tensors", None)
    if isinstance(tensors, tuple) and len(tensors) >= 2:  # TensorDataset(images, labels, ...)
        candidates.append(tensors[1])
    for candidate in candidates:
        if candidate is None or callable(candidate):
            continue
        array = as_array(candidate)
        if array is None:
            try:
                array = np.asarray(candidate)
            except (TypeError, ValueError):
                continue
        if array.ndim == 1 and len(array) == n and array.dtype.kind in "iu":
            return array.astype(np.int64)
    return None


def source_class_names(source: Any) -> tuple[str, ...] | None:
    """Return the class names a source declares (``classes``, ``class_to_idx``), else None."""
    classes = _attribute(source, "classes")
    if isinstance(classes, Sequence) and not isinstance(classes, str) and classes:
        return tuple(str(c) for c in classes)
    mapping = _attribute(source, "class_to_idx")
    if isinstance(mapping, Mapping) and mapping:
        return tuple(str(k) for k, _ in sorted(mapping.items(), key=lambda kv: kv[1]))
    return None


def torch_dataset(
    dataset: Any,
    *,
    prepared: bool | None = None,
    class_names: Sequence[str] | None = None,
    name: str | None = None,
    source: str | None = None,
) -> ImageSamples:
    """Read a map-style dataset: a torch ``Dataset`` or anything with ``__len__``/``__getitem__``.

    Parameters
    ----------
    dataset : Any
        Items are ``(image, label, ...)`` tuples, dicts (image and label found by key, see
        :data:`IMAGE_KEYS` and :data:`LABEL_KEYS`), or images alone (unlabelled). Images as in
        :mod:`featscope.data.items`.
    prepared : bool, optional
        Whether items are model inputs to use as they are. By default: whether item 0 is a float
        ``(C, H, W)`` tensor. ``False`` turns such tensors into images (values in [0, 1]) that
        get the model's preprocessing.
    class_names : sequence of str, optional
        Names of the class indices; by default the dataset's ``classes`` / ``class_to_idx``.
    name : str, optional
        Prefix of the ids (``"<name>:<index>"``) and name in messages; default the class name.
    source : str, optional
        The ``source`` to record; default ``"torch Dataset <class name>"`` (or
        ``"<class name> of <n> images"`` for other sequences).

    Returns
    -------
    ImageSamples
        In dataset order.

    Raises
    ------
    DataError
        When the dataset is empty or has no length, item 0 holds no image (its type is named),
        an item cannot be read, or labels are out of range or mixed (the item is named).
    """
    name = name or type(dataset).__name__
    try:
        n = len(dataset)
    except TypeError as exc:
        raise DataError(f"{name} has no len(); pass a map-style dataset or its DataLoader") from exc
    if n == 0:
        raise DataError(f"{name} is empty; there is nothing to read")
    first = _read(dataset, 0, name)
    image_part, label_part = _parts(first, name)
    image = first if image_part is None else first[image_part]
    if prepared is None:
        prepared = is_prepared(image)
    if prepared:
        shape: tuple[int, ...] | None = tuple(to_input(image, f"item 0 of {name}").shape)
    else:
        shape = None
        to_image(image, f"item 0 of {name}")  # fail now, naming the item, not in the model loop
    names = tuple(class_names) if class_names is not None else source_class_names(dataset)
    labels = _attribute_labels(dataset, n)
    read_labels = labels is None and label_part is not None and _has_label(first, label_part, name)
    keys = _metadata_keys(first, (image_part, label_part))
    item_labels, metadata = _read_items(
        dataset, n, first, name, label_part if read_labels else None, keys
    )
    if labels is None:
        labels = item_labels if item_labels is not None else np.full(n, None, dtype=object)
    labels, names = labels_from_values(labels, name, names)
    logger.info(
        "%s: %d items, %s, %s",
        name,
        n,
        f"{len(names)} classes" if names else "unlabelled",
        "prepared tensors" if prepared else "images",
    )
    return ImageSamples(
        ids=tuple(f"{name}:{i}" for i in range(n)),
        labels=labels,
        class_names=names,
        source=source or _describe_source(dataset, name, n),
        loader=ItemLoader(dataset, image_part, name, shape),
        prepared=bool(prepared),
        metadata=metadata,
    )


def _scalar(value: Any) -> Any:
    """Return ``value`` as a Python scalar (str, number, bool, 0-d array), else _NOT_SCALAR."""
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value.item() if isinstance(value, np.generic) else value
    array = as_array(value)
    if array is not None and array.ndim == 0:
        return array.item()
    return _NOT_SCALAR


_NOT_SCALAR = object()


def _describe_source(dataset: Any, name: str, n: int) -> str:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(dataset, torch.utils.data.Dataset):
        return f"torch Dataset {name}"
    return f"{name} of {n} images"


def _has_label(first: Any, part: int | str, name: str) -> bool:
    """Whether item 0's label part is a label; warn (data used unlabelled) when it is not."""
    try:
        label_value(first[part])
    except NotALabel as exc:
        warnings.warn(
            f"{name}: the {part!r} part of its items is a {exc}, not a class index or name; "
            "the data are used without labels",
            UserWarning,
            stacklevel=3,
        )
        return False
    return True


def _metadata_keys(first: Any, used: tuple[Any, Any]) -> list[Any]:
    """Return the other scalar fields of dict items (``{"image", "label", "site": ...}``).

    Fields that are not scalars in item 0 (masks, boxes) are left out.
    """
    if not isinstance(first, Mapping):
        return []
    return [k for k in first if k not in used and _scalar(first[k]) is not _NOT_SCALAR]


def _read_items(
    dataset: Any, n: int, first: Any, name: str, label_part: int | str | None, keys: list[Any]
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Read every item once for its label (at ``label_part``) and its metadata ``keys``.

    A Dataset cannot be asked for one field alone, and each read may decode an image: the
    labels and the metadata come from the same pass. Nothing is read when neither is asked.

    Returns
    -------
    labels : numpy.ndarray of object or None
        One label value per item; ``None`` when ``label_part`` is ``None``.
    metadata : dict of str to numpy.ndarray
        One column per key (see :func:`~featscope.data.samples.metadata_columns`).
    """
    if label_part is None and not keys:
        return None, {}
    if n > 1 and label_part is not None:
        logger.info("%s has no targets attribute: reading its %d items for their labels", name, n)
    if n > 1 and keys:
        logger.info("%s: reading its %d items for the fields %s", name, n, keys)
    labels: list[Any] = []
    columns: dict[Any, list[Any]] = {k: [] for k in keys}
    for i in range(n):
        item = first if i == 0 else _read(dataset, i, name)
        if label_part is not None:
            try:
                labels.append(label_value(item[label_part]))
            except (NotALabel, IndexError, KeyError, TypeError) as exc:
                raise DataError(
                    f"item {i} of {name} has no class label at {label_part!r} ({exc}); give "
                    "every item an integer or str label"
                ) from None
        for k in keys:
            value = _scalar(item.get(k)) if isinstance(item, Mapping) else None
            columns[k].append(None if value is _NOT_SCALAR else value)
    metadata = metadata_columns({str(k): v for k, v in columns.items()}, n) if keys else {}
    return (np.asarray(labels, dtype=object) if label_part is not None else None), metadata


def image_arrays(
    images: Any,
    labels: Any = None,
    *,
    prepared: bool | None = None,
    class_names: Sequence[str] | None = None,
    name: str = "array",
) -> ImageSamples:
    """Read images held as one array (or tensor, or list) with an optional array of labels.

    Parameters
    ----------
    images : array-like
        ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (numpy, torch), or a list of images.
    labels : array-like, optional
        ``(N,)`` class indices or names; ``None``: unlabelled.
    prepared, class_names
        As in :func:`torch_dataset`.
    name : str, default "array"
        Prefix of the ids.

    Returns
    -------
    ImageSamples

    Raises
    ------
    DataError
        When the lengths differ, or as :func:`torch_dataset`.
    """
    n = len(images)
    if labels is not None:
        values = as_array(labels)
        values = np.asarray(labels) if values is None else values
        if values.ndim != 1 or len(values) != n:
            raise DataError(
                f"(images, labels): {n} images but labels of shape {tuple(values.shape)}; give "
                "one label per image"
            )
        labels = values
    samples = torch_dataset(
        images, prepared=prepared, class_names=class_names, name=name, source=f"{n} {name} images"
    )
    if labels is None:
        return samples
    label_ids, names = labels_from_values(labels, name, class_names)
    return ImageSamples(
        ids=samples.ids,
        labels=label_ids,
        class_names=names,
        source=f"(images, labels) arrays of {n} images",
        loader=samples.loader,
        prepared=samples.prepared,
    )


def is_dataloader(data: Any) -> bool:
    """Whether ``data`` is a ``torch.utils.data.DataLoader`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.utils.data.DataLoader)


def _shuffles(loader: Any) -> bool:
    from torch.utils import data as tud

    sampler = getattr(loader.batch_sampler, "sampler", None) or loader.sampler
    random = (tud.RandomSampler, tud.SubsetRandomSampler, tud.WeightedRandomSampler)
    distributed = getattr(tud, "DistributedSampler", ())
    return isinstance(sampler, random) or (
        isinstance(sampler, distributed) and bool(getattr(sampler, "shuffle", False))
    )


def torch_dataloader(
    loader: Any,
    *,
    prepared: bool | None = None,
    class_names: Sequence[str] | None = None,
) -> ImageSamples:
    """Read every batch of a DataLoader once, as it comes, and keep its items in memory.

    Parameters
    ----------
    loader : torch.utils.data.DataLoader
        Batches are ``(images, labels, ...)``, dicts, or image batches alone (unlabelled);
        a batch of images is a ``(B, ...)`` tensor or array, or a list. A shuffling loader gives a
        ``UserWarning``: its order, hence the ids, changes from run to run.
    prepared, class_names
        As in :func:`torch_dataset`; class names default to those of ``loader.dataset``.

    Returns
    -------
    ImageSamples
        In the order the batches came; ids ``"DataLoader:<i>"``.

    Raises
    ------
    DataError
        When iterating raises (the loader is named), a batch has no images, or as
        :func:`torch_dataset`.

    Notes
    -----
    The whole loader is held in memory (as its batches hold it); for data sets larger than
    memory pass ``loader.dataset`` instead, which is read item by item.
    """
    dataset = getattr(loader, "dataset", None)
    inner = type(dataset).__name__
    if _shuffles(loader):
        warnings.warn(
            f"the DataLoader over {inner} shuffles: the order of the samples (and so their ids "
            "and any seeded selection) is not reproducible; pass shuffle=False or the dataset",
            UserWarning,
            stacklevel=3,
        )
    items: list[tuple[Any, Any]] = []
    try:
        for batch in loader:
            items.extend(_unbatch(batch, len(items), inner))
    except FeatscopeError:
        raise
    except Exception as exc:
        raise DataError(
            f"iterating the DataLoader over {inner} raised {type(exc).__name__}: {exc}; fix its "
            "dataset or collate_fn"
        ) from exc
    names = tuple(class_names) if class_names is not None else source_class_names(dataset)
    samples = torch_dataset(
        items, prepared=prepared, class_names=names, name="DataLoader", source=""
    )
    return ImageSamples(
        ids=samples.ids,
        labels=samples.labels,
        class_names=samples.class_names,
        source=f"torch DataLoader over {inner}",
        loader=samples.loader,
        prepared=samples.prepared,
    )


def _unbatch(batch: Any, start: int, inner: str) -> list[tuple[Any, Any]]:
    """Split one collated batch into ``(image, label)`` items (label None when absent)."""
    labels: Any = None
    if isinstance(batch, Mapping):
        key, label_key = _parts(batch, f"a batch of the DataLoader over {inner}")
        images, labels = batch[key], (batch[label_key] if label_key is not None else None)
    elif isinstance(batch, (tuple, list)) and batch and not _looks_like_image(batch):
        images, labels = batch[0], (batch[1] if len(batch) > 1 else None)
    else:
        images = batch
    if labels is not None:
        try:
            label_value(labels[0])
        except (NotALabel, TypeError, IndexError):
            labels = None  # a mask or box batch: torch_dataset warns about unlabelled items
    count = len(images)
    if labels is not None and len(labels) != count:
        raise DataError(
            f"a batch of the DataLoader over {inner} (from item {start}) has {count} images "
            f"but {len(labels)} labels; return one label per image"
        )
    return [(images[j], labels[j] if labels is not None else None) for j in range(count)]
