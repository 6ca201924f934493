r"""One name-safe format for per-sample text files (``ids.txt``, ``class_names.txt``).

A file name may hold any character but ``/`` and NUL: a newline or a tab in an image or
class-folder name used to split ``ids.txt`` into two ids, and ``featscope compare`` then paired
thumbnails with the wrong samples. The rule here keeps ordinary files exactly as before (one
name per line, readable by ``cat`` and every older reader) and escapes only when it must:

- when every name is *plain* (no line break of any kind, no tab, no leading or trailing
  whitespace, not empty, valid UTF-8, not starting with ``#`` or ``"``), the file is the names,
  one per ``\\n``-ended line (the old format);
- otherwise the first line is :data:`MARKER` and every following line is one name as a JSON
  string (``"a\\nb.png"``), which round-trips any Python string.

:func:`decode_lines` reads both, and old files (no marker) exactly as they were written. Written
by hand: JSON Lines libraries add nothing here beyond :mod:`json`, and csv quoting spreads one
name over several physical lines, which line-based tools (``wc -l``, ``paste``) miscount.
"""

from __future__ import annotations

import json

from featscope.errors import DataError

__all__ = ["MARKER", "decode_lines", "encode_lines", "is_plain"]

#: First line of an escaped file; each later line is a JSON string.
MARKER = "#featscope-lines: json"
# every character str.splitlines() breaks on, and the tab (tsv exports)
_BREAKS = frozenset("\n\r\t\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def is_plain(name: str) -> bool:
    """Return whether ``name`` can be written as a bare line (see the module docstring)."""
    if not name or name != name.strip() or name[0] in '#"' or not _BREAKS.isdisjoint(name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a name that was not UTF-8 on disk
        return False
    return True


def encode_lines(names: tuple[str, ...] | list[str]) -> str:
    r"""Return the text of a per-sample file holding ``names`` (see the module docstring).

    Parameters
    ----------
    names : sequence of str
        Any strings, one per sample (or class).

    Returns
    -------
    str
        The file's text, ``\\n``-ended; valid UTF-8 whatever the names hold.
    """
    names = [str(n) for n in names]
    if all(is_plain(n) for n in names):
        return "".join(n + "\n" for n in names)
    lines = [MARKER]
    for name in names:
        try:
            name.encode("utf-8")
            lines.append(json.dumps(name, ensure_ascii=False))
        except UnicodeEncodeError:
            lines.append(json.dumps(name))  # \udcff escapes: the text stays UTF-8
    return "\n".join(lines) + "\n"


def decode_lines(text: str, where: str) -> tuple[str, ...]:
    """Read back what :func:`encode_lines` wrote (or an old one-name-per-line file).

    Parameters
    ----------
    text : str
        The file's text.
    where : str
        The file, for messages (``"'run/ids.txt'"``).

    Returns
    -------
    tuple of str
        The names, exactly as written.

    Raises
    ------
    DataError
        When an escaped file has a line that is not one JSON string.
    """
    lines = text.split("\n")
    if lines and lines[0].rstrip("\r") == MARKER:
        names = []
        for number, line in enumerate(lines[1:], start=2):
            if line == "" and number == len(lines):
                break  # the final newline
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise DataError(
                    f"line {number} of {where} is not a JSON string ({exc}); the file is damaged"
                ) from exc
            if not isinstance(value, str):
                raise DataError(
                    f"line {number} of {where} holds a {type(value).__name__}, not a JSON "
                    "string; the file is damaged"
                )
            names.append(value)
        return tuple(names)
    while lines and lines[-1] == "":
        lines.pop()
    return tuple(lines)
