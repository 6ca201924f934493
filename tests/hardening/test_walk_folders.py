"""The one folder walker: link loops walked once, odd names, broken class links (issue 19, 1)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from featscope.data.photos import image_paths
from featscope.data.sources import image_folder
from featscope.errors import DataError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2), (200, 10, 10)).save(path, format="PNG")


@pytest.fixture
def classes(tmp_path):
    """Two classes, 12 images: cat/0..5.png (3 in cat/sub/), dog/0..5.png."""
    root = tmp_path / "data"
    for k in range(6):
        _png(root / "cat" / ("sub" if k >= 3 else "") / f"{k}.png")
        _png(root / "dog" / f"{k}.png")
    return root


def test_a_link_loop_inside_a_class_counts_each_image_once(classes):
    os.symlink("..", classes / "cat" / "sub" / "up")  # cat/sub/up -> cat
    os.symlink("../..", classes / "cat" / "sub" / "root")  # -> the data folder
    samples = image_folder(classes)
    assert len(samples) == 12  # was 252 rows for one loop
    assert sorted(samples.ids) == sorted(
        [f"cat/{k}.png" for k in range(3)]
        + [f"cat/sub/{k}.png" for k in range(3, 6)]
        + [f"dog/{k}.png" for k in range(6)]
    )


def test_two_loops_do_not_hang(classes):
    os.symlink("..", classes / "cat" / "sub" / "a")
    os.symlink("../sub", classes / "cat" / "sub" / "b")
    os.symlink(".", classes / "dog" / "self")
    # a subprocess with a time limit: before the fix two loops walked for hours
    code = (
        "import sys; from featscope.data.sources import image_folder; "
        f"print(len(image_folder({str(classes)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "12"


def test_a_link_into_another_class_does_not_copy_its_images(classes):
    os.symlink("../dog", classes / "cat" / "dogs")
    samples = image_folder(classes)
    assert len(samples) == 12
    assert sum(i.startswith("dog/") for i in samples.ids) == 6


def test_a_symlinked_class_folder_is_still_read(tmp_path, classes):
    elsewhere = tmp_path / "store" / "bird"
    _png(elsewhere / "b.png")
    os.symlink(elsewhere, classes / "bird")
    samples = image_folder(classes)
    assert samples.class_names == ("bird", "cat", "dog")
    assert "bird/b.png" in samples.ids


def test_a_broken_link_as_class_folder_is_reported(classes):
    os.symlink("/nonexistent/fish", classes / "fish")
    with pytest.raises(DataError, match=r"1 broken symbolic link\(s\) \('fish' -> '/nonexistent"):
        image_folder(classes)


@pytest.mark.parametrize("where", ["file", "class-folder", "sub-folder"])
def test_a_name_that_is_not_utf8_is_one_line_naming_it(classes, where):
    raw = {
        "file": b"cat/\xff\xfe.png",
        "class-folder": b"caf\xe9/x.png",
        "sub-folder": b"dog/\xe9t\xe9/x.png",
    }[where]
    target = os.fsdecode(os.fsencode(classes) + b"/" + raw)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _png_bytes = (classes / "dog" / "0.png").read_bytes()
    with open(target, "wb") as handle:
        handle.write(_png_bytes)
    with pytest.raises(DataError, match=r"is not valid UTF-8.*rename it") as info:
        image_folder(classes)
    assert "\n" not in str(info.value)
    assert repr(raw.split(b"/")[1 if where == "sub-folder" else 0])[2:-1] in str(info.value)


def test_a_non_image_file_with_such_a_name_is_no_sample_and_no_error(classes):
    with open(os.fsdecode(os.fsencode(classes) + b"/cat/notes\xff.txt"), "wb") as handle:
        handle.write(b"x")
    assert len(image_folder(classes)) == 12


def test_loose_images_walk_the_same_way(tmp_path):
    folder = tmp_path / "photos"
    _png(folder / "a.png")
    _png(folder / "deep" / "b.png")
    os.symlink("..", folder / "deep" / "loop")
    assert [p.name for p in image_paths(folder)] == ["a.png", "b.png"]
    with open(os.fsdecode(os.fsencode(folder) + b"/\xff.png"), "wb") as handle:
        handle.write((folder / "a.png").read_bytes())
    with pytest.raises(DataError, match="is not valid UTF-8"):
        image_paths(folder)


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(classes):
    os.mkfifo(classes / "cat" / "pipe.png")
    samples = image_folder(classes)
    row = samples.ids.index("cat/pipe.png")
    with pytest.raises(DataError, match=r"pipe\.png': not a regular file \(a device, FIFO"):
        samples.loader(row)


_NAME = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", "..") and not n.startswith("."))


@FUZZ
@given(names=st.lists(_NAME, min_size=1, max_size=5, unique=True), data=st.data())
def test_any_file_system_names_walk_to_exact_ids(tmp_path_factory, names, data):
    """Property: every image below the class folders becomes one id, the path as written."""
    root = tmp_path_factory.mktemp("names")
    classes = data.draw(st.lists(_NAME, min_size=1, max_size=3, unique=True))
    expected = []
    for i, name in enumerate(names):
        cls = classes[i % len(classes)]
        try:
            _png(root / cls / f"{name}.png")
        except OSError:  # a name the file system refuses (too long in bytes)
            continue
        expected.append(f"{cls}/{name}.png")
    if not expected:
        return
    samples = image_folder(root)
    assert sorted(samples.ids) == sorted(expected)
    assert set(samples.class_names) == {e.split("/")[0] for e in expected}
