"""Train the built-in masked autoencoder (``demo:mae``) on Fashion-MNIST.

Deterministic on CPU (fixed seeds, one thread): a few minutes on one core. Pixel targets (no
norm-pix), MSE on the masked patches only, 75 % of the 7x7 patches masked, as in the MAE
paper. Writes ``{"model": state_dict (float16), "samples": uint8 (8, 28, 28),
"sample_indices": int64 (8,)}`` (loadable with ``torch.load(..., weights_only=True)``), then
measures on held-out test images the masked-patch MSE of the model and of filling each masked
patch with the image's mean colour (pixels on the 0-1 scale), with featscope's own seeded masks.

    python scripts/train_demo_mae.py [--steps 2200] [--data DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from featscope.models.mim.mae import DEMO_MAE_CONFIG, MaskedAutoencoderViT
from featscope.models.mim.masks import random_masks
from featscope.models.mim.patches import patchify

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "featscope" / "models" / "weights" / "demo_mae.pt"
DEFAULT_DATA = Path("/work/shared/data/fashion-mnist")
MASK_RATIO = 0.75
PATCH = DEMO_MAE_CONFIG.patch_size
GRID = (DEMO_MAE_CONFIG.img_size // PATCH,) * 2
#: Test images shipped as the default input of ``featscope recon`` (positions in the test set).
SAMPLE_INDICES = (0, 1, 2, 3, 4, 8, 11, 18)
EVAL_IMAGES = 2000


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped idx3 image file into a uint8 (N, 28, 28) array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def to_input(gray: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) grey -> (N, 3, 28, 28) normalised with mean 0.5, std 0.5."""
    x = torch.from_numpy(gray.astype(np.float32) / 255.0)
    return ((x - 0.5) / 0.5).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def train(images: np.ndarray, steps: int, batch: int, lr: float) -> MaskedAutoencoderViT:
    """Train with AdamW, linear warm-up then cosine decay, random flips as augmentation."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = MaskedAutoencoderViT(DEMO_MAE_CONFIG)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    warmup = max(1, steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    data = to_input(images)
    length = GRID[0] * GRID[1]
    hidden = length - int(length * (1 - MASK_RATIO))
    model.train()
    start = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=generator)
        x = data[idx]
        flip = torch.rand(batch, generator=generator) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        noise = torch.rand(batch, length, generator=generator)
        mask = torch.zeros(batch, length, dtype=torch.bool)
        mask.scatter_(1, noise.argsort(dim=1)[:, :hidden], True)
        pred = model.forward_masked(x, mask)
        target = patchify(x, PATCH)
        loss = ((pred - target) ** 2).mean(dim=-1)
        loss = (loss * mask).sum() / mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 250 == 0 or step == steps - 1:
            print(
                f"step {step:5d}  loss {loss.item():.4f}  {time.time() - start:6.1f}s", flush=True
            )
    return model.eval()


@torch.no_grad()
def evaluate(model: MaskedAutoencoderViT, images: np.ndarray) -> tuple[float, float]:
    """Masked-patch MSE (0-1 pixels) of the model and of the mean-colour fill, seed-0 masks."""
    x = to_input(images)
    masks = torch.from_numpy(random_masks(len(images), GRID, MASK_RATIO, seed=0))
    mask = masks.reshape(len(images), -1)
    original = patchify(x * 0.5 + 0.5, PATCH)
    pred = torch.cat(
        [model.forward_masked(x[i : i + 500], mask[i : i + 500]) for i in range(0, len(x), 500)]
    )
    recon = (pred * 0.5 + 0.5).clamp(0, 1)
    fill = original.mean(dim=(1, 2), keepdim=True).expand_as(original)
    sel = mask.unsqueeze(-1).expand_as(original)
    model_mse = ((recon - original) ** 2)[sel].mean().item()
    fill_mse = ((fill - original) ** 2)[sel].mean().item()
    return model_mse, fill_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_images = read_idx(args.data / "train-images-idx3-ubyte.gz")
    test_images = read_idx(args.data / "t10k-images-idx3-ubyte.gz")
    model = train(train_images, args.steps, args.batch, args.lr)
    model_mse, fill_mse = evaluate(model, test_images[:EVAL_IMAGES])
    print(f"held-out masked-patch MSE ({EVAL_IMAGES} test images, ratio {MASK_RATIO}, seed 0):")
    print(f"  demo:mae          {model_mse:.5f}")
    print(f"  mean-colour fill  {fill_mse:.5f}")
    state = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()}
    indices = list(SAMPLE_INDICES)
    payload = {
        "model": state,
        "samples": torch.from_numpy(test_images[indices].copy()),
        "sample_indices": torch.tensor(indices, dtype=torch.int64),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, args.out)
    data = args.out.read_bytes()
    print(f"wrote {args.out} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    main()
