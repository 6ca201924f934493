"""Small images and transforms shared by the browse tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (48, 64), value: int | None = None) -> Path:
    """Write a seeded random RGB PNG of ``(height, width)`` (or one flat ``value``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = size
    if value is None:
        rng = np.random.default_rng(len(str(path)))
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    else:
        pixels = np.full((height, width, 3), value, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def class_folder(root: Path) -> Path:
    """Two classes, each holding an image named ``a.png`` (the reference overwrote one)."""
    write_image(root / "cat" / "a.png", value=30)
    write_image(root / "cat" / "b.png")
    write_image(root / "dog" / "a.png", value=220)
    return root


def tiny_pipeline():
    """A torchvision train chain on small images: crop, flip, jitter, to-tensor, normalise."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.RandomResizedCrop(32),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.4, 0.4, 0.4),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


class TwoViews:
    """A contrastive augmentation: two differently cropped views of one image."""

    def __init__(self) -> None:
        from torchvision import transforms as T

        self.first = T.Compose([T.CenterCrop(24), T.ToTensor()])
        self.second = T.Compose([T.RandomResizedCrop(24, scale=(0.2, 0.5)), T.ToTensor()])

    def __call__(self, image):
        return [self.first(image), self.second(image)]


def mask_pipeline(image):
    """A SimMIM-style transform: the image tensor and a 4x4 patch mask (left half masked)."""
    import torch
    from torchvision.transforms import functional as F

    tensor = F.to_tensor(F.center_crop(image, [32, 32]))
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:, :2] = True
    return tensor, mask
