"""The built-in demo model: weights, aliases, shapes, and that it really learned the digits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.neighbors import KNeighborsClassifier

import featscope.models
from featscope.errors import ModelSpecError
from featscope.models import Preprocessing
from featscope.models.demo import (
    DEMO_MODELS,
    DIGITS_PREPROCESSING,
    DigitsCNN,
    digits_image,
    digits_split,
    load_demo,
)

WEIGHTS = Path(featscope.models.__file__).parent / "weights" / "digits_cnn.pt"


@pytest.fixture(scope="module")
def handle():
    return load_demo("digits-cnn")


@pytest.fixture(scope="module")
def digits():
    """All 1,797 digits through the handle's own preprocessing, plus their labels."""
    data = load_digits()
    preprocess = load_demo("digits-cnn").preprocess
    images = torch.stack([preprocess(digits_image(img)) for img in data.images])
    return images, data.target


def _capture(module: torch.nn.Module, paths: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    modules = dict(module.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        modules[path].register_forward_hook(
            lambda _m, _i, out, path=path: outputs.__setitem__(path, out.detach())
        )
        for path in paths
    ]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def _knn_loo_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    # kneighbors() without X leaves each point out of its own neighbour list (leave-one-out)
    neighbours = KNeighborsClassifier(n_neighbors=k).fit(features, labels).kneighbors()[1]
    votes = np.array([np.bincount(labels[row], minlength=10).argmax() for row in neighbours])
    return float((votes == labels).mean())


def test_weights_load_safely_and_match_the_architecture():
    assert WEIGHTS.stat().st_size < 1_000_000
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    expected = DigitsCNN().state_dict()
    assert list(state) == list(expected)
    for key, value in state.items():
        assert isinstance(value, torch.Tensor)
        assert value.shape == expected[key].shape, key
    model = DigitsCNN()
    assert not model.load_state_dict(state, strict=True).missing_keys
    assert sum(p.numel() for p in model.parameters()) < 200_000


def test_handle_fields(handle):
    assert handle.spec == "demo:digits-cnn"
    assert handle.family == "demo"
    assert handle.checkpoint is None
    assert handle.checkpoint_sha256 == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    assert handle.preprocess == Preprocessing(
        input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0, interpolation="bilinear"
    )
    assert handle.preprocess is DIGITS_PREPROCESSING
    assert not handle.module.training
    assert set(handle.aliases) == {"backbone", "neck", "pre_logits", "logits"}
    assert handle.aliases["pre_logits"].module == "head.pre_logits"
    assert handle.point_names()[:4] == ["backbone", "neck", "pre_logits", "logits"]
    assert DEMO_MODELS[0] == "digits-cnn"


def test_short_name_loads_the_same_weights(handle):
    other = load_demo("digits")
    assert other.spec == "demo:digits-cnn"
    for key, value in handle.module.state_dict().items():
        assert torch.equal(value, other.module.state_dict()[key]), key


def test_aliases_name_existing_modules(handle):
    modules = dict(handle.module.named_modules())
    for alias, ref in handle.aliases.items():
        assert ref.module in modules, alias
        assert ref.io == "output"
        assert ref.select is None


def test_alias_output_shapes(handle, digits):
    x = digits[0][:5]
    paths = {alias: ref.module for alias, ref in handle.aliases.items()}
    outputs = _capture(handle.module, list(paths.values()), x)
    shapes = {alias: tuple(outputs[path].shape) for alias, path in paths.items()}
    assert shapes == {
        "backbone": (5, 128, 4, 4),
        "neck": (5, 128),
        "pre_logits": (5, 64),
        "logits": (5, 10),
    }
    # forward is exactly the alias chain, so the aliases are the model's own stages
    m = handle.module
    with torch.no_grad():
        chained = m.head.fc(m.head.pre_logits(m.neck(m.backbone(x))))
        assert torch.equal(chained, m(x))
    assert torch.equal(outputs[paths["logits"]], chained)


def test_held_out_accuracy(handle, digits):
    images, labels = digits
    _, test = digits_split(labels)
    with torch.no_grad():
        predictions = handle.module(images[test]).argmax(1).numpy()
    accuracy = float((predictions == labels[test]).mean())
    assert len(test) == 360
    assert accuracy > 0.95, accuracy


def test_pre_logits_features_separate_the_digits(handle, digits):
    images, labels = digits
    subset = np.sort(np.random.default_rng(0).choice(len(labels), 500, replace=False))
    x, y = images[subset], labels[subset]

    def knn_accuracy(module: torch.nn.Module) -> float:
        features = _capture(module, ["head.pre_logits"], x)["head.pre_logits"]
        return _knn_loo_accuracy(features.numpy(), y)

    torch.manual_seed(0)
    untrained = DigitsCNN().eval()
    trained_acc = knn_accuracy(handle.module)
    untrained_acc = knn_accuracy(untrained)
    assert trained_acc > 0.95, trained_acc
    assert trained_acc >= untrained_acc + 0.1, (trained_acc, untrained_acc)


def test_unknown_demo_name_lists_the_available_models():
    with pytest.raises(ModelSpecError, match=r"unknown demo model 'mnist'.*digits-cnn"):
        load_demo("mnist")


def test_digits_image_rule():
    pixels = np.zeros((8, 8))
    pixels[0, 0], pixels[0, 1], pixels[0, 2] = 16, 8, 1
    image = digits_image(pixels)
    assert image.mode == "RGB"
    assert image.size == (8, 8)
    array = np.asarray(image)
    assert array[0, :3, 0].tolist() == [255, 128, 16]  # round(v * 255 / 16)
    assert (array[..., 0] == array[..., 2]).all()
    assert array[1:].max() == 0


def test_digits_split_is_seeded_stratified_and_disjoint():
    labels = load_digits().target
    train, test = digits_split(labels)
    assert (len(train), len(test)) == (1437, 360)
    assert not set(train) & set(test)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(labels)))
    # every class keeps about a fifth of its samples for testing
    share = np.bincount(labels[test], minlength=10) / np.bincount(labels, minlength=10)
    assert np.all(np.abs(share - 0.2) < 0.02)
    again_train, _ = digits_split(labels)
    assert np.array_equal(train, again_train)
    other_train, _ = digits_split(labels, seed=1)
    assert not np.array_equal(train, other_train)
