"""Extraction at scale: data-parallel throughput (1 vs K processes) and peak memory of the store.

Two measurements (see docs/scale.md for the table and the machine):

``extract``: run under torchrun; every rank extracts its shard of N cue-conflict images with
``demo:efficientnet-lite0`` (224 px) and rank 0 prints the wall time between two barriers::

    torchrun --standalone --nproc_per_node=1 benchmarks/extraction_scale.py extract --images 512
    torchrun --standalone --nproc_per_node=2 benchmarks/extraction_scale.py extract --images 512

``memory``: write N x D float32 features in batches, either into RAM (the default loop) or
through :class:`featscope.capture.store.FeatureStore` (``--cache-dir``), each in a fresh process,
and report the process's peak resident memory (``ru_maxrss``)::

    python benchmarks/extraction_scale.py memory --n 200000 --dim 2048

``all`` runs both (the torchrun runs as subprocesses) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = "/work/shared/data/cue-conflict"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def extract(n: int, batch_size: int, model: str) -> None:
    """Extract under torchrun and print one JSON line from rank 0."""
    import numpy as np
    import torch
    import torch.distributed as dist

    from featscope.capture.distributed import extract_features_distributed, process_group
    from featscope.capture.points import resolve_points
    from featscope.data import load_samples
    from featscope.models import load_model

    handle = load_model(model)
    samples = load_samples(DATA)
    samples = samples.subset(np.arange(min(n, len(samples))))
    points = resolve_points(handle, ["pre_logits"])
    with process_group("cpu") as (rank, world):
        # warm-up: one batch, so that lazy initialisation is not timed
        extract_features_distributed(
            handle, samples.subset(np.arange(world * batch_size)), points,
            batch_size=batch_size, num_workers=0, progress=False,
        )  # fmt: skip
        dist.barrier()
        start = time.perf_counter()
        out = extract_features_distributed(
            handle, samples, points, batch_size=batch_size, num_workers=0, progress=False
        )
        dist.barrier()
        seconds = time.perf_counter() - start
        if rank == 0:
            assert out is not None
            print(
                json.dumps(
                    {
                        "processes": world,
                        "threads_per_process": torch.get_num_threads(),
                        "images": len(samples),
                        "seconds": round(seconds, 2),
                        "images_per_s": round(len(samples) / seconds, 1),
                        "shape": list(out.features["pre_logits"].shape),
                    }
                ),
                flush=True,
            )


def memory(n: int, dim: int, batch: int, mode: str) -> None:
    """Write n x dim float32 features in batches; print the peak RSS as one JSON line."""
    import numpy as np
    import torch

    from featscope.capture.extract import _Accumulator
    from featscope.capture.store import FeatureStore

    vectors = torch.randn(batch, dim)
    base = _peak_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=os.environ.get("FEATSCOPE_BENCH_TMP")) as tmp:
        if mode == "ram":
            sink = _Accumulator(n)
        else:
            stamp = {"n_samples": n, "benchmark": True}
            sink = FeatureStore(Path(tmp) / "store", stamp, batch)
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            sink.add({"pre_logits": (vectors[: hi - lo], "none")}, np.arange(lo, hi))
            sink.commit(hi - lo)
        features, _, _kept = sink.result()
        checksum = float(features["pre_logits"][-1].sum())
        sink.close()
        del features, sink
    print(
        json.dumps(
            {
                "mode": mode,
                "n": n,
                "dim": dim,
                "feature_mb": round(n * dim * 4 / 2**20),
                "peak_rss_mb": round(_peak_mb()),
                "rss_before_mb": round(base),
                "seconds": round(time.perf_counter() - start, 1),
                "checksum_finite": bool(np.isfinite(checksum)),
            }
        ),
        flush=True,
    )


def _run_json(command: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


def run_all(args: argparse.Namespace) -> None:
    """Run every measurement in fresh processes and print a markdown table."""
    me = str(Path(__file__).resolve())
    rows = []
    for k in args.nprocs:
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command = [*torchrun, f"--nproc_per_node={k}", me, "extract", "--images", str(args.n)]
        rows.append(_run_json([*command, "--batch-size", str(args.batch_size)]))
        print(rows[-1], file=sys.stderr, flush=True)
    print("| processes | threads each | images | seconds | images/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['processes']} | {r['threads_per_process']} | {r['images']} | "
            f"{r['seconds']} | {r['images_per_s']} |"
        )
    mem = []
    for mode in ("ram", "store"):
        command = [sys.executable, me, "memory", "--n", str(args.mem_n), "--dim", str(args.dim)]
        mem.append(_run_json([*command, "--mode", mode]))
        print(mem[-1], file=sys.stderr, flush=True)
    print()
    print("| features held | N x D | features (MB) | peak RSS (MB) | seconds |")
    print("|---|---|---|---|---|")
    for r in mem:
        where = "in RAM (default)" if r["mode"] == "ram" else "FeatureStore (--cache-dir)"
        print(
            f"| {where} | {r['n']:,} x {r['dim']} | {r['feature_mb']} | "
            f"{r['peak_rss_mb']} | {r['seconds']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("extract")
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--model", default="demo:efficientnet-lite0")
    p = sub.add_parser("memory")
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--mode", choices=["ram", "store"], default="store")
    p = sub.add_parser("all")
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--mem-n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=2048)
    args = parser.parse_args()
    if args.what == "extract":
        extract(args.images, args.batch_size, args.model)
    elif args.what == "memory":
        memory(args.n, args.dim, args.batch, args.mode)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
