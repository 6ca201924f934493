"""Render results as matplotlib figures.

Every ``plot_*`` function takes a result object, draws on a given axes or on a new
:class:`matplotlib.figure.Figure` (never pyplot state) and returns what it drew on. Saving
(:func:`save_figure`) and showing (:func:`show`) are separate steps. This package never imports
torch, and matplotlib is imported only when a function is called.
"""

from __future__ import annotations

from featscope.render.colors import class_color, class_colors
from featscope.render.embedding import (
    embedding_title,
    plot_embedding,
    plot_embedding_figures,
    plot_embeddings,
)
from featscope.render.figures import FIGURE_FORMATS, png_bytes, save_figure, show
from featscope.render.recon import plot_reconstruction, plot_reconstruction_grid
from featscope.render.shape_bias import plot_shape_bias

__all__ = [
    "FIGURE_FORMATS",
    "class_color",
    "class_colors",
    "embedding_title",
    "plot_embedding",
    "plot_embedding_figures",
    "plot_embeddings",
    "plot_reconstruction",
    "plot_reconstruction_grid",
    "plot_shape_bias",
    "png_bytes",
    "save_figure",
    "show",
]
