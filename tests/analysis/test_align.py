"""Maps of several runs restricted to their common samples."""

from __future__ import annotations

import numpy as np
import pytest

from featscope.analysis.align import common_samples
from featscope.errors import DataError
from featscope.results import EmbeddingResult


def _map(ids, labels, offset=0.0, names=("a", "b")):
    coords = np.arange(len(ids) * 2, dtype=float).reshape(-1, 2) + offset
    return EmbeddingResult(coords, labels, names, ids, point="p", method="pca")


def test_same_samples_pass_through_unchanged():
    a = _map(("x", "y", "z"), [0, 1, 0])
    b = _map(("x", "y", "z"), [0, 1, 0], offset=10)
    aligned, dropped = common_samples([a, b])
    assert dropped == 0
    assert aligned[0] is a or np.array_equal(aligned[0].coords, a.coords)
    assert np.array_equal(aligned[1].coords, b.coords)


def test_rows_follow_the_first_map_and_take_its_labels():
    a = _map(("x", "y", "z"), [0, 1, 0], names=("cat", "dog"))
    b = _map(("z", "w", "x"), [1, 1, 1], offset=100, names=("other", "names"))
    with pytest.warns(UserWarning, match="only 2 samples are in every run"):
        aligned, dropped = common_samples([a, b])
    assert dropped == 1
    assert aligned[1].ids == ("x", "z")
    # b's rows for x (row 2) and z (row 0), in a's order
    assert np.array_equal(aligned[1].coords, [[104.0, 105.0], [100.0, 101.0]])
    assert aligned[1].labels.tolist() == [0, 0]
    assert aligned[1].class_names == ("cat", "dog")


def test_no_shared_sample_is_one_line():
    with pytest.raises(DataError, match="share no sample id"):
        common_samples([_map(("x",), [0]), _map(("y",), [0])])


def test_fields_follow_the_rows_and_stale_neighbours_are_dropped():
    from dataclasses import replace

    a = _map(("x", "y", "z"), [0, 1, 0])
    b = replace(
        _map(("z", "w", "x"), [1, 1, 1]),
        fields={"cluster": np.array([7, 8, 9])},
        neighbors=np.array([[1], [2], [0]]),
    )
    with pytest.warns(UserWarning, match="only 2 samples"):
        aligned, _ = common_samples([a, b])
    assert aligned[1].fields["cluster"].tolist() == [9, 7]  # x, z
    assert aligned[1].neighbors is None
