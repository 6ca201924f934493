"""Monitor and the Lightning callback: maps, metrics and feature maps logged while training."""

from __future__ import annotations

import json
import re

import pytest
import torch
from backends_helpers import ProjectorClient, tb_events, tiny_net

import featscope
from featscope.errors import CaptureError, ParameterError
from featscope.options import (
    EmbeddingOptions,
    Extraction,
    Figures,
    Output,
    Preprocess,
    Selection,
)
from featscope.views.monitor import Monitor

# 8x8 digits shown to the tiny net at 16x16; 40 samples keep each step well under a second.
MONITOR = {
    "data": "demo:digits",
    "points": ["5"],
    "preprocess": Preprocess(input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3),
    "selection": Selection(max_num_samples=4),  # 10 classes x 4
    "thumbnails": 8,
    "figures": Figures(dpi=30),
}


def _train_epoch(net, opt, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 3, 16, 16, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    loss = torch.nn.functional.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_plain_loop_logs_every_n_epochs_to_tensorboard(tmp_path):
    net = tiny_net()
    net.train()
    net[0].eval()  # a mixed state, to check it is restored exactly
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = featscope.Monitor(
        net,
        every=2,
        output=Output(work_dir=tmp_path, backends=["tensorboard"]),
        featmaps=["0"],
        **MONITOR,
    )
    logged = []
    for epoch in range(4):
        _train_epoch(net, opt, epoch)
        rng_before = torch.get_rng_state()
        step = monitor.step(epoch)
        assert torch.equal(torch.get_rng_state(), rng_before)  # training's randomness untouched
        assert net.training
        assert not net[0].training
        assert net[2].training
        logged.append(None if step is None else step.epoch)
    run_dir = monitor.close()
    assert logged == [None, 1, None, 3]
    assert [s.epoch for s in monitor.history] == [1, 3]
    metrics = monitor.history[-1].metrics["5"]
    assert 0.0 <= metrics["knn_accuracy_map"] <= 1.0

    assert run_dir.name.startswith("monitor_")
    assert (run_dir / "manifest.json").is_file()
    assert sorted(p.name for p in run_dir.glob("pca_*.png")) == [
        "pca_5_e0001.png",
        "pca_5_e0003.png",
    ]
    assert len(list(run_dir.glob("featmap_*_e0003.png"))) == 2  # two images, point "0"
    # the coordinates of each logged epoch, in the columns of a tsne run
    coords = (run_dir / "coords_5_e0003.csv").read_text().splitlines()
    # ... and what the model predicted in the same pass (issue 16)
    assert coords[0] == "id,label,class_name,x,y,prediction,confidence,correct,cluster"
    assert len(coords) == 1 + 40
    sample_id, label, class_name = coords[1].split(",")[:3]
    assert sample_id.startswith("digits:")
    assert label == class_name  # the digits' classes are named by their index
    assert sorted(p.name for p in run_dir.glob("coords_*.csv")) == [
        "coords_5_e0001.csv",
        "coords_5_e0003.csv",
    ]
    rows = [json.loads(line) for line in (run_dir / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 3]
    assert rows[1]["5/knn_accuracy_map"] == pytest.approx(metrics["knn_accuracy_map"])

    log_dir = tmp_path / "tensorboard" / run_dir.name
    events = tb_events(log_dir)
    assert [s.step for s in events.Scalars("5/knn_accuracy_map")] == [1, 3]
    assert [i.step for i in events.Images("pca/5")] == [1, 3]
    featmap_tags = [t for t in events.Tags()["images"] if t.startswith("featmap/")]
    assert len(featmap_tags) == 2
    assert all(len(events.Images(t)) == 2 for t in featmap_tags)
    info = ProjectorClient(tmp_path / "tensorboard").info(run_dir.name)
    names = [e["tensorName"] for e in info["embeddings"]]
    assert names == ["5/pca@1", "5/features@1", "5/pca@3", "5/features@3"]  # map first
    assert info["embeddings"][1]["tensorShape"] == [40, 6]
    assert info["embeddings"][0]["sprite"]["singleImageDim"] == [8, 8]


def test_monitor_without_work_dir_only_computes(tmp_path):
    net = tiny_net()
    with Monitor(net, output=Output(work_dir=None), embeddings=False, **MONITOR) as monitor:
        first = monitor(force=True)
        assert monitor() is not None  # every=1; epoch counts calls
    assert first.epoch == 0
    assert monitor.history[-1].epoch == 1
    assert monitor.run_dir is None
    with pytest.raises(ParameterError, match="Monitor is closed"):
        monitor.step(5)


def test_monitor_rejects_bad_requests_before_training(tmp_path):
    net = tiny_net()
    output = Output(work_dir=tmp_path)
    with pytest.raises(ParameterError, match="`every` must be a positive integer"):
        Monitor(net, every=0, output=output, **MONITOR)
    with pytest.raises(ParameterError, match="`--method` must be one of"):
        Monitor(net, embedding=EmbeddingOptions(method="lda"), output=output, **MONITOR)
    with pytest.raises(CaptureError, match="nope"):
        Monitor(net, output=output, **{**MONITOR, "points": ["nope"]})
    with pytest.raises(ParameterError, match="work_dir is None"):
        Monitor(net, output=Output(backends=["tensorboard"], work_dir=None), **MONITOR)
    with pytest.raises(ParameterError, match="`thumbnails` is the thumbnail side"):
        Monitor(net, output=output, **{**MONITOR, "thumbnails": -1})
    # settings a monitor inside a training loop cannot honour are refused, not ignored
    refused = [
        ({"output": Output(work_dir=tmp_path, export=tmp_path / "x")}, "Output.export"),
        ({"extraction": Extraction(nproc=2)}, "Extraction.nproc"),
        ({"extraction": Extraction(cache_dir=tmp_path / "c")}, "Extraction.cache_dir/resume"),
        ({"figures": Figures(show=True)}, "Figures.show; leave it off"),
    ]
    for groups, name in refused:
        with pytest.raises(ParameterError, match=f"Monitor does not take {re.escape(name)}"):
            Monitor(net, **{"output": output, **MONITOR, **groups})
    assert not any(tmp_path.iterdir())


def test_lightning_callback_logs_each_epoch(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")  # the `lightning` test extra
    from featscope.lightning import FeatscopeCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = tiny_net()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(16, 3, 16, 16, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    )
    callback = FeatscopeCallback(
        points=["net.5"],
        output=Output(work_dir=tmp_path, backends=["tensorboard"]),
        **{k: v for k, v in MONITOR.items() if k != "points"},
    )
    assert isinstance(callback, pl.Callback)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path / "pl",
        callbacks=[callback],
    )
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=8))
    monitor = callback.monitor
    assert [s.epoch for s in monitor.history] == [0, 1]
    run_dir = monitor.run_dir
    assert run_dir.name.startswith("monitor_")
    assert (run_dir / "manifest.json").is_file()
    events = tb_events(tmp_path / "tensorboard" / run_dir.name)
    assert [s.step for s in events.Scalars("net.5/knn_accuracy_map")] == [0, 1]
    assert [i.step for i in events.Images("pca/net.5")] == [0, 1]


