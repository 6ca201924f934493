"""Resolving transforms into named steps, and tracing an image through them."""

from __future__ import annotations

import random
import sys
import textwrap

import numpy as np
import pytest
import torch
from browse_helpers import TwoViews, mask_pipeline, tiny_pipeline
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import v2

from featscope.data.transforms import normalize_stats, resolve_transform, step_name, trace
from featscope.errors import ModelSpecError, ParameterError


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8))


def test_torchvision_step_titles():
    pipeline = resolve_transform(tiny_pipeline())
    assert pipeline.names == (
        "RandomResizedCrop(32)",
        "RandomHorizontalFlip(p=0.5)",
        "ColorJitter(b=0.4, c=0.4, s=0.4)",
        "ToTensor",
        "Normalize(ImageNet)",
    )
    assert pipeline.source == "Compose"


def test_v2_nested_compose_is_flattened():
    inner = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    outer = v2.Compose(
        [v2.Resize((20, 30)), inner, v2.Normalize([0.5] * 3, [0.25] * 3), v2.Grayscale()]
    )
    assert resolve_transform(outer).names == (
        "Resize(20x30)",
        "ToImage",
        "ToDtype(float32, scale)",
        "Normalize(mean=0.5, std=0.25)",
        "Grayscale(c=1)",
    )


def test_random_containers_stay_one_step():
    step = T.RandomApply([T.GaussianBlur(3)], p=0.3)
    assert resolve_transform(T.Compose([step])).names == ("RandomApply(GaussianBlur(k=3), p=0.3)",)


def test_plain_callable_is_one_step():
    def to_gray(image):
        return image.convert("L")

    pipeline = resolve_transform(to_gray)
    assert pipeline.names == ("to_gray",)
    assert step_name(TwoViews()) == "TwoViews"


def test_timm_transform_by_spec_eval_and_train():
    evaluation = resolve_transform("timm:resnet18", phase="eval")
    assert evaluation.names == (
        "Resize(235)",
        "CenterCrop(224)",
        "MaybeToTensor",
        "Normalize(ImageNet)",
    )
    assert evaluation.source == "timm:resnet18 (eval)"
    train = resolve_transform("timm:resnet18", phase="train")
    assert train.names[0] == "RandomResizedCropAndInterpolation(224)"
    assert "RandomHorizontalFlip(p=0.5)" in train.names


def test_demo_spec_uses_the_handles_preprocessing():
    pipeline = resolve_transform("demo:efficientnet-lite0", phase="eval")
    stats = normalize_stats(pipeline.steps[-1].fn)
    assert stats is not None
    np.testing.assert_allclose(stats[0], [127 / 255] * 3, atol=1e-6)
    np.testing.assert_allclose(stats[1], [128 / 255] * 3, atol=1e-6)
    assert pipeline.names[:2] == ("Resize(256)", "CenterCrop(224)")


