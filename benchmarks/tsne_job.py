"""The whole `featscope tsne` job vs the bare model and the common blog recipe, side by side.

1,000 Fashion-MNIST images (100 per class, written once as PNG files in an image folder so that
decoding is part of the job) through a torchvision ResNet-18 at 224 px. Measured in one run:

* ``bare forward``: the model alone on pre-made input batches (float32, and channels-last), the
  floor for any extraction;
* ``featscope``: ``featscope tsne --model tv:resnet18 --data <folder> --vis-stage pre_logits``
  as a fresh process (import, load, extract, reduce, render, write), with its stage timings;
* ``recipe``: the blog recipe people copy: torchvision ``ImageFolder`` + ``DataLoader`` + a
  forward hook + ``sklearn.manifold.TSNE(init='pca')`` + matplotlib, also as a fresh process.

Weights are random (nothing is downloaded); the arithmetic is the same as for trained weights.

Usage::

    python benchmarks/tsne_job.py [--repeats 3] [--device cpu] [--image-size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from embedding import read_idx  # the idx reader of benchmarks/embedding.py

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "fashion-mnist"
CLASSES = [
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "boot",
]


def make_folder(root: Path, per_class: int = 100) -> Path:
    from PIL import Image

    images = read_idx(DATA / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(DATA / "t10k-labels-idx1-ubyte.gz")
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            Image.fromarray(images[i]).convert("RGB").save(root / name / f"{i:05d}.png")
    return root


def bare_forward(n: int, size: int, batch: int, device: str, channels_last: bool) -> float:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x[:2])  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        done = 0
        while done < n:
            model(x[: min(batch, n - done)])
            done += batch
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return time.perf_counter() - start


RECIPE = textwrap.dedent(
    """
    import sys, time, numpy as np, torch, torchvision
    from torchvision import transforms
    from sklearn.manifold import TSNE
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    root, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.perf_counter()
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                             transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = torchvision.datasets.ImageFolder(root, tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=2)
    model = torchvision.models.resnet18(weights=None).eval()
    feats = []
    model.fc.register_forward_hook(lambda m, i, o: feats.append(i[0].detach().numpy()))
    labels = []
    t1 = time.perf_counter()
    with torch.no_grad():
        for x, y in loader:
            model(x); labels.append(y.numpy())
    t2 = time.perf_counter()
    X = np.concatenate(feats); y = np.concatenate(labels)
    np.save(out + "/feats.npy", X)
    emb = TSNE(init="pca", random_state=0).fit_transform(X)
    t3 = time.perf_counter()
    plt.figure(figsize=(10, 10)); plt.scatter(emb[:, 0], emb[:, 1], c=y, s=15, cmap="tab10")
    plt.savefig(out + "/tsne.png"); t4 = time.perf_counter()
    print({"load": t1 - t0, "extract": t2 - t1, "reduce": t3 - t2, "render": t4 - t3})
    """
)


def timed_process(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    return time.perf_counter() - start, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--skip-recipe", action="store_true")
    args = parser.parse_args()

    rows: dict[str, list[float]] = {}
    stages: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "fmnist")
        for _ in range(args.repeats):
            rows.setdefault("bare forward fp32", []).append(
                bare_forward(1000, args.image_size, 64, args.device, channels_last=False)
            )
            rows.setdefault("bare forward channels-last", []).append(
                bare_forward(1000, args.image_size, 64, args.device, channels_last=True)
            )
            work = Path(tmp) / "runs"
            wall, _ = timed_process(
                [
                    sys.executable,
                    "-c",
                    "import sys, json, featscope; "
                    "from featscope.options import Extraction, Output, Preprocess; "
                    "r = featscope.tsne(model='tv:resnet18', "
                    f"data={str(folder)!r}, points=['pre_logits'], "
                    f"output=Output(work_dir={str(work)!r}), "
                    f"extraction=Extraction(device={args.device!r}, progress=False), "
                    f"preprocess=Preprocess(input_size=({args.image_size}, {args.image_size}))); "
                    "print(json.dumps(r.timings))",
                ]
            )
            rows.setdefault("featscope whole job", []).append(wall)
            if not args.skip_recipe:
                out = Path(tmp) / "recipe"
                out.mkdir(exist_ok=True)
                script = Path(tmp) / "recipe.py"
                script.write_text(RECIPE)
                wall, _ = timed_process(
                    [sys.executable, str(script), str(folder), str(out), str(args.image_size)]
                )
                rows.setdefault("recipe (ImageFolder + sklearn TSNE)", []).append(wall)
            # stage timings of an in-process run (import cost excluded)
            import featscope
            from featscope.options import Extraction, Output, Preprocess

            run = featscope.tsne(
                model="tv:resnet18",
                data=str(folder),
                points=["pre_logits"],
                preprocess=Preprocess(input_size=(args.image_size, args.image_size)),
                extraction=Extraction(device=args.device, progress=False),
                output=Output(work_dir=str(work)),
            )
            stages.append(run.timings)

    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"\n{'what':<40}{'median s':>10}   runs")
    for k, v in rows.items():
        print(f"{k:<40}{med[k]:>10.2f}   {', '.join(f'{x:.2f}' for x in v)}")
    stage_med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    print("featscope stages (median s):", {k: round(v, 2) for k, v in stage_med.items()})
    floor = min(med["bare forward fp32"], med["bare forward channels-last"])
    bound = 1.15 * (floor + stage_med.get("reduce", 0.0)) + 2.0
    print(
        f"target: whole job <= 1.15 x (bare forward {floor:.2f} + t-SNE "
        f"{stage_med.get('reduce', 0):.2f}) + 2 = {bound:.2f} s; "
        f"measured {med['featscope whole job']:.2f} s"
    )
    print(
        f"extraction efficiency: bare forward / featscope extract = "
        f"{floor / stage_med['extract']:.2f}"
    )
    if "recipe (ImageFolder + sklearn TSNE)" in med:
        print(
            f"recipe / featscope = "
            f"{med['recipe (ImageFolder + sklearn TSNE)'] / med['featscope whole job']:.2f}x"
        )
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"tsne_job_{args.device}.json").write_text(
        json.dumps({"runs": rows, "median": med, "stages": stage_med}, indent=2)
    )


if __name__ == "__main__":
    main()
