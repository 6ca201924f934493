"""The file writers of a run folder: every file is written whole or not at all.

Each file is written to a hidden temporary file in the run folder, flushed to disk, then
renamed onto its name (``os.replace``), so no reader ever sees a torn file, and a killed
process leaves only a hidden file that the manifest never lists. A full disk ends the run at
once: nothing more could be written, and the unfinished folder's space is freed now rather
than when the caller unwinds.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from featscope.errors import OutputError, ParameterError
from featscope.sinks.folder import os_error_in
from featscope.sinks.layout import RESERVED, check_name, with_suffix
from featscope.sinks.manifest import dumps_json
from featscope.sinks.mirrors import MirrorFanout, figure_rgb, png_to_rgb

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["FileWriters"]


class _WriteOnly:
    """A file seen through its ``write`` alone.

    ``np.save`` writes to a real file with C ``fwrite``; a disk filling up half-way through
    makes that raise an ``OSError`` without errno ("6400 requested and 6112 written"), which
    could not be told from any other failure. Through a plain ``write`` (numpy's path for
    file-like objects, in chunks) the error keeps its ENOSPC, and the run reports a full disk.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self.write = handle.write


class FileWriters:
    """The ``write_*`` methods of :class:`~featscope.sinks.run.LocalRun` (a base class of it).

    Everything goes through :meth:`_atomic_write`. The run provides the folder being written
    (``path``), the open check (``_require_open``), the translation of an ``OSError``
    (``_write_error``), its mirrors (``_fanout``) and the current step (``_step``).
    """

    _fanout: MirrorFanout

    if TYPE_CHECKING:  # provided by LocalRun; declared here for the type checker only

        @property
        def path(self) -> Path:
            """The folder being written."""

        def _require_open(self) -> None: ...

        def _write_error(self, name: str, exc: OSError) -> OutputError: ...

        def _step(self, step: int | None = None) -> int: ...

    def write_bytes(
        self, name: str, data: bytes, *, tag: str | None = None, mirror: bool = True
    ) -> Path:
        """Write raw bytes to ``name``.

        With mirrors attached, a ``.png`` file is also logged to them as an image at
        :attr:`step`.

        Parameters
        ----------
        name : str
            Plain file name.
        data : bytes
            Content.
        tag : str, optional
            Name of a ``.png`` in the mirrors (default: the file name without ``.png``).
        mirror : bool, default True
            Send a ``.png`` to the mirrors; False keeps it in the folder only (e.g. sprites or
            thumbnails that are not pictures of the run on their own).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not a plain, allowed file name.
        OutputError
            If the file cannot be written.
        """
        path = self._atomic_write(name, lambda fh: fh.write(data))
        if mirror and self._fanout and name.lower().endswith(".png"):
            self._fanout.image(tag or name[:-4], lambda: png_to_rgb(data), self._step())
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write UTF-8 text to ``name``.

        Parameters
        ----------
        name : str
            Plain file name, e.g. ``"notes.txt"``.
        text : str
            Content.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not a plain, allowed file name, or ``text`` is not valid Unicode
            (a lone surrogate: a name that was not UTF-8 on disk).
        OutputError
            If the file cannot be written.
        """
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[max(0, exc.start - 20) : exc.end + 20]
            raise ParameterError(
                f"cannot write '{name}': its text holds {text[exc.start : exc.end]!r}, which is "
                f"not valid Unicode (near {bad!r}); a sample id or class name came from bytes "
                "that are not UTF-8: rename the file or give the samples other ids"
            ) from None
        return self.write_bytes(name, data)

    def write_array(self, name: str, array: Any) -> Path:
        """Write an array as ``.npy`` (no pickles).

        Parameters
        ----------
        name : str
            File name; ``.npy`` is appended when missing.
        array : array-like
            Numeric array, e.g. ``(N, D)`` float32 features.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not allowed or the array holds Python objects.
        OutputError
            If the file cannot be written.
        """
        arr = np.asarray(array)
        if arr.dtype.hasobject:
            raise ParameterError(
                f"array for '{name}' has dtype object, which .npy can only store as a pickle; "
                "pass a numeric array"
            )
        return self._atomic_write(
            with_suffix(name, ".npy"), lambda fh: np.save(_WriteOnly(fh), arr, allow_pickle=False)
        )

    def write_json(self, name: str, obj: Any) -> Path:
        """Write JSON with sorted keys, indent 2, NaN and infinities as ``null``.

        Parameters
        ----------
        name : str
            File name; ``.json`` is appended when missing.
        obj : Any
            Mappings, sequences, numbers (numpy scalars and arrays included), strings, paths.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not allowed or ``obj`` holds a value JSON cannot represent.
        OutputError
            If the file cannot be written.
        """
        name = with_suffix(name, ".json")
        return self.write_text(name, dumps_json(obj, name))

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        """Write a CSV table (RFC 4180 quoting, newline line ends, UTF-8).

        Parameters
        ----------
        name : str
            File name; ``.csv`` is appended when missing.
        header : sequence of str
            Column names.
        rows : iterable of sequences
            One sequence per row, as long as ``header``.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        ParameterError
            If ``name`` is not allowed or a row's length differs from the header's.
        OutputError
            If the file cannot be written.
        """
        name = with_suffix(name, ".csv")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        # csv quotes a cell holding "\n" but not one holding a lone "\r", which every reader
        # then takes for a line end: such rows are written with every cell quoted
        quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(list(header))
        for i, row in enumerate(rows):
            row = list(row)
            if len(row) != len(header):
                raise ParameterError(
                    f"row {i} of '{name}' has {len(row)} values but the header has "
                    f"{len(header)} columns; give every row one value per column"
                )
            has_cr = any(isinstance(v, str) and "\r" in v for v in row)
            (quoted if has_cr else writer).writerow(row)
        return self.write_text(name, buffer.getvalue())

    def write_figure(
        self,
        fig: Figure,
        stem: str,
        formats: str | Iterable[str] = ("png",),
        dpi: float = 150,
        *,
        tag: str | None = None,
    ) -> list[Path]:
        """Write a figure in one or more formats (see :func:`featscope.render.save_figure`).

        With mirrors attached, the figure is also logged to them as an image at :attr:`step`.

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure (``ax.figure`` for an axes).
        stem : str
            File name without suffix; ``"tsne_pre_logits"`` gives ``tsne_pre_logits.png``, ...
        formats : str or iterable of str, default ("png",)
            Any of ``png``, ``pdf``, ``svg``, ``jpg``.
        dpi : float, default 150
            Resolution of raster formats.
        tag : str, optional
            Name of the image in the mirrors (default ``stem``); give the same tag at every step
            to get one image series (e.g. ``"tsne/pre_logits"`` for ``tsne_pre_logits_e0003``).

        Returns
        -------
        list of pathlib.Path
            The files written, in the order of ``formats``.

        Raises
        ------
        ParameterError
            If ``stem`` is not allowed or a format is unknown.
        OutputError
            If a file cannot be written.
        """
        from featscope.render import save_figure

        self._require_open()
        stem = check_name(stem, "figure name")
        folder = self.path
        temp_stem = folder / f".{stem}.tmp-{os.getpid()}"
        try:
            temps = save_figure(fig, temp_stem, formats=formats, dpi=dpi)
        except BaseException as exc:
            if folder.is_dir():  # a full disk removes the whole folder at once
                for leftover in folder.glob(f".{stem}.tmp-{os.getpid()}.*"):
                    leftover.unlink(missing_ok=True)
            # matplotlib's PDF writer, hit by a full disk, fails again while cleaning up and
            # raises AttributeError with the OSError as its context: look down the chain
            cause = os_error_in(exc) if isinstance(exc, Exception) else None
            if cause is not None:
                raise self._write_error(f"{stem}.*", cause) from exc
            raise
        written = []
        for temp in temps:
            target = self.path / check_name(f"{stem}{temp.suffix}")
            self._replace(temp, target)
            written.append(target)
        if self._fanout:
            pngs = [p for p in written if p.suffix.lower() == ".png"]
            self._fanout.image(
                tag or stem,
                (lambda: png_to_rgb(pngs[0].read_bytes()))
                if pngs
                else (lambda: figure_rgb(fig, dpi)),
                self._step(),
            )
        return written

    # ------------------------------------------------------------------ the one way to write

    def _atomic_write(
        self, name: str, write: Callable[[IO[bytes]], Any], *, internal: bool = False
    ) -> Path:
        """Write through a temporary file then ``os.replace`` it, so no file is ever torn."""
        self._require_open()
        name = check_name(name)
        if name in RESERVED and not internal:
            raise ParameterError(
                f"file name {name!r} is reserved for the run folder's own {name}; choose another"
            )
        target = self.path / name
        temp = self.path / f".{name}.tmp-{os.getpid()}"
        try:
            with temp.open("wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._write_error(name, exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._replace(temp, target)
        return target

    def _replace(self, temp: Path, target: Path) -> None:
        try:
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._write_error(target.name, exc) from exc
