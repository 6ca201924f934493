"""Feature maps of one photo: the model's input made from it, one forward pass with hooks.

:func:`map_points` resolves the capture points of a feature-map run and checks them against the
model's capture-point contract (:meth:`~featscope.models.handle.ModelHandle.point_info`) before
any image is read. :func:`capture_maps` runs the model on one photo and returns every output of
every point as a ``(C, h, w)`` float32 map, laid out by that contract (channels-last maps
transposed, tokens put on their grid after their prefix tokens), together with the region of the
photo the model saw (:func:`model_input`).

Detectors that resize and pad their input themselves (torchvision's ``GeneralizedRCNNTransform``)
get the whole photo in [0, 1]; the sizes their transform reports say which part of each map is
image and which is padding (``CapturedMaps.valid``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from featscope.capture.hooks import capture
from featscope.capture.points import CapturePoint, resolve_points
from featscope.capture.pooling import flatten_outputs
from featscope.capture.tokens import to_feature_map
from featscope.errors import CaptureError
from featscope.models.handle import ModelHandle, PointRef
from featscope.models.points import (
    device_and_dtype,
    forward_errors,
    is_detector,
    output_is_channels_last,
)
from featscope.results import CapturedMaps, Provenance

__all__ = ["TRANSFORM_POINT", "capture_maps", "map_points", "model_input"]

#: The extra point that records a detector's resized and padded input batch.
TRANSFORM_POINT = "<detector input transform>"


def map_points(handle: ModelHandle, names: str | Iterable[str]) -> list[CapturePoint]:
    """Resolve the capture points of a feature-map run, before any image is read.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    names : str or iterable of str
        Aliases, module paths or elements of an alias (see :func:`resolve_points`).

    Returns
    -------
    list of CapturePoint
        The points, plus :data:`TRANSFORM_POINT` for a detector.

    Raises
    ------
    CaptureError
        For an unknown point (nearest names listed), or when the model fails on an input of
        its own size (the contract's dry run, see :mod:`featscope.models.points`).
    """
    points = resolve_points(handle, names)
    for point in points:
        handle.point_info(point.name)
    if is_detector(handle.module):
        points.append(CapturePoint(TRANSFORM_POINT, PointRef("transform")))
    return points


def model_input(
    handle: ModelHandle, image: Any, prepared: Any = None
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Make the model's input from one photo, and say which part of the photo it shows.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    image : PIL.Image.Image
        An RGB photo; for a prepared input, its picture (the same height and width).
    prepared : array or tensor, optional
        ``(C, H, W)``: the model input as given, already transformed; used as it is, and
        ``image`` only fixes the region (all of it).

    Returns
    -------
    x : torch.Tensor
        ``(1, 3, H, W)`` float32: the preprocessed photo, or for a detector the whole photo
        scaled to [0, 1] (it normalises, resizes and pads by itself).
    region : (int, int, int, int)
        ``(left, top, right, bottom)`` of the photo in the input, in the photo's pixels: the
        centre crop of the preprocessing, rounded to whole pixels inside the photo.
    """
    from featscope.models.preprocessing import crop_box  # imports PIL: only when used

    if prepared is not None:
        x = torch.as_tensor(prepared)  # its dtype and device follow the model's below
        if x.ndim != 3:
            raise CaptureError(
                f"a prepared input must be (channels, height, width); got shape "
                f"{tuple(x.shape)}; give the Dataset's items as CHW tensors"
            )
        return x[None], (0, 0, image.width, image.height)
    if is_detector(handle.module):
        array = np.asarray(image, dtype=np.float32) / 255.0
        x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
        return x, (0, 0, image.width, image.height)
    left, top, right, bottom = crop_box(image.size, handle.preprocess)
    x0, y0 = max(0, round(left)), max(0, round(top))
    region = (
        x0,
        y0,
        min(image.width, x0 + max(1, round(right - left))),
        min(image.height, y0 + max(1, round(bottom - top))),
    )
    return handle.preprocess(image)[None], region


def capture_maps(
    handle: ModelHandle,
    image: Any,
    points: Sequence[CapturePoint],
    *,
    image_id: str = "image",
    provenance: Provenance | None = None,
    prepared: Any = None,
) -> CapturedMaps:
    """Run the model on one photo and return the feature maps of every point.

    Parameters
    ----------
    handle : ModelHandle
        The model, on its device.
    image : PIL.Image.Image
        An RGB photo.
    points : sequence of CapturePoint
        From :func:`map_points`.
    image_id : str, default "image"
        The photo's id, recorded in the result.
    provenance : Provenance, optional
        Recorded in the result (default: the handle's spec and checkpoint).
    prepared : array or tensor, optional
        The model input, already transformed (a prepared sample): used instead of
        preprocessing ``image`` (see :func:`model_input`).

    Returns
    -------
    CapturedMaps
        ``maps[point][output name]`` is a ``(C, h, w)`` float32 array (float16/bfloat16
        models included); tuple and dict outputs give one entry per element
        (``<point>.<level>``).

    Raises
    ------
    CaptureError
        When the model fails on the input, or an output is not a map (a vector per image, a
        tensor without a batch axis of one, tokens that fit no grid).
    """
    x, region = model_input(handle, image, prepared)
    device, dtype = device_and_dtype(handle.module)
    with forward_errors(handle, x), capture(handle, points) as tap:
        values = tap.run(x.to(device=device, dtype=dtype))
    valid = None
    if TRANSFORM_POINT in values:
        batch = values[TRANSFORM_POINT][0]
        padded_h, padded_w = batch.tensors.shape[-2:]
        resized_h, resized_w = batch.image_sizes[0]
        valid = (resized_h / padded_h, resized_w / padded_w)
    maps = {
        point.name: _point_maps(handle, point, values[point.name])
        for point in points
        if point.name != TRANSFORM_POINT
    }
    if provenance is None:
        provenance = handle.provenance(image_id)
    return CapturedMaps(image_id, maps, region, valid, provenance)


def _point_maps(handle: ModelHandle, point: CapturePoint, raw: Any) -> dict[str, np.ndarray]:
    info = handle.point_info(point.name)
    maps = {}
    for name, tensor in flatten_outputs(point.name, raw).items():
        if tensor.ndim == 0 or tensor.shape[0] != 1:
            raise CaptureError(
                f"output {name!r} has shape {tuple(tensor.shape)}, which is not batch-first "
                "for one image; pick a point (or an element of it) with one row per image"
            )
        fmap = to_feature_map(
            tensor,
            name=name,
            num_prefix_tokens=handle.num_prefix_tokens,
            patch_grid=handle.patch_grid,
            # an element the dry run did not see (a dict key that depends on the input) falls
            # back to the module's rule
            channels_last=output_is_channels_last(handle.module, point.ref.module),
            info=info.element(name),
        )
        maps[name] = fmap[0].detach().float().cpu().numpy()
    return maps
