"""--out copies: one file or a folder, all or nothing."""

from __future__ import annotations

import pytest

from featscope.errors import OutputError
from featscope.sinks import LocalRun
from featscope.sinks.export import export_files, export_from_run, finished_paths


@pytest.fixture
def finished(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    files = []
    for name, text in [("a.png", "A"), ("b.png", "B")]:
        (run / name).write_text(text)
        files.append(run / name)
    return files


def test_one_file_goes_to_the_named_path(finished, tmp_path):
    [copy] = export_files(finished[:1], tmp_path / "figure.png")
    assert copy == tmp_path / "figure.png"
    assert copy.read_text() == "A"


def test_one_file_into_an_existing_folder_keeps_its_name(finished, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    assert export_files(finished[:1], folder) == [folder / "a.png"]


def test_several_files_fill_a_new_folder(finished, tmp_path):
    copies = export_files(finished, tmp_path / "new" / "folder")
    assert [c.read_text() for c in copies] == ["A", "B"]
    assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == ["a.png", "b.png"]


def test_missing_parent_is_one_line(finished, tmp_path):
    with pytest.raises(OutputError, match=r"folder .*nowhere.* does not exist; create it"):
        export_files(finished[:1], tmp_path / "nowhere" / "x.png")


def test_file_where_a_folder_is_needed(finished, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(OutputError, match="is a file, but this run exports 2 files"):
        export_files(finished, target)
    assert target.read_text() == "keep me"


def test_a_failed_copy_removes_the_copies_already_made(finished, tmp_path):
    finished[1].unlink()  # the second copy fails
    folder = tmp_path / "out"
    with pytest.raises(OutputError, match="could not write"):
        export_files(finished, folder)
    assert list(folder.iterdir()) == []


def test_files_written_in_a_run_are_copied_from_its_finished_folder(tmp_path):
    with LocalRun(tmp_path / "runs", "view") as run:
        written = [run.write_text("a.txt", "A"), run.write_text("b.txt", "B")]
        assert written[0].parent.name.endswith(".partial")  # the hidden folder while open
    assert finished_paths(run, written) == [run.final_path / "a.txt", run.final_path / "b.txt"]
    copies = export_from_run(run, written[::-1], tmp_path / "out")
    assert copies == [tmp_path / "out" / "b.txt", tmp_path / "out" / "a.txt"]
    assert [c.read_text() for c in copies] == ["B", "A"]
    assert export_from_run(run, written, None) == []
    assert export_from_run(None, written, tmp_path / "elsewhere") == []
    assert not (tmp_path / "elsewhere").exists()
