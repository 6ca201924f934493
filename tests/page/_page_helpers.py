"""Helpers of the page tests: small synthetic maps and thumbnails, waiting for bokeh."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def open_page(driver, path: Path, timeout: float = 20.0) -> None:
    """Load a page and wait until bokeh has drawn it (document idle)."""
    driver.get(Path(path).resolve().as_uri())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = driver.execute_script(
            "return !!(window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle)"
        )
        if ready:
            return
        time.sleep(0.05)
    raise AssertionError(f"bokeh did not finish drawing {path} in {timeout} s")


def make_results(n_per_class: int = 30, names=None, maps: int = 2, seed: int = 0):
    """Two maps of the same samples: tight clusters on a circle, in different places per map."""
    from featscope.results import EmbeddingResult, Provenance

    names = tuple(names or [f"class {i}" for i in range(4)])
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(names)), n_per_class)
    ids = tuple(f"img/{i:04d}.png" for i in range(len(labels)))
    results = []
    for k in range(maps):
        angle = 2 * np.pi * (labels + k * 1.5) / len(names)
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 10
        coords = centres + rng.normal(scale=0.6, size=(len(labels), 2))
        results.append(
            EmbeddingResult(
                coords=coords,
                labels=labels,
                class_names=names,
                ids=ids,
                point=f"stage{k}",
                method="tsne",
                params={"perplexity": 30.0},
                metrics={"knn_accuracy_map": 0.9 + k / 100, "trustworthiness": 0.95},
                provenance=Provenance(model="demo:digits-cnn", source="synthetic"),
            )
        )
    return results


def tile_thumbnails(n: int, size: int = 32) -> np.ndarray:
    """Distinct solid-colour thumbnails: thumbnail i is a flat colour derived from i."""
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)
    return out
