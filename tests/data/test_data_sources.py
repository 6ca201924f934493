from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from featscope.data import (
    ImageSamples,
    apply_class_names,
    demo_digits,
    file_list,
    image_folder,
    load_samples,
    read_class_names,
)
from featscope.errors import DataError
from featscope.results import FeatureSet


def _img(path, colour=(10, 20, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (3, 2), colour).save(path, format=fmt)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    _img(root / "cat" / "b.png", (1, 1, 1))
    _img(root / "cat" / "sub" / "a.JPG", (200, 0, 0), fmt="JPEG")
    _img(root / "dog" / "c.jpeg", fmt="JPEG")
    _img(root / "dog" / ".hidden.png")
    _img(root / ".ipynb_checkpoints" / "x.png")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "bird").mkdir()
    return root


def test_image_folder_classes_labels_ids(folder):
    with pytest.warns(UserWarning, match=r"1 class folder\(s\) hold no images \('bird'\)"):
        samples = image_folder(folder)
    assert samples.class_names == ("bird", "cat", "dog")
    assert samples.ids == ("cat/b.png", "cat/sub/a.JPG", "dog/c.jpeg")
    np.testing.assert_array_equal(samples.labels, [1, 1, 2])
    assert samples.labels.dtype == np.int64
    assert samples.source == str(folder)
    assert samples.load(0).getpixel((0, 0)) == (1, 1, 1)
    assert samples.load(1).mode == "RGB"


def test_image_folder_samples_pickle(folder):
    with pytest.warns(UserWarning, match="hold no images"):
        samples = image_folder(folder).subset([2])
    clone = pickle.loads(pickle.dumps(samples))
    assert clone.ids == ("dog/c.jpeg",)
    np.testing.assert_allclose(clone.load(0).getpixel((0, 0)), (10, 20, 30), atol=3)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"image folder '.*nowhere' does not exist"):
        image_folder(tmp_path / "nowhere")
    _img(tmp_path / "loose.png")
    with pytest.raises(DataError, match=r"'.*loose\.png' is not a folder"):
        image_folder(tmp_path / "loose.png")
    # images directly in the folder: unlabelled samples (tests/data/test_data_unlabelled.py)
    assert not image_folder(tmp_path).labelled
    (tmp_path / "loose.png").unlink()
    with pytest.raises(DataError, match=r"has no class sub-folders and no images"):
        image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="has 2 class sub-folders but no image files"):
        image_folder(tmp_path)


def test_file_list_csv_with_header_and_names(tmp_path):
    _img(tmp_path / "imgs" / "x.png", (5, 5, 5))
    _img(tmp_path / "imgs" / "y.png")
    listing = tmp_path / "list.csv"
    listing.write_text("path,label\nimgs/x.png,zebra\nimgs/y.png,ant\n\n")
    samples = file_list(listing)
    assert samples.class_names == ("ant", "zebra")
    np.testing.assert_array_equal(samples.labels, [1, 0])
    assert samples.ids == ("imgs/x.png", "imgs/y.png")
    assert samples.source == str(listing)
    assert samples.load(0).getpixel((0, 0)) == (5, 5, 5)


def test_file_list_tsv_ints_without_header_and_root(tmp_path):
    _img(tmp_path / "root" / "a.png")
    _img(tmp_path / "root" / "b.png")
    listing = tmp_path / "lists" / "l.tsv"
    listing.parent.mkdir()
    listing.write_text("a.png\t3\nb.png\t0\n")
    samples = file_list(listing, root=tmp_path / "root")
    np.testing.assert_array_equal(samples.labels, [3, 0])
    assert samples.class_names == ("0", "1", "2", "3")
    assert samples.load(1).size == (3, 2)


def test_file_list_absolute_paths_and_whitespace_format(tmp_path):
    absolute = _img(tmp_path / "some dir" / "img 1.png")
    _img(tmp_path / "b.png")
    listing = tmp_path / "ann.txt"
    listing.write_text(f"{absolute} 1\nb.png 0\n")
    samples = file_list(listing)
    assert samples.ids == (absolute.as_posix(), "b.png")
    np.testing.assert_array_equal(samples.labels, [1, 0])


def test_file_list_header_detection(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png")
    # a custom header: the label cell "class" is not a label of any other row
    (tmp_path / "h.csv").write_text("file,class\na.png,cat\nb.png,dog\n")
    assert len(file_list(tmp_path / "h.csv")) == 2
    # first row is data: its label "cat" is used by another row
    (tmp_path / "d.csv").write_text("a.png,cat\nb.png,cat\n")
    samples = file_list(tmp_path / "d.csv")
    assert samples.ids == ("a.png", "b.png")
    assert samples.class_names == ("cat",)
    # named columns in another order, extra column ignored
    (tmp_path / "r.csv").write_text("label,note,path\n1,x,a.png\n0,y,b.png\n")
    samples = file_list(tmp_path / "r.csv")
    assert samples.ids == ("a.png", "b.png")
    np.testing.assert_array_equal(samples.labels, [1, 0])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a.png,0\nb.png\n", r"line 2 of file list '.*bad\.csv' has 1 column\(s\)"),
        ("a.png,0\n,1\n", r"line 2 of file list '.*' has an empty path"),
        ("a.png,0\nb.png, \n", r"line 2 of file list '.*' has an empty label"),
        ("a.png,0\nb.png,dog\na.png,dog\n", r"labels mix class indices and class names \(line 1"),
        ("a.png,0\nb.png,-2\n", r"label -2 \(line 2\) is negative"),
        ("path,label\n", r"has a header \(line 1\) but no rows"),
        ("\n\n", "has no rows"),
    ],
)
def test_file_list_bad_lines(tmp_path, text, match):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png")
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        file_list(tmp_path / "bad.csv")


