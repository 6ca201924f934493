"""Where a t-SNE run on saved features spends its time, stage by stage.

The run log dates the t-SNE's phases, but the last stages (drawing the figures, writing the
features, coordinates and figures, building the page) share one log line, "wrote the
interactive page", so its timestamp minus the metrics line counts all three. The view times
each stage itself (``TsneRun.timings``: ``load``, ``reduce`` with the metrics and clusters,
``render``, ``write``, ``page``); this script runs :func:`featscope.tsne` on saved features,
as ``featscope tsne --features`` does, and prints those timings, the whole call's time and
each stage's share of it.

Usage::

    python benchmarks/stage_times.py X.npy y.npy [--max-num-samples N] [--seed 0]
        [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import featscope
from featscope.options import Output, Selection


def stage_times(
    features: str, labels: str, max_num_samples: int, seed: int, work_dir: str
) -> dict[str, float]:
    """Run the t-SNE view on saved features; return each stage's seconds and the whole call's."""
    start = time.perf_counter()
    run = featscope.tsne(
        features=features,
        labels=labels,
        selection=Selection(max_num_samples=max_num_samples, seed=seed),
        output=Output(work_dir=work_dir),
    )
    whole = time.perf_counter() - start
    return {**run.timings, "whole call": whole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features", help="saved features (.npy)")
    parser.add_argument("labels", help="their labels (.npy)")
    parser.add_argument("--max-num-samples", type=int, default=0, help="per class (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default=None, help="default: a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="featscope-stages-") as tmp:
        seconds = stage_times(
            args.features, args.labels, args.max_num_samples, args.seed, args.work_dir or tmp
        )
    whole = seconds["whole call"]
    for stage, value in seconds.items():
        print(f"{stage:<12} {value:6.2f} s  {100 * value / whole:5.1f} %")


if __name__ == "__main__":
    main()
