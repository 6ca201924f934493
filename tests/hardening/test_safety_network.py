"""Nothing reaches the network unless the user names a hub model (and never in tests).

Every socket connection is refused for these tests: the built-in defaults must run without one,
and a hub spec while ``HF_HUB_OFFLINE`` is set must fail with a clear error before connecting.
"""

from __future__ import annotations

import socket

import pytest

from featscope.cli import main
from featscope.errors import ModelSpecError
from featscope.models import load_model


@pytest.fixture
def no_network(monkeypatch):
    """Make every connection attempt fail loudly and record it."""
    attempts: list[object] = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: network access to {address!r} is not allowed")

    def refuse_create(address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: network access to {address!r} is not allowed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse_create)
    return attempts


@pytest.mark.parametrize(
    "argv",
    [
        ["tsne", "--method", "pca", "--max-num-samples", "3", "--no-html"],
        ["browse", "-n", "1", "--mode", "original"],
        ["recon", "--batch-size", "8"],
    ],
    ids=["tsne", "browse", "recon"],
)
def test_default_runs_need_no_network(tmp_path, no_network, argv):
    assert main([*argv, "--quiet", "--work-dir", str(tmp_path)]) == 0
    assert no_network == []
    assert len(list(tmp_path.glob("*/manifest.json"))) == 1


def test_built_in_models_load_offline(no_network):
    for spec in ("demo:digits-cnn", "demo:efficientnet-lite0"):
        load_model(spec)
    assert no_network == []


def test_hub_spec_while_offline_fails_before_connecting(no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="HF_HUB_OFFLINE"):
        load_model("hf:google/vit-base-patch16-224")
    assert no_network == []
