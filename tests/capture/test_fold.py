"""BatchNorm folding: which pairs fold, the caller's model untouched, the same features."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from capture_helpers import TinyCNN, batch_of, make_handle, make_samples
from torch import nn

from featscope.capture import extract_features
from featscope.capture import fold as fold_module
from featscope.capture.fold import batchnorm_pairs, fold_batchnorm, folded_handle
from featscope.capture.points import resolve_points


def _trained_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    # statistics and affine terms far from the identity, so a wrong fold shows
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


class Residual(nn.Module):
    """conv1 feeds a BatchNorm and the residual sum: folding it would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.bn1 = _trained_bn(nn.BatchNorm2d(3))
        self.conv2 = nn.Conv2d(3, 4, 1, bias=False)
        self.bn2 = _trained_bn(nn.BatchNorm2d(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        return self.bn2(self.conv2(self.bn1(y) + y))


class ActBN(nn.BatchNorm2d):
    """A BatchNorm subclass that also applies an activation (like timm's BatchNormAct2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(super().forward(x))


class Branchy(nn.Module):
    """Control flow on the data: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.bn(self.conv(x))
        return self.conv(x)


def _net() -> TinyCNN:
    torch.manual_seed(0)
    net = TinyCNN()
    _trained_bn(net.features[1])
    return net.eval()


def test_pairs_are_a_conv_and_the_batchnorm_that_is_its_only_user():
    assert batchnorm_pairs(_net()) == [("features.0", "features.1")]
    # conv1 also feeds the residual sum; conv2 -> bn2 folds
    assert batchnorm_pairs(Residual()) == [("conv2", "bn2")]


def test_subclassed_batchnorms_and_untraceable_models_are_left_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), ActBN(4))
    assert batchnorm_pairs(net) == []
    assert batchnorm_pairs(Branchy()) == []
    assert batchnorm_pairs(nn.Sequential(nn.Linear(3, 3))) == []  # nothing to trace


def test_folding_copies_the_model_and_keeps_every_module_name():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded, names = fold_batchnorm(net)
    assert names == ("features.1",)
    assert folded is not net
    assert isinstance(folded.features[1], nn.Identity)
    assert isinstance(net.features[1], nn.BatchNorm2d)  # the caller's model is untouched
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    x = batch_of(4)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
        # a hook on the folded BatchNorm's name still sees the BatchNorm's output
        torch.testing.assert_close(
            folded.features[:2](x), net.features[:2](x), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("keep", [{"features.0"}, {"features.1"}])
def test_a_pair_with_a_capture_point_is_not_folded(keep):
    net = _net()
    folded, names = fold_batchnorm(net, keep)
    assert folded is net
    assert names == ()


def test_residual_model_folds_only_the_safe_pair_and_gives_the_same_output():
    torch.manual_seed(1)
    net = Residual().eval()
    folded, names = fold_batchnorm(net)
    assert names == ("bn2",)
    assert isinstance(folded.bn1, nn.BatchNorm2d)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_extraction_folds_and_gives_the_same_features(caplog):
    net = _net()
    samples = make_samples(10)
    common = {"progress": False, "num_workers": 0, "batch_size": 4}
    with caplog.at_level(logging.INFO, logger="featscope.capture.extract"):
        folded = extract_features(make_handle(net), samples, ["backbone", "logits"], **common)
    assert "folded 1 BatchNorm layers" in caplog.text
    plain = extract_features(
        make_handle(net), samples, ["backbone", "logits"], fold_batchnorm=False, **common
    )
    for name in plain.features:
        np.testing.assert_allclose(
            folded.features[name], plain.features[name], rtol=1e-5, atol=1e-6
        )
    assert isinstance(net.features[1], nn.BatchNorm2d)


def test_a_copy_that_disagrees_with_the_model_is_not_used(monkeypatch, caplog):
    net = _net()
    handle = make_handle(net)

    def broken(module, keep=()):
        copy, names = fold_batchnorm(module, keep)  # the real fold, imported above
        with torch.no_grad():
            copy.features[0].bias.add_(1.0)  # a fold that went wrong
        return copy, names

    monkeypatch.setattr(fold_module, "fold_batchnorm", broken)
    points = resolve_points(handle, ["backbone"])
    with caplog.at_level(logging.WARNING, logger="featscope.capture.fold"):
        same, names = folded_handle(handle, points, lambda: batch_of(3))
    assert same is handle
    assert names == ()
    assert "checked and not used" in caplog.text


def test_the_settings_say_how_the_model_ran():
    common = {"progress": False, "num_workers": 0}
    folded = extract_features(make_handle(_net()), make_samples(6), ["backbone"], **common)
    assert folded.settings == {
        "device": "cpu",
        "batch_size": 64,
        "precision": "float32",
        "channels_last": True,
        "folded_batchnorms": 1,
    }
    plain = extract_features(
        make_handle(_net()), make_samples(6), ["backbone"], fold_batchnorm=False, **common
    )
    assert plain.settings["folded_batchnorms"] == 0


def test_a_captured_container_ending_with_the_conv_keeps_its_pair_only():
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 3)),  # "0": its output is the conv's
        _trained_bn(nn.BatchNorm2d(4)),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        _trained_bn(nn.BatchNorm2d(4)),
    ).eval()
    folded, names = fold_batchnorm(net, keep={"0"})
    assert names == ("4",)
    assert isinstance(folded[1], nn.BatchNorm2d)
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(folded[0](x), net[0](x))  # what a hook on "0" sees
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_half_precision_models_are_not_folded():
    net = _net().half()
    folded, names = fold_batchnorm(net)
    assert folded is net
    assert names == ()


class Stateful(TinyCNN):
    """Counts its forward calls and keeps the last input: tracing must not touch it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.last = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.last = x
        return super().forward(x)


def test_tracing_runs_on_the_copy_not_on_the_callers_model():
    torch.manual_seed(0)
    net = Stateful().eval()
    folded, names = fold_batchnorm(net)
    assert names == ("features.1",)
    assert folded.calls == 1  # the copy was traced
    assert net.calls == 0
    assert net.last is None


def test_shape_bias_logits_follow_the_fold_option():
    from featscope.capture.logits import extract_logits
    from featscope.options import Extraction

    handle, samples = make_handle(_net()), make_samples(4)
    off = extract_logits(handle, samples, Extraction(fold_bn=False, progress=False))
    on = extract_logits(handle, samples, Extraction(progress=False))
    assert off.settings["folded_batchnorms"] == 0
    assert on.settings["folded_batchnorms"] == 1
    np.testing.assert_allclose(on.features["logits"], off.features["logits"], rtol=1e-5, atol=1e-6)
