"""Maps of several runs restricted to their common samples."""

from __future__ import annotations

import numpy as np
import pytest

from featscope.analysis.align import common_samples
from featscope.errors import DataError, ParameterError
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


# --------------------------------------------------------------------------- orientation


def _blobs(n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 6.0]])
    coords = centres[labels] + rng.normal(scale=0.5, size=(len(labels), 2))
    ids = tuple(f"s{i}" for i in range(len(labels)))
    return EmbeddingResult(coords, labels, ("a", "b", "c"), ids, point="p0", method="tsne")


def _turned(m, angle=2.0, mirror=True, shift=(5.0, -3.0), point="p1"):
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if mirror:
        rot = rot @ np.diag([1.0, -1.0])
    from dataclasses import replace

    return replace(m, coords=m.coords @ rot + np.asarray(shift), point=point)


def test_align_to_undoes_a_rotation_reflection_and_shift_keeping_distances():
    from scipy.spatial.distance import pdist

    from featscope.analysis.align import align_to, centroid_movement

    a = _blobs()
    b = _turned(a)
    assert centroid_movement(a, b) > 1.0  # mirrored and turned: the classes swap places
    back = align_to(b, a)
    np.testing.assert_allclose(back.coords, a.coords, atol=1e-9)
    np.testing.assert_allclose(pdist(back.coords), pdist(b.coords), rtol=1e-12)
    assert back.params["aligned_to"] == "p0"
    assert centroid_movement(a, back) < 1e-9
    assert centroid_movement(a, a) == 0.0


def test_align_maps_chains_each_map_onto_the_one_before_or_onto_previous():
    from featscope.analysis.align import align_maps

    a = _blobs()
    b = _turned(a, angle=1.0, point="p1")
    c = _turned(a, angle=-2.5, mirror=False, point="p2")
    out = align_maps([a, b, c])
    assert out[0] is a
    for m in out[1:]:
        np.testing.assert_allclose(m.coords, a.coords, atol=1e-9)
    assert [m.params.get("aligned_to") for m in out] == [None, "p0", "p1"]
    assert align_maps([a, b, c], "none") == (a, b, c)
    # Monitor: each map onto the same point's map of the previous epoch
    prev = align_maps([b, c], previous=[a, a], previous_label="previous epoch")
    assert prev[1].params["aligned_to"] == "p0 (previous epoch)"
    np.testing.assert_allclose(prev[1].coords, a.coords, atol=1e-9)
    with pytest.raises(ParameterError, match="`--align` must be one of procrustes, none"):
        align_maps([a], "rotate")
    with pytest.raises(ParameterError, match="`previous` has 1 maps for 2 maps"):
        align_maps([a, b], previous=[a])


def test_maps_with_too_few_shared_samples_or_other_dimensions_stay_as_they_are():
    from dataclasses import replace

    from featscope.analysis.align import align_to

    a = _blobs()
    few = replace(_turned(a), ids=("s0", "s1", *tuple(f"x{i}" for i in range(len(a.ids) - 2))))
    assert align_to(few, a) is few
    three = replace(a, coords=np.c_[a.coords, np.zeros(len(a.ids))])
    assert align_to(three, a) is three


def test_centroid_movement_needs_labelled_shared_samples():
    from dataclasses import replace

    from featscope.analysis.align import centroid_movement

    a = _blobs()
    other = replace(a, ids=tuple(f"x{i}" for i in range(len(a.ids))))
    with pytest.raises(ParameterError, match="share 0 samples"):
        centroid_movement(a, other)


def test_common_samples_carries_fields_and_renumbers_neighbours():
    ids = ("x", "y", "z", "w")
    a = EmbeddingResult(
        np.zeros((4, 2)), [0, 1, 0, 1], ("a", "b"), ids, point="p", method="pca",
        fields={"prediction": np.array([0, 1, 1, 0])},
        neighbors=np.array([[1, 2], [0, 3], [3, 0], [2, 1]], dtype=np.int32),
    )  # fmt: skip
    b = _map(("z", "x", "w"), [0, 0, 1])
    with pytest.warns(UserWarning, match="only 3 samples"):
        (sub, _), dropped = common_samples([a, b])
    assert dropped == 1
    assert sub.ids == ("x", "z", "w")
    assert sub.fields["prediction"].tolist() == [0, 1, 0]
    # x's neighbours y (dropped) and z (now row 1); z's: w (row 2) and x (row 0)
    assert sub.neighbors.tolist() == [[-1, 1], [2, 0], [1, -1]]


def test_alignment_reduces_centroid_movement_on_the_digits(digits):
    """Two "layers" of 600 digits (pixels, a random ReLU layer), t-SNE maps as tsne makes them."""
    from featscope.analysis import map_feature_sets
    from featscope.analysis.align import centroid_movement
    from featscope.options import EmbeddingOptions
    from featscope.results import FeatureSet

    X, y = digits
    X, y = X[:600], y[:600]
    relu = np.maximum(X @ np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32), 0)
    sets = [
        FeatureSet(
            features=f,
            labels=y,
            class_names=tuple("0123456789"),
            ids=tuple(f"digits:{i}" for i in range(600)),
            point=p,
        )
        for p, f in (("pixels", X), ("relu", relu))
    ]
    independent = map_feature_sets(sets, EmbeddingOptions(n_iter=300, align="none"))
    aligned = map_feature_sets(sets, EmbeddingOptions(n_iter=300))
    before, after = centroid_movement(*independent), centroid_movement(*aligned)
    assert aligned[1].params["aligned_to"] == "pixels"
    np.testing.assert_array_equal(aligned[0].coords, independent[0].coords)
    assert after < 0.5 * before, (before, after)  # measured: 1.60 -> 0.37 map radii
    assert after < 0.5


def test_fields_follow_the_rows_and_neighbours_are_renumbered():
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
    # z's neighbour w was left out (-1); x's neighbour z is now row 1
    assert aligned[1].neighbors.tolist() == [[1], [-1]]
