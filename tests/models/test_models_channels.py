"""Any channel count: read from the model (or `in_chans`), and photos converted to it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featscope.capture.extract import extract_features
from featscope.data.samples import ImageSamples
from featscope.errors import ParameterError
from featscope.models import load_model
from featscope.models.generic import input_channels

skimage_data = pytest.importorskip("skimage.data")
# torch >= 2.9 marks TorchScript as deprecated; archives still save and load
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning:torch.jit")


class MnistCNN(nn.Module):
    """An MNIST-style classifier: one grey input channel."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3)
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def photos() -> ImageSamples:
    images = [Image.fromarray(skimage_data.coffee()), Image.fromarray(skimage_data.astronaut())]
    return ImageSamples(
        ids=("coffee", "astronaut"),
        labels=np.array([0, 1]),
        class_names=("coffee", "astronaut"),
        source="skimage.data",
        loader=lambda i: images[i],
    )


def mnist_handles(tmp_path, monkeypatch) -> dict:
    torch.manual_seed(0)
    net = MnistCNN().eval()
    package = tmp_path / "mnistpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def build():
                return nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    scripted, traced = tmp_path / "scripted.pt", tmp_path / "traced.pt"
    torch.jit.save(torch.jit.script(net), scripted)
    torch.jit.save(torch.jit.trace(net, torch.randn(1, 1, 28, 28)), traced)
    return {
        "module": load_model(net, input_size=28),
        "py": load_model("py:mnistpkg.nets:build", input_size=28),
        "ts-scripted": load_model(f"ts:{scripted}", input_size=28),
        "ts-traced": load_model(f"ts:{traced}", input_size=28),
    }


def test_one_channel_models_get_one_channel_tensors_from_rgb_photos(tmp_path, monkeypatch):
    for name, handle in mnist_handles(tmp_path, monkeypatch).items():
        pre = handle.preprocess
        assert pre.channels == 1, name
        assert pre.source["channels"].startswith("model ("), name
        assert pre.mean == pytest.approx((sum((0.485, 0.456, 0.406)) / 3,)), name
        x = pre(photos().load(0))
        assert x.shape == (1, 28, 28), name


def test_extract_features_runs_on_one_channel_models(tmp_path, monkeypatch):
    handles = mnist_handles(tmp_path, monkeypatch)
    for name, point in (("module", "neck"), ("ts-scripted", "logits"), ("ts-traced", "logits")):
        result = extract_features(handles[name], photos(), [point], batch_size=2, progress=False)
        assert result.features[point].shape == ((2, 16) if point == "neck" else (2, 10)), name
    # the module and its TorchScript copies see the same tensors
    module = extract_features(handles["module"], photos(), ["logits"], progress=False)
    traced = extract_features(handles["ts-traced"], photos(), ["logits"], progress=False)
    np.testing.assert_allclose(module.features["logits"], traced.features["logits"], atol=1e-5)


def test_input_channels_found_in_the_stem_or_not_at_all() -> None:
    assert input_channels(MnistCNN()) == (1, "features.0")
    assert input_channels(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))) is None
    handle = load_model(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    assert handle.preprocess.channels == 3
    assert handle.preprocess.source["channels"] == "assumed ImageNet default"


def test_in_chans_overrides_with_a_warning_naming_both() -> None:
    with pytest.warns(UserWarning, match=r"`in_chans` 3 differs from the 1 input channels"):
        handle = load_model(MnistCNN(), in_chans=3)
    assert handle.preprocess.channels == 3
    assert handle.preprocess.source["channels"] == "user override"
    with pytest.raises(ParameterError, match=r"`in_chans` must be a positive integer .*; got 0"):
        load_model(MnistCNN(), in_chans=0)


def test_four_channel_model_fails_on_photos_naming_both() -> None:
    net = nn.Sequential(nn.Conv2d(4, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    handle = load_model(net)
    assert handle.preprocess.channels == 4
    with pytest.raises(
        ParameterError, match=r"takes 4-channel inputs but the images are RGB \(3 channels\)"
    ):
        extract_features(handle, photos(), ["logits"], progress=False)


def test_timm_in_chans_builds_the_model_for_it() -> None:
    pytest.importorskip("timm")
    handle = load_model("timm:test_resnet", in_chans=1)
    assert input_channels(handle.module)[0] == 1
    assert handle.preprocess.channels == 1
    assert handle.preprocess.source["channels"] == "user override"
    assert handle.preprocess(photos().load(1)).shape[0] == 1
    assert load_model("timm:test_resnet").preprocess.source["channels"].startswith("model (")


def test_hf_channels_from_the_config(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=16, patch_size=8, num_channels=1, hidden_size=8, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=16,
    )  # fmt: skip
    transformers.ViTModel(config).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="no image-processor config"):
        handle = load_model(f"hf:{tmp_path}")
    assert handle.preprocess.channels == 1
    assert handle.preprocess.source["channels"] == "Hugging Face model config (num_channels)"
    assert handle.preprocess(photos().load(0)).shape == (1, 16, 16)


def test_one_channel_model_through_monitor_and_featmap(tmp_path):
    """The MNIST CNN inside training (Monitor, two logged epochs) and in featmap, end to end."""
    import featscope
    from featscope.options import Figures, Output, Preprocess, Selection

    torch.manual_seed(0)
    net = MnistCNN()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = featscope.Monitor(
        net,
        data="demo:digits",
        points=["neck"],
        featmaps=["features.3"],
        preprocess=Preprocess(input_size=16),
        selection=Selection(max_num_samples=3),
        figures=Figures(dpi=30),
        thumbnails=0,
        output=Output(work_dir=tmp_path),
    )
    with monitor:
        for epoch in range(2):
            loss = net(torch.randn(4, 1, 16, 16)).logsumexp(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step = monitor(force=True)
            assert step.epoch == epoch
            assert step.results[0].coords.shape == (30, 2)
            assert step.featmaps, "feature maps were logged"
    assert monitor.run_dir is not None
    assert (monitor.run_dir / "manifest.json").is_file()

    maps = featscope.feature_maps(
        [("coffee", skimage_data.coffee())], net, ["features.3"],
        preprocess=Preprocess(input_size=28), output=Output(work_dir=None),
    )  # fmt: skip
    (feature_map,) = maps.maps
    assert feature_map.values.shape[0] == 16
