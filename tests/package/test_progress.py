"""Progress of long stages: bars on a terminal, plain log lines otherwise, silence when asked."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from featscope import progress
from featscope.progress import Progress


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_when_not_a_terminal(caplog, monkeypatch):
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="featscope")
    with Progress(200, "t-SNE optimisation", "iterations", interval=0.0) as bar:
        assert bar.mode == "log"
        bar.update(50, note="KL 2.31")
        bar.update(50)
    lines = [r.getMessage() for r in caplog.records if r.name == "featscope.progress"]
    assert lines[0].startswith("t-SNE optimisation: 50/200 iterations (25 %), ")
    assert lines[0].endswith(", KL 2.31")
    assert lines[1].startswith("t-SNE optimisation: 100/200 iterations (50 %), ")


def test_log_lines_are_spaced_by_the_interval(caplog, monkeypatch):
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    caplog.set_level(logging.INFO, logger="featscope")
    monkeypatch.setattr(progress, "LOG_EVERY_S", 3600.0)
    with Progress(10, "neighbours", "points") as bar:
        for _ in range(10):
            bar.update()
    assert bar.n == 10
    assert not [r for r in caplog.records if r.name == "featscope.progress"]


def test_bar_on_a_terminal_and_nothing_when_switched_off(caplog, monkeypatch):
    tty = _TTY()
    monkeypatch.setattr(progress.sys, "stderr", tty)
    caplog.set_level(logging.INFO, logger="featscope")
    with Progress(4, "quality metrics", "metrics", interval=0.0) as bar:
        assert bar.mode == "bar"
        bar.update(2, note="silhouette")
        assert bar._bar.n == 2  # tqdm's own count
        assert bar._bar.postfix == "silhouette"
    assert "quality metrics:   0%|" in tty.getvalue()
    with progress.enabled(False):
        quiet = Progress(4, "quality metrics", interval=0.0)
        quiet.update(4)
        quiet.close()
    assert quiet.mode == "off"
    assert Progress(4, "x", enabled=False).mode == "off"
    assert progress.set_enabled(True) is True  # enabled() restored the setting
    assert not [r for r in caplog.records if r.name == "featscope.progress"]


def test_tsne_reports_its_stages_in_a_log(caplog, monkeypatch, digits):
    from featscope.analysis import TSNE

    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="featscope")
    X, _ = digits
    TSNE(n_iter=300, kl_rtol=None, n_iter_without_progress=None).fit(X[:400])
    lines = [r.getMessage() for r in caplog.records if r.name == "featscope.progress"]
    assert any(line.startswith("neighbours: 400/400 points") for line in lines)
    optimisation = [line for line in lines if line.startswith("t-SNE optimisation: ")]
    assert optimisation[-1].startswith("t-SNE optimisation: 300/300 iterations (100 %)")
    assert "KL " in optimisation[-1]


def test_exact_n_iter_runs_every_iteration_and_records_the_phases(caplog, digits):
    from featscope.analysis import TSNE
    from featscope.options import EmbeddingOptions

    params = EmbeddingOptions(n_iter=320, early_stop=False).reducer_params()
    assert params["kl_rtol"] is None
    assert params["n_iter_without_progress"] is None
    assert "kl_rtol" not in EmbeddingOptions().reducer_params()
    caplog.set_level(logging.INFO, logger="featscope")
    X, _ = digits
    del params["n_components"]
    tsne = TSNE(**params).fit(X[:300])
    assert tsne.n_iter_ == 320
    assert tsne.params_["n_iter_exaggeration_run"] == 250
    assert tsne.params_["n_iter_second_phase_run"] == 70
    assert tsne.params_["stop_reason"] == ""
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "t-SNE early exaggeration: 250 iterations\n" in text + "\n"
    assert "t-SNE second phase: 70 of 70 iterations" in text
    # with the convergence stop on, the exaggerated phase still runs all its iterations; the
    # log says how many of the second phase ran and why they stopped
    caplog.clear()
    stopped = TSNE(n_iter=750).fit(X[:300])
    n_second = stopped.params_["n_iter_second_phase_run"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert stopped.params_["n_iter_exaggeration_run"] == 250
    assert "t-SNE early exaggeration: 250 iterations" in text
    assert n_second < 500
    assert f"t-SNE second phase: {n_second} of 500 iterations (stopped: KL divergence" in text
    assert stopped.n_iter_ == 250 + n_second
    assert np.isfinite(stopped.kl_divergence_)


@pytest.fixture
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y