def test_lightning_callback_checks_its_arguments():
    pytest.importorskip("lightning.pytorch")
    from featscope.lightning import FeatscopeCallback

    with pytest.raises(ParameterError, match="`on` must be 'train' or 'validation'"):
        FeatscopeCallback(on="test")
    with pytest.raises(ParameterError, match="`every` must be a positive integer"):
        FeatscopeCallback(every=0)


def test_module_has_no_other_lazy_names():
    import featscope.lightning as lightning_module

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        lightning_module.Nope  # noqa: B018


def test_the_callback_is_featscope_callback():
    pytest.importorskip("lightning.pytorch")
    from featscope.lightning import FeatscopeCallback

    assert featscope.FeatscopeCallback is FeatscopeCallback
    assert FeatscopeCallback.__module__ == "featscope.lightning"


def test_callback_without_lightning_names_the_extra(monkeypatch):
    import sys

    from featscope import lightning as lightning_module
    from featscope.errors import MissingExtraError

    lightning_module._callback_class.cache_clear()
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'featscope\[lightning\]'"):
            lightning_module.FeatscopeCallback  # noqa: B018
    finally:
        lightning_module._callback_class.cache_clear()


def test_callback_pickles_by_reference():
    import pickle

    pytest.importorskip("lightning.pytorch")
    from featscope.lightning import FeatscopeCallback

    callback = pickle.loads(pickle.dumps(FeatscopeCallback(points=["net.5"], every=3)))
    assert callback.every == 3
    assert callback.points == ["net.5"]


