"""Names with newlines, tabs and other line breaks round-trip through a run (issue 19, 2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import featscope
from featscope.data.sources import read_class_names
from featscope.data.textlines import MARKER, decode_lines, encode_lines
from featscope.errors import DataError, ParameterError
from featscope.options import Output
from featscope.results import EmbeddingResult, FeatureSet
from featscope.sinks import LocalRun, load_run

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

#: what file systems allow in a name (all but "/" and NUL) plus the breaks str.splitlines knows
_HOSTILE = ["a\nb.png", "tab\there.png", "cr\r.png", "\u2028ls.png", "x\x85.png", "\x0c", " lead"]
# valid Unicode: names that were not UTF-8 on disk are refused by the walker (and by the sink)
_ANY = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=10
)
_NAMES = st.lists(st.one_of(st.sampled_from(_HOSTILE), _ANY), min_size=1, max_size=8, unique=True)


@FUZZ
@given(names=st.lists(st.text(max_size=10), max_size=8))
def test_any_strings_round_trip_through_the_line_format(names):
    """Property: decode(encode(x)) == x for any strings, lone surrogates included."""
    text = encode_lines(names)
    text.encode("utf-8")  # always writable as UTF-8
    assert decode_lines(text, "t") == tuple(names)


def test_plain_names_keep_the_old_format_and_old_files_still_read():
    assert encode_lines(["cat", "dog"]) == "cat\ndog\n"
    assert decode_lines("a/1.png\nb/2.png\n", "ids.txt") == ("a/1.png", "b/2.png")
    escaped = encode_lines(["a\nb", "c"])
    assert escaped.splitlines()[0] == MARKER
    assert escaped == f'{MARKER}\n"a\\nb"\n"c"\n'


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"{MARKER}\nnot json\n", r"line 2 of x is not a JSON string"),
        (f"{MARKER}\n[1]\n", r"line 2 of x holds a list, not a JSON string"),
        (f"{MARKER}\n" + "[" * 100_000 + "\n", r"line 2 of x is not a JSON string"),
    ],
    ids=["not-json", "a-list", "nested-100000"],
)
def test_damaged_escaped_files_are_one_line(text, match):
    with pytest.raises(DataError, match=match):
        decode_lines(text, "x")


def _run(work_dir, ids, class_names, coords, name):
    labels = np.arange(len(ids)) % len(class_names)
    result = EmbeddingResult(
        coords=coords,
        labels=labels,
        class_names=tuple(class_names),
        ids=tuple(ids),
        point="neck",
        method="tsne",
    )
    features = FeatureSet(
        features=np.ones((len(ids), 2), dtype=np.float32),
        labels=labels,
        class_names=tuple(class_names),
        ids=tuple(ids),
        point="neck",
    )
    with LocalRun(work_dir, "tsne", name=name) as run:
        run.write(features)
        run.write(result)
        thumbs = np.stack([np.full((2, 2, 3), i, dtype=np.uint8) for i in range(len(ids))])
        run.write_array("thumbnails.npy", thumbs)
        run.write_array("thumbnail_rows.npy", np.arange(len(ids)))
    return run.final_path


@FUZZ
@given(ids=_NAMES, class_names=_NAMES)
def test_any_ids_and_class_names_round_trip_through_a_run_folder(
    tmp_path_factory, ids, class_names
):
    """Property: load_run gives back exactly the ids, class names and thumbnail pairing."""
    work = tmp_path_factory.mktemp("runs")
    coords = np.arange(2 * len(ids), dtype=float).reshape(-1, 2)
    folder = _run(work, ids, class_names, coords, "r")
    run = load_run(folder)
    assert run.ids == tuple(ids)
    assert run.class_names == tuple(class_names)
    assert run.embedding("neck").ids == tuple(ids)
    assert run.embedding("neck").class_names == tuple(class_names)
    np.testing.assert_array_equal(run.embedding("neck").coords, coords)
    assert run.read_csv("coords_neck.csv")[1][0][0] == ids[0]  # a quoted newline stays one cell
    uris = run.thumbnail_uris()
    assert list(uris) == list(ids)


def test_compare_pairs_samples_by_their_exact_names(tmp_path):
    ids = ["x\ny.png", "x", "y.png", "tab\tname.png"]
    a = _run(tmp_path, ids, ["c\n1", "c"], np.arange(8, dtype=float).reshape(4, 2), "a")
    b_ids = ids[::-1]  # the other run lists the same samples in reverse
    b = _run(tmp_path, b_ids, ["c\n1", "c"], np.arange(8, dtype=float).reshape(4, 2) * 10, "b")
    # maps left as they were written (not turned onto each other), so rows can be read off
    out = featscope.compare([a, b], output=Output(work_dir=None), align="none")
    first, second = out.results
    assert first.ids == second.ids == tuple(ids)
    # sample "x\ny.png" is row 0 of run a and row 3 of run b
    np.testing.assert_array_equal(second.coords[0], [60.0, 70.0])
    np.testing.assert_array_equal(first.coords[0], [0.0, 1.0])


def test_a_lone_surrogate_in_an_id_is_one_line_at_the_sink(tmp_path):
    with pytest.raises(ParameterError, match=r"cannot write 'ids\.txt'|cannot write 'coords"):
        _run(tmp_path, ["ok", "bad\udcff.png"], ["c"], np.zeros((2, 2)), "s")
    assert not (tmp_path / "s").exists()


def test_a_runs_escaped_class_names_file_is_a_valid_class_names_input(tmp_path):
    path = tmp_path / "class_names.txt"
    path.write_text(encode_lines(["a\nb", "c"]), encoding="utf-8")
    assert read_class_names(path) == ("a\nb", "c")
