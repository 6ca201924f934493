"""Fixtures of the capture tests."""

from __future__ import annotations

import pytest
import torch
from capture_helpers import TinyCNN


@pytest.fixture
def net() -> TinyCNN:
    torch.manual_seed(0)
    model = TinyCNN()
    # non-trivial BatchNorm statistics, so eval vs train mode would give different values
    model.features[1].running_mean.uniform_(-0.5, 0.5)
    model.features[1].running_var.uniform_(0.5, 2.0)
    return model
