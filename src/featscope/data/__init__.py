"""INPUTS: where samples come from, and which of them a view uses.

Image folders, file lists, Python data objects, Hugging Face datasets, saved features, the
built-in digits, and sample selection.

Nothing here imports torch at module level (Python data objects are recognised without it);
scikit-learn is imported only by :func:`demo_digits`, ``datasets`` only for Hugging Face data.
"""

from __future__ import annotations

from featscope.data.features_io import load_features
from featscope.data.hf_sources import hf_dataset, load_hf
from featscope.data.images import open_rgb
from featscope.data.py_sources import py_data, samples_from_object
from featscope.data.samples import UNLABELLED, ImageSamples
from featscope.data.selection import select_indices, select_samples
from featscope.data.sources import (
    apply_class_names,
    demo_digits,
    file_list,
    image_folder,
    load_samples,
    read_class_names,
)
from featscope.data.torch_sources import image_arrays, torch_dataloader, torch_dataset

__all__ = [
    "UNLABELLED",
    "ImageSamples",
    "apply_class_names",
    "demo_digits",
    "file_list",
    "hf_dataset",
    "image_arrays",
    "image_folder",
    "load_features",
    "load_hf",
    "load_samples",
    "open_rgb",
    "py_data",
    "read_class_names",
    "samples_from_object",
    "select_indices",
    "select_samples",
    "torch_dataloader",
    "torch_dataset",
]
