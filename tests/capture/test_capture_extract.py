from __future__ import annotations

import numpy as np
import pytest
import torch
from capture_helpers import MultiNet, batch_of, hook_count, make_handle, make_samples
from torch import nn

from featscope.capture import ExtractionResult, extract_features
from featscope.errors import DataError, ParameterError
from featscope.models.handle import PointRef


def run(net, n=20, points=("backbone", "pre_logits"), **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("num_workers", 0)
    return extract_features(make_handle(net), make_samples(n), list(points), **kwargs)


def test_features_match_a_manual_forward(net):
    result = run(net, n=5, points=["backbone", "pre_logits", "logits"])
    assert isinstance(result, ExtractionResult)
    assert list(result.features) == ["backbone", "pre_logits", "logits"]
    assert result.pooling == {"backbone": "global_avg", "pre_logits": "none", "logits": "none"}
    net.eval()
    with torch.no_grad():
        x = batch_of(5)
        maps = net.features(x)
        logits = net(x)
    for name in result.features:
        assert result.features[name].dtype == np.float32
    np.testing.assert_allclose(result.features["backbone"], maps.mean(dim=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(result.features["pre_logits"], maps.mean(dim=(2, 3)), atol=1e-6)
    np.testing.assert_allclose(result.features["logits"], logits, atol=1e-6)
    np.testing.assert_array_equal(result.kept, np.arange(5))
    assert result.skipped == ()


def test_same_samples_give_identical_features(net):
    first, second = run(net), run(net)
    for name in first.features:
        np.testing.assert_array_equal(first.features[name], second.features[name])


def test_batch_size_does_not_change_features_and_last_batch_of_one_works(net):
    whole = run(net, batch_size=20)
    in_sevens = run(net, batch_size=7)  # 7 + 7 + 6
    last_of_one = run(net, n=21, batch_size=10)  # 10 + 10 + 1
    for name in whole.features:
        assert in_sevens.features[name].shape == (20, whole.features[name].shape[1])
        np.testing.assert_allclose(in_sevens.features[name], whole.features[name], atol=1e-6)
        assert last_of_one.features[name].shape[0] == 21
        np.testing.assert_allclose(last_of_one.features[name][:20], whole.features[name], atol=1e-6)


def test_skip_bad_images_keeps_the_rest(net):
    samples = make_samples(9, bad={3})
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        result = extract_features(
            make_handle(net), samples, ["backbone"], batch_size=4, progress=False,
            skip_bad_images=True,
        )  # fmt: skip
    np.testing.assert_array_equal(result.kept, [0, 1, 2, 4, 5, 6, 7, 8])
    assert result.skipped == (("img_3.png", "cannot read image 'img_3.png': file is truncated"),)
    full = run(net, n=9, points=["backbone"])
    np.testing.assert_allclose(
        result.features["backbone"], full.features["backbone"][result.kept], atol=1e-6
    )


def test_bad_image_without_the_flag_raises_with_the_hint(net):
    with pytest.raises(
        DataError, match=r"cannot read image 'img_3.png'.*pass --skip-bad-images"
    ) as exc:
        extract_features(make_handle(net), make_samples(6, bad={3}), ["fc"], progress=False)
    assert "\n" not in str(exc.value)
    assert hook_count(net) == 0


def test_no_readable_image_is_a_data_error(net):
    samples = make_samples(2, bad={0, 1})
    with pytest.raises(DataError, match="none of the 2 images from 'memory' could be read"):
        extract_features(make_handle(net), samples, ["fc"], progress=False, skip_bad_images=True)


def test_worker_processes_give_the_same_features(net):
    in_process = run(net, n=12, batch_size=5)
    with_workers = run(net, n=12, batch_size=5, num_workers=2)
    for name in in_process.features:
        np.testing.assert_array_equal(with_workers.features[name], in_process.features[name])


def test_worker_processes_report_bad_images_as_one_line_errors(net):
    one_line = r"^cannot read image 'img_1.png'[^\n]*skip-bad-images[^\n]*images$"
    with pytest.raises(DataError, match=one_line):
        extract_features(
            make_handle(net), make_samples(4, bad={1}), ["fc"], progress=False, num_workers=2
        )


def test_tuple_and_dict_points_become_one_feature_per_element():
    torch.manual_seed(0)
    handle = make_handle(
        MultiNet(),
        aliases={"neck": PointRef("neck"), "logits": PointRef("head", select="score")},
    )
    result = extract_features(
        handle, make_samples(3), ["neck", "head", "logits"], progress=False, batch_size=2
    )
    assert list(result.features) == ["neck.0", "neck.1", "head.emb", "head.score", "logits"]
    assert result.pooling["neck.0"] == "global_avg"
    assert result.pooling["head.emb"] == "none"
    assert result.features["neck.1"].shape == (3, 8)
    np.testing.assert_array_equal(result.features["logits"], result.features["head.score"])


def test_token_outputs_use_the_class_token_when_the_model_has_one():
    class Tokens(torch.nn.Module):
        def forward(self, x):
            return x.flatten(2).transpose(1, 2)  # (N, H*W, 3)

    samples = make_samples(4)
    cls = extract_features(
        make_handle(Tokens(), aliases={}, num_prefix_tokens=1), samples, [""], progress=False
    )
    mean = extract_features(make_handle(Tokens(), aliases={}), samples, [""], progress=False)
    assert cls.pooling == {"": "cls_token"}
    assert mean.pooling == {"": "token_mean"}
    x = batch_of(4)
    np.testing.assert_allclose(cls.features[""], x[:, :, 0, 0], atol=1e-6)
    np.testing.assert_allclose(mean.features[""], x.mean(dim=(2, 3)), atol=1e-6)


def test_model_state_is_left_as_it_was(net):
    net.train()
    run(net, n=3)
    assert hook_count(net) == 0
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "`batch_size` must be a positive integer; got 0"),
        ({"num_workers": -1}, "`num_workers` must be an integer >= 0"),
        ({"device": "cuda"}, "'cuda' was requested but no CUDA device is available.*--device cpu"),
        ({"device": "gpu0"}, "`device` 'gpu0' is not a torch device"),
        ({"amp": "fp8"}, "`amp` must be 'auto', 'off', 'bf16' or 'fp16' .*; got 'fp8'"),
    ],
)
def test_bad_parameters_are_parameter_errors(net, monkeypatch, kwargs, match):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match=match):
        run(net, n=2, **kwargs)


