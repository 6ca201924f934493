"""The views that take photos (featmap, browse) also take the Python data objects tsne takes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import featscope
from featscope.data.browse import open_images
from featscope.data.photos import collect_photos
from featscope.data.py_sources import is_python_data
from featscope.options import Output


class _Photos:
    """A torch-style Dataset: (PIL image, label) items."""

    def __init__(self, n: int = 3) -> None:
        rng = np.random.default_rng(0)
        self.images = [
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)) for _ in range(n)
        ]
        self.classes = ["cat", "dog"]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], i % 2


def test_which_inputs_are_python_data(tmp_path):
    torch = pytest.importorskip("torch")
    assert is_python_data(_Photos())
    assert is_python_data("py:my_pkg.data:build")
    assert is_python_data("hf:./saved")
    assert is_python_data(torch.utils.data.DataLoader(_Photos(), batch_size=2, collate_fn=list))
    for other in (
        None,
        "photo.jpg",
        tmp_path,
        [tmp_path],
        ("a", "b"),
        np.zeros((4, 4, 3), np.uint8),
        Image.new("RGB", (4, 4)),
        torch.nn.Sequential(torch.nn.Identity()),
        {"images": []},
    ):
        assert not is_python_data(other), other


def test_featmap_photos_and_browse_images_from_a_dataset():
    photos, _source = collect_photos(_Photos())
    assert len(photos) == 3
    assert np.asarray(photos[1].load()).shape == (24, 24, 3)
    samples = open_images(_Photos())
    assert len(samples) == 3
    assert samples.class_names == ("cat", "dog")
    assert samples.labels.tolist() == [0, 1, 0]


def test_feature_maps_of_a_dataset(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    run = featscope.feature_maps(_Photos(2), net, ["0"], output=Output(work_dir=tmp_path))
    assert len(run) == 2
    assert len(list(run.run_dir.glob("*_0.png"))) == 2
