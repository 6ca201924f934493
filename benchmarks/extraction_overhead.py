"""Extraction against the bare forward: how much of featscope's extraction is the model itself.

Issue 18 asks for an extraction at 0.9 or more of the bare forward in the same precision on the
same batches. On 1,000 digit images (scikit-learn's digits as PNG class folders, the image job
of benchmarks/mmpretrain_job.py) through torchvision's ResNet-18 at 224 px, random weights from
seed 0, in one process and interleaved:

* ``bare``: the model featscope runs (the folded copy where it folds) on the same batches,
  already decoded, preprocessed and stacked, channels-last, in the same precision, under
  ``torch.inference_mode()``: the floor of any extraction;
* ``featscope``: :func:`featscope.capture.extract_features` on the image folder (reading,
  decoding, preprocessing, hooks, pooling, the features written to one array).

Each is run for float32 and for bfloat16 autocast (``--amp off`` and ``--amp bf16``) at
featscope's default batch size (8 at 224 px on a CPU), and reported as images per second and
the ratio featscope / bare.

Usage::

    python benchmarks/extraction_overhead.py [--repeats 3] [--batch-size N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from amp_accuracy import digits_folder  # the same 1,000 digit images

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: featscope's")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "extraction_overhead.json")
    args = parser.parse_args(argv)

    from featscope import load_model
    from featscope.capture import extract_features
    from featscope.capture.extract import _fold, default_batch_size
    from featscope.capture.hooks import capture
    from featscope.data import image_folder

    root = Path(tempfile.mkdtemp(prefix="featscope-overhead-"))
    try:
        samples = image_folder(digits_folder(root / "digits"))
        handle = load_model("tv:resnet18", input_size=224)
        points = ["backbone"]
        batch_size = args.batch_size or default_batch_size(handle, "cpu")
        images = [handle.preprocess(samples.load(i).convert("RGB")) for i in range(len(samples))]
        batches = [
            torch.stack(images[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
            for i in range(0, len(images), batch_size)
        ]
        # the model featscope runs: its folded copy, channels-last
        model, _, _ = _fold(handle, capture(handle, points), lambda: batches[0][:8])
        model.module.eval().to(memory_format=torch.channels_last)

        def bare(amp: str) -> float:
            dtype = torch.bfloat16 if amp == "bf16" else None
            cast = torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()
            start = time.perf_counter()
            with torch.inference_mode(), cast:
                for x in batches:
                    model.module(x)
            return time.perf_counter() - start

        def featscope(amp: str) -> float:
            start = time.perf_counter()
            extract_features(
                handle, samples, points, amp=amp, batch_size=batch_size, progress=False
            )
            return time.perf_counter() - start

        methods = {
            f"{name} {amp}": (run, amp)
            for amp in ("off", "bf16")
            for name, run in (("bare", bare), ("featscope", featscope))
        }
        for run, amp in methods.values():  # warm-up: first calls allocate and pick kernels
            run(amp)
        times: dict[str, list[float]] = {m: [] for m in methods}
        for r in range(args.repeats):
            order = list(methods)
            order = order[r % len(order) :] + order[: r % len(order)]
            for m in order:
                run, amp = methods[m]
                times[m].append(run(amp))
                print(f"rep {r} {m:<16} {times[m][-1]:6.2f} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = len(samples)
    medians = {m: statistics.median(t) for m, t in times.items()}
    print(f"\n{n} images, batch {batch_size}, load {os.getloadavg()[0]:.1f}")
    print("| precision | bare (img/s) | featscope (img/s) | featscope / bare |")
    print("|---|---:|---:|---:|")
    for amp in ("off", "bf16"):
        b, f = medians[f"bare {amp}"], medians[f"featscope {amp}"]
        print(f"| {amp} | {n / b:.1f} | {n / f:.1f} | {b / f:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["python", *sys.argv]), "times": times, "images": n}
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
