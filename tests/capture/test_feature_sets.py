"""extract_feature_sets (the capture step of tsne and Monitor) and the training-state helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from capture_helpers import make_handle, make_samples

from featscope.capture import FeatureExtraction, extract_feature_sets, extract_features
from featscope.capture.training import check_epoch, check_every, module_device, training_state
from featscope.errors import CaptureError, DataError, ParameterError
from featscope.options import Extraction

QUIET = Extraction(batch_size=4, num_workers=0, progress=False)


def test_feature_sets_are_labelled_extraction_results_with_provenance(net):
    handle, samples = make_handle(net), make_samples(10)
    done = extract_feature_sets(handle, samples, ["backbone", "logits"], QUIET, seed=7)
    assert isinstance(done, FeatureExtraction)
    raw = extract_features(handle, samples, ["backbone", "logits"], progress=False)
    assert [fs.point for fs in done.feature_sets] == ["backbone", "logits"]
    for fs in done.feature_sets:
        np.testing.assert_array_equal(fs.features, raw.features[fs.point])
        assert fs.pooling == raw.pooling[fs.point]
        assert fs.ids == samples.ids
        np.testing.assert_array_equal(fs.labels, samples.labels)
        assert fs.class_names == ("a", "b", "c")
        assert fs.provenance.model == "test:tiny"
        assert fs.provenance.source == "memory"
        assert fs.provenance.seed == 7
    assert done.samples.ids == samples.ids
    assert done.skipped == ()
    # the classifier output rides along with every set, from the same pass
    np.testing.assert_array_equal(done.feature_sets[0].logits, raw.features["logits"])
    # pre_logits of this net is its pooled backbone: the same features, mapped once
    same = extract_feature_sets(handle, samples, ["backbone", "pre_logits"], QUIET)
    assert [fs.point for fs in same.feature_sets] == ["backbone"]
    assert same.duplicates == {"backbone": ("pre_logits",)}


@pytest.mark.filterwarnings("ignore:skipped 2 unreadable:UserWarning")
def test_skipped_images_leave_the_rows_of_the_samples_that_were_read(net):
    samples = make_samples(8, bad={2, 5})
    options = Extraction(batch_size=4, num_workers=0, progress=False, skip_bad_images=True)
    done = extract_feature_sets(make_handle(net), samples, ["pre_logits"], options)
    (fs,) = done.feature_sets
    assert len(fs) == 6
    assert done.samples.ids == tuple(f"img_{i}.png" for i in (0, 1, 3, 4, 6, 7))
    assert fs.ids == done.samples.ids
    assert [sid for sid, _ in done.skipped] == ["img_2.png", "img_5.png"]


def test_errors_are_those_of_the_extraction(net):
    with pytest.raises(CaptureError, match="nope"):
        extract_feature_sets(make_handle(net), make_samples(4), ["nope"], QUIET)
    options = Extraction(num_workers=0, progress=False, skip_bad_images=True)
    unreadable = make_samples(3, bad={0, 1, 2})
    with pytest.raises(DataError, match=r"none of the 3 images .* could be read"):
        extract_feature_sets(make_handle(net), unreadable, ["backbone"], options)


def test_without_distributed_a_torchrun_world_is_ignored(net, monkeypatch):
    # Monitor runs on the global-zero process only: it must never wait for other ranks
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    done = extract_feature_sets(make_handle(net), make_samples(4), ["backbone"], QUIET)
    assert len(done.feature_sets[0]) == 4


def test_training_state_restores_modes_and_random_state(net):
    net.train()
    net.features[1].eval()
    before = torch.get_rng_state()

    def look_then_fail():
        with training_state(net):
            net.eval()
            torch.rand(3)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        look_then_fail()
    assert net.training
    assert not net.features[1].training
    assert net.features[0].training
    assert torch.equal(torch.get_rng_state(), before)


def test_module_device():
    assert module_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert module_device(torch.nn.ReLU()) == torch.device("cpu")  # no tensors at all
    holder = torch.nn.Module()
    holder.register_buffer("b", torch.zeros(1))
    assert module_device(holder) == torch.device("cpu")


def test_check_every_takes_positive_integers_only():
    assert check_every(1) == 1
    assert check_every(5) == 5
    for bad in (0, -2, True, 1.0, "2", None):
        with pytest.raises(ParameterError, match=r"`every` must be a positive integer \(epochs\)"):
            check_every(bad)


def test_check_epoch_takes_integers_from_zero_numpy_ones_too():
    assert check_epoch(0) == 0
    epoch = check_epoch(np.int64(7))
    assert epoch == 7
    assert type(epoch) is int  # numpy's integer becomes a plain int for file names and steps
    for bad in (-1, False, 1.5, "3", None):
        with pytest.raises(ParameterError, match="`epoch` must be an integer >= 0"):
            check_epoch(bad)
