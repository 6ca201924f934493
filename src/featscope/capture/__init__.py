"""CAPTURE: named capture points, hooks as a context manager, pooling, the extraction loop.

This package imports torch; ``import featscope`` never imports it.
"""

from __future__ import annotations

from featscope.capture.extract import ExtractionResult, extract_features
from featscope.capture.feature_sets import FeatureExtraction, extract_feature_sets
from featscope.capture.hooks import Capture, capture
from featscope.capture.points import CapturePoint, resolve_points
from featscope.capture.pooling import flatten_outputs, pool

__all__ = [
    "Capture",
    "CapturePoint",
    "ExtractionResult",
    "FeatureExtraction",
    "capture",
    "extract_feature_sets",
    "extract_features",
    "flatten_outputs",
    "pool",
    "resolve_points",
]
