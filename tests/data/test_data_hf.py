"""Hugging Face datasets (in memory, save_to_disk, parquet folders) through load_samples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from featscope.data import hf_dataset, load_samples
from featscope.errors import DataError

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path, monkeypatch):
    # load_dataset writes a cache: keep it in the test's folder, and never reach the hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    datasets.disable_progress_bars()


def _pixels(n=4):
    return np.random.default_rng(0).integers(0, 256, (n, 5, 6, 3), dtype=np.uint8)


def _labelled(n=4, labels=(0, 2, 1, 2)):
    features = datasets.Features(
        {
            "caption": datasets.Value("string"),
            "img": datasets.Image(),
            "fine": datasets.ClassLabel(names=["ant", "bee", "cat"]),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "caption": [f"c{i}" for i in range(n)],
            "img": [Image.fromarray(p) for p in _pixels(n)],
            "fine": list(labels),
        },
        features=features,
    )


def test_columns_found_by_feature_type():
    samples = load_samples(_labelled())
    assert samples.source == "Hugging Face dataset"
    assert samples.class_names == ("ant", "bee", "cat")
    np.testing.assert_array_equal(samples.labels, [0, 2, 1, 2])
    assert samples.ids[:2] == ("hf:0", "hf:1")
    np.testing.assert_array_equal(np.asarray(samples.load(3)), _pixels()[3])
    assert not samples.prepared


def test_columns_found_by_name_and_unlabelled():
    grey = [np.full((3, 3), i * 40, np.uint8) for i in range(3)]
    by_name = datasets.Dataset.from_dict({"image": grey, "label": ["dog", "cat", "dog"]})
    samples = hf_dataset(by_name)
    assert samples.class_names == ("cat", "dog")
    np.testing.assert_array_equal(samples.labels, [1, 0, 1])
    assert samples.load(2).getpixel((0, 0)) == (80, 80, 80)
    unlabelled = load_samples(datasets.Dataset.from_dict({"image": grey}))
    assert not unlabelled.labelled
    assert (unlabelled.labels == -1).all()
    # ClassLabel's "no label" value on every row: unlabelled
    missing = _labelled(labels=(-1, -1, -1, -1))
    assert not load_samples(missing).labelled


def test_prepared_pixel_values_column():
    pixel_values = np.random.default_rng(1).normal(size=(3, 3, 4, 4)).astype(np.float32)
    ds = datasets.Dataset.from_dict({"pixel_values": pixel_values, "label": [0, 1, 0]})
    samples = load_samples(ds)
    assert samples.prepared
    np.testing.assert_allclose(samples.load_prepared(1), pixel_values[1])


def test_dataset_dict_split_choice(tmp_path):
    both = datasets.DatasetDict(train=_labelled(), test=_labelled(2, (1, 1)))
    with pytest.raises(DataError, match=r"has splits train, test; name one: hf:DIR:train"):
        load_samples(both)
    test = hf_dataset(both, split="test")
    assert len(test) == 2
    assert test.source == "Hugging Face dataset (split test)"
    assert test.ids == ("test:0", "test:1")
    assert len(load_samples(both["train"])) == 4
    assert len(load_samples(datasets.DatasetDict(only=_labelled()))) == 4
    with pytest.raises(DataError, match=r"has no split 'dev'; its splits are train, test"):
        hf_dataset(both, split="dev")


def test_hf_specs_read_save_to_disk_and_parquet_folders(tmp_path):
    _labelled().save_to_disk(tmp_path / "one")
    samples = load_samples(f"hf:{tmp_path / 'one'}")
    assert samples.source == f"hf:{tmp_path / 'one'}"
    assert samples.class_names == ("ant", "bee", "cat")
    np.testing.assert_array_equal(np.asarray(samples.load(0)), _pixels()[0])

    datasets.DatasetDict(train=_labelled(), test=_labelled(2, (1, 0))).save_to_disk(tmp_path / "dd")
    test = load_samples(f"hf:{tmp_path / 'dd'}:test")
    np.testing.assert_array_equal(test.labels, [1, 0])
    with pytest.raises(DataError, match=r"has splits train, test; name one"):
        load_samples(f"hf:{tmp_path / 'dd'}")

    (tmp_path / "pq" / "data").mkdir(parents=True)
    _labelled().to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    parquet = load_samples(f"hf:{tmp_path / 'pq'}")
    assert parquet.class_names == ("ant", "bee", "cat")  # the features travel in the metadata
    np.testing.assert_array_equal(parquet.labels, [0, 2, 1, 2])


def test_hf_spec_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds neither a dataset written by save_to_disk nor"):
        load_samples(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match=r"is not a folder, and the hub is not reachable"):
        load_samples("hf:someone/some-dataset")


def test_no_image_column_lists_the_columns():
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
    with pytest.raises(
        DataError,
        match=r"^Hugging Face dataset has no image column \(columns: text \(string\), label "
        r"\(int64\)\); cast one to datasets.Image",
    ):
        load_samples(ds)


def test_label_out_of_range_names_the_item():
    ds = datasets.Dataset.from_dict({"image": [np.zeros((2, 2), np.uint8)] * 2, "label": [0, -4]})
    with pytest.raises(DataError, match=r"column 'label': label -4 of item 1 is negative"):
        load_samples(ds)


def test_other_scalar_columns_travel_as_metadata():
    ds = _labelled().add_column("weight", [0.5, 1.0, 1.5, 2.0])
    ds = ds.add_column("id", [10, 11, 12, 13])  # a featscope name: renamed
    ds = ds.cast_column("id", datasets.Value("int64"))
    ds = ds.add_column("boxes", [[1, 2], [3], [], [4]])  # not a scalar column: left out
    samples = load_samples(ds)
    assert list(samples.metadata) == ["caption", "weight", "meta_id"]
    assert samples.metadata["caption"].tolist() == ["c0", "c1", "c2", "c3"]
    assert samples.metadata["weight"].dtype == np.float64
    assert samples.metadata["meta_id"].tolist() == [10, 11, 12, 13]
    assert samples.subset([3, 1]).metadata["caption"].tolist() == ["c3", "c1"]
    assert samples.summary()["metadata"] == ["caption", "weight", "meta_id"]
