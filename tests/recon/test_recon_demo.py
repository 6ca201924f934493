"""The built-in default: demo:mae on held-out Fashion-MNIST images."""

from __future__ import annotations

import json

import numpy as np

from featscope.cli import main
from featscope.models import load_model
from featscope.models.demo import demo_mae_samples
from featscope.options import Output


def _mean_colour_fill_error(result) -> np.ndarray:
    """Masked-pixel MSE of filling hidden patches with each image's mean colour (0-1 scale)."""
    errors = []
    for item in result:
        original = item.original.astype(np.float64) / 255
        fill = original.reshape(-1, 3).mean(axis=0)
        errors.append(((original - fill) ** 2).mean(axis=-1)[item.mask].mean())
    return np.array(errors)


def test_demo_mae_beats_the_mean_colour_fill(tmp_path, capsys):
    import featscope

    assert main(["recon", "--work-dir", str(tmp_path), "--dpi", "30"]) == 0
    assert "with demo:mae (mae, mask ratio 0.75, seed 0)" in capsys.readouterr().out
    (run,) = tmp_path.iterdir()
    figures = sorted(p.name for p in run.glob("recon_*.png"))
    assert len(figures) == 8
    assert figures[0] == "recon_fashion-mnist-test-0.png"
    assert (run / "overview.png").is_file()
    written = json.loads((run / "errors.json").read_text())
    result = featscope.reconstruct(output=Output(work_dir=None))
    assert result.original.shape == (8, 28, 28, 3)
    assert written["mean"] == result.error  # same seed, same masks, same numbers
    # 37 of the 49 4-px patches hidden in every image
    assert result.mask.sum(axis=(1, 2)).tolist() == [37 * 16] * 8
    baseline = _mean_colour_fill_error(result)
    assert result.error < 0.6 * baseline.mean()
    assert (result.errors < baseline).all()


def test_demo_mae_weights_and_samples_ship_in_the_package():
    handle = load_model("demo:mae")
    assert handle.spec == "demo:mae"
    assert handle.preprocess.input_size == (28, 28)
    samples = demo_mae_samples()
    assert len(samples) == 8
    assert samples[0][1].size == (28, 28)
    assert sum(p.numel() for p in handle.module.parameters()) < 500_000
