"""What featscope's t-SNE engines share: openTSNE's update constants and the FFT grid's size.

Plain Python, importing neither torch nor numba, so that the torch engine
(:mod:`._tsne_torch`), the numba engine (:mod:`._tsne_numba`) and its kernels
(:mod:`._tsne_kernels`) read the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_STEP_NORM", "MIN_BOXES", "MIN_GAIN", "NODES", "Callback", "grid_boxes"]

#: openTSNE's gradient-descent constants (``gradient_descent.__call__`` defaults).
MIN_GAIN = 0.01
MAX_STEP_NORM = 5.0
#: Interpolation nodes per box and per axis (FIt-SNE's and openTSNE's default, 3).
NODES = 3
#: Fewest boxes per axis, openTSNE's ``min_num_intervals`` default.
MIN_BOXES = 50
#: Most boxes per axis (2 x 3^3 x 5^2; 4,050 nodes): boxes widen beyond this so a sprawling
#: map cannot ask for an FFT larger than 8,100^2 (a map 675 units across at half-unit boxes).
MAX_BOXES = 1_350

#: A callback as openTSNE calls it: ``(iteration, kl_divergence, embedding) -> stop?``.
Callback = Callable[[int, float, Any], bool]


def grid_boxes(span: float, box_width: float) -> int:
    """Boxes per axis of the FFT grid over a map ``span`` units wide.

    At least :data:`MIN_BOXES`, at most :data:`MAX_BOXES`, about ``span / box_width``,
    rounded up to a 5-smooth count: FFTs of sizes with large prime factors are several times
    slower (CPU: 599 boxes 0.91 s, 600 boxes 0.46 s), and cuFFT plans one per size.
    """
    return min(_smooth(max(MIN_BOXES, math.ceil(span / box_width))), MAX_BOXES)


def _smooth(n: int) -> int:
    """Return the smallest ``2^a 3^b 5^c >= n`` (a size FFTs handle at full speed)."""
    while True:
        rest = n
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return n
        n += 1
