from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featscope.data import select_indices
from featscope.errors import DataError, ParameterError


def _reference(labels, class_idx, max_num_samples):
    """vis_tsne.py: one pass in dataset order, keep while the class has < max samples."""
    kept, counts = [], dict.fromkeys(class_idx, 0)
    for i, label in enumerate(labels):
        if label in counts and counts[label] < max_num_samples:
            kept.append(i)
            counts[label] += 1
    return kept


@pytest.fixture
def labels():
    rng = np.random.default_rng(1)
    return rng.integers(0, 10, size=500)


def test_first_matches_the_reference(labels):
    got = select_indices(labels, 10, max_num_class=4, max_num_samples=7, sample="first")
    np.testing.assert_array_equal(got, _reference(labels.tolist(), [0, 1, 2, 3], 7))
    got = select_indices(labels, 10, class_idx=[8, 2], max_num_samples=3, sample="first")
    np.testing.assert_array_equal(got, _reference(labels.tolist(), [2, 8], 3))


def test_random_is_seeded_sorted_and_capped(labels):
    a = select_indices(labels, 10, max_num_samples=5, seed=3)
    b = select_indices(labels, 10, max_num_samples=5, seed=3)
    c = select_indices(labels, 10, max_num_samples=5, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.int64
    assert np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(np.bincount(labels[a], minlength=10), [5] * 10)
    first = select_indices(labels, 10, max_num_samples=5, sample="first")
    assert not np.array_equal(a, first)


def test_class_order_and_other_classes_do_not_matter(labels):
    one = select_indices(labels, 10, class_idx=[7, 2, 5], max_num_samples=4, seed=9)
    two = select_indices(labels, 10, class_idx=[2, 5, 7], max_num_samples=4, seed=9)
    np.testing.assert_array_equal(one, two)
    assert set(labels[one]) == {2, 5, 7}
    # each class draws from its own stream: class 5 gets the same samples alone
    alone = select_indices(labels, 10, class_idx=[5], max_num_samples=4, seed=9)
    np.testing.assert_array_equal(alone, one[labels[one] == 5])


def test_no_limit_means_all(labels):
    for limit in (None, 0, -1):
        got = select_indices(labels, 10, class_idx=[4], max_num_samples=limit)
        np.testing.assert_array_equal(got, np.flatnonzero(labels == 4))
    assert len(select_indices(labels, 10, max_num_class=None, max_num_samples=None)) == 500


def test_default_takes_the_first_classes_that_have_samples():
    labels = np.array([5, 0, 2, 2, 5, 3])
    got = select_indices(labels, 6, max_num_class=2, max_num_samples=None)
    np.testing.assert_array_equal(got, [1, 2, 3])  # classes 0 and 2 (1 has no samples)


def test_class_idx_out_of_range():
    with pytest.raises(
        ParameterError,
        match=r"`--class-idx` 12 is out of range: the data has 10 classes \(0-9\); "
        r"pass indices below 10",
    ):
        select_indices(np.arange(10), 10, class_idx=[1, 12])
    with pytest.raises(ParameterError, match="`--class-idx` -1 is out of range"):
        select_indices(np.arange(10), 10, class_idx=[-1])


def test_duplicate_class_idx_warns_and_dedupes(labels):
    with pytest.warns(UserWarning, match="`--class-idx` repeats 3; each class is used once"):
        got = select_indices(labels, 10, class_idx=[3, 1, 3], max_num_samples=2)
    np.testing.assert_array_equal(
        got, select_indices(labels, 10, class_idx=[1, 3], max_num_samples=2)
    )


def test_selected_class_without_samples():
    names = [f"c{i}" for i in range(7)] + ["horse", "x", "y"]
    with pytest.raises(
        DataError,
        match=r"class 7 \('horse'\) has no samples in my-folder; drop it from --class-idx",
    ):
        select_indices(
            np.array([0, 1, 1]), 10, class_idx=[1, 7], class_names=names, source="my-folder"
        )


def test_nothing_selected_and_bad_parameters():
    with pytest.raises(DataError, match="no samples selected from the data: it has 0 samples"):
        select_indices(np.array([], dtype=np.int64), 3)
    with pytest.raises(DataError, match="no samples selected"):
        select_indices(np.array([5, 6]), 3)
    with pytest.raises(ParameterError, match="`sample` must be one of random, first; got 'all'"):
        select_indices(np.array([0]), 1, sample="all")
    with pytest.raises(ParameterError, match=r"`--seed` must be an integer from 0 to 4294967295"):
        select_indices(np.array([0]), 1, seed=-1)
    with pytest.raises(ParameterError, match=r"from 0 to 4294967295 .*got 4294967296"):
        select_indices(np.array([0]), 1, seed=2**32)
    assert select_indices(np.array([0]), 1, seed=2**32 - 1).tolist() == [0]
    with pytest.raises(ParameterError, match="`n_classes` must be a positive integer"):
        select_indices(np.array([0]), 0)
    with pytest.raises(ParameterError, match="`labels` must be integer class indices"):
        select_indices(np.array([0.5]), 2)
    with pytest.raises(ParameterError, match="`--class-idx` is empty"):
        select_indices(np.array([0]), 1, class_idx=[])


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 5), min_size=1, max_size=80),
    class_idx=st.one_of(st.none(), st.sets(st.integers(0, 5), min_size=1).map(sorted)),
    max_num_samples=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),  # the seeds numpy, scikit-learn and openTSNE take
    sample=st.sampled_from(["random", "first"]),
)
def test_selection_properties(labels, class_idx, max_num_samples, seed, sample):
    labels = np.asarray(labels)
    present = set(labels.tolist())
    if class_idx is not None and not set(class_idx) <= present:
        with pytest.raises(DataError, match="has no samples"):
            select_indices(labels, 6, class_idx=class_idx, max_num_samples=max_num_samples)
        return
    kwargs = {"class_idx": class_idx, "max_num_samples": max_num_samples, "seed": seed}
    got = select_indices(labels, 6, sample=sample, **kwargs)
    again = select_indices(labels, 6, sample=sample, **kwargs)
    np.testing.assert_array_equal(got, again)
    assert np.all(np.diff(got) > 0)
    wanted = present if class_idx is None else set(class_idx)
    assert set(labels[got].tolist()) == wanted
    for c in wanted:
        assert (labels[got] == c).sum() == min(max_num_samples, (labels == c).sum())
    if class_idx is not None:
        reordered = select_indices(
            labels, 6, sample=sample, **{**kwargs, "class_idx": class_idx[::-1]}
        )
        np.testing.assert_array_equal(got, reordered)


