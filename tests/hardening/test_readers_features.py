"""Saved features from other tools (.npy/.npz/.csv): each flaw is one clear DataError.

The degenerate-but-valid inputs (constant features, duplicate rows, one sample, one class,
100,000 dimensions) load; what the embedding then makes of them is checked through the CLI.
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from featscope.cli import main
from featscope.data.features_io import load_features
from featscope.data.sources import MAX_CLASS_INDEX
from featscope.errors import DataError

RNG = np.random.default_rng(0)


def _npy(tmp_path, array, name: str = "f.npy", **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


def _header_only(shape, dtype: str = "<f4", payload: int = 16) -> bytes:
    buffer = io.BytesIO()
    npformat.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + b"\0" * payload


def _cli(tmp_path, capsys, *args: str) -> tuple[int, list[str]]:
    argv = ["tsne", *args, "--no-html", "--quiet", "--work-dir", str(tmp_path / "wd")]
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


# --------------------------------------------------------------------------- dtype and shape


@pytest.mark.parametrize(
    ("array", "dtype_text"),
    [
        (np.array([["a", "b"], ["c", "d"]]), "<U1"),
        (np.ones((3, 2)) + 1j, "complex128"),
        (np.zeros((3, 2), dtype="datetime64[s]"), "datetime64"),
        (np.zeros((3, 2), dtype="V4"), "V4"),
    ],
)
def test_non_numeric_dtypes_are_refused(tmp_path, array, dtype_text):
    with pytest.raises(DataError, match=rf"have dtype .*{dtype_text}.*; expected numbers"):
        load_features(_npy(tmp_path, array))


@pytest.mark.parametrize("dtype", [bool, np.int8, np.int64, np.uint16, np.float16, np.float64])
def test_bool_int_and_float_dtypes_become_float32(tmp_path, dtype):
    array = (RNG.random((4, 3)) * 10).astype(dtype)
    result = load_features(_npy(tmp_path, array))
    assert result.features.dtype == np.float32
    np.testing.assert_allclose(result.features, array.astype(np.float32))


def test_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    array = np.empty((2, 2), dtype=object)
    array[0, 0] = Payload()
    path = _npy(tmp_path, array, allow_pickle=True)
    with pytest.raises(DataError, match=r"holds Python objects, which featscope does not unpickle"):
        load_features(path)
    assert not marker.exists()


def test_raw_pickle_named_npy_is_refused(tmp_path):
    (tmp_path / "f.npy").write_bytes(b"\x80\x04\x95cos\nsystem\n(S'echo hi'\ntR.")
    with pytest.raises(DataError, match=r"'.*f\.npy': not a \.npy file"):
        load_features(tmp_path / "f.npy")


def test_npz_with_pickled_member_is_refused(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, features=np.ones((2, 2)), ids=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match=r"holds Python objects"):
        load_features(path)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((5,), r"shape \(5,\).*a\.reshape\(-1, 1\)"), ((2, 3, 4), r"shape \(2, 3, 4\).*tokens")],
)
def test_one_and_three_dimensional_arrays(tmp_path, shape, match):
    with pytest.raises(DataError, match=match):
        load_features(_npy(tmp_path, np.ones(shape)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_rows_are_named(tmp_path, bad):
    array = np.ones((6, 2))
    array[4, 1] = bad
    with pytest.raises(DataError, match=r"NaN or inf in 1 rows \(4\); drop or impute them"):
        load_features(_npy(tmp_path, array))


def test_float64_beyond_float32_range(tmp_path):
    with pytest.raises(DataError, match=r"exceed float32's range"):
        load_features(_npy(tmp_path, np.full((3, 2), 1e300)))


def test_header_declaring_more_data_than_the_file_holds(tmp_path):
    # np.load would try to allocate 36 TiB first (MemoryError, or the OOM killer)
    (tmp_path / "f.npy").write_bytes(_header_only((10**12, 10)))
    with pytest.raises(DataError, match=r"'.*f\.npy' is truncated: its header declares shape"):
        load_features(tmp_path / "f.npy")


def test_npz_member_declaring_more_data_than_it_holds(tmp_path):
    with zipfile.ZipFile(tmp_path / "f.npz", "w") as archive:
        archive.writestr("features.npy", _header_only((10**6, 10**6)))
    with pytest.raises(DataError, match=r"array 'features\.npy' of .* is truncated"):
        load_features(tmp_path / "f.npz")


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_array_larger_than_half_the_memory_is_refused_before_loading(tmp_path, monkeypatch, suffix):
    # a zip bomb (a small .npz inflating to more than the machine holds), scaled down: the
    # machine is made to look like it has 64 KiB of memory
    from featscope.data import features_io

    monkeypatch.setattr(features_io, "_physical_memory", lambda: 64 * 1024)
    path = tmp_path / f"f{suffix}"
    zeros = np.zeros((100, 100), dtype=np.float32)  # 40 KiB > 32 KiB
    if suffix == ".npy":
        np.save(path, zeros)
    else:
        np.savez_compressed(path, features=zeros)
    assert path.stat().st_size < 41_000
    with pytest.raises(DataError, match=r"holds shape \(100, 100\) of float32 \(39\.1 KiB\), more"):
        load_features(path)
    monkeypatch.setattr(features_io, "_physical_memory", lambda: 1024 * 1024)
    assert load_features(path).features.shape == (100, 100)


def test_npy_header_longer_than_numpy_reads_safely(tmp_path):
    # numpy's own message mentions allow_pickle: it must not read as "holds Python objects"
    header = b"{" + b" " * 29_998 + b"}"
    (tmp_path / "f.npy").write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    )
    with pytest.raises(
        DataError, match=r"'.*f\.npy': its header is longer than numpy reads safely"
    ):
        load_features(tmp_path / "f.npy")


@pytest.mark.parametrize("position", [10, 12, 20, 40])  # 10: numpy raised tokenize.TokenError
def test_npy_header_with_a_nul_byte(tmp_path, position):
    buffer = io.BytesIO()
    np.save(buffer, np.ones((2, 2)))
    data = bytearray(buffer.getvalue())
    data[position] = 0
    (tmp_path / "f.npy").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"cannot read features file '.*f\.npy': not a valid \.npy"):
        load_features(tmp_path / "f.npy")


def test_npz_with_a_damaged_compressed_member(tmp_path):
    path = tmp_path / "f.npz"
    np.savez_compressed(path, features=np.arange(60.0).reshape(6, 10))
    data = bytearray(path.read_bytes())
    data[len(data) // 4] ^= 0xFF  # inside the deflate stream of features.npy
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"cannot read features file '.*f\.npz': not a valid"):
        load_features(path)


def test_npz_without_features_and_broken_npz(tmp_path):
    np.savez(tmp_path / "a.npz", feats=np.ones((2, 2)))
    with pytest.raises(DataError, match=r"has no 'features' array \(keys: feats\)"):
        load_features(tmp_path / "a.npz")
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"'.*b\.npz': not a valid \.npz"):
        load_features(tmp_path / "b.npz")


# --------------------------------------------------------------------------- labels


def test_labels_of_the_wrong_length(tmp_path):
    path = _npy(tmp_path, RNG.random((5, 2)))
    with pytest.raises(DataError, match=r"have 5 rows but `labels` have 4 entries"):
        load_features(path, labels=[0, 1, 0, 1])
    (tmp_path / "labels.txt").write_text("a\nb\na\nb\na\nb\n")
    with pytest.raises(DataError, match=r"have 5 rows but labels file .* have 6 entries"):
        load_features(path, labels=tmp_path / "labels.txt")


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, 1, MAX_CLASS_INDEX]), r"label 1000000 \(row 2\) is too large"),
        (np.array([0, 1, 2**63], dtype=np.uint64), r"is too large"),
        (np.array([0.0, 1.0, 1e300]), r"is too large"),
        (np.array([0.0, 1.5, 2.0]), r"label 1\.5 \(row 1\) is not a whole number"),
        (np.array([0, -1, 1]), r"label -1 \(row 1\) is negative"),
        (np.array([[0, 1, 1], [0, 1, 1]]), r"have shape \(2, 3\); expected one label per row"),
    ],
)
def test_bad_label_arrays(tmp_path, labels, match):
    with pytest.raises(DataError, match=match):
        load_features(_npy(tmp_path, RNG.random((3, 2))), labels=labels)


# --------------------------------------------------------------------------- csv features


def test_csv_features_with_label_and_id_columns(tmp_path):
    (tmp_path / "f.csv").write_text("id,x,y,label\nimg1,1,2,cat\nimg2,3,4.5,dog\n")
    result = load_features(tmp_path / "f.csv")
    np.testing.assert_array_equal(result.features, [[1, 2], [3, 4.5]])
    assert result.class_names == ("cat", "dog")
    assert result.ids == ("img1", "img2")


def test_csv_features_with_a_word_in_a_number_column(tmp_path):
    (tmp_path / "f.csv").write_text("x,y\n1,2\n3,oops\n")
    with pytest.raises(DataError, match=r"line 3, column 2 \('y'\) of .* is 'oops', not a number"):
        load_features(tmp_path / "f.csv")


def test_csv_features_with_ragged_rows(tmp_path):
    (tmp_path / "f.tsv").write_text("1\t2\n3\n")
    with pytest.raises(DataError, match=r"line 2 of .* has 1 values but line 1 has 2"):
        load_features(tmp_path / "f.tsv")


def test_csv_features_header_only_or_empty(tmp_path):
    (tmp_path / "f.csv").write_text("x,y\n")
    with pytest.raises(DataError, match=r"has a header \(line 1\) but no rows of numbers"):
        load_features(tmp_path / "f.csv")
    (tmp_path / "f.csv").write_text("\n\n")
    with pytest.raises(DataError, match=r"is empty; write one row of numbers per sample"):
        load_features(tmp_path / "f.csv")


def test_csv_features_nan_cell(tmp_path):
    (tmp_path / "f.csv").write_text("1,2\nnan,4\n")
    with pytest.raises(DataError, match=r"NaN or inf in 1 rows \(1\)"):
        load_features(tmp_path / "f.csv")


# --------------------------------------------------------------------------- degenerate data, CLI


def test_degenerate_but_valid_features_load(tmp_path):
    constant = load_features(_npy(tmp_path, np.ones((5, 3)), "c.npy"))
    assert constant.features.shape == (5, 3)
    one = load_features(_npy(tmp_path, np.ones((1, 3)), "one.npy"), labels=[2])
    assert one.class_names == ("0", "1", "2")
    wide = load_features(_npy(tmp_path, RNG.random((3, 100_000), dtype=np.float32), "w.npy"))
    assert wide.features.shape == (3, 100_000)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((6, 4)), r"all 6 rows of `X` are identical"),
        (np.repeat(RNG.random((1, 4)), 6, axis=0), r"all 6 rows of `X` are identical"),
        (RNG.random((1, 4)), r"PCA needs at least 2 samples; got 1"),
    ],
    ids=["constant", "duplicate-rows", "one-sample"],
)
def test_cli_degenerate_features_are_one_error_line(tmp_path, capsys, array, message):
    path = _npy(tmp_path, array)
    code, err = _cli(tmp_path, capsys, "--features", str(path), "--method", "pca")
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("error: ")
    assert re.search(message, err[0])


def test_cli_one_class_and_100000_dimensions_work(tmp_path, capsys):
    path = _npy(tmp_path, RNG.random((12, 100_000), dtype=np.float32))
    code, _ = _cli(tmp_path, capsys, "--features", str(path), "--method", "pca")
    assert code == 0
    assert len(list((tmp_path / "wd").rglob("manifest.json"))) == 1


def test_cli_csv_features_with_a_bad_cell_is_one_error_line(tmp_path, capsys):
    (tmp_path / "f.csv").write_text("x,y,label\n1,2,a\n3,,b\n")
    code, err = _cli(tmp_path, capsys, "--features", str(tmp_path / "f.csv"), "--method", "pca")
    assert code == 2
    assert err == [
        f"error: line 3, column 2 ('y') of features file '{tmp_path / 'f.csv'}' is '', "
        "not a number; feature cells must be numbers (name a column of labels 'label' "
        "and one of ids 'id' in a header row)"
    ]
