"""featscope: see what a vision model has learned.

``import featscope`` is cheap: the verbs below are imported on first use, so torch,
matplotlib and the model zoos load only when a function needs them.
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import Any

try:
    __version__ = _metadata.version("featscope")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_LAZY = {
    "tsne": "featscope.views.embedding",
    "TsneRun": "featscope.views.embedding",
    "feature_maps": "featscope.views.featmap",
    "feature_map_difference": "featscope.views.featmap",
    "FeatmapRun": "featscope.views.featmap",
    "FeatureMap": "featscope.views.featmap",
    "draw_featmap": "featscope.render.featmap",
    "load_model": "featscope.models",
    "trusted_checkpoints": "featscope.models.checkpoint",
    "capture": "featscope.capture",
    "extract_features": "featscope.capture",
    "TSNE": "featscope.analysis",
    "embed": "featscope.analysis",
    "embedding_metrics": "featscope.analysis",
    "load_features": "featscope.data",
    "plot_embedding": "featscope.render",
    "LocalRun": "featscope.sinks",
    "load_run": "featscope.sinks",
    "FeatureSet": "featscope.results",
    "EmbeddingResult": "featscope.results",
    # shape bias
    "shape_bias": "featscope.views.shape_bias",
    "shape_bias_from_csv": "featscope.views.shape_bias",
    # reconstructions of masked-image models
    "reconstruct": "featscope.views.recon",
    # the interactive page of other runs side by side, logging during training
    "compare": "featscope.views.compare",
    "Monitor": "featscope.views.monitor",
    "FeatscopeCallback": "featscope.views.monitor",
    # dataset browser
    "browse": "featscope.views.browse",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'featscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
