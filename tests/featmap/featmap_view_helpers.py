"""Tiny models and images for the feature-map view tests (imported by them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from featscope.models.handle import ModelHandle, PointRef, Preprocessing

PREPROCESS = Preprocessing(input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0)


class Levels(nn.Module):
    """A two-level 'FPN': the input and its 2x2 average pool, as a tuple or a dict."""

    def __init__(self, as_dict: bool = False, reverse: bool = False) -> None:
        super().__init__()
        self.as_dict = as_dict
        self.reverse = reverse

    def forward(self, x: torch.Tensor):
        levels = {"p3": x, "p4": nn.functional.avg_pool2d(x, 2)}
        if self.reverse:  # same names, other order: pairing must go by name
            levels = {"p4": levels["p4"], "p3": levels["p3"]}
        return levels if self.as_dict else tuple(levels.values())


class TinyNet(nn.Module):
    """conv (4 ch, 16x16) -> conv stride 2 (6 ch, 8x8) -> neck levels -> linear head."""

    def __init__(self, as_dict: bool = False, reverse: bool = False, width: int = 6) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.stage = nn.Conv2d(4, width, 3, stride=2, padding=1)
        self.neck = Levels(as_dict, reverse)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.neck(self.stage(torch.relu(self.stem(x))))
        last = list(levels.values() if isinstance(levels, dict) else levels)[-1]
        return self.head(last.mean(dim=(2, 3)))


def tiny_handle(seed: int = 0, **kwargs) -> ModelHandle:
    """A TinyNet handle with fixed weights and a 16x16, no-crop preprocessing."""
    torch.manual_seed(seed)
    return ModelHandle(
        TinyNet(**kwargs).eval(),
        spec=f"tiny-{seed}",
        family="factory",
        preprocess=PREPROCESS,
        aliases={"neck": PointRef("neck"), "logits": PointRef("")},
    )


def photo(seed: int = 0, size: tuple[int, int] = (24, 32)) -> Image.Image:
    """A random RGB picture, (height, width) = size."""
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8))


def save_photo(path: Path, seed: int = 0, size: tuple[int, int] = (24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    photo(seed, size).save(path)
    return path
