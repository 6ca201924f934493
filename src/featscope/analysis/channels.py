"""Channel reductions of a (C, H, W) feature map: numpy in, float32 (H, W) maps out.

These are the reductions of MMEngine's ``Visualizer.draw_featmap`` and MMRazor's version of it
(see ``reference/featmap-reference.md``), written in numpy so that ``analysis/`` needs neither
torch nor OpenCV:

* ``squeeze_mean``: the mean over channels, ``M = (1/C) sum_c X[c]``;
* ``select_max``: the one channel with the largest *signed* spatial sum ``s_c = sum_yx X[c]``;
* ``pixel_wise_max``: the per-pixel maximum over channels, ``M = max_c X[c]`` (MMRazor);
* top-k: the ``k`` channels with the largest ``s_c``, largest first.

Everything is computed in float32, like the reference on float32 features. Unlike the reference,
float16, bfloat16, integer and boolean maps are accepted (converted to float32 first), and
non-finite values are reported instead of silently turning into dark-blue pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featscope.errors import ParameterError

__all__ = [
    "NAN_POLICIES",
    "REDUCTIONS",
    "as_chw",
    "as_float_array",
    "check_finite",
    "feature_difference",
    "reduce_channels",
    "standardize_channels",
    "topk_channels",
]

#: Channel reductions understood by :func:`reduce_channels` (``None`` means "no reduction").
REDUCTIONS = ("pixel_wise_max", "squeeze_mean", "select_max")
#: What to do with NaN/inf values: ``"raise"`` an error or ``"mask"`` them (see check_finite).
NAN_POLICIES = ("raise", "mask")


def as_float_array(x: Any, *, name: str = "featmap") -> np.ndarray:
    """Return ``x`` as a float32 numpy array; torch tensors are accepted without importing torch.

    Parameters
    ----------
    x : array-like or torch.Tensor
        A numpy array, anything ``np.asarray`` accepts, or an object with ``.detach()`` (a
        torch tensor, on any device, of any floating, integer or boolean dtype, bfloat16 included).
    name : str, optional
        How ``x`` is named in error messages.

    Returns
    -------
    numpy.ndarray
        A float32 array of the same shape. float16/bfloat16/float64, integer and boolean values
        are converted to float32 (the reference fails on float16, bfloat16 and integers).

    Raises
    ------
    ParameterError
        When ``x`` is not numeric (strings, objects, complex numbers).
    """
    if hasattr(x, "detach"):
        # Duck-typed torch tensor: `.float()` first because numpy has no bfloat16.
        x = x.detach().cpu().float().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"`{name}` cannot be read as a numeric array ({exc}); pass a numpy array or a "
            "torch tensor of shape (C, H, W)"
        ) from exc
    if arr.dtype.kind not in "fiub":
        raise ParameterError(
            f"`{name}` has dtype {arr.dtype}, which is not a real number type; pass floating, "
            "integer or boolean values"
        )
    return arr.astype(np.float32, copy=False)


def check_finite(
    arr: np.ndarray, nan_policy: str = "raise", *, name: str = "featmap"
) -> np.ndarray:
    """Raise on NaN/inf values, or mask them with the smallest finite value.

    Parameters
    ----------
    arr : numpy.ndarray
        A float array.
    nan_policy : {"raise", "mask"}, optional
        ``"raise"`` (default): any NaN or +-inf is an error. ``"mask"``: every non-finite value
        is replaced by the smallest finite value of the whole array, so it draws as the lowest
        activation (dark blue) instead of spoiling the colour scale; a finite copy is returned.
    name : str, optional
        How the array is named in error messages.

    Returns
    -------
    numpy.ndarray
        ``arr`` itself when all values are finite, else a masked copy.

    Raises
    ------
    ParameterError
        When ``nan_policy`` is unknown, when there are non-finite values and the policy is
        ``"raise"``, or when no value at all is finite.
    """
    if nan_policy not in NAN_POLICIES:
        raise ParameterError(
            f"`nan_policy` {nan_policy!r} is not one of {', '.join(map(repr, NAN_POLICIES))}; "
            "pass 'raise' or 'mask'"
        )
    finite = np.isfinite(arr)
    n_bad = int(arr.size - np.count_nonzero(finite))
    if n_bad == 0:
        return arr
    if nan_policy == "raise":
        raise ParameterError(
            f"`{name}` has {n_bad} non-finite values (NaN or inf) out of {arr.size}; the model's "
            "output is broken there: fix it, or pass nan_policy='mask' to draw them as the "
            "lowest finite value"
        )
    if n_bad == arr.size:
        raise ParameterError(
            f"`{name}` has no finite value at all ({n_bad} NaN/inf values); nothing can be drawn: "
            "check the model's output at this capture point"
        )
    out = arr.copy()
    out[~finite] = arr[finite].min()
    return out


def as_chw(featmap: Any, *, nan_policy: str = "raise", name: str = "featmap") -> np.ndarray:
    """Return a feature map as a finite float32 (C, H, W) array.

    Parameters
    ----------
    featmap : array-like or torch.Tensor
        (C, H, W); (H, W) is taken as one channel and (1, C, H, W) has its batch axis dropped.
    nan_policy : {"raise", "mask"}, optional
        See :func:`check_finite`.
    name : str, optional
        How the map is named in error messages.

    Returns
    -------
    numpy.ndarray
        A float32 array of shape (C, H, W) with C, H, W >= 1.

    Raises
    ------
    ParameterError
        For any other shape, an empty map, a non-numeric dtype or non-finite values.
    """
    arr = as_float_array(featmap, name=name)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ParameterError(
                f"`{name}` has shape {tuple(arr.shape)}, a batch of {arr.shape[0]}; expected "
                "(C, H, W) for one image: pass one item, e.g. featmap[0]"
            )
        arr = arr[0]
    elif arr.ndim != 3:
        raise ParameterError(
            f"`{name}` has shape {tuple(arr.shape)} ({arr.ndim}-D); expected (C, H, W), (H, W) "
            "or (1, C, H, W); token outputs (N, L, C) must be reshaped to a grid first"
        )
    if 0 in arr.shape:
        raise ParameterError(
            f"`{name}` has shape {tuple(arr.shape)} with an empty axis; expected (C, H, W) "
            "with C, H and W at least 1"
        )
    return check_finite(arr, nan_policy, name=name)


def _multi_row_sum(x: np.ndarray) -> np.ndarray:
    """Sum ``x`` over axis 0 in float32, in the order of torch's CPU ``cascade_sum``.

    torch accumulates 16 rows at a time into the first of four levels and carries each full
    level into the next (``multi_row_sum`` in ATen's SumKernel.cpp). For up to 16 rows this is
    a plain sequential sum. Reproducing the order keeps squeeze_mean bit-identical to
    ``torch.mean(featmap, dim=0)`` instead of one float32 ulp away.
    """
    n = x.shape[0]
    levels = 4
    # level_power = max(4, CeilLog2(n) / 4); only exceeds 4 for n > 2**16 rows.
    ceil_log2 = 1 if n <= 2 else (n - 1).bit_length()
    power = max(4, ceil_log2 // levels)
    step = 1 << power
    mask = step - 1
    acc = [np.zeros(x.shape[1:], np.float32) for _ in range(levels)]
    i = 0
    while i + step <= n:
        for _ in range(step):
            acc[0] += x[i]
            i += 1
        for j in range(1, levels):
            acc[j] += acc[j - 1]
            acc[j - 1] = np.zeros_like(acc[j - 1])
            if i & (mask << (j * power)):
                break
    while i < n:
        acc[0] += x[i]
        i += 1
    for j in range(1, levels):
        acc[0] += acc[j]
    return acc[0]


def _row_sum(x: np.ndarray) -> np.ndarray:
    """Sum over axis 0 in the order of torch's ``row_sum`` (4 interleaved partial sums)."""
    n = x.shape[0]
    n_ilp = n // 4
    partial = [
        _multi_row_sum(x[k : n_ilp * 4 : 4]) if n_ilp else np.zeros(x.shape[1:], np.float32)
        for k in range(4)
    ]
    for i in range(n_ilp * 4, n):
        partial[0] += x[i]
    for k in range(1, 4):
        partial[0] += partial[k]
    return partial[0]


def _torch_channel_sum(x: np.ndarray, vec: int = 8) -> np.ndarray:
    """Sum a (C, H, W) float32 array over channels the way torch's CPU ``sum(dim=0)`` does.

    torch sums pixels in blocks of four SIMD vectors (32 floats with AVX2, ``vec`` = 8) with
    :func:`_multi_row_sum` and the leftover pixels with :func:`_row_sum`; maps of fewer than
    ``vec`` pixels go in blocks of 4. Checked bit for bit against torch 2.14 (AVX2, 1 and 2
    threads). Another vector width (AVX-512) or another thread split can move the boundary;
    the two orders differ by at most a few float32 ulps.
    """
    c, h, w = x.shape
    flat = x.reshape(c, h * w)
    n = h * w
    if n == 1 and c >= vec:
        # One pixel: torch sees a contiguous full reduction and sums vectors of `vec` channels
        # lane-wise, then the leftover channels, then the lanes.
        n_vec = c // vec
        lanes = _row_sum(flat[: n_vec * vec, 0].reshape(n_vec, vec))
        total = np.zeros(1, np.float32)
        for value in flat[n_vec * vec :, 0]:
            total += value
        for value in lanes:
            total += value
        return total.reshape(1, 1)
    block = 4 * vec if n >= vec else 4
    split = n - n % block
    out = np.empty(n, np.float32)
    if split:
        out[:split] = _multi_row_sum(flat[:, :split])
    if split < n:
        out[split:] = _row_sum(flat[:, split:])
    return out.reshape(h, w)


def _channel_scores(x: np.ndarray) -> np.ndarray:
    """Signed spatial sum of each channel, the reference's ranking score, in float64.

    float64 makes the ranking independent of summation order; the reference sums in float32
    (``torch.sum(featmap, dim=(1, 2))``), so channels whose sums agree to float32 precision
    may be ranked differently.
    """
    return x.reshape(x.shape[0], -1).sum(axis=1, dtype=np.float64)


def _rank_channels(x: np.ndarray) -> np.ndarray:
    # Stable descending sort: equal sums (e.g. dead ReLU channels, all 0) keep channel order.
    return np.argsort(-_channel_scores(x), kind="stable")


def reduce_channels(
    featmap: Any, mode: str | None = "pixel_wise_max", *, nan_policy: str = "raise"
) -> np.ndarray:
    """Reduce a (C, H, W) feature map to one (H, W) map.

    Parameters
    ----------
    featmap : array-like or torch.Tensor
        (C, H, W), (H, W) or (1, C, H, W); any real dtype (computed in float32).
    mode : {"pixel_wise_max", "squeeze_mean", "select_max"} or None, optional
        ``"pixel_wise_max"`` (default): ``M[y, x] = max_c X[c, y, x]``.
        ``"squeeze_mean"``: ``M[y, x] = (1/C) sum_c X[c, y, x]``, summed in torch's order.
        ``"select_max"``: the channel ``X[c*]`` with the largest signed spatial sum
        ``sum_yx X[c, y, x]`` (first channel on ties).
        ``None``: no reduction; the map must have one channel.
    nan_policy : {"raise", "mask"}, optional
        See :func:`check_finite`.

    Returns
    -------
    numpy.ndarray
        float32 array of shape (H, W).

    Raises
    ------
    ParameterError
        For an unknown mode, ``None`` with more than one channel, or an invalid map.
    """
    if mode is not None and mode not in REDUCTIONS:
        raise ParameterError(
            f"`channel_reduction` {mode!r} is not one of "
            f"{', '.join(map(repr, REDUCTIONS))} or None; pick one of those"
        )
    x = as_chw(featmap, nan_policy=nan_policy)
    if mode is None:
        if x.shape[0] != 1:
            raise ParameterError(
                f"`channel_reduction` None needs a one-channel map, but `featmap` has "
                f"{x.shape[0]} channels; pick a reduction ({', '.join(REDUCTIONS)}) or use "
                "topk_channels"
            )
        return x[0]
    if mode == "pixel_wise_max":
        return x.max(axis=0)
    if mode == "squeeze_mean":
        # torch.mean on CPU is sum(dim) / C, both in float32.
        return _torch_channel_sum(x) / np.float32(x.shape[0])
    return x[int(np.argmax(_channel_scores(x)))]


def topk_channels(
    featmap: Any, k: int, *, nan_policy: str = "raise"
) -> tuple[np.ndarray, np.ndarray]:
    """Pick the ``k`` channels with the largest signed spatial sum, largest first.

    Parameters
    ----------
    featmap : array-like or torch.Tensor
        (C, H, W), (H, W) or (1, C, H, W).
    k : int
        How many channels, at least 1; more than C gives all C channels.
    nan_policy : {"raise", "mask"}, optional
        See :func:`check_finite`.

    Returns
    -------
    maps : numpy.ndarray
        float32 array of shape (min(k, C), H, W).
    indices : numpy.ndarray
        int64 array of the original channel indices, in the same order. Channels with equal
        sums keep their original order (torch.topk leaves ties unspecified).

    Raises
    ------
    ParameterError
        When ``k`` is not a positive integer, or for an invalid map.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"`topk` {k!r} is not a positive integer; pass e.g. topk=20")
    x = as_chw(featmap, nan_policy=nan_policy)
    indices = _rank_channels(x)[: int(k)].astype(np.int64)
    return x[indices], indices


def standardize_channels(featmap: Any, eps: float = 1e-6) -> np.ndarray:
    """Standardise each channel over batch and space (MMRazor's ``--use-norm``).

    ``z = (x - mean_c) / (std_c + eps)`` where mean and unbiased standard deviation (n - 1) are
    taken per channel over all N*H*W values, as MMRazor does before taking batch item 0. There
    are no learned parameters. Computed in float64 and returned as float32. A constant channel
    becomes 0; so does a channel with a single value (where torch's unbiased std is NaN).

    Parameters
    ----------
    featmap : array-like or torch.Tensor
        (C, H, W), (H, W) or (N, C, H, W) with any N; must be finite.
    eps : float, optional
        Added to the standard deviation, 1e-6 like the reference.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape ((H, W) input comes back as (1, H, W)).

    Raises
    ------
    ParameterError
        For other shapes or non-finite values.
    """
    arr = as_float_array(featmap)
    if arr.ndim == 4 and arr.shape[0] > 1:
        check_finite(arr)
        x = arr
    else:
        x = as_chw(arr)[None]
    n, c = x.shape[:2]
    per_channel = np.moveaxis(x, 1, 0).reshape(c, -1).astype(np.float64)
    mean = per_channel.mean(axis=1, keepdims=True)
    count = per_channel.shape[1]
    std = per_channel.std(axis=1, ddof=1, keepdims=True) if count > 1 else np.zeros_like(mean)
    z = ((per_channel - mean) / (std + eps)).astype(np.float32)
    z = np.moveaxis(z.reshape(c, n, *x.shape[2:]), 0, 1)
    return z if arr.ndim == 4 else z[0]


def feature_difference(a: Any, b: Any) -> np.ndarray:
    """Element-wise absolute difference ``|a - b|`` of two feature maps of the same shape.

    Used to show where two models (teacher/student, before/after) disagree, like MMRazor's
    ``feature_diff_visualization.py``. Unlike the reference, shapes must be equal (no
    broadcasting). The difference is of raw activations: models with different feature scales
    differ everywhere (standardise both first with :func:`standardize_channels` if needed).

    Parameters
    ----------
    a, b : array-like or torch.Tensor
        Feature maps of identical shape, e.g. (C, H, W) or (N, C, H, W).

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.

    Raises
    ------
    ParameterError
        When the shapes differ or a map is not numeric.
    """
    xa = as_float_array(a, name="a")
    xb = as_float_array(b, name="b")
    if xa.shape != xb.shape:
        raise ParameterError(
            f"feature maps of shapes {tuple(xa.shape)} and {tuple(xb.shape)} cannot be "
            "compared: the difference needs the same channel count and spatial size; pick "
            "capture points of the same shape in both models"
        )
    return np.abs(xa - xb)
