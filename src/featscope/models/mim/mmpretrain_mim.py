"""MMPretrain's masked-image models (``mmpretrain:mae_...``, ``simmim_...``, ``maskfeat_...``).

MMPretrain holds MMSelfSup's MAE, SimMIM and MaskFeat (and their checkpoints, which load into the
models ``mmpretrain:<name>`` builds). They are driven here with featscope's mask:

- **MAE** (``MAE``: ``MAEViT`` backbone, ``MAEPretrainDecoder`` neck): the backbone draws its mask
  with ``random_masking``; for the call featscope replaces it (on the instance, restored after)
  with one that keeps exactly the visible patches chosen, in patch order, so that the decoder
  gets the matching ``ids_restore``. The prediction is the decoder's ``p*p*3`` values per patch,
  channel last (``MAEPretrainHead.patchify``'s order); norm-pix when the head's ``norm_pix``.
- **SimMIM** (``SimMIM``: ``SimMIMSwinTransformer`` + ``SimMIMLinearDecoder``): the backbone takes
  the mask at its patch resolution; the neck reconstructs the whole image, cut into patches here.

- **MaskFeat** (``MaskFeat``: ``MaskFeatViT`` + ``LinearNeck``): the backbone swaps hidden
  patches for its mask token; the neck predicts each patch's HOG (``3 * nbins * (p / pool)^2``
  values), compared with the target of the model's ``HOGGenerator`` settings.

``maskfeat:<arch>`` builds featscope's own copy of the MaskFeat ViT, which loads the same
checkpoints without MMPretrain installed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from featscope.models.mim.patches import patchify

__all__ = ["mmpretrain_family", "mmpretrain_mim_parts"]

_CLASSES = {"MAE": "mae", "SimMIM": "simmim", "MaskFeat": "maskfeat"}


def mmpretrain_family(module: Any) -> str | None:
    """Return ``"mae"``, ``"simmim"`` or ``"maskfeat"`` for those MMPretrain models, or None."""
    if not type(module).__module__.startswith("mmpretrain."):
        return None
    return _CLASSES.get(type(module).__name__)


def mmpretrain_mim_parts(module: Any, preprocess: Any) -> dict[str, Any]:
    """Return what a ``MIMModel`` of an MMPretrain MAE/SimMIM needs besides module and spec.

    Parameters
    ----------
    module : torch.nn.Module
        An MMPretrain ``MAE`` or ``SimMIM`` (see :func:`mmpretrain_family`).
    preprocess : Preprocessing
        The handle's preprocessing (mean/std of the config); the input becomes the model's fixed
        size, resized without crop margin as the reference tool does.

    Returns
    -------
    dict
        ``family``, ``preprocess``, ``patch_size``, ``norm_pix`` and ``_predict``.
    """
    from featscope.models.mmpretrain_adapter import backbone_input_size

    family = mmpretrain_family(module)
    backbone = module.backbone
    height = (backbone_input_size(module) or (224, 224))[0]
    kernel = backbone.patch_embed.projection.kernel_size
    patch = int(kernel[0] if isinstance(kernel, (tuple, list)) else kernel)
    preprocess = dataclasses.replace(preprocess, input_size=(height, height), crop_pct=1.0)
    if family == "mae":
        return {
            "family": "mae",
            "preprocess": preprocess,
            "patch_size": patch,
            "norm_pix": bool(getattr(module.head, "norm_pix", False)),
            "_predict": _predict_mae,
        }
    if family == "maskfeat":
        return {
            "family": "maskfeat",
            "preprocess": preprocess,
            "patch_size": patch,
            "target": "hog",
            "hog": _hog_of(module.target_generator),
            "_predict": _predict_maskfeat,
        }
    return {
        "family": "simmim",
        "preprocess": preprocess,
        "patch_size": patch,
        "norm_pix": False,
        "_predict": _predict_simmim,
    }


def _predict_mae(module: Any, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    _n, length = mask.shape
    keep = length - int(mask[0].sum())
    # visible patches (0) first, in patch order, then the hidden ones
    order = torch.arange(length, device=mask.device, dtype=torch.float32) / (2.0 * length)
    ids_shuffle = torch.argsort(mask.to(torch.float32) + order, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)

    def chosen_masking(x: torch.Tensor, mask_ratio: float = 0.75) -> tuple[torch.Tensor, ...]:
        index = ids_shuffle[:, :keep].unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return torch.gather(x, 1, index), mask.to(x.dtype), ids_restore

    backbone = module.backbone
    backbone.random_masking = chosen_masking
    try:
        latent, _, restore = backbone(images, mask=True)
    finally:
        del backbone.random_masking
    return module.neck(latent, restore)


def _predict_simmim(module: Any, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    n, length = mask.shape
    side = round(length**0.5)
    latent = module.backbone(images, mask.reshape(n, side, side))
    reconstruction = module.neck(latent[0])
    return patchify(reconstruction, images.shape[-1] // side)


def _hog_of(generator: Any) -> Any:
    """Return featscope's HOG generator with the settings of MMPretrain's.

    The arithmetic is the same (:mod:`featscope.models.mim.hog`), but MMPretrain's own reshapes
    its cells for a 14x14 patch grid whatever the input size; featscope's is laid out by
    :func:`~featscope.models.mim.hog.hog_to_patches` for any grid.
    """
    from featscope.models.mim.hog import HOGGenerator

    return HOGGenerator(
        int(generator.nbins), int(generator.pool), int(generator.gaussian_window or 0)
    )


def _predict_maskfeat(module: Any, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # as MaskFeat.loss: mask tokens replace hidden patches, the neck maps every token to its
    # HOG prediction, and the class token's row is dropped
    latent = module.backbone(images, mask)
    n, length, channels = latent.shape
    prediction = module.neck((latent.reshape(n * length, channels),))[0]
    return prediction.reshape(n, length, -1)[:, 1:]
