"""The browser's stages: options, opening data, choosing images, seeds, names, columns, panels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from browse_helpers import class_folder, mask_pipeline, tiny_pipeline, write_image
from PIL import Image

from featscope.data.browse import (
    DEMO_SOURCE,
    BrowseOptions,
    choose_positions,
    file_stems,
    load_image,
    open_images,
    sample_label,
    sample_seed,
    trace_columns,
)
from featscope.data.samples import ImageSamples
from featscope.data.transforms import resolve_transform
from featscope.errors import DataError, ParameterError
from featscope.render.browse import can_show, step_panel
from featscope.results import BrowsedSample, BrowseResult


def _samples(ids, labels, class_names=()):
    return ImageSamples(
        ids=tuple(ids),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(class_names),
        source="test",
        loader=lambda i: Image.new("RGB", (8, 8)),
    )


# --------------------------------------------------------------------------- options


def test_options_defaults_and_checks():
    assert BrowseOptions() == BrowseOptions(mode="pipeline", n=8, seed=0, phase="train")
    assert BrowseOptions(n=None).n is None
    with pytest.raises(ParameterError, match="`mode` 'grid' is not one of original"):
        BrowseOptions(mode="grid")
    for n in (0, -1, 2.5, True):
        with pytest.raises(ParameterError, match=r"`n` must be a positive number of samples"):
            BrowseOptions(n=n)
    with pytest.raises(ParameterError, match="`seed` must be an integer >= 0; got -1"):
        BrowseOptions(seed=-1)
    with pytest.raises(ParameterError, match="`phase` 'test' is not one of train, eval"):
        BrowseOptions(phase="test")


def test_options_from_the_command_line():
    import argparse

    from featscope.cli.groups import add_group, group_from_args

    parser = argparse.ArgumentParser()
    add_group(parser, BrowseOptions, "what to draw")
    args = parser.parse_args(["-m", "concat", "-n", "0", "--seed", "3", "-p", "eval"])
    assert group_from_args(BrowseOptions, args) == BrowseOptions("concat", None, 3, "eval")
    assert group_from_args(BrowseOptions, parser.parse_args(["--num", "2"])).n == 2
    with pytest.raises(ParameterError, match=r"`-n` -3 must be >= 0 \(0: all images\)"):
        group_from_args(BrowseOptions, parser.parse_args(["-n", "-3"]))


# --------------------------------------------------------------------------- opening


def test_open_images_by_kind(tmp_path):
    folder = class_folder(tmp_path / "train")
    classes = open_images(folder)
    assert classes.ids == ("cat/a.png", "cat/b.png", "dog/a.png")
    assert classes.class_names == ("cat", "dog")
    loose = tmp_path / "loose"
    write_image(loose / "p.png")
    write_image(loose / "q.png")
    unlabelled = open_images(loose)
    assert unlabelled.ids == ("p.png", "q.png")
    assert (unlabelled.labels == -1).all()
    assert unlabelled.class_names == ()
    assert unlabelled.load(0).size == (64, 48)
    one = open_images(str(loose / "q.png"))
    assert one.ids == ("q.png",)
    assert one.source == str(loose / "q.png")
    given = open_images(classes)
    assert given is classes


def test_open_images_errors(tmp_path):
    with pytest.raises(DataError, match="`data` has no samples"):
        open_images(_samples([], []))
    with pytest.raises(DataError, match=r"`data` must be a folder.*got int"):
        open_images(3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data folder '.*empty' is empty"):
        open_images(tmp_path / "empty")
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DataError, match=r"'.*notes.md' is neither a folder"):
        open_images(tmp_path / "notes.md")


def test_demo_photos():
    demo = open_images(DEMO_SOURCE)
    assert demo.ids == demo.class_names == ("coffee", "chelsea", "astronaut")
    assert demo.source == DEMO_SOURCE
    assert sample_label(demo, 1) == (1, "chelsea")


def test_load_image_fails_or_skips(tmp_path):
    folder = class_folder(tmp_path / "train")
    (folder / "dog" / "zz.png").write_bytes(b"not a png")
    samples = open_images(folder)
    assert load_image(samples, 0).size == (64, 48)
    with pytest.raises(DataError, match=r"cannot read image .*zz.png"):
        load_image(samples, 3)
    with pytest.warns(UserWarning, match=r"skipped an unreadable image: .*zz.png"):
        assert load_image(samples, 3, skip_bad_images=True) is None


# --------------------------------------------------------------------------- choosing


def test_choose_positions():
    np.testing.assert_array_equal(choose_positions(5, None, 0), np.arange(5))
    np.testing.assert_array_equal(choose_positions(5, 9, 0), np.arange(5))
    chosen = choose_positions(100, 10, seed=4)
    assert chosen.dtype == np.int64
    assert len(set(chosen.tolist())) == 10
    assert (np.diff(chosen) > 0).all()
    np.testing.assert_array_equal(chosen, choose_positions(100, 10, seed=4))
    assert not np.array_equal(chosen, choose_positions(100, 10, seed=5))


def test_sample_seed_depends_on_the_seed_and_the_position_only():
    seeds = {sample_seed(0, p) for p in range(50)}
    assert len(seeds) == 50
    assert all(0 <= s < 2**32 for s in seeds)
    assert sample_seed(0, 7) == sample_seed(0, np.int64(7))
    assert sample_seed(1, 7) != sample_seed(0, 7)


def test_sample_label():
    samples = _samples(["a.png", "b.png"], [-1, 1], ["x", "y"])
    assert sample_label(samples, 0) == (None, None)
    assert sample_label(samples, 1) == (1, "y")


def test_file_stems():
    samples = _samples(
        ["cat/a.png", "dog/a.png", "cat/cat.png", "x/we ird!.jpg", "y/we_ird_.jpg"],
        [0, 1, 0, -1, -1],
        ["cat", "dog"],
    )
    assert file_stems(samples, [0, 1, 2, 3, 4]) == [
        "000_cat_a",
        "001_dog_a",
        "002_cat",  # the class name equals the stem: said once
        "003_we_ird_",
        "004_we_ird_",
    ]
    many = _samples([f"{i}.png" for i in range(1500)], [-1] * 1500)
    assert file_stems(many, [3, 1499]) == ["0003_3", "1499_1499"]
    twice = _samples(["a.png"], [-1])
    assert file_stems(twice, [0, 0]) == ["000_a", "000_a-2"]


# --------------------------------------------------------------------------- columns


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8))


def test_trace_columns_per_mode(photo):
    pipeline = resolve_transform(tiny_pipeline())
    names = {
        mode: [o.name for o in trace_columns(pipeline, photo, mode=mode)]
        for mode in ("original", "transformed", "concat", "pipeline")
    }
    assert names["original"] == ["original"]
    assert names["transformed"] == ["transformed"]
    assert names["concat"] == ["original", "transformed"]
    assert names["pipeline"] == ["Original", *pipeline.names]
    concat = trace_columns(pipeline, photo, mode="concat", seed=3)
    full = trace_columns(pipeline, photo, mode="pipeline", seed=3)
    np.testing.assert_array_equal(concat[1].views[0], full[-1].views[0])
    assert concat[0].size == (40, 50)
    with pytest.raises(ParameterError, match="`mode` 'grid'"):
        trace_columns(pipeline, photo, mode="grid")


def test_original_mode_does_not_run_the_transform(photo):
    def broken(image):
        raise RuntimeError("never called")

    (original,) = trace_columns(resolve_transform(broken), photo, mode="original")
    assert original.kind == "PIL"
    with pytest.raises(ParameterError, match="step 1 'broken' failed"):
        trace_columns(resolve_transform(broken), photo, mode="transformed")


def test_step_panel_titles_notes_and_masks(photo):
    pipeline = resolve_transform(tiny_pipeline())
    outputs = trace_columns(pipeline, photo, mode="concat")
    original, transformed = (step_panel(o) for o in outputs)
    assert (original.title, original.note) == ("original", "PIL")
    assert transformed.title == "transformed"
    assert transformed.note.startswith("tensor [")  # the range the model is fed
    assert transformed.images[0].dtype == np.uint8
    assert transformed.images[0].shape == (32, 32, 3)
    (masked,) = trace_columns(resolve_transform(mask_pipeline), photo, mode="transformed")
    plain = step_panel(dataclasses.replace(masked, masks=(None,)))
    dark = step_panel(masked)
    assert (dark.images[0][:, :16] <= plain.images[0][:, :16]).all()
    np.testing.assert_array_equal(dark.images[0][:, 16:], plain.images[0][:, 16:])


def test_can_show_warns_where_there_is_no_display():
    with pytest.warns(UserWarning, match="(?i)cannot show the pictures: matplotlib backend 'agg'"):
        assert can_show("the pictures") is False


# --------------------------------------------------------------------------- result types


def test_browse_result_files_copies_and_index(photo):
    pipeline = resolve_transform(tiny_pipeline())
    panels = [step_panel(o) for o in trace_columns(pipeline, photo, mode="concat")]
    sample = BrowsedSample.from_panels(np.int64(4), "cat/a.png", (0, "cat"), panels, "004_cat_a")
    assert sample.index == 4
    assert (sample.label, sample.class_name) == (0, "cat")
    assert sample.columns == ("original", "transformed")
    assert sample.sizes == ((40, 50), (32, 32))
    result = BrowseResult(
        samples=(sample,),
        mode="concat",
        transform="Compose",
        steps=pipeline.names,
        source="train",
        formats=("png", "pdf"),
        params={"n": None},
    )
    assert result.files == []
    assert result.out_dir is None
    index = result.to_dict()
    assert index["samples"] == [
        {
            "index": 4,
            "id": "cat/a.png",
            "label": 0,
            "class_name": "cat",
            "columns": ["original", "transformed"],
            "sizes": [[40, 50], [32, 32]],
            "file": "004_cat_a",
        }
    ]
    assert index["params"] == {"n": None}
    run_dir = Path("runs/browse_1")
    done = dataclasses.replace(result, run_dir=run_dir)
    assert done.files == [run_dir / "004_cat_a.png", run_dir / "004_cat_a.pdf"]
    assert done.out_dir == run_dir
    copied = dataclasses.replace(done, exported=(Path("out/004_cat_a.png"),))
    assert copied.out_dir == Path("out")
