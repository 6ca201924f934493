"""The t-SNE's parameter table: one source for the constructor, the checks and the docs."""

from __future__ import annotations

import inspect
import math
import numbers
import re

import numpy as np
import pytest

from featscope.analysis import TSNE, reduce
from featscope.analysis.embedding import METHODS
from featscope.analysis.params import Interval, check_parameters
from featscope.analysis.tsne_params import PARAMETERS, validate
from featscope.errors import ParameterError

DEFAULTS = {param.name: param.default for param in PARAMETERS}


def _two_blobs(n=20, dims=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (n, dims)), rng.normal(20, 1, (n, dims))])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"perplexity": -1}, r"The `perplexity` parameter must be > 0; got -1\."),
        ({"n_components": 4}, r"The `n_components` parameter must be 2 or 3; got 4\."),
        ({"early_exaggeration": 0.5}, r"`early_exaggeration` parameter must be >= 1; got 0\.5"),
        ({"init": "spectral"}, r"`init` parameter must be \"pca\", \"random\" or an array"),
        ({"n_iter": 250}, r"`n_iter` parameter must be > 250 \(250 iterations are early"),
        ({"learning_rate": 0}, r"`learning_rate` parameter must be \"auto\" or a number > 0"),
        ({"n_iter_without_progress": 0}, r"`n_iter_without_progress` parameter must be"),
        ({"metric": "cosinus"}, r"`metric` parameter must be one of 'euclidean'"),
        ({"n_jobs": 0}, r"`n_jobs` parameter must be a non-zero integer"),
        ({"negative_gradient_method": "barnes"}, r"`negative_gradient_method` parameter"),
        (
            {"n_components": 3, "negative_gradient_method": "fft"},
            r"\"fft\" supports 2-D maps only; got n_components=3",
        ),
        ({"init": np.zeros((5, 2))}, r"`init` array must have shape .*\(40, 2\); got \(5, 2\)"),
        ({"pca_dims": 1}, r"`pca_dims` parameter must be 0, None or an integer >= n_components"),
    ],
)
def test_invalid_parameters_rejected_in_fit(params, match):
    X = _two_blobs()
    tsne = TSNE(**params)  # __init__ only stores
    with pytest.raises(ParameterError, match=match):
        tsne.fit(X)


def test_the_table_is_the_constructor_get_params_and_the_docstring():
    signature = inspect.signature(TSNE)
    assert list(signature.parameters) == list(DEFAULTS)
    assert {name: p.default for name, p in signature.parameters.items()} == DEFAULTS
    assert TSNE().get_params() == DEFAULTS
    section = TSNE.__doc__.split("Parameters\n    ----------\n")[1].split("Attributes")[0]
    documented = re.findall(r"^    (\w+) : ", section, flags=re.MULTILINE)
    assert documented == list(DEFAULTS)
    for param in PARAMETERS:
        assert param.doc, param.name  # the one-line description docs and listings read


def test_each_rule_says_what_the_message_says():
    said = {param.name: param.rule.describe(DEFAULTS) for param in PARAMETERS}
    assert said == {
        "n_components": "2 or 3",
        "perplexity": "> 0",
        "early_exaggeration": ">= 1",
        "learning_rate": '"auto" or a number > 0',
        "n_iter": "> 250 (250 iterations are early exaggeration)",
        "n_iter_without_progress": "an integer >= 1 or None",
        "kl_rtol": "a number in [0, 1) or None",
        "init": '"pca", "random" or an array (n_samples, n_components)',
        "pca_dims": "0, None or an integer >= n_components (2)",
        "metric": "one of 'euclidean', 'cosine', 'manhattan'",
        "random_state": "an integer or None",
        "n_jobs": "a non-zero integer (-1 = all cores)",
        "negative_gradient_method": "one of 'auto', 'bh', 'fft', 'exact'",
        "neighbors": "one of 'auto', 'exact', 'annoy', 'pynndescent'",
        "device": '"cpu", "cuda" or "cuda:N"',
        "backend": "one of 'auto', 'opentsne', 'numba', 'torch'",
    }
    check_parameters(PARAMETERS, DEFAULTS)  # every default keeps its own rule


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({"n_components": True}, False),  # bools are not integers
        ({"n_components": 2.0}, False),
        ({"n_iter": 300.0}, False),
        ({"perplexity": math.nan}, False),
        ({"perplexity": np.float32(5)}, True),
        ({"kl_rtol": 1.0}, False),
        ({"kl_rtol": 0}, True),
        ({"pca_dims": False}, True),  # "off", as 0 and None
        ({"pca_dims": 0.0}, True),
        ({"pca_dims": 2, "n_components": 3}, False),  # the bound is another parameter
        ({"pca_dims": np.int64(3), "n_components": 3}, True),
        ({"n_jobs": -2}, True),
        ({"n_jobs": 1.0}, False),
        ({"learning_rate": "Auto"}, False),
        ({"random_state": None}, True),
        ({"random_state": 1.5}, False),
        ({"init": np.zeros((100, 2))}, True),
    ],
)
def test_rules_at_their_edges(changes, accepted):
    values = {**DEFAULTS, **changes}
    if accepted:
        validate(values, 100)
    else:
        with pytest.raises(ParameterError, match=rf"The `{next(iter(changes))}` parameter"):
            validate(values, 100)


def test_pca_dims_message_names_the_other_parameter():
    with pytest.raises(ParameterError, match=r"integer >= n_components \(3\); got 2\."):
        validate({**DEFAULTS, "n_components": 3, "pca_dims": 2}, 100)


def test_interval_wording():
    assert Interval(numbers.Integral, 1, 5, closed="both").describe({}) == "an integer in [1, 5]"
    assert Interval(numbers.Real, high=0, closed="neither").describe({}) == "< 0"
    assert Interval(numbers.Real, 0, 1, closed="right").describe({}) == "a number in (0, 1]"
    with pytest.raises(ValueError, match="`closed` must be one of"):
        Interval(numbers.Real, 0, closed="open")


def test_reduce_reads_each_methods_table():
    assert set(METHODS) == {"tsne", "umap", "pca"}
    X = _two_blobs()
    valid = ", ".join(sorted(p.name for p in METHODS["pca"]))
    with pytest.raises(ParameterError, match=rf"valid ones are: {valid}$"):
        reduce(X, "pca", perplexity=5)
    with pytest.raises(ParameterError, match=r"The `n_components` parameter must be 2 or 3"):
        reduce(X, "pca", n_components=1)


def test_umap_table_checks_its_rules():
    pytest.importorskip("umap")
    X = _two_blobs()
    with pytest.raises(ParameterError, match=r"The `min_dist` parameter must be >= 0; got -1\."):
        reduce(X, "umap", min_dist=-1)
    with pytest.raises(ParameterError, match=r"`n_neighbors` parameter must be an integer >= 2"):
        reduce(X, "umap", n_neighbors=1.5)
