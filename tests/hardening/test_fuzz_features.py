"""Property tests: any array or bytes as saved features load or raise DataError/ParameterError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from featscope.data.features_io import load_features
from featscope.errors import DataError, ParameterError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure here is a real regression
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.unicode_string_dtypes(max_len=3),
    hnp.byte_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(),
)
_ARRAYS = hnp.arrays(_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))


def _check(call) -> None:
    try:
        result = call()
    except (DataError, ParameterError) as exc:
        message = str(exc)
        assert "\n" not in message
    else:
        n, d = result.features.shape
        assert n >= 1
        assert d >= 1
        assert result.features.dtype == np.float32
        assert np.isfinite(result.features).all()
        assert len(result.labels) == len(result.ids) == n
        if result.class_names:
            assert 0 <= result.labels.min() <= result.labels.max() < len(result.class_names)
        else:  # a table without a label column: unlabelled rows
            assert set(result.labels.tolist()) == {-1}


@FUZZ
@given(features=_ARRAYS, labels=st.one_of(st.none(), _ARRAYS))
def test_any_array_pair_in_npy_files(tmp_path, features, labels):
    np.save(tmp_path / "f.npy", features)
    if labels is not None:
        np.save(tmp_path / "l.npy", labels)
    _check(
        lambda: load_features(
            tmp_path / "f.npy", labels=None if labels is None else tmp_path / "l.npy"
        )
    )


@FUZZ
@given(features=_ARRAYS, labels=_ARRAYS, names=_ARRAYS, ids=_ARRAYS)
def test_any_arrays_in_an_npz(tmp_path, features, labels, names, ids):
    np.savez(tmp_path / "f.npz", features=features, labels=labels, class_names=names, ids=ids)
    _check(lambda: load_features(tmp_path / "f.npz"))


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_features_file(tmp_path, suffix, data):
    (tmp_path / f"f{suffix}").write_bytes(data)
    _check(lambda: load_features(tmp_path / f"f{suffix}"))


def _valid_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(12, dtype=np.float32).reshape(4, 3))
    return buffer.getvalue()


def _valid_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=np.ones((4, 3)), labels=np.array([0, 1, 0, 1]))
    return buffer.getvalue()


@pytest.mark.parametrize(("suffix", "valid"), [(".npy", _valid_npy()), (".npz", _valid_npz())])
@FUZZ
@given(
    cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6)
)
def test_damaged_copies_of_a_valid_file(tmp_path, suffix, valid, cut, flips):
    data = bytearray(valid[: max(1, int(cut * len(valid)))] if cut < 1 else valid)
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    (tmp_path / f"f{suffix}").write_bytes(bytes(data))
    _check(lambda: load_features(tmp_path / f"f{suffix}"))


@FUZZ
@given(
    rows=st.lists(
        st.lists(
            st.one_of(st.floats(), st.integers(-5, 5).map(str), st.text(max_size=4)).map(str),
            max_size=4,
        ),
        max_size=5,
    ),
    header=st.booleans(),
)
def test_any_csv_table(tmp_path, rows, header):
    lines = [",".join(r) for r in rows]
    if header:
        lines.insert(0, "id,x,label,y")
    (tmp_path / "f.csv").write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    _check(lambda: load_features(tmp_path / "f.csv"))


@pytest.mark.parametrize("damage", ["encrypted", "compression method 99"])
def test_encrypted_or_unknown_compression_npz_members(tmp_path, damage):
    # zip entries the reader cannot open: one error line, never RuntimeError/NotImplementedError
    data = bytearray(_valid_npz())
    central = data.index(b"PK\x01\x02")  # first central-directory entry: features.npy
    local = 0
    if damage == "encrypted":
        data[central + 8] |= 0x01
        data[local + 6] |= 0x01
    else:
        data[central + 10] = data[local + 8] = 99
    (tmp_path / "f.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"cannot read features file '.*f\.npz': not a valid \.npz"):
        load_features(tmp_path / "f.npz")