def test_py_spec_transform_function_and_factory(tmp_path, monkeypatch):
    (tmp_path / "my_aug.py").write_text(
        textwrap.dedent(
            """
            from torchvision import transforms as T

            def train_transform():
                return T.Compose([T.CenterCrop(8), T.ToTensor()])

            def flip(image):
                return image.transpose(0)

            composed = T.Compose([T.Resize(10)])
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_aug", raising=False)
    assert resolve_transform("py:my_aug:train_transform").names == ("CenterCrop(8)", "ToTensor")
    assert resolve_transform("py:my_aug:flip").names == ("flip",)
    assert resolve_transform("py:my_aug:composed").names == ("Resize(10)",)
    with pytest.raises(ModelSpecError, match="has no attribute 'nope'"):
        resolve_transform("py:my_aug:nope")


def test_bad_specs_and_phase():
    with pytest.raises(ModelSpecError, match="hf: models carry no transform"):
        resolve_transform("hf:./somewhere")
    with pytest.raises(ModelSpecError, match="unknown demo model"):
        resolve_transform("demo:nothing")
    with pytest.raises(ParameterError, match="`phase` 'test' is not one of train, eval"):
        resolve_transform(None, phase="test")
    with pytest.raises(ParameterError, match="got int"):
        resolve_transform(3)


def test_trace_records_every_step(photo):
    outputs = trace(resolve_transform(tiny_pipeline()), photo, seed=1)
    assert outputs[0].name == "Original"
    assert [o.kind for o in outputs] == ["PIL", "PIL", "PIL", "PIL", "tensor", "tensor"]
    assert [o.size for o in outputs] == [(40, 56)] + [(32, 32)] * 5
    assert outputs[4].views[0].shape == (32, 32, 3)  # CHW tensor laid out HWC
    assert outputs[4].stats is None
    np.testing.assert_allclose(outputs[5].stats, [(0.485, 0.456, 0.406), (0.229, 0.224, 0.225)])


def test_trace_is_seeded_and_restores_global_rng(photo):
    pipeline = resolve_transform(tiny_pipeline())
    random.seed(5)
    torch.manual_seed(5)
    expected = (random.random(), torch.rand(1).item())
    random.seed(5)
    torch.manual_seed(5)
    first = trace(pipeline, photo, seed=3)
    assert (random.random(), torch.rand(1).item()) == expected
    second = trace(pipeline, photo, seed=3)
    other = trace(pipeline, photo, seed=4)
    np.testing.assert_array_equal(first[-1].views[0], second[-1].views[0])
    assert not np.array_equal(first[-1].views[0], other[-1].views[0])


def test_multi_view_and_mask_outputs(photo):
    views = trace(resolve_transform(TwoViews()), photo)[-1]
    assert len(views.views) == 2
    assert views.masks == (None, None)
    assert views.views[0].shape == (24, 24, 3)
    masked = trace(resolve_transform(mask_pipeline), photo)[-1]
    assert len(masked.views) == 1
    assert masked.masks[0].shape == (4, 4)
    assert masked.masks[0][:, :2].all()
    stacked = trace(resolve_transform(T.Compose([T.FiveCrop(16)])), photo)[-1]
    assert len(stacked.views) == 5
    assert stacked.size == (16, 16)


def test_step_returning_a_non_image_is_named(photo):
    pipeline = resolve_transform(T.Compose([T.CenterCrop(20), lambda image: "label-7"]))
    with pytest.raises(
        ParameterError, match=r"transform step 2 '<lambda>' returned a str .*not an image"
    ):
        trace(pipeline, photo, image_id="cat/a.png")
    flat = resolve_transform(lambda image: np.zeros(5))
    with pytest.raises(ParameterError, match=r"step 1 .* ndarray of shape \(5,\)"):
        trace(flat, photo)


def test_step_that_raises_is_named(photo):
    pipeline = resolve_transform(T.Compose([T.ToTensor(), T.RandomCrop(500)]))
    with pytest.raises(ParameterError, match=r"step 2 'RandomCrop\(500\)' failed on image 'x.png'"):
        trace(pipeline, photo, image_id="x.png")


def test_sequential_is_flattened_and_tensor_input_traced(photo):
    pipeline = resolve_transform(torch.nn.Sequential(T.Resize(20), T.CenterCrop(16)))
    assert pipeline.names == ("Resize(20)", "CenterCrop(16)")
    outputs = trace(pipeline, photo)
    assert [o.size for o in outputs] == [(40, 56), (20, 28), (16, 16)]


def test_torchvision_weights_preset_by_spec():
    evaluation = resolve_transform("tv:resnet18", phase="eval")
    assert evaluation.names == (
        "Resize(256)",
        "CenterCrop(224)",
        "PILToTensor",
        "ConvertImageDtype(float32)",
        "Normalize(ImageNet)",
    )
    train = resolve_transform("tv:resnet18", phase="train")
    assert train.names[:2] == ("RandomResizedCrop(224)", "RandomHorizontalFlip(p=0.5)")
    with pytest.raises(ModelSpecError, match="torchvision has no weights for 'nonexist'"):
        resolve_transform("tv:nonexist")
