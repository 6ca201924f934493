from __future__ import annotations

import logging

import numpy as np
import pytest

from featscope.data import load_features
from featscope.errors import DataError
from featscope.results import FeatureSet


@pytest.fixture
def feats():
    return np.arange(12, dtype=np.float64).reshape(4, 3)


def test_npy_without_labels(tmp_path, feats, caplog):
    np.save(tmp_path / "feats.npy", feats)
    with caplog.at_level(logging.INFO, logger="featscope.data.features_io"):
        result = load_features(tmp_path / "feats.npy")
    assert isinstance(result, FeatureSet)
    assert result.features.dtype == np.float32
    np.testing.assert_array_equal(result.features, feats)
    np.testing.assert_array_equal(result.labels, [-1, -1, -1, -1])  # unlabelled
    assert result.class_names == ()
    assert result.ids == ("feats:0", "feats:1", "feats:2", "feats:3")
    assert result.point == "feats"
    assert result.pooling == "none"
    assert result.provenance.source == str(tmp_path / "feats.npy")
    assert "has no labels" in caplog.text


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float16, np.float64, np.bool_])
def test_feature_dtypes_become_float32(tmp_path, dtype):
    np.save(tmp_path / "f.npy", np.ones((2, 2), dtype=dtype))
    result = load_features(tmp_path / "f.npy")
    assert result.features.dtype == np.float32
    np.testing.assert_array_equal(result.features, np.ones((2, 2)))


def test_single_sample_and_constant_features_are_allowed(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((1, 5)))
    assert load_features(tmp_path / "one.npy", point="layer4").point == "layer4"


