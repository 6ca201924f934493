"""How far class centroids move between neighbouring maps, with and without ``--align``.

Run: ``python scripts/measure_alignment.py`` (the built-in digits demo, CPU). Prints, for the
three capture points of the default run (backbone.1 -> neck -> pre_logits) and for each point
in two runs of other seeds (what ``compare`` shows), the mean distance between class centroids
of neighbouring maps in map radii (:func:`featscope.analysis.align.centroid_movement`).
"""

from __future__ import annotations

import itertools
import time

import featscope
from featscope.analysis import map_feature_sets
from featscope.analysis.align import align_maps, centroid_movement, common_samples
from featscope.options import EmbeddingOptions, Extraction, Output, Selection


def _moves(maps):
    return [centroid_movement(a, b) for a, b in itertools.pairwise(maps)]


def main() -> None:
    quiet, none = Extraction(progress=False), EmbeddingOptions(align="none")
    t0 = time.perf_counter()
    runs = [
        featscope.tsne(
            embedding=none,
            extraction=quiet,
            selection=Selection(seed=seed),
            output=Output(work_dir=None),
        )
        for seed in (0, 1)
    ]
    print(f"maps made in {time.perf_counter() - t0:.1f} s")
    points = list(runs[0].results)
    pca = map_feature_sets(runs[0].features, EmbeddingOptions(method="pca", align="none"))
    for name, maps in (("t-SNE, points of one run (seed 0)", points), ("PCA, same features", pca)):
        before, after = _moves(maps), _moves(align_maps(maps))
        print(name, [m.point for m in maps])
        print("  independent:", " ".join(f"{v:.3f}" for v in before))
        print("  aligned:    ", " ".join(f"{v:.3f}" for v in after))
    for point in [m.point for m in points]:
        pair, _ = common_samples([r[point] for r in runs])
        print(
            f"seed 0 -> seed 1, {point} ({len(pair[0].ids)} shared samples): "
            f"independent {centroid_movement(*pair):.3f}, "
            f"aligned {centroid_movement(*align_maps(pair)):.3f}"
        )


if __name__ == "__main__":
    main()
