"""The stages of a reconstruction on their own: the masked forward pass, the result types and
the numbered export copies."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from featscope.errors import DataError
from featscope.results import (
    Provenance,
    ReconstructedImage,
    ReconstructionResult,
    ReconstructionRun,
)


class _Item:
    def __init__(self, name: str, array: np.ndarray | None):
        self.id, self.stem, self.array = name, name, array

    def load(self):
        from PIL import Image

        if self.array is None:
            raise OSError("truncated file")
        return Image.fromarray(self.array)


def _items(count: int, bad: tuple[int, ...] = ()):
    rng = np.random.default_rng(0)
    return [
        _Item(f"img{i}", None if i in bad else rng.integers(0, 256, (20, 20, 3), np.uint8))
        for i in range(count)
    ]


def _tiny_mae():
    from featscope.models.mim import MAEConfig, MaskedAutoencoderViT, load_mim

    torch.manual_seed(0)
    config = MAEConfig(
        img_size=16, patch_size=4, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=8,
        decoder_depth=1, decoder_num_heads=2,
    )  # fmt: skip
    return load_mim(MaskedAutoencoderViT(config))


def test_masked_batches_draw_masks_by_position_and_skip_on_request():
    from featscope.capture.masked import masked_batches
    from featscope.models.mim import random_masks

    mim = _tiny_mae()
    kwargs = {"mask_ratio": 0.75, "mask_patch_size": mim.patch_size, "seed": 5}
    whole = list(masked_batches(mim, _items(5), batch_size=5, **kwargs))
    pieces = list(masked_batches(mim, _items(5), batch_size=2, **kwargs))
    assert [len(b.ids) for b in pieces] == [2, 2, 1]
    np.testing.assert_array_equal(
        np.concatenate([b.patch_masks for b in pieces]), whole[0].patch_masks
    )
    np.testing.assert_array_equal(
        whole[0].patch_masks, random_masks(5, mim.grid, 0.75, seed=5)
    )  # image i: default_rng([seed, i])
    batch = whole[0]
    h, w = mim.input_size
    assert batch.inputs.shape == (5, 3, h, w)
    assert batch.inputs.dtype == np.float32
    assert batch.prediction.shape == (5, mim.grid[0] * mim.grid[1], mim.patch_size**2 * 3)
    assert batch.target is None
    assert batch.mean == tuple(mim.preprocess.mean)
    # an unreadable image: an error, or skipped with its position kept by the others
    with pytest.raises(DataError, match="image 'img1' cannot be read"):
        list(masked_batches(mim, _items(3, bad=(1,)), **kwargs))
    skipped: list = []
    with pytest.warns(UserWarning, match="skipped image 'img1'"):
        kept = list(masked_batches(mim, _items(3, bad=(1,)), skipped=skipped, **kwargs))
    assert skipped == [("img1", "image 'img1' cannot be read (truncated file); pass an image file")]
    assert kept[0].positions == (0, 2)
    np.testing.assert_array_equal(kept[0].patch_masks, whole[0].patch_masks[[0, 2]])
    with (
        pytest.warns(UserWarning, match=r"skipped image 'img[01]'"),
        pytest.raises(DataError, match="none of the 2 image"),
    ):
        list(masked_batches(mim, _items(2, bad=(0, 1)), skipped=[], **kwargs))


def _image(name: str, error: float) -> ReconstructedImage:
    picture = np.zeros((4, 4, 3), np.uint8)
    patch_mask = np.array([[True, False], [True, True]])
    mask = patch_mask.repeat(2, 0).repeat(2, 1)
    return ReconstructedImage(
        name, picture, mask, patch_mask, picture, picture, picture, error, file=f"recon_{name}"
    )


def test_the_run_reads_like_its_result():
    provenance = Provenance(model="demo:mae", source="demo", seed=3)
    params = {"mask_ratio": 0.75, "seed": 3, "error": "mse_pixels_0_1"}
    result = ReconstructionResult([_image("a", 0.25), _image("b", 0.5)], "mae", params, provenance)
    run = ReconstructionRun(result, timings={"load": 1.0}, skipped=(("c", "unreadable"),))
    assert len(run) == 2
    assert run[1].image_id == "b"
    assert [i.image_id for i in run] == ["a", "b"]
    assert (run.model, run.family, run.error) == ("demo:mae", "mae", 0.375)
    assert run.params["seed"] == run.provenance.seed == 3
    assert run.mask.shape == (2, 4, 4)
    assert run.patch_masks.shape == (2, 2, 2)
    with pytest.raises(TypeError):
        result.params["seed"] = 4  # frozen
    with pytest.raises(AttributeError, match="nothing"):
        run.nothing  # noqa: B018
    assert copy.copy(run).error == 0.375  # copy looks up dunders before `result` is set
    header, rows = result.error_table()
    assert header == ["image", "figure", "error", "hidden_patches", "patches"]
    assert rows == [["a", "recon_a", "0.25", 3, 4], ["b", "recon_b", "0.5", 3, 4]]
    assert result.error_summary() == {
        "error": "mse_pixels_0_1",
        "mean": 0.375,
        "images": {"a": 0.25, "b": 0.5},
    }


def test_export_files_gives_the_copies_their_names(tmp_path):
    from featscope.sinks.export import export_files

    sources = []
    for name in ("recon_x.png", "recon_y.png"):
        sources.append(tmp_path / name)
        sources[-1].write_bytes(name.encode())
    out = tmp_path / "out"
    out.mkdir()
    written = export_files(sources, out, names=["fig_0.png", "fig_1.png"])
    assert written == [out / "fig_0.png", out / "fig_1.png"]
    assert (out / "fig_1.png").read_bytes() == b"recon_y.png"
    # one file with a name: still a copy into the folder
    assert export_files(sources[:1], out, names=["one.png"]) == [out / "one.png"]
    with pytest.raises(ValueError, match="1 names for 2 files"):
        export_files(sources, out, names=["a.png"])
