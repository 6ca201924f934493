"""Does bfloat16 autocast change what the features know? 10-NN accuracy, fp32 vs bf16.

Issue 18: a default that changes numerics must keep the features' leave-one-out 10-NN accuracy
within 0.003 of float32 on the digits (1,000 images of scikit-learn's digits, 100 per class,
written as PNG files, through torchvision's ResNet-18 at 224 px, random weights: nothing is
downloaded) and on a real-weights model (``demo:efficientnet-lite0``, ImageNet weights, on the
1,280 cue-conflict images of /work/shared/data/cue-conflict, 16 classes).

Each pair runs ``featscope tsne --method pca`` (the metrics are those of the features; PCA
keeps the map cheap) once with ``--amp off`` and once with ``--amp bf16`` and reports
``knn_accuracy_features`` from the run folder's metrics.

Usage::

    python benchmarks/amp_accuracy.py [--out FILE] [--cue-conflict DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def digits_folder(root: Path, per_class: int = 100) -> Path:
    """Write ``per_class`` of scikit-learn's digits per class as RGB PNG files, class folders."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            pixels = (images[i].reshape(8, 8) * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).convert("RGB").save(root / str(c) / f"{i:04d}.png")
    return root


def knn_features(model: str, data: Path, amp: str, extra: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="featscope-amp-") as tmp:
        command = [
            sys.executable, "-m", "featscope", "tsne", "--model", model, "--data", str(data),
            "--amp", amp, "--method", "pca", "--max-num-samples", "100000", "--no-html",
            "--work-dir", tmp, "--quiet", *extra,
        ]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        (metrics,) = Path(tmp).glob("tsne_*/metrics.json")
        values = json.loads(metrics.read_text())
    return {"seconds": seconds, "metrics": values}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cue-conflict", type=Path, default=Path("/work/shared/data/cue-conflict"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "amp_accuracy.json")
    args = parser.parse_args(argv)
    folder = digits_folder(Path(tempfile.mkdtemp(prefix="featscope-digits-")))
    pairs = [
        ("tv:resnet18", folder, ["--input-size", "224"]),
        ("demo:efficientnet-lite0", args.cue_conflict, []),
    ]
    report = {"command": " ".join(["python", *sys.argv]), "load": os.getloadavg(), "runs": []}
    try:
        for model, data, extra in pairs:
            for amp in ("off", "bf16"):
                entry = {"model": model, "data": str(data), "amp": amp}
                entry.update(knn_features(model, data, amp, extra))
                report["runs"].append(entry)
                print(json.dumps(entry), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