def test_npy_with_labels_npy_and_names(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    np.save(tmp_path / "l.npy", np.array([2, 0, 1, 2]))
    result = load_features(tmp_path / "f.npy", labels=tmp_path / "l.npy", class_names=list("abcd"))
    np.testing.assert_array_equal(result.labels, [2, 0, 1, 2])
    assert result.class_names == ("a", "b", "c", "d")
    result = load_features(tmp_path / "f.npy", labels=tmp_path / "l.npy")
    assert result.class_names == ("0", "1", "2")


def test_labels_txt_names_sorted_or_in_class_names_order(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    (tmp_path / "l.txt").write_text("dog\ncat\ndog\nbird\n\n")
    result = load_features(tmp_path / "f.npy", labels=str(tmp_path / "l.txt"))
    assert result.class_names == ("bird", "cat", "dog")
    np.testing.assert_array_equal(result.labels, [2, 1, 2, 0])
    (tmp_path / "names.txt").write_text("dog\ncat\nbird\nfish\n")
    result = load_features(
        tmp_path / "f.npy", labels=tmp_path / "l.txt", class_names=tmp_path / "names.txt"
    )
    assert result.class_names == ("dog", "cat", "bird", "fish")
    np.testing.assert_array_equal(result.labels, [0, 1, 0, 2])
    with pytest.raises(DataError, match=r"label 'bird' \(line 4\) is not one of the 2 class names"):
        load_features(tmp_path / "f.npy", labels=tmp_path / "l.txt", class_names=["dog", "cat"])


def test_labels_txt_ints(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    (tmp_path / "l.txt").write_text("1\n0\n3\n1\n")
    np.testing.assert_array_equal(
        load_features(tmp_path / "f.npy", labels=tmp_path / "l.txt").labels, [1, 0, 3, 1]
    )
    (tmp_path / "gap.txt").write_text("1\n\n3\n1\n")
    with pytest.raises(DataError, match=r"has a blank line \(line 2\)"):
        load_features(tmp_path / "f.npy", labels=tmp_path / "gap.txt")


def test_labels_csv_single_column_and_label_column(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    (tmp_path / "one.csv").write_text("target\n1\n0\n1\n1\n")  # title row: one row too many
    np.testing.assert_array_equal(
        load_features(tmp_path / "f.npy", labels=tmp_path / "one.csv").labels, [1, 0, 1, 1]
    )
    (tmp_path / "nohead.csv").write_text("1\n0\n1\n1\n")
    np.testing.assert_array_equal(
        load_features(tmp_path / "f.npy", labels=tmp_path / "nohead.csv").labels, [1, 0, 1, 1]
    )
    (tmp_path / "cols.csv").write_text("id,label\na,cat\nb,dog\nc,cat\nd,cat\n")
    result = load_features(tmp_path / "f.npy", labels=tmp_path / "cols.csv")
    np.testing.assert_array_equal(result.labels, [0, 1, 0, 0])
    (tmp_path / "bad.csv").write_text("id,y\na,1\n")
    with pytest.raises(DataError, match=r"has 2 columns but none is named 'label'"):
        load_features(tmp_path / "f.npy", labels=tmp_path / "bad.csv")


def test_labels_as_array_and_float_labels(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    result = load_features(tmp_path / "f.npy", labels=[1.0, 0.0, 1.0, 2.0], ids=list("wxyz"))
    np.testing.assert_array_equal(result.labels, [1, 0, 1, 2])
    assert result.ids == ("w", "x", "y", "z")
    with pytest.raises(DataError, match=r"label 0.5 \(row 1\) is not a whole number"):
        load_features(tmp_path / "f.npy", labels=[1.0, 0.5, 1.0, 2.0])
    with pytest.raises(DataError, match=r"label -1 \(row 2\) is negative"):
        load_features(tmp_path / "f.npy", labels=[1, 0, -1, 2])
    with pytest.raises(DataError, match=r"2 class names cannot name label 2"):
        load_features(tmp_path / "f.npy", labels=[1, 0, 1, 2], class_names=["a", "b"])
    with pytest.raises(DataError, match=r"have 4 rows but `ids` have 2 entries"):
        load_features(tmp_path / "f.npy", ids=["a", "b"])


def test_npz_with_everything(tmp_path, feats):
    np.savez(
        tmp_path / "run.npz",
        features=feats.astype(np.float16),
        labels=np.array([0, 1, 1, 0]),
        class_names=np.array(["cat", "dog"]),
        ids=np.array(["i0", "i1", "i2", "i3"]),
    )
    result = load_features(tmp_path / "run.npz")
    assert result.class_names == ("cat", "dog")
    assert result.ids == ("i0", "i1", "i2", "i3")
    assert result.point == "run"
    np.testing.assert_array_equal(result.labels, [0, 1, 1, 0])
    # explicit labels override the stored ones (and the stored class names with them)
    override = load_features(tmp_path / "run.npz", labels=[3, 3, 3, 3])
    assert override.class_names == ("0", "1", "2", "3")


def test_npz_with_name_labels(tmp_path, feats):
    np.savez(tmp_path / "n.npz", features=feats, labels=np.array(["b", "a", "b", "c"]))
    result = load_features(tmp_path / "n.npz")
    assert result.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(result.labels, [1, 0, 1, 2])


def test_npz_missing_features_key(tmp_path, feats):
    np.savez(tmp_path / "x.npz", feats=feats, labels=np.zeros(4))
    with pytest.raises(DataError, match=r"has no 'features' array \(keys: feats, labels\)"):
        load_features(tmp_path / "x.npz")


def test_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="holds Python objects"):
        load_features(tmp_path / "o.npy")


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((5,), r"shape \(5,\); expected a 2-D \(N, D\) array.*a\.reshape\(-1, 1\)"),
        ((2, 4, 3), r"\(N, L, C\) tokens take the class token a\[:, 0\] or the token mean"),
        ((2, 3, 4, 4), r"global-average-pool them first: a\.mean\(axis=\(2, 3\)\)"),
        ((2, 1, 1, 1, 1), r"pool or flatten it first"),
        ((0, 3), r"shape \(0, 3\); expected at least one row"),
    ],
)
def test_wrong_shapes(tmp_path, shape, match):
    np.save(tmp_path / "f.npy", np.zeros(shape))
    with pytest.raises(DataError, match=match):
        load_features(tmp_path / "f.npy")


def test_nan_and_inf_rows_are_named(tmp_path):
    features = np.zeros((50, 2))
    features[0, 1] = np.nan
    features[17, 0] = np.inf
    features[42, 1] = -np.inf
    np.save(tmp_path / "f.npy", features)
    with pytest.raises(
        DataError, match=r"contain NaN or inf in 3 rows \(0, 17, 42\); drop or impute them"
    ):
        load_features(tmp_path / "f.npy")


def test_string_features_and_bad_files(tmp_path, feats):
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(DataError, match=r"dtype <U1; expected numbers"):
        load_features(tmp_path / "s.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"cannot read features file '.*junk\.npy'"):
        load_features(tmp_path / "junk.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"not a valid \.npz"):
        load_features(tmp_path / "junk.npz")
    with pytest.raises(DataError, match=r"'.*missing\.npy' does not exist"):
        load_features(tmp_path / "missing.npy")
    (tmp_path / "f.pt").write_bytes(b"x")
    with pytest.raises(DataError, match=r"extension '\.pt'; save the features as \.npy"):
        load_features(tmp_path / "f.pt")


def test_length_mismatch_names_both_lengths(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    np.save(tmp_path / "l.npy", np.zeros(3, dtype=int))
    with pytest.raises(
        DataError,
        match=r"features in '.*f\.npy' have 4 rows but labels file '.*l\.npy' have 3 entries",
    ):
        load_features(tmp_path / "f.npy", labels=tmp_path / "l.npy")
    (tmp_path / "l.txt").write_text("0\n1\n")
    with pytest.raises(DataError, match=r"have 4 rows but labels file .* have 2 entries"):
        load_features(tmp_path / "f.npy", labels=tmp_path / "l.txt")


def test_class_names_without_labels_warns(tmp_path, feats):
    np.save(tmp_path / "f.npy", feats)
    with pytest.warns(UserWarning, match="class names were given .* but no labels"):
        result = load_features(tmp_path / "f.npy", class_names=["a", "b"])
    assert result.class_names == ()
