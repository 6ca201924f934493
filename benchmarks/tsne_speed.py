"""featscope's default t-SNE vs openTSNE's defaults vs scikit-learn's, interleaved in one process.

The targets: featscope's default t-SNE must take at most half of openTSNE's default time at
N = 20,000 and 70,000 and at most a third at N = 2,000, with a 10-NN accuracy in the map at most
0.005 below openTSNE's and a trustworthiness at most 0.002 below.

Input: Fashion-MNIST, pixels / 255, PCA to 50 dimensions once per size (outside the timed part;
70,000 = train + test, smaller N a seeded subset; the same preparation as
``benchmarks/embedding.py``). All libraries are imported before any timing (featscope imports
openTSNE, scikit-learn and torch inside ``fit``; they are imported up front here, as the other
methods' imports are). On a shared machine the load changes from minute to minute, so the
methods run *interleaved*: repeat r runs every method once, in an order rotated by r, so that a
busy spell hits all of them alike. Repeat r uses seed r for every method (at 2,000 points the
10-NN accuracy of one seed's map differs from another's by up to 0.01, for openTSNE as for
featscope, so a median over seeds compares the methods rather than two seeds' luck). Medians
are reported.

Methods:

* ``featscope``: ``featscope.analysis.TSNE(random_state=r).fit_transform(X)``, its defaults;
* ``opentsne``: ``openTSNE.TSNE(random_state=r).fit(X)``, its defaults (``n_jobs=1``, FFT,
  Annoy, 750 iterations); the seed only makes runs repeatable;
* ``sklearn``: ``sklearn.manifold.TSNE(init="pca", random_state=r).fit_transform(X)``.

Scores: 10-NN leave-one-out accuracy in the map (all points) and trustworthiness (k = 10,
seeded subsample of 5,000 points against the PCA-50 input), as ``benchmarks/embedding.py``.

Usage::

    python benchmarks/tsne_speed.py [--sizes 2000,20000,70000] [--repeats 3,1,1]
        [--methods featscope,opentsne,sklearn] [--sklearn-max 70000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from embedding import (  # noqa: E402  (the sibling benchmark script, for identical input)
    DEFAULT_DATA,
    load_fashion_mnist,
    machine,
    prepare,
    score,
)

METHODS = ("featscope", "opentsne", "sklearn")


def fitter(method: str, seed: int):
    """Return ``(fit(X) -> coords, info() -> dict)`` for one method and seed."""
    if method == "featscope":
        from featscope.analysis import TSNE

        est = TSNE(random_state=seed)

        def info() -> dict[str, Any]:
            return {
                "n_iter": est.n_iter_,
                "n_jobs": est.params_["n_jobs"],
                "gradient": est.params_["negative_gradient_method"],
                "neighbors": est.params_["neighbors"],
            }

        return est.fit_transform, info
    if method == "opentsne":
        import openTSNE

        model = openTSNE.TSNE(random_state=seed)
        return (lambda X: np.asarray(model.fit(X))), dict
    if method == "sklearn":
        from sklearn.manifold import TSNE as SkTSNE

        est = SkTSNE(init="pca", random_state=seed)
        return est.fit_transform, dict
    raise ValueError(f"unknown method {method!r}")


def run(
    sizes: list[int], repeats: list[int], methods: list[str], sklearn_max: int, data_dir: Path
) -> dict[str, Any]:
    """Run every method at every size, interleaved; return JSON-ready results."""
    # Import every library featscope's fit would import lazily, untimed.
    import openTSNE  # noqa: F401
    import sklearn.decomposition
    import sklearn.manifold  # noqa: F401
    import torch  # noqa: F401

    images, labels = load_fashion_mnist(data_dir)
    results: dict[str, Any] = {}
    for n, reps in zip(sizes, repeats, strict=True):
        X, y = prepare(images, labels, n)
        todo = [m for m in methods if m != "sklearn" or n <= sklearn_max]
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in todo}
        for r in range(reps):
            order = todo[r % len(todo) :] + todo[: r % len(todo)]
            for method in order:
                fit, info = fitter(method, seed=r)
                load = os.getloadavg()[0]
                start = time.perf_counter()
                coords = np.asarray(fit(X), dtype=np.float64)
                seconds = time.perf_counter() - start
                entry = {"seconds": seconds, "load_before": load, **info(), **score(X, y, coords)}
                runs[method].append(entry)
                print(
                    f"N={n:>6} rep {r} {method:<10} {seconds:8.2f} s  "
                    f"10-NN {entry['knn_accuracy_map']:.4f}  "
                    f"trust {entry['trustworthiness']:.4f}  load {load:.1f}  "
                    + (json.dumps(info()) if method == "featscope" else ""),
                    flush=True,
                )
        results[str(n)] = {
            m: {
                "median_seconds": statistics.median(e["seconds"] for e in rs),
                "median_knn_accuracy_map": statistics.median(e["knn_accuracy_map"] for e in rs),
                "median_trustworthiness": statistics.median(e["trustworthiness"] for e in rs),
                "runs": rs,
            }
            for m, rs in runs.items()
        }
    return results


def table(results: dict[str, Any]) -> str:
    """Markdown table with featscope's time ratio and quality gaps against openTSNE."""
    lines = [
        "| N | method | runs | time (s), median | runs (s) | 10-NN acc (map) | "
        "trustworthiness | featscope time / this |",
        "|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for n, per in results.items():
        ours = per.get("featscope", {}).get("median_seconds")
        for method, e in per.items():
            ratio = f"{ours / e['median_seconds']:.2f}" if ours else "-"
            lines.append(
                f"| {int(n):,} | {method} | {len(e['runs'])} | {e['median_seconds']:.1f} | "
                + ", ".join(f"{r['seconds']:.1f}" for r in e["runs"])
                + f" | {e['median_knn_accuracy_map']:.4f} | {e['median_trustworthiness']:.4f} | "
                f"{ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,20000,70000")
    parser.add_argument("--repeats", default="3,1,1", help="runs per size (comma-separated)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--sklearn-max", type=int, default=70000, help="skip sklearn above this N (it is slow)"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tsne_speed.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    repeats = [int(s) for s in args.repeats.split(",") if s]
    if len(repeats) == 1:
        repeats *= len(sizes)
    if len(repeats) != len(sizes):
        parser.error("--repeats needs one value, or one per size")
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            parser.error(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    info = machine()
    print(f"machine: {info}", flush=True)
    results = run(sizes, repeats, methods, args.sklearn_max, args.data_dir)
    print()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["python", *sys.argv]), "machine": info, "results": results}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
