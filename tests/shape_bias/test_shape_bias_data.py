"""Reading the cue-conflict folder, finding it, and the model-vs-human csv format."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from featscope.data.cue_conflict import (
    CATEGORIES,
    CSV_COLUMNS,
    ENV_VAR,
    DecisionTable,
    default_cache_dir,
    locate_stimuli,
    read_decisions,
    read_stimuli,
    write_decisions,
)
from featscope.errors import DataError

STIMULI = Path("/work/shared/data/cue-conflict")
CSV_DIR = Path("/work/shared/data/model-vs-human-cue-conflict")


def test_read_the_shared_stimuli():
    samples = read_stimuli(STIMULI)
    assert len(samples) == 1280
    assert samples.class_names == CATEGORIES
    assert samples.ids[0] == "airplane/airplane1-bicycle2.png"
    assert samples.ids[-1].startswith("truck/")
    assert [int((samples.labels == k).sum()) for k in range(16)] == [80] * 16
    assert samples.load(0).size == (224, 224)


def _copy(tmp_path: Path, names: list[str]) -> Path:
    root = tmp_path / "stimuli"
    for name in names:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STIMULI / name, target)
    return root


def test_a_subset_of_categories_is_read_in_file_order(tmp_path):
    root = _copy(tmp_path, ["bear/bear1-airplane3.png", "airplane/airplane1-bicycle2.png"])
    (root / "README.md").write_text("top-level files are ignored")
    samples = read_stimuli(root)
    assert samples.ids == ("airplane/airplane1-bicycle2.png", "bear/bear1-airplane3.png")
    assert samples.labels.tolist() == [0, 1]


def test_folders_not_in_the_layout_are_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_stimuli(tmp_path / "missing")
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(STIMULI / "airplane/airplane1-bicycle2.png", flat)
    with pytest.raises(DataError, match="not in the cue-conflict layout: there are no category"):
        read_stimuli(flat)
    imagenet = tmp_path / "imagenet"
    (imagenet / "n01440764").mkdir(parents=True)
    with pytest.raises(DataError, match=r"sub-folders 'n01440764' are not among the 16"):
        read_stimuli(imagenet)
    wrong = _copy(tmp_path, ["airplane/airplane1-bicycle2.png"])
    shutil.copy(STIMULI / "airplane/airplane1-bicycle2.png", wrong / "airplane" / "photo.png")
    with pytest.raises(DataError, match=r"1 image\(s\) are not named.*airplane/photo.png"):
        read_stimuli(wrong)
    moved = _copy(tmp_path / "m", ["bear/bear1-airplane3.png"])
    (moved / "cat").mkdir()
    shutil.move(moved / "bear" / "bear1-airplane3.png", moved / "cat" / "bear1-airplane3.png")
    with pytest.raises(DataError, match=r"cat/bear1-airplane3.png"):
        read_stimuli(moved)


def test_locate_stimuli_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DataError, match=r"no cue-conflict stimuli found.*texture-vs-shape.*CC BY"):
        locate_stimuli()
    cache = default_cache_dir()
    assert cache == tmp_path / "cache" / "featscope" / "cue-conflict"
    cache.mkdir(parents=True)
    assert locate_stimuli() == cache
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert locate_stimuli() == env_dir
    assert locate_stimuli(tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=rf"\${ENV_VAR} is .*nowhere.*not a folder"):
        locate_stimuli()


def test_csv_round_trip(tmp_path):
    table = DecisionTable.from_decisions(
        "my_model",
        ["bottle", "airplane"],
        ["airplane", "airplane"],
        ["airplane1-bicycle2.png", "airplane1-chair2.png"],
    )
    path = write_decisions(tmp_path / "cue-conflict_my-model_session-1.csv", table)
    text = path.read_text()
    assert text.splitlines() == [
        ",".join(CSV_COLUMNS),
        "my_model,1,1,NaN,bottle,airplane,NaN,airplane1-bicycle2.png",
        "my_model,1,2,NaN,airplane,airplane,NaN,airplane1-chair2.png",
    ]
    again = read_decisions(path)
    assert list(again.rows()) == list(table.rows())


def test_model_vs_human_csvs_read_and_write_back_unchanged(tmp_path):
    for name in ("cue-conflict_resnet50_session-1.csv", "cue-conflict_subject-01_session_1.csv"):
        original = (CSV_DIR / name).read_text()
        table = read_decisions(CSV_DIR / name)
        assert len(table) == 1280
        assert table.to_csv_text() == original
    vit = read_decisions(CSV_DIR / "cue-conflict_vit-b-16_session-1.csv")  # 5 extra columns
    assert vit.subjects() == ("vit_b_16",)


def test_csv_with_missing_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("subj,session,trial,response,category\nm,1,1,car,car\n")
    with pytest.raises(DataError, match=r"lacks the column\(s\) object_response, imagename"):
        read_decisions(path)
    path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_decisions(path)
    path.write_text("SUBJ, Object_Response ,category,imagename\nm,car,car,car1-cat2.png\n")
    table = read_decisions(path)  # names are matched without case and spaces, as the reference
    assert table.object_response == ("car",)
    assert table.rt == ("NaN",)