def test_feature_maps_on_option_groups_are_called_with_data_first(monkeypatch):
    # the featmap view's signature on option groups (branch `featmap`): data, model, points
    import types

    import featscope.views.featmap as featmap_view

    calls = []

    def feature_maps(data=None, model=None, points=None, *, extraction=None, output=None):
        calls.append((data, model, points, extraction, output))
        return types.SimpleNamespace(maps=())

    monkeypatch.setattr(featmap_view, "feature_maps", feature_maps)
    monitor = Monitor(tiny_net(), output=Output(work_dir=None), featmaps=["0"], **MONITOR)
    assert monitor.step(0).featmaps == ()
    ((data, model, points, extraction, output),) = calls
    assert data.ids == monitor.samples.ids[:2]
    assert model is monitor.handle
    assert points == ["0"]
    assert extraction.device == "cpu"
    assert output.work_dir is None


def test_monitor_turns_each_epoch_map_onto_the_previous_epoch(tmp_path):
    """--align: epoch e's map is the previous epoch's orientation; align="none" leaves it."""
    from featscope.analysis.align import align_to, centroid_movement

    maps = {}
    for align in ("procrustes", "none"):
        net = tiny_net()
        opt = torch.optim.SGD(net.parameters(), lr=0.5)
        embedding = EmbeddingOptions(method="pca", align=align)
        with Monitor(net, output=Output(work_dir=None), embedding=embedding, **MONITOR) as monitor:
            monitor(force=True)
            _train_epoch(net, opt, seed=1)
            monitor()
        maps[align] = [step.results[0] for step in monitor.history]
    aligned, independent = maps["procrustes"], maps["none"]
    assert aligned[1].params["aligned_to"] == "5 (previous epoch)"
    assert "aligned_to" not in independent[1].params
    # same training, same map: aligned = independent turned onto the previous epoch
    expected = align_to(independent[1], independent[0]).coords
    assert aligned[1].coords == pytest.approx(expected, abs=1e-6)
    assert centroid_movement(aligned[0], aligned[1]) <= centroid_movement(*independent) + 1e-9


def test_the_first_step_fixes_the_precision_for_the_run(tmp_path, monkeypatch):
    from featscope.capture import precision

    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: True)
    checks = []
    real_check = precision.check_bf16

    def counting_check(run, images):
        checks.append(len(images))
        return real_check(run, images)

    monkeypatch.setattr(precision, "check_bf16", counting_check)
    net = tiny_net()
    monitor = featscope.Monitor(net, output=Output(work_dir=tmp_path), **MONITOR)
    assert monitor.extraction.amp == "auto"
    for epoch in range(3):
        monitor.step(epoch)
    run_dir = monitor.close()
    assert len(checks) == 1  # decided once, at the first step
    assert monitor.extraction.amp in ("bf16", "off")
    recorded = json.loads((run_dir / "manifest.json").read_text())["metadata"]["extraction"]
    assert recorded["precision"] == {"bf16": "bfloat16", "off": "float32"}[monitor.extraction.amp]
