"""Resizing feature maps exactly like torch, and the checks shared by the feature-map stages.

:func:`resize_bilinear` is ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` in numpy, bit for bit on x86-64 AVX2 (see its docstring), so that
``analysis/`` and ``render/`` reproduce MMEngine's ``draw_featmap`` without importing torch;
:func:`crop_to_aspect` is MMRazor's crop of a padded map to the image's aspect. Both serve the
drawing (:mod:`featscope.render.featmap`) and the memory-bounded channel reduction of large maps
(:func:`featscope.analysis.featmap.reduce_for_drawing`), which must give the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featscope.errors import ParameterError

__all__ = ["check_alpha", "check_pair", "crop_to_aspect", "resize_bilinear"]

# torch's Vectorized<float> width on AVX2 CPUs; see resize_bilinear.
_TORCH_FLOAT_LANES = 8
# Output elements resized per block of channels (bounds the float64 temporaries to ~64 MiB).
_BLOCK_ELEMENTS = 1 << 22


#: The largest side of a drawn picture (``resize_shape``): 4096 x 4096 RGB is already 48 MiB per
#: picture, in float before drawing several times that; more is a typo that would allocate
#: gigabytes before anything is checked.
MAX_PICTURE_SIDE = 4096


def check_pair(
    value: Any, name: str, example: str, high: int = MAX_PICTURE_SIDE
) -> tuple[int, int]:
    """Return ``value`` as two positive integers, or raise naming ``name``.

    Parameters
    ----------
    value : sequence of two ints
        E.g. an arrangement ``(rows, cols)`` or a size ``(height, width)``.
    name : str
        The parameter, for the message.
    example : str
        A valid value, for the message (``"(4, 5)"``).
    high : int, optional
        The largest value allowed (checked before anything is allocated).

    Returns
    -------
    (int, int)

    Raises
    ------
    ParameterError
        For anything but two integers from 1 to ``high`` (booleans refused).
    """
    ok = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str)
    ok = ok and len(value) == 2
    if ok:
        ok = all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value
        )
    if not ok:
        raise ParameterError(
            f"`{name}` {value!r} is not two positive integers; pass e.g. {name}={example}"
        )
    if max(int(v) for v in value) > high:
        raise ParameterError(
            f"`{name}` {tuple(int(v) for v in value)} is larger than {high} on a side, which "
            f"would allocate gigabytes before drawing; pass e.g. {name}={example}"
        )
    return int(value[0]), int(value[1])


def check_alpha(alpha: Any) -> float:
    """Return the blend weight of the heat map as a float in [0, 1], or raise.

    Parameters
    ----------
    alpha : float
        Weight of the heat map in the blend with the image.

    Returns
    -------
    float

    Raises
    ------
    ParameterError
        For a non-number (a string from an untyped command line, a boolean) or a value
        outside [0, 1].
    """
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.number)):
        raise ParameterError(
            f"`alpha` {alpha!r} is not a number; it is the weight of the heat map in the blend "
            "(0 = image only, 1 = heat map only): pass a float in [0, 1], e.g. 0.5"
        )
    value = float(alpha)
    if not 0.0 <= value <= 1.0:
        raise ParameterError(
            f"`alpha` {alpha!r} is outside [0, 1]; it is the weight of the heat map in the blend "
            "(0 = image only, 1 = heat map only): pass a float in [0, 1], e.g. 0.5"
        )
    return value


def _torch_linear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, ...]:
    """Compute torch's bilinear ``align_corners=False`` indices and weights along one axis."""
    if n_in == n_out:
        idx = np.arange(n_out)
        return idx, idx, np.ones(n_out, np.float32), np.zeros(n_out, np.float32)
    scale = np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out, dtype=np.float32) + np.float32(0.5)
    # torch: scale * (i + 0.5) - 0.5 in float32, compiled to one fused multiply-add.
    src = (np.float64(scale) * dst.astype(np.float64) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (np.float32(1.0) - lam1).astype(np.float32), lam1


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add ``a * b + c`` rounded once (via float64)."""
    out = np.multiply(a, b, dtype=np.float64)
    np.add(out, c, out=out)
    return out.astype(np.float32)


def resize_bilinear(
    maps: np.ndarray,
    size: tuple[int, int],
    *,
    vector_width: int = _TORCH_FLOAT_LANES,
    torch_contiguous: bool = True,
) -> np.ndarray:
    """Resize (C, h, w) float32 maps like ``F.interpolate(mode='bilinear', align_corners=False)``.

    Half-pixel centres, edge clamping, no antialiasing (so downscaling aliases, as in the
    reference). The arithmetic follows torch's CPU kernels bit for bit (checked against
    torch 2.14 on AVX2): for outputs with ``H + W > 128`` the generic kernel
    ``fma(fma(x00, w0, x01*w1), h0, fma(x10, w0, x11*w1) * h1)``; for smaller outputs (and
    1x1 inputs with more than 3 channels) torch's channels-last kernel with per-corner weights,
    in one order for channels in whole SIMD vectors of ``vector_width`` floats and another for
    the rest. Not reproduced: torch with a single thread on 3-channel maps (it then takes the
    channels-last kernel for any size) and AVX-512 builds (``vector_width=16``, pass it): both
    differ by at most a few float32 ulps.

    Parameters
    ----------
    maps : numpy.ndarray
        float32 array (C, h, w).
    size : (int, int)
        Output ``(H, W)``, height first.
    vector_width : int, optional
        torch's float SIMD width, 8 on AVX2.
    torch_contiguous : bool, optional
        Whether the torch tensor being imitated is contiguous; a cropped view (MMRazor's crop)
        is not, which sends 1x1 maps with more than 3 channels to the generic kernel.

    Returns
    -------
    numpy.ndarray
        float32 array (C, H, W).
    """
    x = np.asarray(maps, dtype=np.float32)
    if x.ndim != 3 or 0 in x.shape:
        raise ParameterError(f"`maps` has shape {x.shape}; resize_bilinear takes (C, h, w)")
    c, h, w = x.shape
    out_h, out_w = check_pair(size, "size", "(224, 224)")
    i0, i1, a0, a1 = _torch_linear_weights(h, out_h)
    j0, j1, b0, b1 = _torch_linear_weights(w, out_w)
    h0, h1 = a0[:, None], a1[:, None]
    w0, w1 = b0[None, :], b1[None, :]
    # torch takes its channels-last kernel for small outputs, and for inputs that are already
    # channels-last contiguous with more than 3 channels: only 1x1 maps, when contiguous.
    channels_last = (out_h + out_w <= 128) or (torch_contiguous and c > 3 and h == w == 1)
    n_vec = (c // vector_width) * vector_width if channels_last else 0
    out = np.empty((c, out_h, out_w), np.float32)
    # Blocks of channels keep the float64 temporaries small (a 256-channel map resized to a
    # photo would otherwise need several GiB); the vector/tail split stays global.
    block = max(1, _BLOCK_ELEMENTS // max(1, out_h * out_w))
    if n_vec:
        block = max(vector_width, block // vector_width * vector_width)
    for start in range(0, c, block):
        stop = min(c, start + block)
        if n_vec and start < n_vec < stop:
            stop = n_vec
        if not channels_last:
            # The horizontal pass only depends on the input row: do it once per input row.
            rows = x[start:stop]
            horizontal = _fma(rows[:, :, j0], w0, rows[:, :, j1] * w1)
            out[start:stop] = _fma(horizontal[:, i0], h0, horizontal[:, i1] * h1)
            continue
        rows0, rows1 = x[start:stop, i0], x[start:stop, i1]
        x00, x01 = rows0[:, :, j0], rows0[:, :, j1]
        x10, x11 = rows1[:, :, j0], rows1[:, :, j1]
        if start < n_vec:
            # Vectorized interpolate(): x00*w00 + (x01*w01 + (x10*w10 + x11*w11)), fused.
            inner = _fma(x11, h1 * w1, x10 * (h1 * w0))
            out[start:stop] = _fma(x00, h0 * w0, _fma(x01, h0 * w1, inner))
        else:
            # Scalar tail: x00*w00 + x01*w01 + x10*w10 + x11*w11, fused left to right.
            first = _fma(x00, h0 * w0, x01 * (h0 * w1))
            out[start:stop] = _fma(x11, h1 * w1, _fma(x10, h1 * w0, first))
    return out


def crop_to_aspect(featmap_hw: tuple[int, int], image_hw: tuple[int, int]) -> tuple[int, int]:
    """MMRazor's crop of a padded feature map to the image's aspect ratio (top-left kept).

    Detectors pad their input at the bottom/right to a multiple of 32, so the feature map has
    a margin the image does not. With feature ``(fh, fw)`` and image ``(ih, iw)``: if
    ``fh / fw > ih / iw`` keep the first ``round(fw * ih / iw)`` rows, else the first
    ``round(fh * iw / ih)`` columns, with Python's ``round`` (half to even: 12.5 -> 12). Never
    fewer than 1 (the reference would crash on an empty map).

    Parameters
    ----------
    featmap_hw : (int, int)
        Feature-map height and width.
    image_hw : (int, int)
        Image height and width.

    Returns
    -------
    (int, int)
        The height and width to keep.
    """
    fh, fw = (int(v) for v in featmap_hw)
    ih, iw = (int(v) for v in image_hw)
    if fh / fw > ih / iw:
        fh = round(fw * ih / iw)
    else:
        fw = round(fh * iw / ih)
    return max(1, fh), max(1, fw)
