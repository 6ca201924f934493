"""Every result made with a model carries the preprocessing in effect in its provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch import nn

import featscope
from featscope.models import describe_preprocessing, load_model
from featscope.options import Output, Preprocess
from featscope.sinks.reader import load_run


def test_handle_provenance_holds_the_described_preprocessing() -> None:
    handle = load_model("demo:digits-cnn", input_size=24, mean=0.4)
    provenance = handle.provenance("here")
    assert dict(provenance.preprocessing) == describe_preprocessing(handle)
    assert provenance.preprocessing["input_size"] == [24, 24]
    assert provenance.preprocessing["source"]["mean"] == "user override"
    assert provenance.to_dict()["preprocessing"]["mean"] == pytest.approx([0.4] * 3)


def test_a_plain_module_says_what_was_assumed() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    described = load_model(net).provenance().preprocessing
    assert described["input_size"] == [224, 224]
    assert "assumed" in described["source"]["input_size"]


def test_featmap_manifest_and_reader_keep_it(tmp_path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    run = featscope.feature_maps(
        [("img", image)], "demo:digits-cnn", ["backbone"],
        preprocess=Preprocess(input_size=32), output=Output(work_dir=tmp_path),
    )  # fmt: skip
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    entries = list(manifest["results"].values())
    assert entries
    assert all(e["provenance"]["preprocessing"]["input_size"] == [32, 32] for e in entries)


def test_tsne_run_reads_back_with_it(tmp_path) -> None:
    run = featscope.tsne(
        selection=featscope.Selection(max_num_class=3, max_num_samples=10),
        embedding=featscope.EmbeddingOptions(method="pca"),
        points=["pre_logits"], html=False, output=Output(work_dir=tmp_path),
    )  # fmt: skip
    loaded = load_run(run.run_dir)
    described = loaded.embedding("pre_logits").provenance.preprocessing
    assert described["input_size"] == [32, 32]
    assert described["source"]["mean"] == "shipped with the demo model"
