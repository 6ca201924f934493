"""t-SNE maps of Fashion-MNIST: featscope vs scikit-learn vs openTSNE, side by side.

For each size N the images are scaled to [0, 1] and reduced to 50 dimensions by PCA once
(outside the timed part), so every method gets the identical float32 (N, 50) input. Each method
then runs in a fresh process (multiprocessing "spawn"), which times only the fit and reports its
own peak resident memory (``ru_maxrss``; this includes the interpreter, the imported libraries
and the input, listed separately as "base"). The map is then scored in this process:
10-NN leave-one-out accuracy in the map (all N points) and trustworthiness (k=10, seeded
subsample of at most 5,000 points, against the PCA-50 input).

Methods, each as its users call it:

* ``featscope``: ``featscope.analysis.TSNE()`` defaults (1000 iterations, all cores, seeded);
* ``sklearn``: ``sklearn.manifold.TSNE(init="pca", random_state=0)``, all else default;
* ``opentsne``: ``openTSNE.TSNE(random_state=0)``, its true defaults (n_jobs=1, 750 iterations:
  250 exaggerated + 500), seeded only for repeatability;
* ``opentsne-mt``: the same with ``n_jobs=-1``;
* ``featscope-bh`` / ``featscope-fft``: featscope with the gradient method forced (used to
  choose the "auto" threshold).

Usage::

    python benchmarks/embedding.py [--sizes 2000,10000,20000,70000] [--repeats 1]
        [--methods featscope,sklearn,opentsne,opentsne-mt] [--data-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "fashion-mnist"
DEFAULT_SIZES = (2000, 10000, 20000, 70000)
DEFAULT_METHODS = ("featscope", "sklearn", "opentsne", "opentsne-mt")
ALL_METHODS = (*DEFAULT_METHODS, "featscope-bh", "featscope-fft")
K = 10
MAX_TRUST_POINTS = 5000


def read_idx(path: Path) -> np.ndarray:
    """Read one gzip-compressed idx file (see the data folder's README)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = np.frombuffer(data, ">i4", count=ndim, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (train then test) as (70000, 784) uint8, and their labels."""
    images, labels = [], []
    for split in ("train", "t10k"):
        images.append(read_idx(data_dir / f"{split}-images-idx3-ubyte.gz").reshape(-1, 784))
        labels.append(read_idx(data_dir / f"{split}-labels-idx1-ubyte.gz"))
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def prepare(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded subset of ``n`` images (all when n = 70,000) -> pixels/255 -> PCA-50 float32."""
    from sklearn.decomposition import PCA

    if n >= len(images):
        rows = np.arange(len(images))
    else:
        rows = np.sort(np.random.default_rng(0).choice(len(images), size=n, replace=False))
    X = images[rows].astype(np.float32) / 255.0
    X50 = PCA(n_components=50, random_state=0).fit_transform(X).astype(np.float32)
    return np.ascontiguousarray(X50), labels[rows]


def _maxrss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux this is ``VmHWM`` from /proc: ``ru_maxrss`` survives ``exec``, so in a spawned
    child it would still count the parent's memory at fork time.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def run_method(method: str, x_path: str) -> dict[str, Any]:
    """Fit one method on the saved input, in a fresh process; return coords, time, memory."""
    X = np.load(x_path)
    if method.startswith("featscope"):
        # featscope imports its back-ends inside fit(); import them here, untimed, as the
        # other methods' imports are.
        import openTSNE
        import sklearn.decomposition  # noqa: F401

        from featscope.analysis import TSNE

        extra = {}
        if method != "featscope":
            extra["negative_gradient_method"] = method.split("-", 1)[1]
        estimator = TSNE(**extra)
        fit = estimator.fit_transform
    elif method == "sklearn":
        from sklearn.manifold import TSNE as SkTSNE

        fit = SkTSNE(init="pca", random_state=0).fit_transform
    elif method in ("opentsne", "opentsne-mt"):
        import openTSNE

        model = openTSNE.TSNE(random_state=0, n_jobs=-1 if method == "opentsne-mt" else 1)

        def fit(X: np.ndarray) -> np.ndarray:
            return np.asarray(model.fit(X))
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(ALL_METHODS)}")
    base = _maxrss_mib()
    start = time.perf_counter()
    coords = np.asarray(fit(X), dtype=np.float64)
    seconds = time.perf_counter() - start
    info: dict[str, Any] = {}
    if method.startswith("featscope"):
        info = {"params": estimator.params_, "n_iter": estimator.n_iter_}
    return {
        "coords": coords,
        "seconds": seconds,
        "peak_rss_mib": _maxrss_mib(),
        "base_rss_mib": base,
        **info,
    }


def score(X: np.ndarray, y: np.ndarray, coords: np.ndarray) -> dict[str, float]:
    """10-NN accuracy in the map (all points) and trustworthiness (<= 5,000 points)."""
    from featscope.analysis.metrics import knn_accuracy, trustworthiness

    return {
        "knn_accuracy_map": knn_accuracy(coords, y, K),
        "trustworthiness": trustworthiness(
            X, coords, K, max_points=MAX_TRUST_POINTS, random_state=0
        ),
    }


def benchmark(sizes: list[int], methods: list[str], repeats: int, data_dir: Path) -> dict[str, Any]:
    """Run every method at every size; return the JSON-ready results."""
    images, labels = load_fashion_mnist(data_dir)
    results: dict[str, Any] = {}
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            X, y = prepare(images, labels, n)
            x_path = os.path.join(tmp, f"x{n}.npy")
            np.save(x_path, X)
            knn_features = None
            results[str(n)] = per_method = {}
            for method in methods:
                runs = []
                for _ in range(repeats):
                    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                        runs.append(pool.submit(run_method, method, x_path).result())
                times = [r["seconds"] for r in runs]
                # Score the run whose time is the median (the first one when repeats == 1).
                median_run = runs[times.index(sorted(times)[(len(times) - 1) // 2])]
                entry = {
                    "seconds": statistics.median(times),
                    "all_seconds": times,
                    "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
                    "base_rss_mib": statistics.median(r["base_rss_mib"] for r in runs),
                    **score(X, y, median_run["coords"]),
                }
                for key in ("params", "n_iter"):
                    if key in median_run:
                        entry[key] = median_run[key]
                per_method[method] = entry
                print(
                    f"  N={n:>6} {method:<14} {entry['seconds']:8.1f} s  "
                    f"{entry['peak_rss_mib']:7.0f} MiB  10-NN {entry['knn_accuracy_map']:.4f}  "
                    f"trust {entry['trustworthiness']:.4f}",
                    flush=True,
                )
            if knn_features is None:
                from featscope.analysis.metrics import knn_accuracy

                knn_features = knn_accuracy(X, y, K)
            per_method["_input"] = {"knn_accuracy_pca50": knn_features}
    return results


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    from importlib import metadata

    versions = {}
    for name in ("numpy", "scipy", "scikit-learn", "openTSNE"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "cpu_cores": cores,
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def table(results: dict[str, Any]) -> str:
    """Markdown table of the results plus featscope's time ratios."""
    lines = [
        "| N | method | time (s) | peak RSS (MiB) | base RSS (MiB) | 10-NN acc (map) | "
        "trustworthiness | featscope time / this |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, per_method in results.items():
        ours = per_method.get("featscope", {}).get("seconds")
        for method, e in per_method.items():
            if method.startswith("_"):
                continue
            ratio = f"{ours / e['seconds']:.2f}" if ours else "-"
            lines.append(
                f"| {int(n):,} | {method} | {e['seconds']:.1f} | {e['peak_rss_mib']:.0f} | "
                f"{e['base_rss_mib']:.0f} | {e['knn_accuracy_map']:.4f} | "
                f"{e['trustworthiness']:.4f} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated N values"
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, from: {', '.join(ALL_METHODS)}",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per method; median kept")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "embedding.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in ALL_METHODS:
            parser.error(f"unknown method {m!r}; choose from {', '.join(ALL_METHODS)}")
    if any(n < 100 or n > 70000 for n in sizes):
        parser.error("--sizes must be between 100 and 70000")

    info = machine()
    print(f"machine: {info}", flush=True)
    results = benchmark(sizes, methods, args.repeats, args.data_dir)
    print()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "machine": info,
        "repeats": args.repeats,
        "k": K,
        "max_trustworthiness_points": MAX_TRUST_POINTS,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
