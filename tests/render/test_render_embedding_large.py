"""Large maps: 2-D maps of >= DENSITY_FROM points are drawn as a density image, quickly."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from featscope.render import class_color, plot_embedding, save_figure
from featscope.render.embedding import DENSITY_FROM
from featscope.results import EmbeddingResult, Provenance


def _clusters(n: int, n_classes: int = 10, three_d: bool = False) -> EmbeddingResult:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, n_classes, n)
    angle = labels * 2 * np.pi / n_classes
    centres = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 30
    coords = centres + rng.normal(size=(n, 2))
    if three_d:
        coords = np.column_stack([coords, rng.normal(size=n)])
    return EmbeddingResult(
        coords=coords,
        labels=labels,
        class_names=tuple(f"c{i}" for i in range(n_classes)),
        ids=tuple(f"s{i}" for i in range(n)),
        point="pre_logits",
        method="tsne",
        metrics={},
        provenance=Provenance(model="synthetic", versions={}),
    )


def test_200k_points_draw_as_density_image_and_save(tmp_path):
    result = _clusters(200_000)
    assert len(result.labels) >= DENSITY_FROM
    start = time.perf_counter()
    ax = plot_embedding(result, legend=True)
    paths = save_figure(ax.figure, tmp_path / "map", formats=("png", "pdf"), dpi=60)
    seconds = time.perf_counter() - start
    assert seconds < 30  # a scatter of 200k markers in png + pdf takes minutes on 2 cores
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert paths[1].stat().st_size < 5_000_000  # an image, not 200k vector markers
    assert len(ax.images) == 1
    assert not ax.collections
    image = ax.images[0].get_array()
    assert image.shape == (800, 800, 4)
    # The pixel at class 0's centre (30, 0) shows class 0's colour, opaque; a corner is empty.
    x0, x1, y0, y1 = ax.images[0].get_extent()
    col = int((30 - x0) / (x1 - x0) * 800)
    row = int((0 - y0) / (y1 - y0) * 800)
    np.testing.assert_allclose(image[row, col, :3], class_color(0)[:3], atol=1e-6)
    assert image[row, col, 3] > 0.7
    # Opacity grows with density: 1.5 units out from the centre (fewer points) is fainter.
    out = int((31.5 - x0) / (x1 - x0) * 800)
    assert 0 < image[row, out, 3] < image[row, col, 3]
    assert image[0, 0, 3] == 0
    assert len(ax.get_legend().get_texts()) == 10
    with Image.open(paths[0]) as png:
        assert png.size[0] > 100


def test_small_and_3d_maps_keep_markers():
    small = plot_embedding(_clusters(500))
    assert not small.images
    assert sum(len(c.get_offsets()) for c in small.collections) == 500
    from matplotlib.figure import Figure

    ax3 = Figure().add_subplot(projection="3d")
    plot_embedding(_clusters(DENSITY_FROM, three_d=True), ax=ax3)
    assert ax3.collections[0].get_rasterized()
