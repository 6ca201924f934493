"""Suite-wide settings: offline, headless, deterministic, few threads."""

from __future__ import annotations

import os

import pytest

# Nothing in the test suite may reach the network (model hubs included).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(autouse=True, scope="session")
def _float32_on_every_cpu():
    """Pin amp="auto" to float32 on the CPU, whatever this machine's bfloat16 support.

    With native bfloat16 the default keeps bfloat16 where a check allows it, so exact feature
    values would depend on the machine; tests/capture/test_precision.py sets it explicitly.
    Session-wide, so that module-scoped fixtures are pinned too.
    """
    from featscope.capture import precision

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "native_cpu_bf16", lambda: False)
        yield
