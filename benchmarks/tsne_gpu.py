"""featscope's torch t-SNE engine on a GPU vs the alternatives, and mixed-precision extraction.

The target: with ``--device cuda`` 1,000,000 points of 50 dimensions should embed in under
a minute on one H100-class GPU. This script measures, in one process, interleaved:

* ``featscope``: ``featscope.analysis.TSNE(device=DEVICE, random_state=r)``, its defaults
  (exact neighbours and the torch engine on the GPU: exact gradient up to 20,000 points,
  FFT-interpolated above);
* ``torchdr``: ``torchdr.TSNE(device=DEVICE)`` where TorchDR is installed;
* ``tsnecuda``: ``tsnecuda.TSNE()`` where tsne-cuda is installed;
* ``opentsne``: ``openTSNE.TSNE(n_jobs=-1)`` on the CPU, up to ``--cpu-max`` points.

Input: Fashion-MNIST PCA-50 (``benchmarks/embedding.py``'s preparation) up to 70,000 points;
above, a seeded mixture of 20 anisotropic Gaussians in 50 dimensions (labels = component), as
no real 1M-image feature set ships with the project. Scores as ``benchmarks/embedding.py``:
10-NN accuracy in the map (all points) and trustworthiness (5,000-point subsample).

With ``--extract``, also the extraction throughput of a model (images/s) on DEVICE with
``amp="off"`` and ``amp="auto"`` (bfloat16 on CUDA), against the bare model's forward on the
same random batches.

Usage::

    python benchmarks/tsne_gpu.py --device cuda --sizes 100000,1000000 [--repeats 1]
        [--methods featscope,torchdr,tsnecuda,opentsne] [--cpu-max 100000]
        [--extract --model timm:resnet50 --images 2048 --batch-size 256] [--out FILE]

It also runs on a CPU at small sizes (``--device cpu --sizes 5000``), which is how CI-less
machines check that it still works.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from embedding import DEFAULT_DATA, load_fashion_mnist, machine, prepare, score  # noqa: E402

FASHION_MAX = 70_000


def synthetic(n: int, dim: int = 50, classes: int = 20, seed: int = 0) -> tuple[np.ndarray, Any]:
    """A seeded mixture of anisotropic Gaussians: ``(float32 X, int labels)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(classes, dim))
    scales = rng.uniform(0.5, 2.0, size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    X = centres[y] + rng.normal(size=(n, dim)) * scales[y]
    return X.astype(np.float32), y


def fitter(method: str, device: str, seed: int):
    """Return ``fit(X) -> (coords, info)`` for one method."""
    if method == "featscope":
        from featscope.analysis import TSNE

        def fit(X):
            model = TSNE(device=device, random_state=seed).fit(X)
            keys = ("backend", "negative_gradient_method", "neighbors", "n_iter_run")
            return model.embedding_, {k: model.params_[k] for k in keys}

    elif method == "torchdr":
        import torchdr

        def fit(X):
            return np.asarray(torchdr.TSNE(device=device, random_state=seed).fit_transform(X)), {}

    elif method == "tsnecuda":
        import tsnecuda

        def fit(X):
            return tsnecuda.TSNE(random_seed=seed).fit_transform(X), {}

    else:
        import openTSNE

        def fit(X):
            return np.asarray(openTSNE.TSNE(n_jobs=-1, random_state=seed).fit(X)), {}

    return fit


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def tsne_runs(args: argparse.Namespace) -> dict[str, Any]:
    """Time every available method at every size, interleaved per repeat."""
    methods = [m for m in args.methods if m in ("featscope", "opentsne") or _installed(m)]
    skipped = sorted(set(args.methods) - set(methods))
    if skipped:
        print(f"not installed here, skipped: {', '.join(skipped)}")
    images = labels = None
    results: dict[str, Any] = {}
    for n in args.sizes:
        if n <= FASHION_MAX:
            if images is None:
                images, labels = load_fashion_mnist(args.data_dir)
            X, y = prepare(images, labels, n)
            source = "fashion-mnist pca-50"
        else:
            X, y = synthetic(n)
            source = "gaussian mixture, 50-d"
        results[str(n)] = per_method = {"input": source}
        for r in range(args.repeats):
            order = methods[r % len(methods) :] + methods[: r % len(methods)]
            for method in order:
                if method == "opentsne" and n > args.cpu_max:
                    continue
                fit = fitter(method, args.device, r)
                _sync(args.device)
                start = time.perf_counter()
                coords, info = fit(X)
                _sync(args.device)
                seconds = time.perf_counter() - start
                entry = {"seconds": seconds, **info, **score(X, y, coords)}
                per_method.setdefault(method, []).append(entry)
                print(
                    f"N={n:>8} rep {r} {method:<10} {seconds:8.2f} s  10-NN "
                    f"{entry['knn_accuracy_map']:.4f}  trust {entry['trustworthiness']:.4f}  "
                    f"{json.dumps(info)}",
                    flush=True,
                )
    return results


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def extraction_runs(args: argparse.Namespace) -> dict[str, Any]:
    """Images/s of featscope's extraction (amp off / auto) and of the bare model's forward."""
    import torch
    from PIL import Image

    from featscope.capture import extract_features
    from featscope.data.samples import ImageSamples
    from featscope.models import load_model

    handle = load_model(args.model, device=args.device)
    size = handle.preprocess.input_size
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(args.images, size[0], size[1], 3), dtype=np.uint8)
    samples = ImageSamples(
        ids=tuple(f"random:{i}" for i in range(args.images)),
        labels=np.zeros(args.images, dtype=np.int64),
        class_names=("random",),
        source="random pixels",
        loader=lambda i: Image.fromarray(pixels[i]),
    )
    out: dict[str, Any] = {"model": args.model, "images": args.images, "input_size": size}
    for amp in ("off", "auto"):

        def extract(subset: ImageSamples, amp: str = amp) -> None:
            extract_features(
                handle,
                subset,
                ["pre_logits"],
                device=args.device,
                amp=amp,
                batch_size=args.batch_size,
                progress=False,
            )
            _sync(args.device)

        extract(samples.subset(np.arange(args.batch_size)))  # warm-up: cuDNN plans, autotune
        start = time.perf_counter()
        extract(samples)
        out[f"featscope_amp_{amp}"] = args.images / (time.perf_counter() - start)
    module = handle.module.to(args.device).eval()
    batch = torch.randn(args.batch_size, 3, *size, device=args.device)
    with torch.inference_mode():
        module(batch)
        _sync(args.device)
        start = time.perf_counter()
        for _ in range(max(1, args.images // args.batch_size)):
            module(batch)
        _sync(args.device)
    out["bare_forward_fp32"] = (
        args.batch_size * max(1, args.images // args.batch_size) / (time.perf_counter() - start)
    )
    for key, value in out.items():
        if key.endswith(("off", "auto", "fp32")):
            print(f"{key:<22} {value:9.1f} images/s")
    return out


def table(results: dict[str, Any]) -> str:
    """Markdown table: median time, scores and featscope's time over each method's."""
    lines = [
        "| N | input | method | runs | time (s), median | 10-NN acc (map) | trustworthiness "
        "| featscope time / this |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for n, per_method in results.items():
        ours = per_method.get("featscope")
        ours_t = statistics.median(e["seconds"] for e in ours) if ours else None
        for method, runs in per_method.items():
            if method == "input":
                continue
            t = statistics.median(e["seconds"] for e in runs)
            acc = statistics.median(e["knn_accuracy_map"] for e in runs)
            trust = statistics.median(e["trustworthiness"] for e in runs)
            ratio = f"{ours_t / t:.2f}" if ours_t else "-"
            lines.append(
                f"| {int(n):,} | {per_method['input']} | {method} | {len(runs)} | {t:.1f} | "
                f"{acc:.4f} | {trust:.4f} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run, print the tables and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--methods", default="featscope,torchdr,tsnecuda,opentsne")
    p.add_argument("--cpu-max", type=int, default=100_000, help="openTSNE up to this N")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--extract", action="store_true", help="also measure extraction throughput")
    p.add_argument("--model", default="timm:resnet50")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", type=Path, default=HERE / "results" / "tsne_gpu.json")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.methods = [m for m in args.methods.split(",") if m]
    report: dict[str, Any] = {"machine": machine(), "device": args.device}
    if args.device.startswith("cuda"):
        import torch

        report["gpu"] = torch.cuda.get_device_name(args.device)
    print("machine:", report)
    report["tsne"] = tsne_runs(args)
    print()
    print(table(report["tsne"]))
    if args.extract:
        report["extraction"] = extraction_runs(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
