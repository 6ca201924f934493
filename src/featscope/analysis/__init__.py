"""featscope.analysis: numpy in, results out.

Embedding maps (:class:`TSNE`, :func:`reduce`, :func:`embed`) and their quality metrics
(:func:`embedding_metrics` and its parts). Nothing here imports torch or matplotlib; sklearn,
openTSNE and umap are imported inside the functions that use them.
"""

from __future__ import annotations

import importlib
from typing import Any

from featscope.analysis.embedding import embed, map_feature_sets, reduce
from featscope.analysis.metrics import (
    embedding_metrics,
    knn_accuracy,
    silhouette,
    trustworthiness,
)
from featscope.analysis.tsne import TSNE

__all__ = [
    "TSNE",
    "embed",
    "embedding_metrics",
    "knn_accuracy",
    "map_feature_sets",
    "reduce",
    "silhouette",
    "trustworthiness",
]

# Other analysis modules whose public names are reachable from here on first use.
_LAZY_MODULES = ("featscope.analysis.channels", "featscope.analysis.shape_bias")


def __getattr__(name: str) -> Any:
    for module_name in _LAZY_MODULES:
        module = importlib.import_module(module_name)
        if name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'featscope.analysis' has no attribute {name!r}")
