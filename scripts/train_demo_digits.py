"""Train the built-in demo model (``demo:digits-cnn``) on scikit-learn's 8x8 digits.

Deterministic on CPU: fixed seeds, deterministic algorithms, one thread. Takes well under two
minutes on two cores. Writes a plain state dict (tensors only, loadable with
``torch.load(..., weights_only=True)``) and prints the held-out accuracy and the file's SHA-256.

    python scripts/train_demo_digits.py [--epochs 8] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn

from featscope.models.demo import (
    DIGITS_PREPROCESSING,
    DIGITS_SPLIT_SEED,
    DigitsCNN,
    digits_image,
    digits_split,
)

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "featscope"
    / "models"
    / "weights"
    / "digits_cnn.pt"
)
BACKGROUND = -1.0  # a black pixel after normalisation with mean 0.5, std 0.5
MAX_SHIFT = 2


def make_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits through the model's own preprocessing, as (N,3,32,32) and (N,)."""
    digits = load_digits()
    images = torch.stack([DIGITS_PREPROCESSING(digits_image(img)) for img in digits.images])
    return images, torch.as_tensor(digits.target, dtype=torch.int64)


def random_shift(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to MAX_SHIFT pixels in x and y, filling with background."""
    n, _, h, w = batch.shape
    padded = nn.functional.pad(batch, (MAX_SHIFT,) * 4, value=BACKGROUND)
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (n, 2), generator=generator)
    return torch.stack(
        [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())]
    )


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    predictions = torch.cat([model(chunk).argmax(1) for chunk in images.split(256)])
    return float((predictions == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and batches")
    parser.add_argument("--split-seed", type=int, default=DIGITS_SPLIT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # bit-identical results do not depend on the core count

    images, labels = make_tensors()
    train, test = digits_split(labels.numpy(), seed=args.split_seed)
    train_x, train_y = images[train], labels[train]
    test_x, test_y = images[test], labels[test]

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = -(-len(train_x) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(args.seed)
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for batch in order.split(args.batch_size):
            x = random_shift(train_x[batch], generator)
            loss = loss_fn(model(x), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {total / len(train_x):.4f}  "
            f"test acc {accuracy(model, test_x, test_y):.4f}"
        )

    test_acc = accuracy(model, test_x, test_y)
    state = {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"split seed {args.split_seed}, train {len(train)}, test {len(test)}, "
        f"epochs {args.epochs}, params {n_params}"
    )
    print(f"test accuracy {test_acc:.4f} ({round(test_acc * len(test))}/{len(test)})")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) sha256 {digest}")
    print(f"took {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
