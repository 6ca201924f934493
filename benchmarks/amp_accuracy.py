"""Do reduced precision and BatchNorm folding change what the features know? 10-NN accuracy.

Issue 18: a default that changes numerics must keep the features' leave-one-out 10-NN accuracy
within 0.003 of float32 on the digits (1,000 images of scikit-learn's digits, 100 per class,
written as PNG files, through torchvision's ResNet-18 at 224 px, random weights from seed 0:
nothing is downloaded) and on a real-weights model (``demo:efficientnet-lite0``, ImageNet
weights, on the 1,280 cue-conflict images of /work/shared/data/cue-conflict, 16 classes).

Every setting of a model runs on the same model object in one process (a random-weight model
built in another process would be another network): float32 as the model is (``--amp off
--no-fold-bn``), float32 with folding, bfloat16 autocast, bfloat16 with folding, and the default
(``--amp auto``: bfloat16 where the CPU has it natively and a check on the first images keeps
it, see featscope.capture.precision; folding on). For each: the features' 10-NN accuracy, its
change from float32, the largest feature difference relative to the largest feature, and the
extraction time.

Usage::

    python benchmarks/amp_accuracy.py [--out FILE] [--cue-conflict DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
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


SETTINGS = {
    "fp32": {"amp": "off", "fold_bn": False},
    "fp32-folded": {"amp": "off", "fold_bn": True},
    "bf16": {"amp": "bf16", "fold_bn": False},
    "bf16-folded": {"amp": "bf16", "fold_bn": True},
    "default (auto, folded)": {"amp": "auto", "fold_bn": True},
}


def compare_settings(model: str, data: Path, input_size: int | None) -> list[dict]:
    """Extract the features of ``data`` once per setting, with one model; compare to float32."""
    import numpy as np

    from featscope import load_model
    from featscope.analysis.metrics import knn_accuracy
    from featscope.capture.feature_sets import extract_feature_sets
    from featscope.data import image_folder, select_samples
    from featscope.options import Extraction, Selection

    checks: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: checks.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(lambda record: record.getMessage().startswith("amp auto"))
    logging.getLogger("featscope.capture.extract").addHandler(handler)
    logging.getLogger("featscope").setLevel(logging.INFO)
    handle = load_model(model, input_size=input_size)
    samples = select_samples(image_folder(data), Selection(max_num_class=1000, max_num_samples=0))
    rows, reference = [], None
    for name, options in SETTINGS.items():
        extraction = Extraction(progress=False, **options)
        start = time.perf_counter()
        (features,) = extract_feature_sets(handle, samples, ["pre_logits"], extraction).feature_sets
        seconds = time.perf_counter() - start
        X = np.asarray(features.features, dtype=np.float64)
        accuracy = knn_accuracy(X, features.labels, k=10)
        if reference is None:
            reference = (X, accuracy)
        scale = float(np.abs(reference[0]).max()) or 1.0
        rows.append({
            "model": model, "data": str(data), "setting": name, "samples": len(X),
            "knn_accuracy_features": accuracy, "change": accuracy - reference[1],
            "max_relative_difference": float(np.abs(X - reference[0]).max() / scale),
            "extraction_seconds": seconds, "precision_check": checks.pop() if checks else None,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cue-conflict", type=Path, default=Path("/work/shared/data/cue-conflict"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "amp_accuracy.json")
    args = parser.parse_args(argv)
    folder = digits_folder(Path(tempfile.mkdtemp(prefix="featscope-digits-")))
    report = {"command": " ".join(["python", *sys.argv]), "load": os.getloadavg(), "runs": []}
    try:
        report["runs"] += compare_settings("tv:resnet18", folder, 224)
        report["runs"] += compare_settings("demo:efficientnet-lite0", args.cue_conflict, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n| model | setting | 10-NN acc. | change | max rel. diff. | extraction (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in report["runs"]:
        print(
            f"| {r['model']} | {r['setting']} | {r['knn_accuracy_features']:.4f} | "
            f"{r['change']:+.4f} | {r['max_relative_difference']:.1e} | "
            f"{r['extraction_seconds']:.1f} |"
        )
    for r in report["runs"]:
        if r["precision_check"]:
            print(f"{r['model']}: {r['precision_check']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
