"""Every kind of data gives the features of the same images read from a folder.

And prepared tensors (``ImageSamples.prepared``) reach the model as they are, skipping the
model's preprocessing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from capture_helpers import PREPROCESS, make_handle, random_image
from torch.utils.data import DataLoader, TensorDataset

from featscope.capture import extract_features
from featscope.capture.store import read_progress
from featscope.data import load_samples
from featscope.errors import DataError

N = 6
LABELS = np.array([0, 1, 2, 0, 1, 2])


def _extract(net, samples, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("num_workers", 0)
    kwargs.setdefault("batch_size", 4)
    return extract_features(make_handle(net), samples, ["backbone", "logits"], **kwargs)


@pytest.fixture
def images():
    return [random_image(i) for i in range(N)]


@pytest.fixture
def folder_features(net, images, tmp_path):
    """Features of the images written as PNGs in class folders, in dataset order."""
    for i, image in enumerate(images):
        path = tmp_path / "folder" / f"c{LABELS[i]}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    samples = load_samples(tmp_path / "folder")
    result = _extract(net, samples)
    # the folder is sorted by class: put the rows back in image order
    order = np.argsort([int(sample_id.split("/")[1].split(".")[0]) for sample_id in samples.ids])
    return {name: array[order] for name, array in result.features.items()}


def _check(result, folder_features):
    for name, expected in folder_features.items():
        np.testing.assert_allclose(result.features[name], expected, atol=1e-6)


def _uint8_chw(images):
    return torch.stack([torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in images])


def test_tensor_dataset_matches_the_folder(net, images, folder_features):
    samples = load_samples(TensorDataset(_uint8_chw(images), torch.from_numpy(LABELS)))
    result = _extract(net, samples)
    _check(result, folder_features)
    sets = result.feature_sets(samples, provenance=_provenance())
    np.testing.assert_array_equal(sets[0].labels, LABELS)
    assert sets[0].class_names == ("0", "1", "2")
    assert sets[0].ids[0] == "TensorDataset:0"


def test_dataloader_and_arrays_match_the_folder(net, images, folder_features):
    dataset = TensorDataset(_uint8_chw(images), torch.from_numpy(LABELS))
    _check(_extract(net, load_samples(DataLoader(dataset, batch_size=4))), folder_features)
    pixels = np.stack([np.asarray(im) for im in images])
    _check(_extract(net, load_samples((pixels, LABELS))), folder_features)


def test_prepared_tensors_skip_the_model_preprocessing(net, images, folder_features):
    # the user's transform made exactly the model's input: the same features
    x = torch.stack([PREPROCESS(im) for im in images])
    samples = load_samples(TensorDataset(x, torch.from_numpy(LABELS)))
    assert samples.prepared
    _check(_extract(net, samples), folder_features)

    # and it is not applied again: a handle whose preprocessing would change everything
    class Exploding:
        def __call__(self, image):
            raise AssertionError("preprocessing must be skipped for prepared samples")

    handle = make_handle(net)
    object.__setattr__(handle, "preprocess", Exploding())
    result = extract_features(handle, samples, ["logits"], progress=False, num_workers=0)
    np.testing.assert_allclose(result.features["logits"], folder_features["logits"], atol=1e-6)


def test_prepared_tensors_in_worker_processes(net, images, folder_features):
    x = torch.stack([PREPROCESS(im) for im in images])
    samples = load_samples(TensorDataset(x, torch.from_numpy(LABELS)))
    _check(_extract(net, samples, num_workers=2), folder_features)


def test_hf_dataset_matches_the_folder(net, images, folder_features):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {"image": images, "label": LABELS.tolist()},
        features=datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])}
        ),
    )
    samples = load_samples(ds)
    result = _extract(net, samples)
    _check(result, folder_features)
    assert result.feature_sets(samples, _provenance())[0].class_names == ("a", "b", "c")


def test_unlabelled_samples_extract_with_labels_minus_one(net, images):
    samples = load_samples(images)  # a list of PIL images
    result = _extract(net, samples)
    fs = result.feature_sets(samples, _provenance())[0]
    assert fs.class_names == ()
    assert (fs.labels == -1).all()
    assert len(fs) == N


def test_a_bad_prepared_item_is_a_one_line_data_error(net, images):
    items = [torch.zeros(3, 16, 16), torch.zeros(3, 16, 16), np.asarray(images[0])]
    samples = load_samples(items)
    with pytest.raises(DataError, match=r"item 2 of list is a uint8 array .* but the data are"):
        _extract(net, samples)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) of 3 .*list:2"):
        result = _extract(net, samples, skip_bad_images=True)
    assert [sample_id for sample_id, _ in result.skipped] == ["list:2"]


def test_prepared_samples_are_recorded_in_the_cache_fingerprint(net, images, tmp_path):
    x = torch.stack([PREPROCESS(im) for im in images])
    _extract(net, load_samples(TensorDataset(x)), cache_dir=tmp_path / "prepared")
    assert read_progress(tmp_path / "prepared")["fingerprint"]["prepared"] is True
    _extract(net, load_samples(images), cache_dir=tmp_path / "images")
    assert "prepared" not in read_progress(tmp_path / "images")["fingerprint"]


def _provenance():
    from featscope.results import Provenance

    return Provenance(model="test:tiny")
