"""Channel reductions, top-k, standardisation, difference and input checks (analysis/channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featscope.analysis.channels import (
    as_chw,
    as_float_array,
    check_finite,
    feature_difference,
    reduce_channels,
    standardize_channels,
    topk_channels,
)
from featscope.errors import ParameterError

# Four 2x2 channels. Signed spatial sums: c0 = 2, c1 = 6, c2 = -4, c3 = 0. Channel 3 has the
# largest single value (9) but select_max ranks by the signed sum, so it picks channel 1.
X = np.array(
    [
        [[1, -2], [3, 0]],
        [[0, 5], [-1, 2]],
        [[2, 2], [2, -10]],
        [[9, -9], [0, 0]],
    ],
    dtype=np.float32,
)


def test_pixel_wise_max_by_hand():
    expected = np.array([[9, 5], [3, 2]], np.float32)
    out = reduce_channels(X, "pixel_wise_max")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_squeeze_mean_by_hand():
    # (1+0+2+9)/4, (-2+5+2-9)/4, (3-1+2+0)/4, (0+2-10+0)/4
    expected = np.array([[3.0, -1.0], [1.0, -2.0]], np.float32)
    np.testing.assert_array_equal(reduce_channels(X, "squeeze_mean"), expected)


def test_select_max_uses_signed_sum_not_max():
    np.testing.assert_array_equal(reduce_channels(X, "select_max"), X[1])


def test_select_max_first_channel_on_ties():
    tied = np.stack([np.eye(2), np.eye(2)[::-1]]).astype(np.float32)  # both sum to 2
    np.testing.assert_array_equal(reduce_channels(tied, "select_max"), tied[0])


def test_none_takes_the_single_channel_and_rejects_more():
    np.testing.assert_array_equal(reduce_channels(X[:1], None), X[0])
    with pytest.raises(ParameterError, match=r"None needs a one-channel map.*4 channels"):
        reduce_channels(X, None)


def test_unknown_reduction():
    with pytest.raises(ParameterError, match=r"`channel_reduction` 'mean' is not one of"):
        reduce_channels(X, "mean")


@pytest.mark.parametrize(("c", "h", "w"), [(3, 4, 5), (17, 7, 7), (40, 1, 1), (33, 5, 9)])
def test_squeeze_mean_is_bit_identical_to_torch(c, h, w):
    x = np.random.default_rng(c).standard_normal((c, h, w)).astype(np.float32) * 7
    expected = torch.from_numpy(x).mean(dim=0).numpy()
    np.testing.assert_array_equal(reduce_channels(x, "squeeze_mean"), expected)


def test_topk_order_and_indices():
    maps, idx = topk_channels(X, 3)
    np.testing.assert_array_equal(idx, [1, 0, 3])
    np.testing.assert_array_equal(maps, X[[1, 0, 3]])


def test_topk_larger_than_channels_gives_all_in_order():
    maps, idx = topk_channels(X, 20)
    np.testing.assert_array_equal(idx, [1, 0, 3, 2])
    assert maps.shape == (4, 2, 2)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_topk_rejects_non_positive_or_non_int(k):
    with pytest.raises(ParameterError, match=r"`topk` .* is not a positive integer"):
        topk_channels(X, k)


def test_as_float_array_dtypes():
    assert as_float_array(np.ones((2, 2), np.float16)).dtype == np.float32
    assert as_float_array(np.arange(4, dtype=np.int64)).dtype == np.float32
    assert as_float_array(np.array([True, False])).dtype == np.float32
    bf16 = torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16)
    out = as_float_array(bf16)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, -2.0]])
    half = torch.tensor([0.25], dtype=torch.float16, requires_grad=True)
    np.testing.assert_array_equal(as_float_array(half), [0.25])  # detached
    with pytest.raises(ParameterError, match=r"dtype <U1, which is not a real number type"):
        as_float_array(np.array(["a"]))
    with pytest.raises(ParameterError, match=r"is not a real number type"):
        as_float_array(np.array([1 + 2j]))


def test_shapes_accepted_and_rejected():
    assert as_chw(np.zeros((3, 4))).shape == (1, 3, 4)
    assert as_chw(np.zeros((1, 5, 3, 4))).shape == (5, 3, 4)
    with pytest.raises(ParameterError, match=r"shape \(2, 5, 3, 4\), a batch of 2; expected"):
        as_chw(np.zeros((2, 5, 3, 4)))
    with pytest.raises(ParameterError, match=r"shape \(7,\) \(1-D\); expected \(C, H, W\)"):
        as_chw(np.zeros(7))
    with pytest.raises(ParameterError, match=r"\(5-D\); expected \(C, H, W\)"):
        as_chw(np.zeros((1, 1, 2, 2, 2)))
    with pytest.raises(ParameterError, match=r"shape \(0, 2, 2\) with an empty axis"):
        as_chw(np.zeros((0, 2, 2)))


def test_nan_raise_names_count_and_fix():
    x = X.copy()
    x[0, 0, 0] = np.nan
    x[2, 1, 1] = np.inf
    with pytest.raises(ParameterError, match=r"2 non-finite values .* nan_policy='mask'"):
        reduce_channels(x, "pixel_wise_max")


def test_nan_mask_uses_finite_min():
    x = X.copy()
    x[3, 0, 0] = np.nan  # the 9 becomes the finite min, -10
    x[1, 0, 1] = -np.inf
    masked = check_finite(x, "mask")
    assert masked[3, 0, 0] == -10
    assert masked[1, 0, 1] == -10
    assert np.isnan(x[3, 0, 0])  # input untouched
    np.testing.assert_array_equal(
        reduce_channels(x, "pixel_wise_max", nan_policy="mask"), [[2, 2], [3, 2]]
    )


def test_nan_mask_with_nothing_finite_and_unknown_policy():
    with pytest.raises(ParameterError, match=r"no finite value at all \(4 NaN/inf values\)"):
        check_finite(np.full((1, 2, 2), np.nan, np.float32), "mask")
    with pytest.raises(ParameterError, match=r"`nan_policy` 'ignore' is not one of"):
        check_finite(X, "ignore")


def test_standardize_by_hand():
    # one channel [1, 3]: mean 2, unbiased std sqrt(2); constant channel -> 0
    x = np.array([[[1.0, 3.0]], [[5.0, 5.0]]], np.float32)
    z = standardize_channels(x)
    assert z.shape == (2, 1, 2)
    assert z.dtype == np.float32
    s = np.sqrt(2.0)
    np.testing.assert_allclose(z[0, 0], [-1 / (s + 1e-6), 1 / (s + 1e-6)], rtol=1e-6)
    np.testing.assert_array_equal(z[1], 0)


def test_standardize_pools_batch_and_space_per_channel():
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5)).astype(np.float32) * 4 + 2
    z = standardize_channels(x)
    assert z.shape == x.shape
    t = torch.from_numpy(x).permute(1, 0, 2, 3).reshape(2, -1)
    expected = ((t - t.mean(1, keepdim=True)) / (t.std(1, keepdim=True) + 1e-6)).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(z, expected.permute(1, 0, 2, 3).numpy(), atol=1e-5)


def test_feature_difference():
    a = np.array([[[1.0, -2.0]]], np.float32)
    b = torch.tensor([[[3.0, -2.5]]])
    np.testing.assert_array_equal(feature_difference(a, b), [[[2.0, 0.5]]])
    with pytest.raises(ParameterError, match=r"shapes \(2, 3, 3\) and \(2, 4, 4\) cannot be"):
        feature_difference(np.zeros((2, 3, 3)), np.zeros((2, 4, 4)))
