"""The forward pass of a reconstruction: read images, hide seeded patches, let the model predict.

:func:`masked_batches` reads and preprocesses images batch by batch, draws each image's mask
(:func:`featscope.models.mim.random_masks`, seeded by the image's position in the whole input,
so the batch size changes nothing), runs :meth:`featscope.models.mim.MIMModel.predict` and hands
the arrays on as numpy (:class:`MaskedBatch`); the arithmetic after it is
:func:`featscope.analysis.recon.reconstruct_batch`.

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from featscope.data.images import skip_reason
from featscope.errors import DataError
from featscope.models.mim import patches_to_hog, random_masks

__all__ = ["MaskedBatch", "masked_batches"]


@dataclass(frozen=True)
class MaskedBatch:
    """One batch of a masked-image model's predictions, as numpy arrays.

    Attributes
    ----------
    ids, stems : tuple of str
        Each image's id and distinct file stem.
    positions : tuple of int
        Each image's position in the whole input (skipped images count).
    inputs : numpy.ndarray
        ``(n, 3, H, W)`` float32 model input, normalised by ``mean`` and ``std``.
    mean, std : tuple of float
        The input normalisation per channel, on the 0-1 scale.
    patch_masks : numpy.ndarray
        ``(n, gh, gw)`` bool, True on hidden model patches.
    prediction : numpy.ndarray
        ``(n, L, p*p*3)`` float32 predicted patches in the normalised input space (norm-pix
        values for a norm-pix MAE); for a HOG model ``(n, C, B, hc, wc)`` predicted HOG cells.
    target : numpy.ndarray or None
        ``(n, C, B, hc, wc)`` float32 HOG cells of the input (HOG models only).
    cell_size : int
        Pixels per HOG cell (HOG models).
    """

    ids: tuple[str, ...]
    stems: tuple[str, ...]
    positions: tuple[int, ...]
    inputs: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    patch_masks: np.ndarray
    prediction: np.ndarray
    target: np.ndarray | None = None
    cell_size: int = 8


def masked_batches(
    model: Any,
    items: Sequence[Any],
    *,
    mask_ratio: float,
    mask_patch_size: int,
    seed: int = 0,
    batch_size: int = 8,
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[MaskedBatch]:
    """Mask the images and predict them, batch by batch.

    Parameters
    ----------
    model : MIMModel
        From :func:`featscope.models.mim.load_mim`.
    items : sequence
        Images with ``id``, ``stem`` and ``load()`` (an RGB PIL image).
    mask_ratio : float
        Fraction of mask patches hidden.
    mask_patch_size : int
        Side of a mask patch in pixels, a multiple of the model's patch size.
    seed : int, default 0
        Image ``i`` of ``items`` gets the mask of ``random_masks(..., seed=seed, start=i)``.
    batch_size : int, default 8
        Images per forward pass.
    skipped : list, optional
        With a list, unreadable images are appended to it as ``(id, reason)`` (with a warning)
        and left out; without, their :class:`~featscope.errors.DataError` propagates.

    Yields
    ------
    MaskedBatch
        Each batch that kept at least one image.

    Raises
    ------
    DataError
        When an image cannot be read (without ``skipped``), or none of them can.
    """
    from featscope.progress import Progress

    kept = 0
    with Progress(len(items), "reconstructions", "img") as bar:
        for start in range(0, len(items), batch_size):
            read: list[tuple[int, Any, Any]] = []
            stop = min(start + batch_size, len(items))
            for position in range(start, stop):
                picture = _read(model, items[position], skipped)
                if picture is not None:
                    read.append((position, items[position], picture))
            if read:
                kept += len(read)
                yield _predict(model, read, mask_ratio, mask_patch_size // model.patch_size, seed)
            bar.update(stop - start)
    if not kept:
        raise DataError(
            f"none of the {len(items)} image(s) could be read (all skipped); pass readable "
            "image files"
        )


def _read(model: Any, item: Any, skipped: list[tuple[str, str]] | None) -> Any:
    """Return the preprocessed image, or ``None`` when it is unreadable and may be skipped."""
    try:
        try:
            return model.preprocess(item.load())
        except OSError as exc:
            raise DataError(
                f"image {item.id!r} cannot be read ({exc}); pass an image file"
            ) from exc
    except DataError as exc:
        if skipped is None:
            raise
        reason = skip_reason(exc)
        warnings.warn(f"skipped image {item.id!r}: {reason}", stacklevel=4)
        skipped.append((item.id, reason))
        return None


def _predict(
    model: Any, read: list[tuple[int, Any, Any]], ratio: float, unit: int, seed: int
) -> MaskedBatch:
    positions = [position for position, _, _ in read]
    # each image's mask depends on its position in the whole input (skipped ones included)
    patch_masks = np.concatenate(
        [random_masks(1, model.grid, ratio, unit=unit, seed=seed, start=p) for p in positions]
    )
    device = next(iter(model.module.parameters())).device
    x = torch.stack([picture for _, _, picture in read]).to(device)
    mask = torch.from_numpy(patch_masks.reshape(len(read), -1)).to(device)
    prediction = model.predict(x, mask).float()
    target, cell = None, 8
    if model.target == "hog":
        hog = model.hog
        cell, per_patch = hog.pool, model.patch_size // hog.pool
        with torch.no_grad():
            target = patches_to_hog(model.hog_target(x).float(), model.grid, per_patch, hog.nbins)
        prediction = patches_to_hog(prediction, model.grid, per_patch, hog.nbins)
    return MaskedBatch(
        ids=tuple(item.id for _, item, _ in read),
        stems=tuple(item.stem for _, item, _ in read),
        positions=tuple(positions),
        inputs=x.float().cpu().numpy(),
        mean=tuple(model.preprocess.mean),
        std=tuple(model.preprocess.std),
        patch_masks=patch_masks,
        prediction=prediction.cpu().numpy(),
        target=None if target is None else target.cpu().numpy(),
        cell_size=int(cell),
    )
