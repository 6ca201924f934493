"""The loaded model as the rest of featscope sees it.

A :class:`ModelHandle` bundles the ``torch.nn.Module`` with what featscope needs to use it
without knowing its family: how to preprocess an image (:class:`Preprocessing`), where the
aliases ``backbone``, ``neck``, ``pre_logits`` and ``logits`` are (:class:`PointRef`), how token
outputs are laid out (``num_prefix_tokens``), and what every capture point gives
(:class:`PointInfo`, the capture-point contract, known before any image is read). Adapters in
this package (timm, torchvision, Hugging Face, TorchScript, user factories, the built-in demo
models) build it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from featscope.models.preprocessing import Preprocessing, as_preprocessing
from featscope.results import Provenance

if TYPE_CHECKING:
    pass

__all__ = ["ALIASES", "LAYOUTS", "ModelHandle", "PointInfo", "PointRef", "Preprocessing"]

#: The capture-point aliases every adapter tries to resolve, in pipeline order.
ALIASES = ("backbone", "neck", "pre_logits", "logits")
#: What a capture point can give: maps channels-first or channels-last, tokens on a grid, one
#: vector per image, a tuple/dict of outputs (``multi``), anything else, or nothing (the module
#: did not run).
LAYOUTS = ("NCHW", "NHWC", "NLC", "NC", "multi", "other", "none")


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


@dataclass(frozen=True)
class PointInfo:
    """What one capture point gives, known before any image is read (timm's ``feature_info``).

    Attributes
    ----------
    name : str
        The point (``"layer4"``, ``"backbone"``) or an element of a tuple/dict output
        (``"neck.0"``, ``"backbone.fpn.pool"``).
    layout : str
        One of :data:`LAYOUTS`: ``"NCHW"`` and ``"NHWC"`` maps, ``"NLC"`` tokens,
        ``"NC"`` one vector per image, ``"multi"`` a tuple/dict (see ``elements``), ``"other"``,
        or ``"none"`` when the module did not run in the dry forward pass.
    shape : tuple of int or None
        Per-image shape (no batch axis), in the layout's order, at the model's input size.
    channels : int or None
        Channels of maps and tokens, width of vectors.
    stride : int or None
        Input pixels per map cell or token (rounded), where the output is a map or token grid.
    grid : (int, int) or None
        ``(h, w)`` of the map, or of the token grid for ``"NLC"``.
    num_prefix_tokens : int
        Class/register tokens before the grid in ``"NLC"`` outputs (0 for outputs without them,
        such as ``patch_embed``).
    elements : Mapping of str to PointInfo
        For ``"multi"``: every tensor inside the output by its name (``"neck.0"``), in order.
    source : str
        ``"feature_info"`` (read from timm's ``model.feature_info``, no forward pass) or
        ``"dry_run"`` (one forward pass of a zero image of the model's input size).
    input_size : (int, int) or None
        ``(height, width)`` the shapes refer to.
    """

    name: str
    layout: str
    shape: tuple[int, ...] | None = None
    channels: int | None = None
    stride: int | None = None
    grid: tuple[int, int] | None = None
    num_prefix_tokens: int = 0
    elements: Mapping[str, PointInfo] = field(default_factory=dict)
    source: str = "dry_run"
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout {self.layout!r} is not one of {LAYOUTS}")
        object.__setattr__(self, "elements", MappingProxyType(dict(self.elements)))

    @property
    def is_map(self) -> bool:
        """Whether the output can be drawn as a feature map (maps, or tokens on a grid)."""
        return self.layout in ("NCHW", "NHWC") or (self.layout == "NLC" and self.grid is not None)

    def element(self, name: str) -> PointInfo | None:
        """Return the info of output ``name``: this point itself or one of its elements."""
        if name == self.name:
            return self
        return self.elements.get(name)

    def describe(self) -> str:
        """One line: layout, shape, stride (``"NCHW (64, 56, 56) stride 4"``)."""
        if self.layout == "multi":
            return f"{len(self.elements)} outputs: {', '.join(self.elements)}"
        if self.layout == "none":
            return "did not run"
        text = self.layout if self.shape is None else f"{self.layout} {self.shape}"
        if self.layout == "NLC" and self.grid is not None:
            text += f" grid {self.grid[0]}x{self.grid[1]}, {self.num_prefix_tokens} prefix"
        if self.stride is not None:
            text += f" stride {self.stride}"
        return text


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
    weights : str
        What weights the model holds: ``"random"`` (an architecture built without weights),
        ``"pretrained"`` (the zoo's), ``"checkpoint"``, ``"shipped"`` (featscope's demo models)
        or ``"given"`` (a module, factory or file that brings its own).
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
    weights: str = "given"
    # the dry run's PointInfo by name; not copied by dataclasses.replace (a new preprocessing
    # or patch grid changes the shapes)
    _dry_run: dict[str, PointInfo] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def provenance(self, source: str = "", seed: int = 0) -> Provenance:
        """Return the provenance of results computed with this model.

        Parameters
        ----------
        source : str, optional
            What the samples came from (a folder, a file list, an image id).
        seed : int, default 0
            Seed of the random choices behind the result.

        Returns
        -------
        Provenance
            The spec, checkpoint and its hash, the weights, the preprocessing in effect, the
            source and the seed.
        """
        return Provenance(
            model=self.spec,
            checkpoint=self.checkpoint,
            checkpoint_sha256=self.checkpoint_sha256,
            source=source,
            seed=seed,
            weights=self.weights,
            preprocessing=as_preprocessing(self.preprocess).describe(),
        )

    def point_names(self) -> list[str]:
        """Every valid capture-point name: the aliases, then the module paths."""
        modules = [name for name, _ in self.module.named_modules() if name]
        return [*self.aliases, *modules]

    def point_info(self, name: str) -> PointInfo:
        """Say what capture point ``name`` gives, before any image is read.

        From timm's ``model.feature_info`` where it lists the module (channels and reduction,
        no forward pass); otherwise from one forward pass of a zero image of the model's input
        size, made once per handle and cached (see :func:`featscope.models.points.dry_run`).

        Parameters
        ----------
        name : str
            An alias, a module path, or an element of a tuple/dict output (``"neck.0"``).

        Returns
        -------
        PointInfo

        Raises
        ------
        CaptureError
            When the name is no capture point of this model, or the dry run fails (the message
            names the input size).
        """
        from featscope.models.points import point_info

        return point_info(self, name)

    def points(self) -> tuple[PointInfo, ...]:
        """Every capture point with what it gives: the aliases, then the module paths.

        Returns
        -------
        tuple of PointInfo
            One per distinct name of :meth:`point_names`, in that order (one dry run for all;
            an alias that is also a module path is listed once, as the alias).
        """
        return tuple(self.point_info(name) for name in dict.fromkeys(self.point_names()))
