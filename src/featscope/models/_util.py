"""Small text helpers shared by the model adapters."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from featscope.errors import ModelSpecError

__all__ = ["first_line", "unknown_name"]


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


def unknown_name(
    spec: str, prefix: str, zoo: str, name: str, known: Iterable[str], listing: str
) -> ModelSpecError:
    """Build the error for a model name a zoo does not have, with the closest names as specs.

    Parameters
    ----------
    spec : str
        The spec as given (``"timm:resnet5"``).
    prefix : str
        The spec prefix of the zoo (``"timm"``).
    zoo : str
        The zoo's name for the message (``"timm"``).
    name : str
        The unknown name.
    known : iterable of str
        Every name of the zoo.
    listing : str
        The call that lists the names (``"timm.list_models('<pattern>*')"``).

    Returns
    -------
    ModelSpecError
        ``model spec '<spec>': <zoo> has no model '<name>'; did you mean <prefix>:<close>?``.
    """
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(f'{prefix}:{c}' for c in close)}?"
        if close
        else f"list the names with {listing}"
    )
    return ModelSpecError(f"model spec {spec!r}: {zoo} has no model {name!r}; {hint}")