def test_amp_on_cpu_warns_and_runs_in_float32(net):
    with pytest.warns(UserWarning, match="`amp` True picks half precision on CUDA only"):
        result = run(net, n=2, amp=True)
    np.testing.assert_allclose(result.features["backbone"], run(net, n=2).features["backbone"])


def test_amp_auto_is_float32_on_a_cpu_without_native_bf16_and_bf16_autocasts(
    net, recwarn, monkeypatch
):
    from featscope.capture import precision

    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: False)
    fp32 = run(net, n=4)
    auto = run(net, n=4, amp="auto")
    assert not [w for w in recwarn if "amp" in str(w.message)]  # "auto" is silent on a CPU
    bf16 = run(net, n=4, amp="bf16")
    for name in fp32.features:
        np.testing.assert_array_equal(auto.features[name], fp32.features[name])
        assert bf16.features[name].dtype == np.float32
        # bfloat16 keeps 8 bits of mantissa: close to float32, but not equal.
        np.testing.assert_allclose(bf16.features[name], fp32.features[name], rtol=0.05, atol=0.05)
        assert not np.array_equal(bf16.features[name], fp32.features[name])


def test_empty_samples_is_a_data_error(net):
    with pytest.raises(DataError, match="samples from 'memory' are empty"):
        extract_features(make_handle(net), make_samples(0), ["fc"], progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_extraction_matches_cpu_and_returns_the_model(net, amp):
    cpu = run(net, n=10, batch_size=4)
    gpu = run(net, n=10, batch_size=4, device="cuda", amp=amp)
    assert next(net.parameters()).device.type == "cpu"
    assert net.features[0].weight.is_contiguous()
    tol = 5e-2 if amp else 1e-4
    for name in cpu.features:
        np.testing.assert_allclose(gpu.features[name], cpu.features[name], atol=tol, rtol=tol)


@pytest.mark.parametrize(
    ("size", "device", "expected"),
    [
        ((224, 224), "cpu", 8),
        ((32, 32), "cpu", 64),
        ((96, 96), "cpu", 32),
        ((384, 384), "cpu", 2),
        ((224, 224), "cuda", 64),
    ],
)
def test_default_batch_size_keeps_cpu_batches_small_for_large_inputs(size, device, expected):
    import dataclasses

    from featscope.capture.extract import default_batch_size
    from featscope.models.handle import Preprocessing

    three_convs = nn.Sequential(*(nn.Conv2d(3, 3, 3) for _ in range(3)))
    handle = dataclasses.replace(
        make_handle(three_convs), preprocess=Preprocessing(input_size=size)
    )
    assert default_batch_size(handle, device) == expected
    # a hand-written preprocessing callable says nothing of its size
    plain = dataclasses.replace(make_handle(three_convs), preprocess=lambda image: image)
    assert default_batch_size(plain, "cpu") == 64


def test_default_batch_size_gives_the_features_of_any_batch_size(net):
    np.testing.assert_allclose(
        run(net, n=10).features["backbone"], run(net, n=10, batch_size=3).features["backbone"],
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip


def test_preprocessed_images_stack_into_a_channels_last_batch_without_copying_twice():
    from PIL import Image

    from featscope.capture.extract import _stack
    from featscope.models.preprocessing import Preprocessing, apply_preprocessing

    rng = np.random.default_rng(0)
    pre = Preprocessing(input_size=(32, 32))
    pictures = [Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)) for _ in "ab"]
    images = [apply_preprocessing(pre, p) for p in pictures]
    assert images[0].shape == (3, 32, 32)
    assert images[0].permute(1, 2, 0).is_contiguous()  # the pixels' own (H, W, C) order
    batch = _stack(images)
    assert batch.shape == (2, 3, 32, 32)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, torch.stack([t.contiguous() for t in images]))
    # other layouts (a user's transform) stack as torch does
    plain = _stack([t.contiguous() for t in images])
    assert plain.is_contiguous()
    assert torch.equal(plain, batch)
