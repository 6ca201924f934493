"""Results and listings shared by the run-folder tests."""

from __future__ import annotations

import numpy as np

from featscope.results import EmbeddingResult, Provenance


def make_result(n_components=2, metrics=None):
    labels = np.array([0, 2, 1, 2])
    return EmbeddingResult(
        coords=np.arange(4 * n_components, dtype=float).reshape(4, n_components) / 3,
        labels=labels,
        class_names=("cat", 'dog, "big"', "bird"),
        ids=("a/1.png", "a/2.png", "b,3.png", "c/4.png"),
        point="pre_logits",
        method="tsne",
        params={"perplexity": 30.0, "init": "pca"},
        metrics=metrics if metrics is not None else {"trustworthiness": 0.9},
        provenance=Provenance(model="timm:resnet18", source="demo:digits", seed=3),
    )


def entries(folder):
    return sorted(p.name for p in folder.iterdir())
