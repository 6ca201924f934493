"""The image job side by side: MMPretrain's own ``vis_tsne.py`` vs ``featscope tsne``, interleaved.

Issue 18's job: 1,000 digit images (scikit-learn's digits, 100 per class, written once as PNG
files in class folders, so decoding is part of the job) through ResNet-18 at 224 px on the CPU,
features of the backbone, a 2-D t-SNE, a figure. Weights are random on both sides (nothing is
downloaded; the arithmetic is that of trained weights).

* ``mmpretrain``: MMPretrain 1.2.0's ``tools/visualization/vis_tsne.py`` (shipped in the wheel
  at ``mmpretrain/.mim/tools/visualization/``), run from ``mmpretrain/.mim`` as
  ``vis_tsne.py configs/resnet/resnet18_8xb32_in1k.py --test-cfg <cfg> --device cpu
  --work-dir <tmp>``, where ``<cfg>``'s ``test_dataloader`` is a ``CustomDataset`` over the
  folder (LoadImageFromFile, Resize to 224, PackInputs), batch 32, 2 workers;
* ``featscope``: ``featscope tsne --model tv:resnet18 --input-size 224 --data <folder>
  --vis-stage backbone --work-dir <tmp>`` (its defaults: mixed precision where the CPU has it);
* ``featscope-fp32``: the same with ``--amp off`` (exact float32).

Each is a fresh process, timed from start to exit; repeat r runs all three in an order rotated
by r, and the 1-minute load average before each run is recorded. MMPretrain runs in its own
virtual environment (it needs numpy < 2 and mmcv), built by ``--setup`` with the recipe of
issue 18::

    python -m venv VENV
    VENV/bin/pip install torch==2.14.1 torchvision==0.29.1 "numpy<2" "scikit-learn<1.7" \\
        "pandas<2" "matplotlib<3.10"
    VENV/bin/pip install mmengine==0.10.7 mmcv-lite==2.2.0 mmpretrain==1.2.0
    VENV/bin/pip install "numpy<2" "pandas<2"   # the second step pulls numpy 2 back in

Usage::

    python benchmarks/mmpretrain_job.py --venv VENV [--setup] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amp_accuracy import digits_folder  # the same 1,000 digit images

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
RECIPE = (
    ["torch==2.14.1", "torchvision==0.29.1", "numpy<2", "scikit-learn<1.7", "pandas<2",
     "matplotlib<3.10"],
    ["mmengine==0.10.7", "mmcv-lite==2.2.0", "mmpretrain==1.2.0"],
    ["numpy<2", "pandas<2"],
)  # fmt: skip
TEST_CFG = """
test_dataloader = dict(
    batch_size=32,
    num_workers=2,
    dataset=dict(
        type="CustomDataset",
        data_root={root!r},
        pipeline=[
            dict(type="LoadImageFromFile"),
            dict(type="Resize", scale=(224, 224)),
            dict(type="PackInputs"),
        ],
    ),
    sampler=dict(type="DefaultSampler", shuffle=False),
)
"""


def setup(venv: Path) -> None:
    """Build MMPretrain's virtual environment with issue 18's recipe."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for step in RECIPE:
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *step], check=True)


def mim_dir(venv: Path) -> Path:
    """``mmpretrain/.mim`` of the venv (configs and tools ship there)."""
    code = "import mmpretrain, os; print(os.path.dirname(mmpretrain.__file__))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip()) / ".mim"


def commands(method: str, venv: Path, folder: Path, cfg: Path, work: Path) -> tuple[list, Path]:
    """The command line of one method and the folder it runs in."""
    if method == "mmpretrain":
        mim = mim_dir(venv)
        return [
            str(venv / "bin" / "python"), "tools/visualization/vis_tsne.py",
            "configs/resnet/resnet18_8xb32_in1k.py", "--test-cfg", str(cfg), "--device", "cpu",
            "--work-dir", str(work),
        ], mim  # fmt: skip
    command = [
        sys.executable, "-m", "featscope", "tsne", "--model", "tv:resnet18", "--input-size",
        "224", "--data", str(folder), "--vis-stage", "backbone", "--work-dir", str(work),
    ]  # fmt: skip
    if method == "featscope-fp32":
        command += ["--amp", "off"]
    return command, HERE.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, required=True, help="MMPretrain's virtual env")
    parser.add_argument("--setup", action="store_true", help="build the venv first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="mmpretrain,featscope,featscope-fp32")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "mmpretrain_job.json")
    args = parser.parse_args(argv)
    if args.setup:
        setup(args.venv)
    root = Path(tempfile.mkdtemp(prefix="featscope-mmjob-"))
    try:
        runs = _interleaved(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    medians = {m: statistics.median(e["seconds"] for e in rs) for m, rs in runs.items()}
    print("\n| method | runs (s) | load before | median (s) | MMPretrain / this |")
    print("|---|---|---|---:|---:|")
    for m, rs in runs.items():
        ratio = medians["mmpretrain"] / medians[m] if "mmpretrain" in medians else float("nan")
        times = ", ".join(f"{e['seconds']:.1f}" for e in rs)
        loads = ", ".join(f"{e['load_before']:.1f}" for e in rs)
        print(f"| {m} | {times} | {loads} | {medians[m]:.1f} | {ratio:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(["python", *sys.argv]), "runs": runs, "medians": medians}
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {args.out}")


def _interleaved(args: argparse.Namespace, root: Path) -> dict[str, list[dict]]:
    """Run every method ``args.repeats`` times, in an order rotated by the repeat."""
    folder = digits_folder(root / "digits")
    cfg = root / "test_cfg.py"
    cfg.write_text(TEST_CFG.format(root=str(folder)))
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    methods = [m for m in args.methods.split(",") if m]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for r in range(args.repeats):
        for method in methods[r % len(methods) :] + methods[: r % len(methods)]:
            with tempfile.TemporaryDirectory(dir=root) as work:
                command, cwd = commands(method, args.venv, folder, cfg, Path(work))
                load = os.getloadavg()[0]
                start = time.perf_counter()
                done = subprocess.run(
                    command, cwd=cwd, env=env, capture_output=True, text=True, check=False
                )
                seconds = time.perf_counter() - start
            if done.returncode:
                raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
            runs[method].append({"seconds": seconds, "load_before": load})
            print(f"rep {r} {method:<15} {seconds:7.1f} s  load {load:.1f}", flush=True)
    return runs


if __name__ == "__main__":
    main()
