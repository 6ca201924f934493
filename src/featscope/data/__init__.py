"""INPUTS: image folders, file lists, saved features, the built-in digits, and sample selection.

Nothing here imports torch; scikit-learn is imported only by :func:`demo_digits`.
"""

from __future__ import annotations

from featscope.data.features_io import load_features
from featscope.data.images import open_rgb
from featscope.data.samples import ImageSamples
from featscope.data.selection import select_indices, select_samples
from featscope.data.sources import (
    apply_class_names,
    demo_digits,
    file_list,
    image_folder,
    load_samples,
    read_class_names,
)

__all__ = [
    "ImageSamples",
    "apply_class_names",
    "demo_digits",
    "file_list",
    "image_folder",
    "load_features",
    "load_samples",
    "open_rgb",
    "read_class_names",
    "select_indices",
    "select_samples",
]
