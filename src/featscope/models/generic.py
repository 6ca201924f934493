"""Find the ``backbone``/``neck``/``pre_logits``/``logits`` aliases of an arbitrary module.

One resolver, shared by the torchvision adapter, ``py:`` factories and modules passed directly
to :func:`featscope.models.load_model`. It reads the module's structure only (no forward pass):

- OpenMMLab style (children ``backbone`` and ``neck``/``head``): ``backbone`` and ``neck`` are
  those modules' outputs, ``pre_logits`` the input of the last ``nn.Linear`` inside ``head``;
- torchvision ViT (``encoder`` plus a ``class_token``): ``backbone`` is the encoder's
  ``(N, L, C)`` tokens, with one class token;
- CNNs: ``backbone`` is the output of ``features`` (VGG, MobileNet, EfficientNet, ConvNeXt) or
  else the input of ``avgpool`` (ResNet, RegNet); ``neck`` is the output of ``avgpool``;
- ``pre_logits`` is the input of the last ``nn.Linear`` (``fc``, ``classifier.<last>``,
  ``heads.head``), and ``logits`` the model's own output.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from featscope.models.handle import PointRef
from featscope.models.preprocessing import ASSUMED, Preprocessing

if TYPE_CHECKING:
    import torch

__all__ = ["ModuleLayout", "input_channels", "resolve_generic", "with_model_channels"]


@dataclass(frozen=True)
class ModuleLayout:
    """The alias catalog and token layout found in a module.

    Attributes
    ----------
    aliases : dict of str to PointRef
        The aliases that could be resolved.
    num_prefix_tokens : int
        Class tokens at the start of token outputs (1 for torchvision ViTs).
    patch_grid : tuple of int or None
        ``(h, w)`` patch grid of a vision transformer.
    """

    aliases: dict[str, PointRef] = field(default_factory=dict)
    num_prefix_tokens: int = 0
    patch_grid: tuple[int, int] | None = None


def resolve_generic(module: torch.nn.Module) -> ModuleLayout:
    """Resolve the capture-point aliases of a module from its structure.

    Parameters
    ----------
    module : torch.nn.Module
        Any model (see the module docstring for the layouts recognised).

    Returns
    -------
    ModuleLayout
        The aliases found (``logits`` always), the class-token count and the patch grid.
    """
    from torch import nn

    children = dict(module.named_children())
    aliases: dict[str, PointRef] = {}
    num_prefix_tokens = 0
    patch_grid = None
    classifier_scope: str | None = ""
    if "backbone" in children and ("head" in children or "neck" in children):
        aliases["backbone"] = PointRef("backbone")
        if isinstance(children.get("neck"), nn.Module):
            aliases["neck"] = PointRef("neck")
        # the classifier lives in the head; a Linear inside the backbone is not pre-logits
        classifier_scope = "head" if "head" in children else None
    elif "encoder" in children and hasattr(module, "class_token"):
        aliases["backbone"] = PointRef("encoder")
        num_prefix_tokens = 1
        patch_grid = _vit_grid(module)
    else:
        if "features" in children:
            aliases["backbone"] = PointRef("features")
        elif "avgpool" in children:
            aliases["backbone"] = PointRef("avgpool", io="input")
        if "avgpool" in children:
            aliases["neck"] = PointRef("avgpool")
    classifier = None if classifier_scope is None else _last_linear(module, classifier_scope)
    if classifier:
        aliases["pre_logits"] = PointRef(classifier, io="input")
    aliases["logits"] = PointRef("")
    return ModuleLayout(aliases, num_prefix_tokens, patch_grid)


def _last_linear(module: torch.nn.Module, scope: str) -> str | None:
    """Path of the last ``nn.Linear`` registered (under ``scope`` when given), or ``None``."""
    from torch import nn

    found = None
    for name, sub in module.named_modules():
        in_scope = not scope or name == scope or name.startswith(scope + ".")
        if name and in_scope and isinstance(sub, nn.Linear):
            found = name
    return found


def _vit_grid(module: torch.nn.Module) -> tuple[int, int] | None:
    image_size = getattr(module, "image_size", None)
    patch_size = getattr(module, "patch_size", None)
    if isinstance(image_size, int) and isinstance(patch_size, int) and patch_size > 0:
        return (image_size // patch_size, image_size // patch_size)
    return None


def input_channels(module: torch.nn.Module) -> tuple[int, str] | None:
    """Read a model's input channels from its first convolution.

    Parameters
    ----------
    module : torch.nn.Module
        Any model, TorchScript archives included.

    Returns
    -------
    (int, str) or None
        The ``in_channels`` of the first convolution registered (``named_modules`` order, which
        is the stem for the models of timm, torchvision, Hugging Face and OpenMMLab) and its
        path; ``None`` when the model has no convolution (e.g. an MLP). A traced TorchScript
        convolution keeps no ``in_channels``: its weight's second dimension is read instead.
    """
    for name, sub in module.named_modules():
        kind = getattr(sub, "original_name", None) or type(sub).__name__
        if not kind.startswith("Conv") or kind.startswith("ConvTranspose"):
            continue
        channels = getattr(sub, "in_channels", None)
        if isinstance(channels, int):
            return channels, name
        weight = getattr(sub, "weight", None)
        if weight is not None and getattr(weight, "ndim", 0) >= 3:
            # (out, in / groups, *kernel): a stem convolution has one group
            return int(weight.shape[1]), name
    return None


def with_model_channels(preprocess: Preprocessing, module: torch.nn.Module) -> Preprocessing:
    """Set ``preprocess.channels`` from the model's first convolution (:func:`input_channels`).

    Parameters
    ----------
    preprocess : Preprocessing
        The transform read from the model's zoo (its other fields are kept).
    module : torch.nn.Module
        The model.

    Returns
    -------
    Preprocessing
        With ``channels`` and its origin (``"model (conv1.in_channels)"``); a model without a
        convolution keeps its channels, recorded as assumed.
    """
    found = input_channels(module)
    if found is None:
        return preprocess.with_sources(channels=ASSUMED)
    channels, path = found
    return dataclasses.replace(preprocess, channels=channels).with_sources(
        channels=f"model ({path or type(module).__name__}.in_channels)"
    )
