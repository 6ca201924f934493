"""extract_logits and probe_logits: a classifier's outputs as the shape-bias view reads them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from capture_helpers import make_handle, make_samples

from featscope.capture import extract_features
from featscope.capture.logits import PROBE_SIZE, extract_logits, probe_logits
from featscope.errors import CaptureError, DataError
from featscope.options import Extraction

QUIET = Extraction(batch_size=4, num_workers=0, progress=False)


def test_extract_logits_are_the_outputs_at_the_logits_point(net):
    handle, samples = make_handle(net), make_samples(10)
    out = extract_logits(handle, samples, QUIET)
    raw = extract_features(handle, samples, "logits", progress=False, num_workers=0)
    assert list(out.features) == ["logits"]
    assert out.features["logits"].shape == (10, 5)
    np.testing.assert_allclose(out.features["logits"], raw.features["logits"], rtol=1e-6)
    assert out.kept.tolist() == list(range(10))


@pytest.mark.filterwarnings("ignore:skipped 1 unreadable:UserWarning")
def test_extract_logits_follows_the_extraction_group(net):
    samples = make_samples(6, bad={4})
    options = Extraction(batch_size=4, num_workers=0, progress=False, skip_bad_images=True)
    out = extract_logits(make_handle(net), samples, options)
    assert out.kept.tolist() == [0, 1, 2, 3, 5]
    assert [sid for sid, _ in out.skipped] == ["img_4.png"]
    with pytest.raises(DataError, match=r"img_4\.png"):
        extract_logits(make_handle(net), samples, QUIET)
    with pytest.raises(CaptureError, match="logits"):
        extract_logits(make_handle(net, aliases={}), samples, QUIET)


def test_probe_reads_the_first_images_only_and_quietly(net):
    read = []

    def load(i):
        read.append(i)
        from capture_helpers import random_image

        return random_image(i)

    samples = make_samples(20, loader=load)
    out = probe_logits(make_handle(net), samples, QUIET)
    assert PROBE_SIZE == 8
    assert out.features["logits"].shape == (8, 5)
    assert sorted(set(read)) == list(range(8))
    few = probe_logits(make_handle(net), make_samples(3), QUIET)
    assert few.features["logits"].shape == (3, 5)
    # an unreadable image skipped in the probe raises no warning: the full pass reports it
    options = Extraction(num_workers=0, progress=False, skip_bad_images=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = probe_logits(make_handle(net), make_samples(10, bad={1}), options, size=4)
    assert out.kept.tolist() == [0, 2, 3]
