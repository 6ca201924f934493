"""torch Datasets, DataLoaders, arrays and lists through load_samples."""

from __future__ import annotations

import pickle
import warnings
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from featscope.data import image_arrays, load_samples, torch_dataset
from featscope.errors import DataError


def _pixels(n=6, size=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


class Folderish(Dataset):
    """(PIL image, label) items with torchvision's ``classes``, ``class_to_idx``, ``targets``."""

    classes: ClassVar[list[str]] = ["cat", "dog", "emu"]

    def __init__(self, pixels, labels, targets=True):
        self.pixels, self.labels_ = pixels, list(labels)
        if targets:
            self.targets = list(labels)
        self.reads = 0

    def __len__(self):
        return len(self.pixels)

    def __getitem__(self, i):
        self.reads += 1
        return Image.fromarray(self.pixels[i]), self.labels_[i]


class Items(Dataset):
    """Whatever items a test gives."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_tensor_dataset_of_uint8_images_carries_labels():
    pixels = _pixels()
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
    samples = load_samples(TensorDataset(x, torch.tensor([2, 0, 1, 2, 0, 1])))
    assert samples.source == "torch Dataset TensorDataset"
    assert samples.ids[:2] == ("TensorDataset:0", "TensorDataset:1")
    np.testing.assert_array_equal(samples.labels, [2, 0, 1, 2, 0, 1])
    assert samples.class_names == ("0", "1", "2")
    assert samples.labelled
    assert not samples.prepared
    np.testing.assert_array_equal(np.asarray(samples.load(3)), pixels[3])
    assert samples.subset([4, 1]).load(0).mode == "RGB"


def test_float_chw_tensors_are_prepared_inputs_used_as_they_are():
    x = torch.randn(4, 3, 6, 6)
    samples = load_samples(TensorDataset(x, torch.tensor([0, 1, 0, 1])))
    assert samples.prepared
    assert samples.summary() == {
        "source": "torch Dataset TensorDataset",
        "n_samples": 4,
        "labelled": True,
        "n_classes": 2,
        "prepared": True,
    }
    torch.testing.assert_close(samples.load_prepared(2), x[2])
    assert samples.subset([2]).prepared
    # a picture for thumbnails: the input stretched to 0..255
    picture = np.asarray(samples.load(2))
    assert picture.shape == (6, 6, 3)
    assert picture.min() == 0
    assert picture.max() == 255
    # prepared=False turns [0, 1] float tensors into images that get the model's preprocessing
    unit = torch.rand(2, 3, 4, 4)
    as_images = torch_dataset(TensorDataset(unit), prepared=False)
    assert not as_images.prepared
    assert not as_images.labelled
    np.testing.assert_array_equal(
        np.asarray(as_images.load(1)),
        np.round(unit[1].permute(1, 2, 0).numpy() * 255).astype(np.uint8),
    )


def test_prepared_samples_refuse_load_prepared_on_images():
    samples = load_samples(TensorDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8)))
    with pytest.raises(Exception, match=r"are images, not prepared tensors; read them with load"):
        samples.load_prepared(0)


def test_dataset_class_names_targets_and_no_item_reads():
    dataset = Folderish(_pixels(), [0, 2, 1, 0, 2, 1])
    samples = load_samples(dataset)
    assert samples.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(samples.labels, [0, 2, 1, 0, 2, 1])
    assert dataset.reads == 1  # labels came from `targets`: only item 0 was read (its kind)
    # without `targets`, every item is read once for its label
    untargeted = Folderish(_pixels(), [0, 2, 1, 0, 2, 1], targets=False)
    np.testing.assert_array_equal(load_samples(untargeted).labels, [0, 2, 1, 0, 2, 1])
    # a Subset keeps the parent's names and picks its targets
    sub = load_samples(Subset(dataset, [5, 1]))
    assert sub.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(sub.labels, [1, 2])
    np.testing.assert_array_equal(np.asarray(sub.load(0)), dataset.pixels[5])


def test_class_to_idx_names_and_string_labels():
    class Mapped(Items):
        class_to_idx: ClassVar[dict[str, int]] = {"b": 1, "a": 0}

    pixels = _pixels(3)
    samples = load_samples(Mapped([(Image.fromarray(p), i % 2) for i, p in enumerate(pixels)]))
    assert samples.class_names == ("a", "b")
    named = load_samples(Items([(pixels[0], "zebra"), (pixels[1], "ant"), (pixels[2], "zebra")]))
    assert named.class_names == ("ant", "zebra")
    np.testing.assert_array_equal(named.labels, [1, 0, 1])


def test_dict_items_grey_and_hw_images():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    samples = load_samples(Items([{"image": grey, "label": 1}, {"image": grey, "label": 0}]))
    np.testing.assert_array_equal(samples.labels, [1, 0])
    image = samples.load(0)
    assert image.mode == "RGB"
    assert image.size == (4, 3)
    assert image.getpixel((1, 0)) == (1, 1, 1)
    # floats in [0, 1] are pixels times 255; RGBA goes on white
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    floats = np.full((2, 2, 3), 0.5)
    out = load_samples(Items([rgba, floats]))
    assert out.load(0).getpixel((0, 0)) == (255, 255, 255)
    assert out.load(1).getpixel((0, 0)) == (128, 128, 128)
    assert not out.labelled


def test_dataloader_batches_in_order_and_shuffle_warning():
    pixels = _pixels(7)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    y = torch.arange(7) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=3)
    samples = load_samples(loader)
    assert samples.source == "torch DataLoader over TensorDataset"
    assert len(samples) == 7
    assert samples.ids[-1] == "DataLoader:6"
    np.testing.assert_array_equal(samples.labels, [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(np.asarray(samples.load(6)), pixels[6])
    with pytest.warns(UserWarning, match=r"DataLoader over TensorDataset shuffles: .*not reprod"):
        load_samples(DataLoader(TensorDataset(x, y), batch_size=3, shuffle=True))
    # dict batches, with the dataset's class names
    named = DataLoader(Folderish(pixels, [0, 1, 2, 0, 1, 2, 0]), batch_size=4, collate_fn=_pil)
    got = load_samples(named)
    assert got.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(got.labels, [0, 1, 2, 0, 1, 2, 0])


def _pil(items):
    return {"image": [image for image, _ in items], "label": [label for _, label in items]}


def test_dataloader_of_prepared_tensors_without_labels():
    x = torch.randn(5, 3, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no shuffle: no warning
        samples = load_samples(DataLoader(x, batch_size=2))
    assert samples.prepared
    assert not samples.labelled
    torch.testing.assert_close(samples.load_prepared(4), x[4])


def test_arrays_and_lists():
    pixels = _pixels(4)
    samples = load_samples((pixels, np.array([1, 0, 1, 0])))
    assert samples.source == "(images, labels) arrays of 4 images"
    np.testing.assert_array_equal(samples.labels, [1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(samples.load(2)), pixels[2])
    named = image_arrays(pixels, ["b", "a", "b", "a"])
    assert named.class_names == ("a", "b")
    listed = load_samples([Image.fromarray(p) for p in pixels])
    assert listed.source == "list of 4 images"
    assert not listed.labelled
    array = load_samples(pixels)  # an (N, H, W, 3) array alone
    assert len(array) == 4
    assert not array.labelled
    np.testing.assert_array_equal(np.asarray(array.load(1)), pixels[1])


def test_samples_pickle_for_worker_processes():
    pixels = _pixels(3)
    samples = load_samples((torch.from_numpy(pixels).permute(0, 3, 1, 2), torch.tensor([0, 1, 0])))
    clone = pickle.loads(pickle.dumps(samples.subset([2])))
    np.testing.assert_array_equal(np.asarray(clone.load(0)), pixels[2])


# ---------------------------------------------------------------- bad input, one line each


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (["not an image"], r"item 0 of Items is a str, not an image; give a PIL image"),
        ([(3.5, 1)], r"item 0 of Items is a float, not an image"),
        ([np.zeros(5)], r"item 0 of Items is a float64 array of shape \(5,\), not an image"),
        (
            [np.full((2, 2), -3.0)],
            r"item 0 of Items holds values from -3 to -3, which are not pixels; give uint8",
        ),
        ([{"caption": "x"}], r"item 0 of Items is a dict without an image \(keys: caption\)"),
        ([], r"Items is empty"),
    ],
)
def test_items_that_are_not_images(items, match):
    with pytest.raises(DataError, match=match) as info:
        load_samples(Items(items))
    assert "\n" not in str(info.value)


def test_a_later_bad_item_is_named_when_it_is_read():
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    samples = load_samples(Items([(image, 0), ({"no": "image"}, 1)]))
    with pytest.raises(DataError, match=r"item 1 of Items is a dict, not an image"):
        samples.load(1)
    prepared = load_samples(Items([torch.zeros(3, 4, 4), image, torch.zeros(3, 5, 5)]))
    with pytest.raises(DataError, match=r"item 1 of Items is a uint8 array .* but the data are"):
        prepared.load_prepared(1)
    with pytest.raises(DataError, match=r"item 2 of Items has shape \(3, 5, 5\), the first item"):
        prepared.load_prepared(2)


def test_getitem_that_raises_is_named():
    class Broken(Items):
        def __getitem__(self, i):
            if i == 1:
                raise OSError("disk gone")
            return super().__getitem__(i)

    samples = load_samples(Broken([np.zeros((2, 2), np.uint8)] * 2))
    with pytest.raises(DataError, match=r"reading item 1 of Broken raised OSError: disk gone"):
        samples.load(1)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0, 3, 1], r"Folderish: label 3 of item 1 is out of range: the source names 3 classes"),
        ([0, -2, 1], r"Folderish: label -2 of item 1 is negative; class indices start at 0"),
    ],
)
def test_labels_out_of_range(labels, match):
    with pytest.raises(DataError, match=match):
        load_samples(Folderish(_pixels(3), labels))


def test_label_mistakes_in_items():
    image = np.zeros((2, 2), np.uint8)
    with pytest.raises(DataError, match=r"item 1 has no label while item 0 has one"):
        load_samples(Items([(image, 1), (image, None)]))
    with pytest.raises(DataError, match=r"labels mix class indices and class names \(item 0"):
        load_samples(Items([(image, 1), (image, "cat")]))
    with pytest.raises(DataError, match=r"4 images but labels of shape \(3,\)"):
        image_arrays(_pixels(4), [0, 1, 2])
    # a second element that is no label (a mask): unlabelled, with a warning
    with pytest.warns(UserWarning, match=r"its items is a float32 tensor of shape \(2, 2\), not"):
        masked = load_samples(Items([(image, torch.zeros(2, 2))]))
    assert not masked.labelled
    # every label -1: unlabelled
    assert not load_samples(Items([(image, -1), (image, -1)])).labelled


def test_objects_that_are_no_data():
    with pytest.raises(DataError, match=r"data must be a folder .*; got int"):
        load_samples(3)
    with pytest.raises(DataError, match=r"data is a dict \(a mapping\); pass one split"):
        load_samples({"train": []})


def test_a_list_of_two_items_is_not_an_images_labels_pair():
    image = np.zeros((2, 2, 3), np.uint8)
    samples = load_samples([(image, 0), (image, 1)])
    np.testing.assert_array_equal(samples.labels, [0, 1])
    assert samples.source == "list of 2 images"


def test_labels_and_metadata_of_dict_items_come_from_one_read_of_each_item():
    class Counted(Dataset):
        def __init__(self) -> None:
            self.reads = 0

        def __len__(self) -> int:
            return 5

        def __getitem__(self, i):
            self.reads += 1
            image = np.full((8, 8, 3), i * 40, dtype=np.uint8)
            return {"image": image, "label": i % 2, "site": f"s{i}", "score": i / 10}

    dataset = Counted()
    samples = torch_dataset(dataset)
    assert dataset.reads == 5  # not once for the labels and again for the fields
    np.testing.assert_array_equal(samples.labels, [0, 1, 0, 1, 0])
    assert list(samples.metadata["site"]) == ["s0", "s1", "s2", "s3", "s4"]
    np.testing.assert_allclose(samples.metadata["score"], [0.0, 0.1, 0.2, 0.3, 0.4])
