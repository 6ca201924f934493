"""featscope.browse: modes, file names, data sources, multi-view rows, masks and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from browse_helpers import TwoViews, class_folder, mask_pipeline, tiny_pipeline, write_image
from PIL import Image

from featscope.data.browse import BrowseOptions
from featscope.errors import DataError, ParameterError
from featscope.options import Extraction, Figures, Output
from featscope.views.browse import browse

NOWHERE = Output(work_dir=None)


def _out(tmp_path, export=None):
    """A run folder under tmp_path/runs, copied to ``export`` (the old out_dir) when given."""
    return Output(work_dir=tmp_path / "runs", export=export)


def _png_size(path):
    with Image.open(path) as image:
        return image.size  # (width, height)


@pytest.fixture
def folder(tmp_path):
    return class_folder(tmp_path / "train")


def test_modes_columns_sizes_and_file_names(folder, tmp_path):
    widths = {}
    for mode, columns in [
        ("original", ("original",)),
        ("transformed", ("transformed",)),
        ("concat", ("original", "transformed")),
        (
            "pipeline",
            (
                "Original",
                "RandomResizedCrop(32)",
                "RandomHorizontalFlip(p=0.5)",
                "ColorJitter(b=0.4, c=0.4, s=0.4)",
                "ToTensor",
                "Normalize(ImageNet)",
            ),
        ),
    ]:
        result = browse(
            folder,
            tiny_pipeline(),
            options=BrowseOptions(mode=mode),
            figures=Figures(dpi=50),
            output=_out(tmp_path, tmp_path / mode),
        )
        assert [s.file for s in result] == ["000_cat_a", "001_cat_b", "002_dog_a"]
        assert [f.name for f in result.files] == ["000_cat_a.png", "001_cat_b.png", "002_dog_a.png"]
        # the copies in the export folder: the pictures, then the index
        assert [f.name for f in result.exported] == [
            "000_cat_a.png",
            "001_cat_b.png",
            "002_dog_a.png",
            "browse.json",
        ]
        assert all(f.parent == tmp_path / mode for f in result.exported)
        sample = result.samples[0]
        assert sample.columns == columns
        expected = {"original": (48, 64), "transformed": (32, 32), "Original": (48, 64)}
        assert sample.sizes == tuple(expected.get(c, (32, 32)) for c in columns)
        assert (sample.label, sample.class_name, sample.id) == (0, "cat", "cat/a.png")
        widths[mode] = _png_size(result.files[0])[0]
    # every column is one cell wide
    assert widths["concat"] / widths["original"] == pytest.approx(2, rel=0.12)
    assert widths["pipeline"] / widths["original"] == pytest.approx(6, rel=0.12)
    assert widths["transformed"] == pytest.approx(widths["original"], rel=0.12)


def test_same_name_files_in_two_class_folders_are_both_written(folder, tmp_path):
    options = BrowseOptions(mode="original")
    result = browse(
        folder, tiny_pipeline(), options=options, figures=Figures(dpi=50), output=_out(tmp_path)
    )
    written = sorted(p.name for p in result.run_dir.glob("*.png"))
    assert written == ["000_cat_a.png", "001_cat_b.png", "002_dog_a.png"]
    cat, dog = result.samples[0].images[0][0], result.samples[2].images[0][0]
    assert (cat == 30).all()
    assert (dog == 220).all()
    index = json.loads((result.run_dir / "browse.json").read_text())
    assert [s["file"] for s in index["samples"]] == ["000_cat_a", "001_cat_b", "002_dog_a"]
    assert (result.run_dir / "manifest.json").is_file()


def test_multi_view_outputs_are_rows(folder, tmp_path):
    options, figures = BrowseOptions(mode="transformed", n=1), Figures(dpi=50)
    single = browse(
        folder, tiny_pipeline(), options=options, figures=figures, output=_out(tmp_path / "a")
    )
    views = browse(
        folder, TwoViews(), options=options, figures=figures, output=_out(tmp_path / "b")
    )
    assert len(views.samples[0].images[0]) == 2
    assert views.samples[0].sizes == ((24, 24),)
    height_one = _png_size(single.files[0])[1]
    height_two = _png_size(views.files[0])[1]
    assert height_two / height_one == pytest.approx(2, rel=0.15)


def test_mask_is_overlaid(tmp_path):
    write_image(tmp_path / "data" / "x" / "flat.png", size=(40, 40), value=200)
    result = browse(
        tmp_path / "data", mask_pipeline, options=BrowseOptions(mode="transformed"), output=NOWHERE
    )
    picture = result.samples[0].images[0][0]
    assert picture.shape == (32, 32, 3)
    assert (picture[:, :16] == 40).all()  # left half masked: black at alpha 0.8
    assert (picture[:, 16:] == 200).all()


def test_selection_is_seeded(folder):
    options = BrowseOptions(mode="original", n=2, seed=3)
    first = browse(folder, tiny_pipeline(), options=options, output=NOWHERE)
    again = browse(folder, tiny_pipeline(), options=options, output=NOWHERE)
    assert len(first) == 2
    assert [s.id for s in first] == [s.id for s in again]
    pipeline = browse(
        folder, tiny_pipeline(), options=BrowseOptions(n=None, seed=1), output=NOWHERE
    )
    repeat = browse(folder, tiny_pipeline(), options=BrowseOptions(n=None, seed=1), output=NOWHERE)
    np.testing.assert_array_equal(
        pipeline.samples[1].images[-1][0], repeat.samples[1].images[-1][0]
    )


def test_file_list_loose_folder_and_single_image(folder, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("path,label\ntrain/dog/a.png,dog\ntrain/cat/a.png,cat\n")
    original = BrowseOptions(mode="original")
    result = browse(listing, tiny_pipeline(), options=original, output=NOWHERE)
    assert [(s.id, s.class_name) for s in result] == [
        ("train/dog/a.png", "dog"),
        ("train/cat/a.png", "cat"),
    ]
    loose = tmp_path / "loose"
    write_image(loose / "p.png")
    write_image(loose / "q.jpg")
    unlabelled = browse(loose, tiny_pipeline(), options=original, output=NOWHERE)
    assert [s.file for s in unlabelled] == ["000_p", "001_q"]
    assert unlabelled.samples[0].label is None
    one = browse(loose / "q.jpg", tiny_pipeline(), options=original, output=NOWHERE)
    assert [s.id for s in one] == ["q.jpg"]


def test_empty_folder_and_bad_options(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data folder '.*empty' is empty"):
        browse(tmp_path / "empty", tiny_pipeline(), output=NOWHERE)
    with pytest.raises(DataError, match="neither a folder"):
        browse(tmp_path / "missing", tiny_pipeline(), output=NOWHERE)
    with pytest.raises(ParameterError, match="`mode` 'grid' is not one of"):
        browse(folder, tiny_pipeline(), options=BrowseOptions(mode="grid"), output=NOWHERE)
    with pytest.raises(ParameterError, match="`n` must be a positive"):
        browse(folder, tiny_pipeline(), options=BrowseOptions(n=0), output=NOWHERE)
    with pytest.raises(ParameterError, match=r"`--out` .* work_dir is None; pass a work_dir"):
        browse(folder, tiny_pipeline(), output=Output(work_dir=None, export=tmp_path / "o"))


def test_non_image_step_is_named_and_nothing_is_left(folder, tmp_path):
    def to_label(image):
        return {"label": 1}

    from torchvision import transforms as T

    with pytest.raises(
        ParameterError, match=r"step 2 'to_label' returned a dict for image 'cat/a.png'"
    ):
        browse(folder, T.Compose([T.CenterCrop(20), to_label]), output=_out(tmp_path))
    assert not list((tmp_path / "runs").glob("browse_*"))


def test_show_without_display_warns(folder, tmp_path):
    with pytest.warns(
        UserWarning, match="(?i)cannot show the images: matplotlib backend 'agg' is non-interactive"
    ):
        result = browse(
            folder,
            tiny_pipeline(),
            options=BrowseOptions(n=1),
            figures=Figures(show=True, dpi=50),
            output=_out(tmp_path, tmp_path / "out"),
        )
    assert len(result.files) == 1


def test_built_in_default(tmp_path):
    result = browse(output=Output(work_dir=tmp_path), figures=Figures(dpi=40))
    assert [s.file for s in result] == ["000_coffee", "001_chelsea", "002_astronaut"]
    assert result.mode == "pipeline"
    assert result.transform == "demo:efficientnet-lite0 (train)"
    assert result.steps[0] == "RandomResizedCropAndInterpolation(224)"
    assert result.samples[0].columns[1:] == result.steps
    assert result.samples[0].sizes[-1] == (224, 224)
    assert all(path.is_file() for path in result.files)


def test_show_opens_a_window_per_image_where_there_is_a_display(folder, tmp_path, monkeypatch):
    import featscope.render.browse
    import featscope.render.figures

    shown = []
    monkeypatch.setattr(featscope.render.browse, "display_problem", lambda: None)
    monkeypatch.setattr(featscope.render.figures, "show", lambda fig, block: shown.append(block))
    result = browse(
        folder,
        tiny_pipeline(),
        options=BrowseOptions(mode="original"),
        figures=Figures(show=True, dpi=30),
        output=NOWHERE,
    )
    assert shown == [True] * len(result)


def test_display_problem_without_display(monkeypatch):
    import matplotlib

    from featscope.render.browse import display_problem

    monkeypatch.setattr(matplotlib, "get_backend", lambda: "TkAgg")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert display_problem() == "there is no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    monkeypatch.setenv("DISPLAY", ":0")
    assert display_problem() is None


def test_failed_run_leaves_nothing_in_out_dir(folder, tmp_path):
    (folder / "dog" / "zz.png").write_bytes(b"not a png")  # drawn last, after two good images
    out = tmp_path / "new"
    options, figures = BrowseOptions(mode="original"), Figures(dpi=30)
    with pytest.raises(DataError, match=r"cannot read image .*zz.png"):
        browse(
            folder, tiny_pipeline(), options=options, figures=figures, output=_out(tmp_path, out)
        )
    assert not out.exists()  # the copies are made from a finished run folder only
    assert not list((tmp_path / "runs").iterdir())  # the unfinished run folder is removed
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("not featscope's")
    with pytest.raises(DataError, match="cannot read image"):
        browse(
            folder, tiny_pipeline(), options=options, figures=figures, output=_out(tmp_path, kept)
        )
    assert sorted(p.name for p in kept.iterdir()) == ["mine.txt"]


def test_skip_bad_images(folder, tmp_path):
    (folder / "dog" / "zz.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match=r"skipped an unreadable image: .*zz.png"):
        result = browse(
            folder,
            tiny_pipeline(),
            options=BrowseOptions(mode="original"),
            extraction=Extraction(skip_bad_images=True),
            figures=Figures(dpi=30),
            output=_out(tmp_path, tmp_path / "out"),
        )
    assert [s.id for s in result] == ["cat/a.png", "cat/b.png", "dog/a.png"]
    index = json.loads((tmp_path / "out" / "browse.json").read_text())
    assert [s["id"] for s in index["samples"]] == ["cat/a.png", "cat/b.png", "dog/a.png"]
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
