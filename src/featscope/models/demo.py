"""The built-in demo model: a small CNN trained on scikit-learn's 8x8 digits.

``featscope tsne`` with no ``--model`` runs on this model, so a new user sees a real embedding
map without downloading anything. The weights ship in the package
(``featscope/models/weights/digits_cnn.pt``, a plain state dict that loads with
``torch.load(..., weights_only=True)``).

Training (``scripts/train_demo_digits.py``, deterministic, CPU, one thread): images from
:func:`sklearn.datasets.load_digits` turned into RGB pictures by :func:`digits_image`, split
80/20 stratified with seed ``DIGITS_SPLIT_SEED = 0`` (:func:`digits_split`: 1,437 train, 360
test), preprocessed by :data:`DIGITS_PREPROCESSING` (8x8 -> 32x32 bilinear, normalised to
[-1, 1]); 8 epochs of Adam (max lr 3e-3, one-cycle schedule, batch 64, weight decay 1e-4) with
random shifts of +-2 input pixels; ``torch.manual_seed(0)``. Measured accuracy on the 360
held-out images: 0.9944 (358/360). The shipped file (418,613 bytes) has SHA-256
``b177143f4e2b3a87ce38d978d9fdc6e9b37e8acde75d9849e3987f98f81945d4``.

This module imports torch at the top: it is only imported lazily, by the model loader.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import numpy as np
import torch
from PIL import Image
from torch import nn

from featscope.errors import ModelSpecError
from featscope.models.handle import ModelHandle, PointRef, Preprocessing

__all__ = [
    "DEMO_MODELS",
    "DIGITS_PREPROCESSING",
    "DIGITS_SPLIT_SEED",
    "DigitsCNN",
    "digits_image",
    "digits_split",
    "load_demo",
]

#: Names accepted after ``demo:`` (``"digits"`` is also accepted as a short name).
DEMO_MODELS = ("digits-cnn",)

_NAME_ALIASES = {"digits-cnn": "digits-cnn", "digits": "digits-cnn"}

#: The input transform the digits model was trained with (8x8 digits upscaled to 32x32).
DIGITS_PREPROCESSING = Preprocessing(
    input_size=(32, 32),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    crop_pct=1.0,
    interpolation="bilinear",
)

#: Seed of the stratified 80/20 train/test split the shipped weights were trained on.
DIGITS_SPLIT_SEED = 0

_WEIGHTS = "digits_cnn.pt"


def digits_image(pixels: np.ndarray) -> Image.Image:
    """Turn one ``load_digits`` image (values 0..16) into the RGB picture the model sees.

    The rule shared with ``featscope.data``: ``uint8 = round(pixels * 255 / 16)``, mode ``"L"``
    converted to ``"RGB"``.

    Parameters
    ----------
    pixels : numpy.ndarray
        ``(8, 8)`` array with values in ``[0, 16]``.

    Returns
    -------
    PIL.Image.Image
        An 8x8 RGB image.
    """
    gray = np.round(np.asarray(pixels, dtype=np.float64) * 255.0 / 16.0).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


def digits_split(
    labels: np.ndarray, seed: int = DIGITS_SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample positions 80/20 into train and test, stratified by label.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(N,)`` class labels (the ``target`` of ``load_digits``).
    seed : int, optional
        Seed of the split; the shipped weights used :data:`DIGITS_SPLIT_SEED`.

    Returns
    -------
    train, test : numpy.ndarray
        Sorted int64 positions of the training and held-out samples.
    """
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    train, test = train_test_split(
        positions, test_size=0.2, random_state=seed, stratify=np.asarray(labels)
    )
    return np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    # conv-bn-relu, then halve the resolution (32 -> 16 -> 8 -> 4 over three stages)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class _Head(nn.Module):
    """Classifier head: ``pre_logits`` (128 -> 64, ReLU) then ``fc`` (64 -> 10)."""

    def __init__(self, in_features: int = 128, hidden: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.pre_logits = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, in_features)`` pooled features to ``(N, num_classes)`` logits."""
        return self.fc(self.pre_logits(x))


class DigitsCNN(nn.Module):
    """A small CNN for 32x32 RGB digits, laid out like an OpenMMLab classifier.

    ``backbone`` (three conv-bn-relu-maxpool stages, 32/64/128 channels) gives
    ``(N, 128, 4, 4)``; ``neck`` (global average pooling) gives ``(N, 128)``;
    ``head.pre_logits`` gives ``(N, 64)``; ``head.fc`` gives the ``(N, 10)`` logits.
    About 103k parameters.

    Parameters
    ----------
    num_classes : int, optional
        Number of output classes.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.backbone = nn.Sequential(_stage(3, 32), _stage(32, 64), _stage(64, 128))
        self.neck = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = _Head(128, 64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(N, num_classes)`` logits for ``(N, 3, 32, 32)`` normalised images."""
        return self.head(self.neck(self.backbone(x)))


def _canonical_name(name: str) -> str:
    key = name.strip().lower()
    if key not in _NAME_ALIASES:
        raise ModelSpecError(
            f"unknown demo model {name!r} in `demo:{name}`: the built-in demo models are "
            f"{', '.join(DEMO_MODELS)}; pass e.g. `demo:{DEMO_MODELS[0]}`"
        )
    return _NAME_ALIASES[key]


def load_demo(name: str) -> ModelHandle:
    """Build a built-in demo model with its shipped weights.

    Parameters
    ----------
    name : str
        The part of the spec after ``demo:``; one of :data:`DEMO_MODELS` (``"digits"`` is
        accepted for ``"digits-cnn"``).

    Returns
    -------
    ModelHandle
        The model in eval mode, its preprocessing and the aliases ``backbone``, ``neck``,
        ``pre_logits`` and ``logits``.

    Raises
    ------
    ModelSpecError
        When ``name`` is not a demo model.
    """
    _canonical_name(name)  # only digits-cnn exists today
    data = resources.files(__package__).joinpath("weights", _WEIGHTS).read_bytes()
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    module = DigitsCNN()
    module.load_state_dict(state, strict=True)
    module.eval()
    return ModelHandle(
        module,
        spec="demo:digits-cnn",
        family="demo",
        preprocess=DIGITS_PREPROCESSING,
        aliases={
            "backbone": PointRef("backbone"),
            "neck": PointRef("neck"),
            "pre_logits": PointRef("head.pre_logits"),
            "logits": PointRef(""),
        },
        checkpoint=None,
        checkpoint_sha256=hashlib.sha256(data).hexdigest(),
    )
