"""Small text helpers shared by the model adapters."""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(exc: BaseException) -> str:
    """Return the first non-empty line of an exception's message (library errors run long).

    Parameters
    ----------
    exc : BaseException
        Any exception.

    Returns
    -------
    str
        That line, or the exception's type name when the message is empty.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # keep the first sentence: the rest of torch's messages is general advice
    return lines[0].split(". ")[0].rstrip(".")
