"""A full disk or a read-only folder gives one clean error line and leaves no partial files.

The faults are injected where the operating system would report them (``savefig``,
``copyfile``, ``fsync``, ``os.replace``, ``os.mkdir`` raising ``OSError`` with ENOSPC, EROFS or
EACCES): the tests run as root here, where ``chmod`` cannot make a folder read-only, and
mounting a small tmpfs needs privileges CI does not have.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import featscope.sinks.files as files
import featscope.sinks.folder as folder
from featscope.cli import main

DIGITS_CSV = Path("/work/shared/data/model-vs-human-cue-conflict")
TSNE = ["tsne", "--method", "pca", "--max-num-samples", "3", "--no-html", "--quiet"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def _everything(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _fail_savefig(monkeypatch, code: int, *, under: Path | None = None, torn: bool = False):
    """Make ``Figure.savefig`` fail with ``code`` (only for paths under ``under``, if given)."""
    real = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        path = Path(os.fspath(fname))
        if under is None or path.is_relative_to(under):
            if torn:  # a disk that fills up half-way through the file
                path.write_bytes(b"\x89PNG\r\n\x1a\n half a picture")
            raise OSError(code, os.strerror(code), str(path))
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)


def test_disk_full_while_writing_a_figure(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    _fail_savefig(monkeypatch, errno.ENOSPC, torn=True)
    assert main([*TSNE, "--work-dir", str(work)]) == 2
    line = _one_error_line(capsys)
    assert "no space left on the device" in line
    assert "the unfinished run folder was removed" in line
    assert "free some space or choose another --work-dir" in line
    assert _everything(work) == []


def test_disk_full_while_writing_arrays(tmp_path, monkeypatch, capsys):
    """``fsync`` is where a full disk shows up for buffered writes (delayed allocation)."""
    work = tmp_path / "work"

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", fsync)
    assert main([*TSNE, "--work-dir", str(work)]) == 2
    line = _one_error_line(capsys)
    assert "no space left on the device while writing 'feat_" in line
    assert _everything(work) == []


def test_disk_full_while_writing_the_manifest(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "manifest.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(files.os, "replace", replace)
    assert main([*TSNE, "--work-dir", str(work)]) == 2
    assert "while writing 'manifest.json'" in _one_error_line(capsys)
    assert _everything(work) == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES], ids=["read-only", "no-permission"])
def test_unwritable_work_dir(tmp_path, monkeypatch, capsys, code):
    work = tmp_path / "work"
    work.mkdir()
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).parent == work:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folder.os, "mkdir", mkdir)
    assert main([*TSNE, "--work-dir", str(work)]) == 2
    line = _one_error_line(capsys)
    assert f"cannot write to run folder '{work}'" in line
    assert os.strerror(code) in line
    assert "choose another --work-dir" in line
    assert _everything(work) == []


def _fail_copies(monkeypatch, code: int, under: Path, *, torn: bool = False, named: str = ""):
    """Make the copies of ``--out`` (``shutil.copyfile`` into ``under``) fail with ``code``.

    With ``named``, only the copies whose file name holds it fail.
    """
    import shutil

    real = shutil.copyfile

    def copyfile(src, dst, *args, **kwargs):
        path = Path(os.fspath(dst))
        if path.is_relative_to(under) and named in path.name:
            if torn:  # a disk that fills up half-way through the file
                path.write_bytes(b"\x89PNG\r\n\x1a\n half a picture")
            raise OSError(code, os.strerror(code), str(path))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copyfile)


def test_read_only_shape_bias_out_dir(tmp_path, monkeypatch, capsys):
    # the figures are drawn into the run folder; --out (--out-dir) receives copies of them
    work, out = tmp_path / "work", tmp_path / "figs"
    _fail_copies(monkeypatch, errno.EROFS, under=out)
    args = ["shape-bias", "plot", "--csv-dir", str(DIGITS_CSV), "--out-dir", str(out)]
    assert main([*args, "--models", "resnet50", "--quiet", "--work-dir", str(work)]) == 2
    line = _one_error_line(capsys)
    assert f"`--out` '{out}': could not write" in line
    assert "shape_bias.png" in line
    assert "Read-only file system" in line
    assert _everything(out) == []  # the numbers are copied last: no json without figures
    (run_dir,) = work.iterdir()  # the finished run folder is kept: it is the record
    assert (run_dir / "manifest.json").is_file()


def _fail_copy(monkeypatch, code: int, *, under: Path) -> None:
    """Make the export's copies under ``under`` fail with ``code`` half-way through the file."""
    import featscope.sinks.export as export

    real = export.shutil.copyfile

    def copyfile(source, destination, *args, **kwargs):
        path = Path(os.fspath(destination))
        if path.is_relative_to(under):
            path.write_bytes(b"\x89PNG\r\n\x1a\n half a picture")
            raise OSError(code, os.strerror(code), str(path))
        return real(source, destination, *args, **kwargs)

    monkeypatch.setattr(export.shutil, "copyfile", copyfile)