def test_select_samples_applies_names_then_the_selection_to_samples_and_features(tmp_path):
    from featscope.data import demo_digits, select_samples
    from featscope.options import Selection
    from featscope.results import FeatureSet, Provenance

    samples = demo_digits()
    selection = Selection(class_idx=(3, 5), max_num_samples=4, seed=1)
    picked = select_samples(samples, selection)
    keep = select_indices(samples.labels, 10, class_idx=[3, 5], max_num_samples=4, seed=1)
    assert picked.ids == tuple(samples.ids[i] for i in keep)
    names = [f"digit {i}" for i in range(10)]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    named = select_samples(samples, selection, class_names=tmp_path / "names.txt")
    assert named.class_names[3] == "digit 3"
    assert select_samples(samples, selection, class_names=names).class_names == named.class_names
    # saved features: the same rows, features and ids cut alike
    features = FeatureSet(
        features=np.arange(len(samples), dtype=np.float32)[:, None],
        labels=samples.labels,
        class_names=samples.class_names,
        ids=samples.ids,
        point="f",
        provenance=Provenance(source="f.npy"),
    )
    cut = select_samples(features, selection)
    np.testing.assert_array_equal(cut.features[:, 0], keep)
    assert cut.ids == picked.ids
    np.testing.assert_array_equal(cut.labels, samples.labels[keep])
    assert len(select_samples(features)) == 1000  # Selection(): 100 of each of the 10 digits
    with pytest.raises(DataError, match=r"class 4 \('4'\) has no samples in f\.npy"):
        select_samples(cut, Selection(class_idx=(3, 4)))
