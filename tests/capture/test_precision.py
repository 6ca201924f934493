"""amp="auto" on a CPU: bfloat16 only where it is native and keeps the features."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from capture_helpers import TinyCNN, make_handle, make_samples

from featscope.capture import extract_features, precision
from featscope.capture.precision import TOLERANCE, check_bf16
from featscope.capture.precision import native_cpu_bf16 as real_native_cpu_bf16

_W = torch.linspace(-1, 1, 3 * 8 * 8 * 5).reshape(3 * 8 * 8, 5)


def _features(x: torch.Tensor) -> dict[str, torch.Tensor]:
    # a matrix product, which autocast runs in bfloat16
    return {"a": (x.flatten(1) @ _W).float(), "b": x.mean(dim=(2, 3))}


def test_check_keeps_bf16_when_the_features_agree():
    x = torch.rand(4, 3, 8, 8)
    check = check_bf16(_features, x)
    assert check.dtype is torch.bfloat16
    assert 0 < check.difference <= TOLERANCE
    assert check.images == 4
    assert "amp auto: bfloat16" in check.describe()


def test_check_falls_back_to_float32_when_bf16_moves_the_features():
    def fragile(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = _features(x)
        if torch.is_autocast_enabled("cpu"):  # what a bf16-sensitive network does
            out["b"] = out["b"] * 1.1
        return out

    check = check_bf16(fragile, torch.rand(4, 3, 8, 8))
    assert check.dtype is None
    assert check.difference == pytest.approx(0.1, rel=0.05)
    assert "amp auto: float32" in check.describe()


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu avx512f avx512_bf16 sse", True),
        ("fpu amx_bf16 amx_tile", True),
        ("fpu avx512f", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, monkeypatch, flags, native):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(precision, "_CPUINFO", str(info))
    monkeypatch.setattr(precision.sys, "platform", "linux")
    real_native_cpu_bf16.cache_clear()  # the real function (tests pin the module's to False)
    try:
        assert real_native_cpu_bf16() is native
    finally:
        real_native_cpu_bf16.cache_clear()


def _run(net, **kwargs):
    return extract_features(
        make_handle(net), make_samples(12), ["backbone"], progress=False, num_workers=0,
        batch_size=4, fold_batchnorm=False, **kwargs,
    )  # fmt: skip


def test_auto_without_native_bf16_is_exact_float32(monkeypatch):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: False)
    torch.manual_seed(0)
    net = TinyCNN()
    auto, off = _run(net, amp="auto"), _run(net, amp="off")
    np.testing.assert_array_equal(auto.features["backbone"], off.features["backbone"])


@pytest.mark.parametrize(("tolerance", "kept"), [(1.0, True), (0.0, False)])
def test_auto_with_native_bf16_follows_the_check(monkeypatch, caplog, tolerance, kept):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: True)
    monkeypatch.setattr(precision, "TOLERANCE", tolerance)
    torch.manual_seed(0)
    net = TinyCNN()
    with caplog.at_level(logging.INFO, logger="featscope.capture.extract"):
        auto = _run(net, amp="auto")
    bf16, off = _run(net, amp="bf16"), _run(net, amp="off")
    expected = bf16 if kept else off
    np.testing.assert_array_equal(auto.features["backbone"], expected.features["backbone"])
    assert ("amp auto: bfloat16" if kept else "amp auto: float32") in caplog.text


def test_auto_checks_prepared_float64_tensors_like_the_loop_converts_them(monkeypatch):
    from featscope.data import torch_dataset

    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: True)
    torch.manual_seed(0)
    items = [(torch.rand(3, 16, 16, dtype=torch.float64), i % 2) for i in range(6)]
    samples = torch_dataset(items)
    result = extract_features(
        make_handle(TinyCNN()), samples, ["backbone"], amp="auto", progress=False, num_workers=0
    )
    assert result.features["backbone"].shape == (6, 8)
    assert result.settings["precision"] in ("bfloat16", "float32")
