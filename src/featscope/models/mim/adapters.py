"""One interface for masked-image models: :class:`MIMModel` and :func:`load_mim`.

Every family answers the same call, :meth:`MIMModel.predict` ``(images, mask) -> (N, L, D)``:
the model's prediction for every patch of the model's patch grid, in the space of its training
target:

============  ==============================================  ==============================
family        models                                          prediction per patch
============  ==============================================  ==============================
``mae``       HF ``ViTMAEForPreTraining``; the MAE research   ``p*p*3`` pixels of the
              code's ``MaskedAutoencoderViT`` (``mae:`` spec,  normalised input (norm-pix
              ``demo:mae``)                                   values when ``norm_pix``)
``simmim``    HF ``ViTForMaskedImageModeling``,               ``p*p*3`` pixels of the
              ``SwinForMaskedImageModeling`` (and Swin V2,    normalised input
              DeiT) given ``bool_masked_pos``
``maskfeat``  MMSelfSup MaskFeat (``maskfeat:`` spec)         ``3*9*(p/8)^2`` HOG values
============  ==============================================  ==============================

Hugging Face MAE draws its own mask from random noise; featscope passes ``noise`` that sorts the
chosen visible patches first, and sets the model's ``mask_ratio`` for that call so that it keeps
exactly those, then checks that the model's mask is the one chosen.

This module imports torch at the top: it is only imported lazily.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from featscope.errors import CheckpointError, ModelSpecError, ParameterError
from featscope.models.handle import ModelHandle
from featscope.models.mim.mae import MaskedAutoencoderViT, build_mae
from featscope.models.mim.maskfeat import MaskFeat, build_maskfeat
from featscope.models.mim.patches import patchify
from featscope.models.preprocessing import ASSUMED, IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from featscope.results import Provenance

__all__ = ["MIM_PREFIXES", "MIMModel", "load_mim"]

#: Spec prefixes resolved here, before :func:`featscope.models.load_model`.
MIM_PREFIXES = ("mae", "maskfeat")

_SIMMIM_CLASSES = (
    "ViTForMaskedImageModeling",
    "SwinForMaskedImageModeling",
    "Swinv2ForMaskedImageModeling",
    "DeiTForMaskedImageModeling",
)
_MAE_CLASSES = ("ViTMAEForPreTraining",)
_SUPPORTED = (
    "HF ViTMAEForPreTraining, ViT/Swin/Swinv2/DeiTForMaskedImageModeling (SimMIM), "
    "mae:<arch> (MAE research-code checkpoints), maskfeat:<arch> (MMSelfSup MaskFeat), "
    "mmpretrain:<MAE, SimMIM or MaskFeat name or config> or demo:mae"
)
#: Default (mask ratio, mask patch size in pixels or None for the model patch) per family,
#: the values of the reference configs (MAE 0.75; SimMIM 0.6 with 32-pixel mask patches;
#: MaskFeat about 78 of 196 patches = 0.4).
FAMILY_DEFAULTS = {"mae": (0.75, None), "simmim": (0.6, 32), "maskfeat": (0.4, None)}


@dataclass
class MIMModel:
    """A masked-image model behind one interface.

    Attributes
    ----------
    module : torch.nn.Module
        The model.
    spec : str
        The spec it was loaded from (or the class name of a module given directly).
    family : {"mae", "simmim", "maskfeat"}
        How it is trained and what it predicts (see the module docstring).
    preprocess : Preprocessing
        The image-to-tensor transform; its ``input_size`` is the model's fixed size.
    patch_size : int
        Side of a model patch in pixels (the mask's unit).
    norm_pix : bool
        Whether the model was trained on norm-pix targets (its default; MAE only).
    target : {"pixels", "hog"}
        What :meth:`predict` returns per patch.
    default_mask_ratio : float
        The family's usual mask ratio.
    default_mask_patch_size : int
        The family's usual mask patch in pixels.
    checkpoint, checkpoint_sha256 : str or None
        The checkpoint loaded and its SHA-256.
    hog : HOGGenerator or None
        MaskFeat's target generator.
    """

    module: Any
    spec: str
    family: str
    preprocess: Preprocessing
    patch_size: int
    norm_pix: bool = False
    target: str = "pixels"
    default_mask_ratio: float = 0.75
    default_mask_patch_size: int = 16
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    hog: Any = None
    _predict: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @property
    def input_size(self) -> tuple[int, int]:
        """The ``(height, width)`` the model was built for."""
        return tuple(self.preprocess.input_size)  # type: ignore[return-value]

    @property
    def grid(self) -> tuple[int, int]:
        """Patches per column and per row."""
        h, w = self.input_size
        return (h // self.patch_size, w // self.patch_size)

    def predict(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predict every patch of the images with the masked patches hidden.

        Parameters
        ----------
        images : torch.Tensor
            ``(N, 3, H, W)`` preprocessed images of the model's input size.
        mask : torch.Tensor
            ``(N, L)`` bool, True where a patch is hidden (patches row by row).

        Returns
        -------
        torch.Tensor
            ``(N, L, D)``: ``p*p*3`` normalised pixels (norm-pix values when the model uses
            them) or the HOG vector of each patch.

        Raises
        ------
        ParameterError
            When the images are not of the model's size or the mask does not fit.
        """
        h, w = self.input_size
        if tuple(images.shape[1:]) != (3, h, w):
            raise ParameterError(
                f"images of shape {tuple(images.shape[1:])} for {self.spec}, which takes "
                f"(3, {h}, {w}) inputs (a fixed-size model); resize the images to {h}x{w} "
                f"(leave input_size unset, or pass input_size={h})"
            )
        length = self.grid[0] * self.grid[1]
        if mask.dtype != torch.bool or tuple(mask.shape) != (images.shape[0], length):
            raise ParameterError(
                f"mask of shape {tuple(mask.shape)} and dtype {mask.dtype} for {images.shape[0]} "
                f"image(s) of {length} patches; pass a ({images.shape[0]}, {length}) bool mask"
            )
        if self._predict is None:
            raise ModelSpecError(
                f"{self.spec} has no prediction function; build it with load_mim(...)"
            )
        with torch.no_grad():
            return self._predict(self.module, images, mask.to(images.device))

    def provenance(self, source: str = "", seed: int = 0) -> Provenance:
        """Return the provenance of a result of this model.

        Parameters
        ----------
        source : str, default ""
            What the images came from.
        seed : int, default 0
            The seed of the masks.

        Returns
        -------
        Provenance
            The spec, checkpoint and its SHA-256, the preprocessing in effect, the source and
            the seed.
        """
        return Provenance(
            model=self.spec,
            checkpoint=self.checkpoint,
            checkpoint_sha256=self.checkpoint_sha256,
            source=source,
            seed=seed,
            preprocessing=self.preprocess.describe(),
        )

    def hog_target(self, images: torch.Tensor) -> torch.Tensor:
        """MaskFeat's target: the per-patch HOG of the (normalised) images, ``(N, L, D)``.

        Raises
        ------
        ParameterError
            For a model whose target is not HOG.
        """
        from featscope.models.mim.hog import hog_to_patches

        if self.hog is None:
            raise ParameterError(f"{self.spec} predicts pixels, not HOG features")
        cells = self.hog(images)
        return hog_to_patches(cells, self.patch_size // self.hog.pool)


def load_mim(
    model: Any = "demo:mae",
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    strict: bool = False,
) -> MIMModel:
    """Load a masked-image model from a spec, a module or a handle.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelHandle or MIMModel
        ``"mae:vit_large_patch16"`` (the MAE research code; give its checkpoint),
        ``"maskfeat:vit_base_patch16"`` (MMSelfSup MaskFeat; give its checkpoint),
        ``"hf:<dir>"`` (ViTMAEForPreTraining or a *ForMaskedImageModeling model),
        ``"demo:mae"``, or a module of one of these classes.
    checkpoint : str or os.PathLike, optional
        Weights to load (``{"model": ...}``, ``{"state_dict": ...}`` wrappers are unwrapped).
    device : str, default "cpu"
        Where to run the model.
    strict : bool, default False
        Raise when checkpoint keys do not all match.

    Returns
    -------
    MIMModel
        The model in eval mode on ``device``.

    Raises
    ------
    ModelSpecError
        When the model is not a masked-image model featscope can drive.
    CheckpointError
        When the checkpoint cannot be loaded, or an MAE checkpoint has no decoder.
    """
    from featscope.models import load_checkpoint, load_model

    handle: ModelHandle | None = None
    if isinstance(model, MIMModel):
        module, spec = model.module, model.spec
    elif isinstance(model, str) and model.partition(":")[0].strip().lower() in MIM_PREFIXES:
        prefix, _, arch = model.strip().partition(":")
        module = build_mae(arch) if prefix.lower() == "mae" else build_maskfeat(arch)
        spec = model.strip()
        if checkpoint is None:
            warnings.warn(
                f"{spec} was built without a checkpoint, so its weights are random and its "
                "reconstructions meaningless; pass checkpoint=... (--checkpoint)",
                stacklevel=2,
            )
    elif isinstance(model, (MaskedAutoencoderViT, MaskFeat)):
        module, spec = model, type(model).__name__
    else:
        from featscope.models.hub import checkpoint_follows

        with checkpoint_follows() if checkpoint is not None else contextlib.nullcontext():
            handle = load_model(model, checkpoint=None, device="cpu")
        module, spec = handle.module, handle.spec
    mim = model if isinstance(model, MIMModel) else _wrap(module, spec, handle)
    if checkpoint is not None:
        report = _load_weights(mim, checkpoint, strict=strict, load=load_checkpoint)
        mim = dataclasses.replace(mim, checkpoint=report.path, checkpoint_sha256=report.sha256)
    from featscope.models import resolve_device

    mim.module.to(resolve_device(device))
    mim.module.eval()
    return mim


def _load_weights(mim: MIMModel, checkpoint: Any, *, strict: bool, load: Callable) -> Any:
    """Load a checkpoint; an MAE without decoder weights cannot reconstruct: say so."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load(mim.module, checkpoint, strict=strict)
    if isinstance(mim.module, MaskedAutoencoderViT):
        missing = [k for k in report.missing if k.startswith(("decoder", "mask_token"))]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(checkpoint)!r} has no MAE decoder ({len(missing)} decoder "
                f"weights missing, e.g. {missing[0]!r}): an encoder-only checkpoint (such as "
                "mae_pretrain_vit_*.pth) cannot reconstruct; use one that keeps the decoder, "
                "e.g. mae_visualize_vit_large.pth"
            )
    if isinstance(mim.module, MaskFeat):
        # without its HOG head (a backbone-only or fine-tuned checkpoint) the prediction is noise
        missing = [k for k in report.missing if k.startswith(("neck.", "backbone.mask_token"))]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(checkpoint)!r} has no MaskFeat HOG head ({len(missing)} "
                f"weights missing, e.g. {missing[0]!r}): a backbone-only or fine-tuned checkpoint "
                "cannot predict hidden patches; use the MMSelfSup pre-training checkpoint, which "
                "keeps neck.fc and backbone.mask_token"
            )
    for item in caught:
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return report


def _wrap(module: Any, spec: str, handle: ModelHandle | None) -> MIMModel:
    """Recognise the model's family and build its :class:`MIMModel`."""
    sha = handle.checkpoint_sha256 if handle is not None else None
    if isinstance(module, MaskedAutoencoderViT):
        c = module.config
        pre = handle.preprocess if handle is not None and handle.family == "demo" else None
        return MIMModel(
            module,
            spec,
            "mae",
            pre or _imagenet(c.img_size, "bicubic"),
            c.patch_size,
            norm_pix=False,
            default_mask_ratio=0.75,
            default_mask_patch_size=c.patch_size,
            checkpoint_sha256=sha,
            _predict=lambda m, x, mask: m.forward_masked(x, mask),
        )
    if isinstance(module, MaskFeat):
        c = module.config
        return MIMModel(
            module,
            spec,
            "maskfeat",
            _imagenet(c.img_size, "bicubic"),
            c.patch_size,
            target="hog",
            default_mask_ratio=FAMILY_DEFAULTS["maskfeat"][0],
            default_mask_patch_size=c.patch_size,
            hog=module.target_generator,
            _predict=lambda m, x, mask: m(x, mask),
        )
    name = type(module).__name__
    config = getattr(module, "config", None)
    if name in _MAE_CLASSES + _SIMMIM_CLASSES and config is not None:
        patch = _first(config.patch_size)
        size = _first(config.image_size)
        pre = handle.preprocess if handle is not None else _imagenet(size, "bicubic")
        # the HF processor may crop from a larger resize; the model itself is fixed-size
        pre = dataclasses.replace(pre, input_size=(size, size))
        if name in _MAE_CLASSES:
            return MIMModel(
                module,
                spec,
                "mae",
                pre,
                patch,
                norm_pix=bool(getattr(config, "norm_pix_loss", False)),
                default_mask_ratio=float(getattr(config, "mask_ratio", 0.75)),
                default_mask_patch_size=patch,
                checkpoint_sha256=sha,
                _predict=_predict_hf_mae,
            )
        ratio, mask_patch = FAMILY_DEFAULTS["simmim"]
        # SimMIM's 32-pixel mask patches, unless the input is too small to hold a few of them
        fits = size % mask_patch == 0 and mask_patch % patch == 0 and size // mask_patch >= 2
        mask_patch = mask_patch if fits else patch
        return MIMModel(
            module,
            spec,
            "simmim",
            pre,
            patch,
            default_mask_ratio=ratio,
            default_mask_patch_size=mask_patch,
            checkpoint_sha256=sha,
            _predict=_predict_hf_simmim,
        )
    from featscope.models.mim.mmpretrain_mim import mmpretrain_family, mmpretrain_mim_parts

    if handle is not None and mmpretrain_family(module) is not None:
        parts = mmpretrain_mim_parts(module, handle.preprocess)
        ratio, mask_patch = FAMILY_DEFAULTS[parts["family"]]
        size = parts["preprocess"].input_size[0]
        patch = parts["patch_size"]
        fits = (
            mask_patch is not None
            and size % mask_patch == 0
            and mask_patch % patch == 0
            and size // mask_patch >= 2
        )
        return MIMModel(
            module,
            spec,
            default_mask_ratio=ratio,
            default_mask_patch_size=mask_patch if fits else patch,
            checkpoint_sha256=sha,
            **parts,
        )
    raise ModelSpecError(
        f"model {spec!r} ({name}) is not a masked-image model: reconstruct needs a model that "
        f"predicts hidden patches: {_SUPPORTED}; a classifier or backbone cannot fill in a mask"
    )


def _imagenet(size: int, interpolation: str) -> Preprocessing:
    # the reference tool resizes to exactly the model size (no crop margin)
    return Preprocessing(
        input_size=(size, size),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        crop_pct=1.0,
        interpolation=interpolation,
    ).with_sources(ASSUMED, input_size="model (img_size)")


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)


def _predict_hf_mae(module: Any, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    _n, length = mask.shape
    keep = length - int(mask[0].sum())
    # noise sorts ascending: visible patches (0) first, in patch order, then the hidden ones
    order = torch.arange(length, device=mask.device, dtype=torch.float32) / (2.0 * length)
    noise = mask.to(torch.float32) + order
    configs = {id(c): c for c in _configs(module)}.values()
    saved = [(c, c.mask_ratio) for c in configs]
    try:
        # HF keeps int(L * (1 - mask_ratio)) patches: pick a ratio that keeps exactly `keep`
        for c in configs:
            c.mask_ratio = 1.0 - (keep + 0.5) / length
        out = module(pixel_values=images, noise=noise)
    finally:
        for c, value in saved:
            c.mask_ratio = value
    if not torch.equal(out.mask.bool(), mask):
        raise ModelSpecError(
            f"{type(module).__name__} did not use the requested mask (its masking changed); "
            "featscope drives it through `noise`; please report this with your transformers version"
        )
    return out.logits


def _configs(module: Any) -> list[Any]:
    found = [module.config]
    for sub in module.modules():
        c = getattr(sub, "config", None)
        if c is not None and hasattr(c, "mask_ratio"):
            found.append(c)
    return found


def _predict_hf_simmim(module: Any, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = module(pixel_values=images, bool_masked_pos=mask)
    recon = out.reconstruction
    patch = images.shape[-1] // round(mask.shape[1] ** 0.5)
    return patchify(recon, patch)
