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
    # one call per view
    "tsne": "featscope.views.embedding",
    "feature_maps": "featscope.views.featmap",
    "feature_map_difference": "featscope.views.featmap",
    "reconstruct": "featscope.views.recon",
    "shape_bias": "featscope.views.shape_bias",
    "shape_bias_from_csv": "featscope.views.shape_bias",
    "browse": "featscope.views.browse",
    "compare": "featscope.views.compare",
    "cam": "featscope.views.cam",
    "Monitor": "featscope.views.monitor",
    "FeatscopeCallback": "featscope.lightning",
    # option groups shared by the views, and each view's own options
    "Selection": "featscope.options",
    "Preprocess": "featscope.options",
    "Extraction": "featscope.options",
    "Figures": "featscope.options",
    "Output": "featscope.options",
    "EmbeddingOptions": "featscope.options",
    "FeatmapStyle": "featscope.analysis.featmap",
    "CamOptions": "featscope.analysis.cam",
    "ReconOptions": "featscope.analysis.recon",
    "BrowseOptions": "featscope.data.browse",
    # stage objects
    "load_model": "featscope.models",
    "trusted_checkpoints": "featscope.models.checkpoint",
    "load_features": "featscope.data",
    "capture": "featscope.capture",
    "extract_features": "featscope.capture",
    "TSNE": "featscope.analysis",
    "embed": "featscope.analysis",
    "embedding_metrics": "featscope.analysis",
    "plot_embedding": "featscope.render",
    "draw_featmap": "featscope.render.featmap",
    "LocalRun": "featscope.sinks",
    "load_run": "featscope.sinks",
    # results
    "Provenance": "featscope.results",
    "FeatureSet": "featscope.results",
    "EmbeddingResult": "featscope.results",
    "TsneRun": "featscope.results",
    "MonitorStep": "featscope.results",
    "FeatureMap": "featscope.results",
    "FeatmapRun": "featscope.results",
    "ReconstructionRun": "featscope.results",
    "ShapeBiasRun": "featscope.results",
    "BrowseResult": "featscope.results",
    "CompareRun": "featscope.results",
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