def test_recon_out_file_on_a_full_disk_leaves_no_figure(tmp_path, monkeypatch, capsys):
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    # --out-file copies a figure of the finished run folder: the disk fills up in the copy
    _fail_copy(monkeypatch, errno.ENOSPC, under=out)
    args = ["recon", "--quiet", "--work-dir", str(work), "--out-file", str(out / "r.png")]
    assert main(args) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line
    assert _everything(out) == []  # neither the figure nor its hidden temporary file
    # the copies go out after the run folder is finished: that complete result is kept
    (run_dir,) = work.iterdir()
    assert (run_dir / "manifest.json").is_file()
    assert not run_dir.name.startswith(".")


def test_browse_out_dir_on_a_full_disk_removes_the_pictures(tmp_path, monkeypatch, capsys):
    work, out = tmp_path / "work", tmp_path / "out"
    real = Figure.savefig
    calls = []

    def savefig(self, fname, *args, **kwargs):
        calls.append(fname)
        if len(calls) == 2:  # the first picture is written, the second finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device", str(fname))
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    args = ["browse", "--quiet", "-n", "3", "--mode", "original", "--out-dir", str(out)]
    assert main([*args, "--work-dir", str(work)]) == 2
    line = _one_error_line(capsys)
    assert "No space left on device" in line
    assert not out.exists()  # copies are made from a finished run folder only
    assert _everything(work) == []  # and the unfinished one is removed with its picture


def test_browse_out_dir_copy_on_a_full_disk_removes_the_copies(tmp_path, monkeypatch, capsys):
    work, out = tmp_path / "work", tmp_path / "out"
    _fail_copies(monkeypatch, errno.ENOSPC, under=out, torn=True, named="astronaut")
    args = ["browse", "--quiet", "-n", "3", "--mode", "original", "--out-dir", str(out)]
    assert main([*args, "--dpi", "30", "--work-dir", str(work)]) == 2
    assert "No space left on device" in _one_error_line(capsys)
    assert _everything(out) == []  # the two pictures copied before are removed again


def test_shape_bias_out_dir_on_a_full_disk_leaves_no_torn_figure(tmp_path, monkeypatch, capsys):
    work, out = tmp_path / "work", tmp_path / "figs"
    _fail_copies(monkeypatch, errno.ENOSPC, under=out, torn=True)
    args = ["shape-bias", "plot", "--csv-dir", str(DIGITS_CSV), "--out-dir", str(out)]
    assert main([*args, "--models", "resnet50", "--quiet", "--work-dir", str(work)]) == 2
    assert "No space left on device" in _one_error_line(capsys)
    assert _everything(out) == []


def test_pdf_writer_failing_twice_on_a_full_disk(tmp_path, monkeypatch, capsys):
    """matplotlib's PDF backend, out of space, raises AttributeError from its clean-up."""
    import featscope.render

    def save_figure(fig, stem, formats=("png",), dpi=150):
        Path(f"{stem}.pdf").write_bytes(b"%PDF-1.4 half")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise AttributeError("'Stream' object has no attribute 'pos'")  # noqa: B904

    monkeypatch.setattr(featscope.render, "save_figure", save_figure)
    work = tmp_path / "work"
    assert main([*TSNE, "--format", "pdf", "--work-dir", str(work)]) == 2
    assert "no space left on the device while writing 'pca_" in _one_error_line(capsys)
    assert _everything(work) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 160 KiB tmpfs (needs root and mount rights; skipped where they are missing)."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the injected faults above cover it")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("formats", [["png"], ["pdf", "svg"]])
def test_real_full_tmpfs_gives_one_line_and_leaves_nothing(tiny_tmpfs, capsys, formats):
    work = tiny_tmpfs / "work"
    argv = ["tsne", "--method", "pca", "--max-num-samples", "10", "--quiet", "--format", *formats]
    assert main([*argv, "--work-dir", str(work)]) == 2
    assert "no space left on the device" in _one_error_line(capsys)
    assert _everything(work) == []
