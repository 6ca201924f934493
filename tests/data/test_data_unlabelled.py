"""Unlabelled data: flat folders, lists of paths, selection on them, class names refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featscope.data import (
    ImageSamples,
    apply_class_names,
    file_list,
    image_folder,
    load_samples,
    select_indices,
)
from featscope.errors import DataError, ParameterError


def _img(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (3, 2), (value, value, value)).save(path)
    return path


def test_flat_folder_is_unlabelled(tmp_path):
    for name, value in (("b.png", 2), ("a.png", 1), ("c.JPG", 3)):
        _img(tmp_path / name, value)
    (tmp_path / "notes.txt").write_text("x")
    _img(tmp_path / ".hidden.png")
    samples = load_samples(tmp_path)
    assert samples.ids == ("a.png", "b.png", "c.JPG")
    assert samples.class_names == ()
    assert not samples.labelled
    np.testing.assert_array_equal(samples.labels, [-1, -1, -1])
    assert samples.labels.dtype == np.int64
    assert samples.load(1).getpixel((0, 0)) == (2, 2, 2)
    assert samples.summary()["labelled"] is False


def test_class_folders_win_over_loose_images(tmp_path):
    _img(tmp_path / "loose.png")
    _img(tmp_path / "cat" / "x.png")
    samples = image_folder(tmp_path)
    assert samples.class_names == ("cat",)
    assert samples.ids == ("cat/x.png",)


def test_truly_empty_folder_is_still_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"has no class sub-folders and no images; put the images"):
        load_samples(tmp_path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("l.csv", "a.png\nsub/b.png\n"),
        ("l.csv", "path\na.png\nsub/b.png\n"),
        ("l.txt", "a.png\nsub/b.png\n"),
        ("l.tsv", "path\na.png\nsub/b.png\n"),
    ],
)
def test_list_of_paths_is_unlabelled(tmp_path, name, text):
    _img(tmp_path / "a.png")
    _img(tmp_path / "sub" / "b.png")
    (tmp_path / name).write_text(text)
    samples = file_list(tmp_path / name)
    assert samples.ids == ("a.png", "sub/b.png")
    assert not samples.labelled
    assert (samples.labels == -1).all()


def test_whitespace_list_of_paths_with_spaces(tmp_path):
    _img(tmp_path / "my img 1.png")
    _img(tmp_path / "two.png")
    (tmp_path / "l.txt").write_text("my img 1.png\ntwo.png\n")
    samples = file_list(tmp_path / "l.txt")
    assert samples.ids == ("my img 1.png", "two.png")
    assert not samples.labelled


def test_list_of_paths_errors(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "l.csv").write_text("a.png\nmissing.png\n")
    with pytest.raises(DataError, match=r"1 of 2 image paths .* do not exist \('missing\.png'"):
        file_list(tmp_path / "l.csv")
    (tmp_path / "h.csv").write_text("path\n")
    with pytest.raises(DataError, match=r"has a header \(line 1\) but no rows"):
        file_list(tmp_path / "h.csv")
    # some rows with a label, some without: still the column error
    (tmp_path / "m.csv").write_text("a.png,0\na.png\n")
    with pytest.raises(DataError, match=r"line 2 of file list .* has 1 column\(s\)"):
        file_list(tmp_path / "m.csv")


def test_selection_of_unlabelled_samples_is_a_seeded_total():
    labels = np.full(50, -1)
    a = select_indices(labels, 0, max_num_samples=10, seed=3)
    assert len(a) == 10
    assert np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, select_indices(labels, 0, max_num_samples=10, seed=3))
    assert not np.array_equal(a, select_indices(labels, 0, max_num_samples=10, seed=4))
    np.testing.assert_array_equal(
        select_indices(labels, 0, max_num_samples=4, sample="first"), [0, 1, 2, 3]
    )
    assert len(select_indices(labels, 0, max_num_samples=None)) == 50
    # max_num_class is ignored; class_idx too, with a warning
    assert len(select_indices(labels, 0, max_num_class=1, max_num_samples=7)) == 7
    with pytest.warns(UserWarning, match=r"`--class-idx` is ignored: my-folder has no labels"):
        got = select_indices(labels, 0, class_idx=[3], max_num_samples=5, source="my-folder")
    assert len(got) == 5
    with pytest.raises(DataError, match="no samples selected from the data: it has 0 samples"):
        select_indices(np.array([], dtype=np.int64), 0)
    with pytest.raises(ParameterError, match=r"0 only for unlabelled data, labels all -1"):
        select_indices(np.array([-1, 2]), 0)


def test_class_names_for_unlabelled_data_are_refused(tmp_path):
    _img(tmp_path / "a.png")
    samples = load_samples(tmp_path)
    with pytest.raises(DataError, match=r"the data has no labels .* leave out the class names"):
        apply_class_names(samples, ["cat"])


def test_subset_keeps_the_unlabelled_state(tmp_path):
    samples = ImageSamples(
        ids=("x", "y"),
        labels=np.array([-1, -1]),
        class_names=(),
        source="mem",
        loader=lambda i: Image.new("RGB", (1, 1)),
    )
    sub = samples.subset([1])
    assert sub.ids == ("y",)
    assert not sub.labelled
    assert not sub.prepared
