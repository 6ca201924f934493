"""Tiny models and in-memory image samples for the capture tests (imported by them)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from featscope.data.samples import ImageSamples
from featscope.errors import DataError
from featscope.models.handle import ModelHandle, PointRef, Preprocessing

PREPROCESS = Preprocessing(input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0)


class TinyCNN(nn.Module):
    """Conv -> BN -> in-place ReLU -> conv, GAP, linear; plus a module forward() never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(inplace=True),  # overwrites features.1's output: the capture must copy it
            nn.Conv2d(4, 8, 3, stride=2, padding=1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class Neck(nn.Module):
    """Returns a tuple of two feature maps (like FPN levels)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, nn.functional.avg_pool2d(x, 2)


class DictHead(nn.Module):
    """Returns a dict with a tensor, a None and a non-tensor value."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        vec = x.mean(dim=(2, 3))
        return {"emb": vec, "score": self.proj(vec), "aux": None, "tag": "head"}


class MultiNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.neck = Neck()
        self.head = DictHead()

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        level0, _level1 = self.neck(self.stem(x))
        return self.head(level0)


def make_handle(net: nn.Module | None = None, **kwargs: object) -> ModelHandle:
    net = TinyCNN() if net is None else net
    aliases = kwargs.pop(
        "aliases",
        {
            "backbone": PointRef("features"),
            "pre_logits": PointRef("fc", io="input"),
            "logits": PointRef(""),
        },
    )
    return ModelHandle(
        module=net,
        spec="test:tiny",
        family="factory",
        aliases=aliases,
        preprocess=PREPROCESS,
        **kwargs,
    )


def random_image(i: int, size: tuple[int, int] = (20, 18)) -> Image.Image:
    rng = np.random.default_rng(i)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def make_samples(
    n: int, loader: Callable[[int], Image.Image] | None = None, bad: set[int] = frozenset()
) -> ImageSamples:
    def load(i: int) -> Image.Image:
        if i in bad:
            raise DataError(f"cannot read image 'img_{i}.png': file is truncated")
        return random_image(i)

    return ImageSamples(
        ids=tuple(f"img_{i}.png" for i in range(n)),
        labels=np.arange(n, dtype=np.int64) % 3,
        class_names=("a", "b", "c"),
        source="memory",
        loader=loader or load,
    )


def hook_count(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


def batch_of(n: int) -> torch.Tensor:
    return torch.stack([PREPROCESS(random_image(i)) for i in range(n)])
