"""The one folder walker behind class folders, loose images and ``browse``.

Written by hand over :func:`os.walk` because no well-kept library gives the three rules every
reader of user folders needs:

- symbolic links to folders are followed (dataset layouts often link class folders in), but
  each real folder is visited once: a link back to a parent (a loop) neither repeats images nor
  hangs the walk;
- a name that is not valid UTF-8 (Python decodes it with surrogates) is refused with one line
  naming the file: such a name cannot be written into ``ids.txt``, the csvs or a page;
- a class folder that is a broken link is reported, not silently dropped (it would shift the
  class indices of every later folder).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from featscope.errors import DataError

__all__ = ["check_name", "class_folders", "folder_key", "walk_files"]


def check_name(path: str | os.PathLike[str]) -> None:
    """Refuse a path whose name is not valid UTF-8, with one line naming it.

    Raises
    ------
    DataError
        When ``path`` holds bytes that are not UTF-8 (surrogate-escaped by Python).
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(text)
        raise DataError(
            f"file name {raw!r} is not valid UTF-8, so it cannot be written into ids.txt, the "
            "csvs or the page; rename it (e.g. convmv -f latin1 -t utf8) or move it out of the "
            "folder"
        ) from None


def folder_key(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Return ``(device, inode)`` of ``path`` (links followed), or ``None`` when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def walk_files(
    folder: str | os.PathLike[str],
    accept: Callable[[str], bool] | None = None,
    seen: set[tuple[int, int]] | None = None,
) -> list[Path]:
    """Return the files below ``folder`` (recursively, links followed, each folder once).

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to walk.
    accept : callable, optional
        ``accept(file name) -> bool``; default every file. Hidden files and folders (names
        starting with ``.``) are always skipped.
    seen : set, optional
        ``(device, inode)`` of folders not to enter (``folder`` itself is always walked); the
        folders walked are added. Class folders share one set, seeded with the root and every
        class folder, so that a link from one class into another (or to the root) adds nothing.

    Returns
    -------
    list of pathlib.Path
        The files, unsorted, each real folder walked once (a symbolic-link loop adds nothing).

    Raises
    ------
    DataError
        When the path of an accepted file is not valid UTF-8 (see :func:`check_name`).
    """
    seen = set() if seen is None else seen
    found: list[Path] = []
    top = True
    # followlinks=True as torchvision does: symlinked sub-folders are common in dataset layouts
    for current, dirnames, filenames in os.walk(folder, followlinks=True):
        key = folder_key(current)
        if key is None or (key in seen and not top):
            dirnames[:] = []  # a loop or a second link to a folder walked already
            continue
        top = False
        seen.add(key)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or (accept is not None and not accept(name)):
                continue
            # only names that become ids are checked: a stray notes\xff.txt is no sample
            path = os.path.join(current, name)
            check_name(path)
            found.append(Path(path))
    return found


def class_folders(root: Path) -> list[Path]:
    """Return the class sub-folders of ``root``, sorted by name (hidden ones skipped).

    Raises
    ------
    DataError
        When an entry is a broken symbolic link (it was meant as a class folder or an image) or
        a class folder's name is not valid UTF-8.
    """
    folders, broken = [], []
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and not entry.exists():
            broken.append(entry)
        elif entry.is_dir():
            check_name(entry)  # a class name: written into class_names.txt and the page
            folders.append(entry)
    if broken:
        shown = ", ".join(f"'{b.name}' -> '{os.readlink(b)}'" for b in sorted(broken)[:5])
        raise DataError(
            f"image folder '{root}' has {len(broken)} broken symbolic link(s) ({shown}); fix the "
            "link(s) or remove them, so that no class is left out and the class indices stay "
            "as meant"
        )
    return sorted(folders, key=lambda entry: entry.name)
