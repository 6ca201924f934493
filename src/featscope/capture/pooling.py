"""Turn captured outputs into one ``(N, D)`` feature matrix per named tensor.

:func:`flatten_outputs` names every tensor inside a module's raw output (tuples of FPN levels,
dicts, Hugging Face ``ModelOutput``); :func:`pool` reduces each to one vector per sample and says
which rule it used, so the result can record it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from featscope.errors import CaptureError

__all__ = ["POOLING_RULES", "flatten_outputs", "pool"]

#: The rules :func:`pool` can report.
POOLING_RULES = ("none", "global_avg", "cls_token", "token_mean")


def _join(prefix: str, key: object) -> str:
    # the whole model's output is the point "", whose elements are then plainly "0", "1", ...
    return f"{prefix}.{key}" if prefix else str(key)


def flatten_outputs(name: str, raw: Any) -> dict[str, torch.Tensor]:
    """Name every tensor inside a captured output.

    Parameters
    ----------
    name : str
        The capture point's name.
    raw : Tensor, tuple, list, dict or ModelOutput
        What the point produced. Containers may be nested.

    Returns
    -------
    dict of str to torch.Tensor
        ``{name: tensor}`` for a tensor; ``<name>.<i>`` for the elements of a tuple or list and
        ``<name>.<key>`` for the tensor values of a dict or ``ModelOutput``, recursively. Values
        that are not tensors (``None``, shapes, strings) are left out.

    Raises
    ------
    CaptureError
        When the output holds no tensor at all.
    """
    flat: dict[str, torch.Tensor] = {}
    _flatten_into(flat, name, raw)
    if not flat:
        raise CaptureError(
            f"capture point {name!r} produced {type(raw).__name__}, which holds no tensor; "
            "pick a point whose output is a tensor or a tuple/dict of tensors"
        )
    return flat


def _flatten_into(flat: dict[str, torch.Tensor], name: str, raw: Any) -> None:
    if isinstance(raw, torch.Tensor):
        flat[name] = raw
    elif isinstance(raw, Mapping):  # dict and Hugging Face ModelOutput (an OrderedDict)
        for key, value in raw.items():
            _flatten_into(flat, _join(name, key), value)
    elif isinstance(raw, (tuple, list)):
        for i, value in enumerate(raw):
            _flatten_into(flat, _join(name, i), value)


def pool(tensor: torch.Tensor, num_prefix_tokens: int = 0) -> tuple[torch.Tensor, str]:
    """Reduce a batch of maps or tokens to one float32 vector per sample.

    Parameters
    ----------
    tensor : torch.Tensor
        Batch-first output of a capture point: ``(N,)``, ``(N, D)``, ``(N, L, C)`` tokens,
        ``(N, C, H, W)`` maps or ``(N, C, D1, D2, ...)`` volumes.
    num_prefix_tokens : int, default 0
        Class/register tokens at the start of token outputs; > 0 means the model has a class
        token (token 0), which is then taken.

    Returns
    -------
    features : torch.Tensor
        ``(N, D)`` float32, on the tensor's device.
    rule : str
        ``"global_avg"`` (mean over all spatial dims), ``"cls_token"`` (token 0),
        ``"token_mean"`` (mean over tokens) or ``"none"`` (already a vector).

    Raises
    ------
    CaptureError
        For a 0-d tensor, which has no batch dimension.
    """
    # half-precision sums over large maps lose digits; the features are stored as float32 anyway
    x = tensor.float()
    if x.ndim == 0:
        raise CaptureError(
            "a capture point produced a scalar (0-d tensor), which has no batch dimension; "
            "pick a point whose output has one row per image"
        )
    # reshape/mean/indexing only: squeeze() would also drop the batch dim of a batch of 1
    if x.ndim == 1:
        return x.reshape(-1, 1), "none"
    if x.ndim == 2:
        return x, "none"
    if x.ndim == 3:
        if num_prefix_tokens > 0:
            return x[:, 0, :], "cls_token"
        return x.mean(dim=1), "token_mean"
    return x.flatten(start_dim=2).mean(dim=2), "global_avg"
