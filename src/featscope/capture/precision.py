"""Whether bfloat16 keeps a model's features, decided on a few images before the extraction.

On a CPU with native bfloat16 (``avx512_bf16``, AMX) autocast roughly halves the time of a
convolutional network's forward pass, but how far the features move depends on the network:
on the digits through ResNet-18 the 10-NN accuracy of the features does not change, while an
EfficientNet (depthwise convolutions, squeeze-excitation) moves its features by about 10 % and
loses 0.004 of 10-NN accuracy on the cue-conflict images (docs/benchmarks.md). So ``amp="auto"``
on such a CPU runs the first images in float32 and in bfloat16 and keeps bfloat16 only when the
pooled features at every capture point agree to :data:`TOLERANCE` (relative Frobenius norm of
the difference). No library makes this decision, hence this module.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

__all__ = ["CHECK_IMAGES", "TOLERANCE", "PrecisionCheck", "check_bf16", "native_cpu_bf16"]

logger = logging.getLogger(__name__)

#: Largest relative difference ``|bf16 - fp32| / |fp32|`` (Frobenius norms over the checked
#: images' pooled features) at which bfloat16 is kept.
TOLERANCE = 0.02
_CPUINFO = "/proc/cpuinfo"
#: Images run twice for the check (more cost more; the measure is stable from a handful).
CHECK_IMAGES = 8


@functools.cache
def native_cpu_bf16() -> bool:
    """Return whether this CPU computes bfloat16 natively (``avx512_bf16`` or AMX, Linux).

    Elsewhere bfloat16 on the CPU is emulated and slower than float32, so it is never chosen.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open(_CPUINFO, encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return False
    return False


@dataclass(frozen=True)
class PrecisionCheck:
    """The outcome of :func:`check_bf16`.

    Attributes
    ----------
    dtype : torch.dtype or None
        ``torch.bfloat16`` when it keeps the features, else ``None`` (float32).
    difference : float
        The largest relative difference over the capture points (``nan`` if not measured).
    images : int
        How many images were compared.
    """

    dtype: torch.dtype | None
    difference: float
    images: int

    def describe(self) -> str:
        """One line for the log and the manifest."""
        verdict = "bfloat16" if self.dtype is not None else "float32"
        return (
            f"amp auto: {verdict} (bfloat16 moved the features of {self.images} images by "
            f"{self.difference:.4f} relative, limit {TOLERANCE})"
        )


def check_bf16(
    run: Callable[[torch.Tensor], Mapping[str, torch.Tensor]], images: torch.Tensor
) -> PrecisionCheck:
    """Run ``images`` in float32 and under bfloat16 autocast and compare the pooled features.

    Parameters
    ----------
    run : callable
        ``run(x) -> {output name: (N, D) float32 features}`` for a batch on the model's device.
    images : torch.Tensor
        A few model inputs (a batch).

    Returns
    -------
    PrecisionCheck
        bfloat16 when every output's relative difference is at most :data:`TOLERANCE`.
    """
    with torch.inference_mode():
        exact = run(images)
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16):
            reduced = run(images)
    worst = 0.0
    for name, want in exact.items():
        got = reduced.get(name)
        if got is None or got.shape != want.shape:
            return PrecisionCheck(None, float("nan"), len(images))
        norm = float(torch.linalg.vector_norm(want.double()))
        diff = float(torch.linalg.vector_norm(got.double() - want.double()))
        worst = max(worst, diff / norm if norm else (0.0 if diff == 0 else float("inf")))
    dtype = torch.bfloat16 if worst <= TOLERANCE else None
    return PrecisionCheck(dtype, worst, len(images))
