"""One call per view: each composes the stages (load, capture, analyse, render, write).

The command-line subcommands are thin wrappers around exactly these calls.
"""

from __future__ import annotations

from featscope.views.embedding import TsneRun, tsne
from featscope.views.featmap import FeatmapRun, FeatureMap, feature_map_difference, feature_maps

__all__ = ["FeatmapRun", "FeatureMap", "TsneRun", "feature_map_difference", "feature_maps", "tsne"]
