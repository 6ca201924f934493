"""The loaded model as the rest of featscope sees it.

A :class:`ModelHandle` bundles the ``torch.nn.Module`` with what featscope needs to use it
without knowing its family: how to preprocess an image (:class:`Preprocessing`), where the
aliases ``backbone``, ``neck``, ``pre_logits`` and ``logits`` are (:class:`PointRef`), and
how token outputs are laid out (``num_prefix_tokens``). Adapters in this package (timm,
torchvision, Hugging Face, TorchScript, user factories, the built-in demo models) build it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["ALIASES", "ModelHandle", "PointRef", "Preprocessing"]

#: The capture-point aliases every adapter tries to resolve, in pipeline order.
ALIASES = ("backbone", "neck", "pre_logits", "logits")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the model's input tensor.

    Resize the short side to ``input_size / crop_pct``, centre-crop to ``input_size``, scale to
    [0, 1], then normalise with ``mean`` and ``std`` per channel (the timm / torchvision eval
    transform).

    Attributes
    ----------
    input_size : tuple of int
        ``(height, width)`` of the model input.
    mean, std : tuple of float
        Per-channel normalisation on the [0, 1] scale.
    crop_pct : float
        Fraction of the resized image kept by the centre crop (1.0 = no crop margin).
    interpolation : str
        ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.
    """

    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """Turn one RGB PIL image into a ``(3, H, W)`` float32 tensor."""
        from featscope.models.preprocessing import apply_preprocessing

        return apply_preprocessing(self, image)


@dataclass(frozen=True)
class PointRef:
    """Where an alias or a capture point reads its tensor.

    Attributes
    ----------
    module : str or None
        A path from ``named_modules()`` (``""`` is the model itself), hooked during the forward
        pass. ``None`` means the value is returned directly by :meth:`ModelHandle.forward` in its
        ``extras`` dict under the alias name (used for model APIs such as timm's
        ``forward_head(pre_logits=True)``, which are not module outputs).
    io : {"output", "input"}
        Read the module's output, or its first positional input (e.g. the input of the final
        classifier is the pre-logits vector).
    select : str or int or None
        Take one element of a tuple/dict/ModelOutput result (``"last_hidden_state"``, ``0``).
    """

    module: str | None
    io: Literal["output", "input"] = "output"
    select: str | int | None = None


def _plain_forward(module: Any, x: Any) -> tuple[Any, dict[str, Any]]:
    return module(x), {}


@dataclass
class ModelHandle:
    """A model ready for capture: the module, its preprocessing and its capture-point catalog.

    Attributes
    ----------
    module : torch.nn.Module
        The model. featscope never changes it permanently: hooks are removed and the
        train/eval state of each module is restored after capture.
    spec : str
        The spec it was built from (``"timm:resnet18"``) or the factory's qualified name.
    family : str
        ``"timm"``, ``"torchvision"``, ``"hf"``, ``"torchscript"``, ``"factory"`` or ``"demo"``.
    preprocess : Preprocessing
        The image-to-tensor transform the model expects.
    aliases : Mapping of str to PointRef
        Resolution of the aliases in :data:`ALIASES` this model supports.
    num_prefix_tokens : int
        Number of class/register tokens at the start of ``(N, L, C)`` token outputs; > 0 means
        the model has a class token, which pooling then takes (token 0).
    patch_grid : tuple of int or None
        ``(h, w)`` patch grid of a vision transformer, for turning tokens into maps.
    checkpoint : str or None
        Path of the checkpoint loaded into the model.
    checkpoint_sha256 : str or None
        SHA-256 of that file.
    forward : callable
        ``forward(module, x) -> (output, extras)``; adapters that compute aliases through the
        model's own API put them in ``extras`` (see :class:`PointRef`).
    """

    module: Any
    spec: str
    family: str
    preprocess: Preprocessing = field(default_factory=Preprocessing)
    aliases: Mapping[str, PointRef] = field(default_factory=dict)
    num_prefix_tokens: int = 0
    patch_grid: tuple[int, int] | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    forward: Callable[[Any, Any], tuple[Any, dict[str, Any]]] = _plain_forward

    def point_names(self) -> list[str]:
        """Every valid capture-point name: the aliases, then the module paths."""
        modules = [name for name, _ in self.module.named_modules() if name]
        return [*self.aliases, *modules]
