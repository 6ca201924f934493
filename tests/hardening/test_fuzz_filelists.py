"""Property tests: any text as a file list or labels file loads or fails with one DataError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from featscope.data.features_io import load_features
from featscope.data.sources import file_list, read_class_names
from featscope.errors import DataError

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure here is a real regression
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# cells that exercise the parser: real and missing images, labels of every kind, separators,
# quotes, escapes out of the folder, huge numbers
_CELLS = st.one_of(
    st.sampled_from(
        [
            "a.png",
            "b.png",
            "../a.png",
            "/nonexistent/x.png",
            "path",
            "label",
            "0",
            "1",
            "-1",
            "cat",
            "dog",
            "99999999999999999999",
            "1e3",
            "",
            " ",
            '"',
            '"a.png"',
            "\x00",
            "\ufeff",
        ]
    ),
    st.text(max_size=12),
)
_LINE = st.lists(_CELLS, min_size=0, max_size=4).flatmap(
    lambda cells: st.sampled_from([",", "\t", " ", ";"]).map(lambda sep: sep.join(cells))
)
_LIST_TEXT = st.lists(_LINE, max_size=6).map("\n".join)


@pytest.fixture
def root(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (2, 2)).save(tmp_path / name)
    return tmp_path


def _one_line(exc: DataError) -> None:
    assert "\n" not in str(exc)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt"])
@FUZZ
@given(text=_LIST_TEXT)
def test_any_list_text_loads_or_is_a_data_error(root, suffix, text):
    path = root / f"list{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        samples = file_list(path)
    except DataError as exc:
        _one_line(exc)
    else:
        assert len(samples) == len(samples.labels) > 0
        if not samples.labelled:  # a list of paths only
            assert samples.class_names == ()
            assert (samples.labels == -1).all()
            return
        assert samples.labels.min() >= 0
        assert samples.labels.max() < len(samples.class_names)


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_bytes_as_a_list_or_class_names(root, data):
    path = root / "list.csv"
    path.write_bytes(data)
    for reader in (file_list, read_class_names):
        try:
            reader(path)
        except DataError as exc:
            _one_line(exc)


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
@FUZZ
@given(text=_LIST_TEXT)
def test_any_labels_file_loads_or_is_a_data_error(tmp_path, suffix, text):
    np.save(tmp_path / "f.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    labels = tmp_path / f"labels{suffix}"
    labels.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        result = load_features(tmp_path / "f.npy", labels=labels)
    except DataError as exc:
        _one_line(exc)
    else:
        assert len(result.labels) == 3
