from __future__ import annotations

import pytest
import torch

from featscope.capture import flatten_outputs, pool
from featscope.errors import CaptureError


def test_global_average_pool_of_maps():
    x = torch.randn(3, 4, 5, 6)
    vectors, rule = pool(x, num_prefix_tokens=1)  # prefix tokens do not matter for maps
    assert rule == "global_avg"
    assert vectors.shape == (3, 4)
    torch.testing.assert_close(vectors, x.mean(dim=(2, 3)))


def test_class_token_versus_token_mean():
    x = torch.randn(2, 7, 5)
    cls, rule = pool(x, num_prefix_tokens=1)
    assert rule == "cls_token"
    torch.testing.assert_close(cls, x[:, 0])
    mean, rule = pool(x, num_prefix_tokens=0)
    assert rule == "token_mean"
    torch.testing.assert_close(mean, x.mean(dim=1))


def test_vectors_pass_through_and_scalars_per_sample_become_columns():
    x = torch.randn(4, 9)
    vectors, rule = pool(x)
    assert rule == "none"
    torch.testing.assert_close(vectors, x)
    column, rule = pool(torch.arange(3.0))
    assert (rule, column.shape) == ("none", (3, 1))
    torch.testing.assert_close(column[:, 0], torch.arange(3.0))


def test_volumes_average_over_every_spatial_dim():
    x = torch.randn(2, 3, 4, 5, 6)
    vectors, rule = pool(x)
    assert rule == "global_avg"
    torch.testing.assert_close(vectors, x.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize(
    ("shape", "prefix", "expected"),
    [
        ((1, 4, 3, 3), 0, (1, 4)),
        ((1, 5, 6), 1, (1, 6)),
        ((1, 5, 6), 0, (1, 6)),
        ((1, 8), 0, (1, 8)),
        ((1, 1, 1, 1), 0, (1, 1)),
        ((1,), 0, (1, 1)),
    ],
)
def test_batch_of_one_keeps_the_batch_dim(shape, prefix, expected):
    vectors, _ = pool(torch.randn(*shape), num_prefix_tokens=prefix)
    assert tuple(vectors.shape) == expected


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_pooling_computes_in_float32(dtype):
    x = torch.full((2, 3, 64, 64), 3, dtype=dtype)
    vectors, _ = pool(x)
    assert vectors.dtype == torch.float32
    torch.testing.assert_close(vectors, torch.full((2, 3), 3.0))


def test_scalar_output_is_a_capture_error():
    with pytest.raises(CaptureError, match=r"scalar .* no batch dimension"):
        pool(torch.tensor(1.0))


def test_flatten_names_tuple_dict_and_nested_elements():
    a, b, c, d = (torch.full((2, 1), float(v)) for v in range(4))
    assert list(flatten_outputs("x", a)) == ["x"]
    flat = flatten_outputs("neck", (a, [b, {"hi": c, "none": None, "s": "str"}], (2, 3), d))
    assert list(flat) == ["neck.0", "neck.1.0", "neck.1.1.hi", "neck.3"]
    assert flat["neck.1.1.hi"] is c
    assert list(flatten_outputs("", (a, b))) == ["0", "1"]


def test_flatten_reads_hf_model_output():
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    hidden, pooled = torch.randn(2, 5, 4), torch.randn(2, 4)
    out = BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)
    flat = flatten_outputs("backbone", out)
    assert list(flat) == ["backbone.last_hidden_state", "backbone.pooler_output"]
    assert flat["backbone.pooler_output"] is pooled


def test_flatten_without_any_tensor_is_a_capture_error():
    with pytest.raises(CaptureError, match="'p' produced tuple, which holds no tensor"):
        flatten_outputs("p", (None, "x"))