def test_file_list_missing_paths_listed_with_count(tmp_path):
    _img(tmp_path / "a.png")
    rows = ["a.png,0"] + [f"gone{i}.png,0" for i in range(7)]
    (tmp_path / "l.csv").write_text("\n".join(rows))
    with pytest.raises(
        DataError,
        match=r"7 of 8 image paths in file list .* do not exist \('gone0\.png' \(line 2\), "
        r".*'gone4\.png' \(line 6\), \.\.\.\); relative paths are resolved against",
    ):
        file_list(tmp_path / "l.csv")
    with pytest.raises(DataError, match=r"file list '.*nope\.csv' does not exist"):
        file_list(tmp_path / "nope.csv")


def test_demo_digits():
    from sklearn.datasets import load_digits

    samples = demo_digits()
    assert len(samples) == 1797
    assert samples.class_names == tuple("0123456789")
    assert samples.ids[5] == "digits:5"
    assert samples.source == "demo:digits"
    np.testing.assert_array_equal(samples.labels, load_digits().target)
    image = samples.load(0)
    assert (image.mode, image.size) == ("RGB", (8, 8))
    # digit 0, row 0 column 2 holds ink level 5: round(5 * 255 / 16) = 80
    assert image.getpixel((2, 0)) == (80, 80, 80)
    expected = np.round(load_digits().images[100] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(samples.load(100))[..., 1], expected)


def test_load_samples_dispatch(tmp_path, folder):
    assert load_samples(None).source == "demo:digits"
    assert len(load_samples("demo:digits")) == 1797
    with pytest.warns(UserWarning, match="hold no images"):
        assert load_samples(folder).class_names == ("bird", "cat", "dog")
    _img(tmp_path / "a.png")
    (tmp_path / "l.txt").write_text("a.png 0\n")
    from_list = load_samples(str(tmp_path / "l.txt"))
    assert from_list.ids == ("a.png",)
    assert load_samples(from_list) is from_list


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p: "demo:cifar",
            r"unknown demo data 'demo:cifar'; the built-in ones are demo:digits",
        ),
        (lambda p: p / "missing", r"data '.*missing' does not exist"),
        (lambda p: _img(p / "one.png"), r"data '.*one\.png' is a \.png file"),
        (lambda p: 3, "got int"),
    ],
)
def test_load_samples_errors(tmp_path, make, match):
    with pytest.raises(DataError, match=match):
        load_samples(make(tmp_path))


def test_read_class_names(tmp_path):
    path = tmp_path / "names.txt"
    path.write_bytes("\ufeffchat\r\nchien \n\u00e9l\u00e9phant\n\n\n".encode())
    assert read_class_names(path) == ("chat", "chien", "\u00e9l\u00e9phant")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a\n\nb\n", r"has a blank line \(line 2\)"),
        ("a\nb\na\n", r"repeats 'a' \(lines 1 and 3\)"),
        ("\n\n", "is empty"),
    ],
)
def test_read_class_names_errors(tmp_path, text, match):
    (tmp_path / "n.txt").write_text(text)
    with pytest.raises(DataError, match=match):
        read_class_names(tmp_path / "n.txt")


def _samples(labels, names):
    return ImageSamples(
        ids=tuple(f"s:{i}" for i in range(len(labels))),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(names),
        source="test-source",
        loader=lambda i: Image.new("RGB", (1, 1)),
    )


def test_apply_class_names_to_index_labels():
    samples = _samples([0, 2, 1], ["0", "1", "2"])
    named = apply_class_names(samples, ["a", "b", "c", "d"])
    assert isinstance(named, ImageSamples)
    assert named.class_names == ("a", "b", "c", "d")
    np.testing.assert_array_equal(named.labels, [0, 2, 1])
    with pytest.raises(
        DataError, match=r"test-source: 2 class names cannot name label 2 \(the largest label\)"
    ):
        apply_class_names(samples, ["a", "b"])


def test_apply_class_names_reindexes_name_labels(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png")
    (tmp_path / "l.csv").write_text("a.png,cat\nb.png,dog\n")
    samples = file_list(tmp_path / "l.csv")
    np.testing.assert_array_equal(samples.labels, [0, 1])
    named = apply_class_names(samples, ["dog", "bird", "cat"])
    assert named.class_names == ("dog", "bird", "cat")
    np.testing.assert_array_equal(named.labels, [2, 0])
    with pytest.raises(DataError, match=r"missing from the 2 given \('dog'\)"):
        apply_class_names(samples, ["cat", "horse"])
    with pytest.raises(DataError, match="class names repeat 'cat'"):
        apply_class_names(samples, ["cat", "cat", "dog"])


def test_apply_class_names_to_feature_set():
    features = FeatureSet(
        features=np.zeros((3, 2), np.float32),
        labels=np.array([0, 1, 1]),
        class_names=("0", "1"),
        ids=("a", "b", "c"),
        point="p",
    )
    named = apply_class_names(features, ["x", "y"])
    assert isinstance(named, FeatureSet)
    assert named.class_names == ("x", "y")
    assert named.point == "p"
    with pytest.raises(DataError, match=r"1 class names cannot name label 1"):
        apply_class_names(features, ["x"])
