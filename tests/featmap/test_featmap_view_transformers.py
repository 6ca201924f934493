"""Transformers through feature_maps(): DeiT's two prefix tokens, Swin's channels-last stages."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from featmap_view_helpers import photo

from featscope.capture.hooks import capture
from featscope.options import Output
from featscope.views.featmap import feature_maps


def _timm_handle(model, size):
    from featscope.models.timm_adapter import build_timm_handle

    handle = build_timm_handle(model, "tiny")
    return dataclasses.replace(
        handle, preprocess=dataclasses.replace(handle.preprocess, input_size=(size, size))
    )


def _captured(handle, picture, points):
    with capture(handle, points) as tap:
        return tap.run(handle.preprocess(picture)[None])


def test_deit_distilled_drops_class_and_distillation_tokens():
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "deit_tiny_distilled_patch16_224",
        img_size=32,
        patch_size=8,
        embed_dim=8,
        depth=1,
        num_heads=1,
    ).eval()
    handle = _timm_handle(model, 32)
    assert (handle.num_prefix_tokens, handle.patch_grid) == (2, (4, 4))
    picture = photo(3, size=(32, 32))
    run = feature_maps([("p", picture)], handle, ["blocks.0"], output=Output(work_dir=None))
    tokens = _captured(handle, picture, ["blocks.0"])["blocks.0"][0].numpy()  # (2 + 16, 8)
    assert tokens.shape == (18, 8)
    values = run["p", "blocks.0"].values
    assert values.shape == (8, 4, 4)
    # patch (i, j) is token 2 + 4 * i + j: class and distillation tokens are not in the map
    for i, j in [(0, 0), (1, 3), (3, 2)]:
        np.testing.assert_array_equal(values[:, i, j], tokens[2 + 4 * i + j])


def test_swin_stage_outputs_are_drawn_channels_first():
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "swin_tiny_patch4_window7_224",
        img_size=32,
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 1),
        window_size=4,
    ).eval()
    handle = _timm_handle(model, 32)
    picture = photo(4, size=(32, 32))
    run = feature_maps(
        [("p", picture)], handle, ["layers.0", "layers.1"], output=Output(work_dir=None)
    )
    raw = _captured(handle, picture, ["layers.0", "layers.1"])
    for point, shape in (("layers.0", (8, 8, 8)), ("layers.1", (16, 4, 4))):
        assert raw[point].shape == (1, shape[1], shape[2], shape[0])  # (N, H, W, C) in timm
        values = run["p", point].values
        assert values.shape == shape
        np.testing.assert_array_equal(values, raw[point][0].permute(2, 0, 1).numpy())
