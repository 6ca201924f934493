"""Masked-image models (MAE, SimMIM, MaskFeat) behind one interface.

:func:`load_mim` turns a spec (``mae:<arch>``, ``maskfeat:<arch>``, ``hf:<dir>``,
``demo:mae``) or a module into a :class:`MIMModel`, whose ``predict(images, mask)`` gives the
model's prediction for every patch. :mod:`.patches` cuts images into patches and makes
norm-pix targets; :mod:`.masks` draws seeded masks; :mod:`.hog` computes MaskFeat's
HOG target.

Importing this package imports torch (it is only imported lazily, by the reconstruction view).
"""

from __future__ import annotations

from featscope.models.mim.adapters import FAMILY_DEFAULTS, MIM_PREFIXES, MIMModel, load_mim
from featscope.models.mim.hog import (
    HORIZONTAL_GRADIENT_BIN,
    HOGGenerator,
    hog_to_patches,
    patches_to_hog,
)
from featscope.models.mim.mae import (
    DEMO_MAE_CONFIG,
    MAE_ARCHS,
    MAEConfig,
    MaskedAutoencoderViT,
    build_mae,
)
from featscope.models.mim.maskfeat import MASKFEAT_ARCHS, MaskFeat, MaskFeatConfig, build_maskfeat
from featscope.models.mim.masks import mask_count, random_masks
from featscope.models.mim.patches import normalize_patches, patchify

__all__ = [
    "DEMO_MAE_CONFIG",
    "FAMILY_DEFAULTS",
    "HORIZONTAL_GRADIENT_BIN",
    "MAE_ARCHS",
    "MASKFEAT_ARCHS",
    "MIM_PREFIXES",
    "HOGGenerator",
    "MAEConfig",
    "MIMModel",
    "MaskFeat",
    "MaskFeatConfig",
    "MaskedAutoencoderViT",
    "build_mae",
    "build_maskfeat",
    "hog_to_patches",
    "load_mim",
    "mask_count",
    "normalize_patches",
    "patches_to_hog",
    "patchify",
    "random_masks",
]
