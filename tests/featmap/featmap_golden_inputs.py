"""The deterministic inputs of the golden outputs, shared by make_featmap_golden.py (which
records the reference libraries' outputs on them) and test_featmap_golden.py (which compares).

Exact float32 arithmetic on integers, so they are the same on every platform; numpy only, so the
generator can import this module without featscope.
"""

from __future__ import annotations

import numpy as np


def deterministic_featmap(c: int, h: int, w: int) -> np.ndarray:
    """Return a (c, h, w) float32 map with distinct, reproducible values."""
    n = np.arange(c * h * w, dtype=np.int64)
    values = ((n * 37) % 23 - 11).astype(np.float32) / np.float32(7)
    values += (n // (h * w)).astype(np.float32) * np.float32(0.25)
    return values.reshape(c, h, w)


def deterministic_image(h: int, w: int) -> np.ndarray:
    """Return an (h, w, 3) uint8 image with reproducible values."""
    n = np.arange(h * w * 3, dtype=np.int64)
    return ((n * 53 + 17) % 256).astype(np.uint8).reshape(h, w, 3)
