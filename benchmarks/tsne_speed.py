"""featscope's t-SNE (whole run, fit alone) vs openTSNE's and scikit-learn's, interleaved.

The targets (issue 18): the whole ``featscope tsne --features`` run (start-up, t-SNE, quality
metrics, page, run folder) in at most 0.25 of openTSNE's fit alone at N = 20,000 and 0.35 at
70,000, openTSNE given the same cores, with a 10-NN accuracy in the map at most 0.005 below
openTSNE's and a trustworthiness at most 0.002 below. (Issue 8's targets were on the fit alone
against openTSNE's one-thread default: at most half at 20,000 and 70,000, a third at 2,000.)

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

Methods (``--n-jobs``, default: every core of the machine, is the thread count of all of them):

* ``featscope-run``: the whole command ``featscope tsne --features X.npy --labels y.npy
  --max-num-samples N --seed r --work-dir <tmp>`` as a fresh process, timed from start to exit
  (imports, t-SNE, quality metrics, page, run folder); its map is read back from the run
  folder's ``coords_*.csv`` and scored like the others. The CLI's ``n_jobs`` is its default
  (-1: the idle cores);
* ``featscope``: ``featscope.analysis.TSNE(random_state=r, n_jobs=J).fit_transform(X)``;
* ``opentsne``: ``openTSNE.TSNE(random_state=r, n_jobs=J).fit(X)``, its defaults otherwise
  (FFT, Annoy, 750 iterations): the same cores as featscope;
* ``opentsne-1thread``: openTSNE's own default ``n_jobs=1``, a labelled extra (the comparison
  of docs/benchmarks.md runs 1-4, which gave featscope two cores against openTSNE's one);
* ``sklearn``: ``sklearn.manifold.TSNE(init="pca", random_state=r, n_jobs=J).fit_transform(X)``.

Ratios in the table are against ``opentsne`` (same cores). The 1-minute load average before
each run is recorded beside it: on a shared machine only interleaved ratios mean something.

Scores: 10-NN leave-one-out accuracy in the map (all points) and trustworthiness (k = 10,
seeded subsample of 5,000 points against the PCA-50 input), as ``benchmarks/embedding.py``.

Usage::

    python benchmarks/tsne_speed.py [--sizes 2000,20000,70000] [--repeats 3,1,1]
        [--methods featscope-run,featscope,opentsne] [--n-jobs 2] [--sklearn-max 70000]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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

METHODS = ("featscope-run", "featscope", "opentsne", "opentsne-1thread", "sklearn")
DEFAULT_METHODS = ("featscope-run", "featscope", "opentsne")
SRC = HERE.parent / "src"


def whole_run(n: int, seed: int, inputs: tuple[Path, Path]) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``featscope tsne --features`` as a fresh process; return its map and stage log."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="featscope-bench-") as tmp:
        command = [
            sys.executable, "-m", "featscope", "tsne", "--features", str(inputs[0]),
            "--labels", str(inputs[1]), "--max-num-samples", str(n), "--seed", str(seed),
            "--work-dir", tmp,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"featscope tsne failed:\n{done.stderr[-3000:]}")
        (path,) = Path(tmp).glob("tsne_*/coords_*.csv")
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        ids = np.array([int(r["id"].rsplit(":", 1)[1]) for r in rows])
        coords = np.empty((len(rows), 2))
        coords[ids] = [[float(r["x"]), float(r["y"])] for r in rows]
        log = [line for line in done.stderr.splitlines() if line.startswith("t-SNE")]
    return coords, {"log": log}


def fitter(method: str, seed: int, n_jobs: int):
    """Return ``(fit(X) -> coords, info() -> dict)`` for one method and seed."""
    if method == "featscope":
        from featscope.analysis import TSNE

        est = TSNE(random_state=seed, n_jobs=n_jobs)

        def info() -> dict[str, Any]:
            return {
                "n_iter": est.n_iter_,
                "n_jobs": est.params_["n_jobs"],
                "gradient": est.params_["negative_gradient_method"],
                "neighbors": est.params_["neighbors"],
            }

        return est.fit_transform, info
    if method in ("opentsne", "opentsne-1thread"):
        import openTSNE

        threads = 1 if method == "opentsne-1thread" else n_jobs
        model = openTSNE.TSNE(random_state=seed, n_jobs=threads)
        return (lambda X: np.asarray(model.fit(X))), lambda: {"n_jobs": threads}
    if method == "sklearn":
        from sklearn.manifold import TSNE as SkTSNE

        est = SkTSNE(init="pca", random_state=seed, n_jobs=n_jobs)
        return est.fit_transform, lambda: {"n_jobs": n_jobs}
    raise ValueError(f"unknown method {method!r}")


def run(
    sizes: list[int],
    repeats: list[int],
    methods: list[str],
    sklearn_max: int,
    data_dir: Path,
    n_jobs: int,
) -> dict[str, Any]:
    """Run every method at every size, interleaved; return JSON-ready results."""
    # Import every library featscope's fit would import lazily, untimed.
    import openTSNE  # noqa: F401
    import sklearn.decomposition
    import sklearn.manifold  # noqa: F401
    import torch  # noqa: F401

    images, labels = load_fashion_mnist(data_dir)
    inputs_dir = Path(tempfile.mkdtemp(prefix="featscope-bench-inputs-"))
    try:
        return _run_sizes(sizes, repeats, methods, sklearn_max, n_jobs, images, labels, inputs_dir)
    finally:
        shutil.rmtree(inputs_dir, ignore_errors=True)


def _run_sizes(sizes, repeats, methods, sklearn_max, n_jobs, images, labels, inputs_dir):
    """:func:`run`'s loop over sizes, with the saved inputs of ``featscope-run`` in a folder."""
    results: dict[str, Any] = {}
    for n, reps in zip(sizes, repeats, strict=True):
        X, y = prepare(images, labels, n)
        inputs = (inputs_dir / f"X{n}.npy", inputs_dir / f"y{n}.npy")
        np.save(inputs[0], X)
        np.save(inputs[1], y)
        todo = [m for m in methods if m != "sklearn" or n <= sklearn_max]
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in todo}
        for r in range(reps):
            order = todo[r % len(todo) :] + todo[: r % len(todo)]
            for method in order:
                load = os.getloadavg()[0]
                if method == "featscope-run":
                    start = time.perf_counter()
                    coords, extra = whole_run(n, r, inputs)
                    seconds = time.perf_counter() - start
                else:
                    fit, info = fitter(method, r, n_jobs)
                    start = time.perf_counter()
                    coords = np.asarray(fit(X), dtype=np.float64)
                    seconds = time.perf_counter() - start
                    extra = info()
                entry = {"seconds": seconds, "load_before": load, **extra, **score(X, y, coords)}
                runs[method].append(entry)
                print(
                    f"N={n:>6} rep {r} {method:<10} {seconds:8.2f} s  "
                    f"10-NN {entry['knn_accuracy_map']:.4f}  "
                    f"trust {entry['trustworthiness']:.4f}  load {load:.1f}  "
                    + (json.dumps(extra) if method.startswith("featscope") else ""),
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
    """Markdown table: each method's time over openTSNE's (same cores), quality gaps to it."""
    lines = [
        "| N | method | runs | time (s), median | runs (s) | load before | 10-NN acc (map) | "
        "trustworthiness | time / openTSNE's | 10-NN - openTSNE's | trust - openTSNE's |",
        "|---:|---|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for n, per in results.items():
        ref = per.get("opentsne")
        for method, e in per.items():
            ratio = knn = trust = "-"
            if ref:
                ratio = f"{e['median_seconds'] / ref['median_seconds']:.2f}"
                knn = f"{e['median_knn_accuracy_map'] - ref['median_knn_accuracy_map']:+.4f}"
                trust = f"{e['median_trustworthiness'] - ref['median_trustworthiness']:+.4f}"
            lines.append(
                f"| {int(n):,} | {method} | {len(e['runs'])} | {e['median_seconds']:.1f} | "
                + ", ".join(f"{r['seconds']:.1f}" for r in e["runs"])
                + " | "
                + ", ".join(f"{r['load_before']:.1f}" for r in e["runs"])
                + f" | {e['median_knn_accuracy_map']:.4f} | {e['median_trustworthiness']:.4f} | "
                f"{ratio} | {knn} | {trust} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,20000,70000")
    parser.add_argument("--repeats", default="3,1,1", help="runs per size (comma-separated)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="threads of featscope's fit, openTSNE and sklearn (default: every core)",
    )
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
    info["n_jobs"] = args.n_jobs
    results = run(sizes, repeats, methods, args.sklearn_max, args.data_dir, args.n_jobs)
    print()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["python", *sys.argv]), "machine": info, "results": results}
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
