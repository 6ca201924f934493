"""Import optional dependencies lazily, with an error that says which extra installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from featscope.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"timm"`` or ``"umap"``.
    extra : str
        The featscope extra that installs it, e.g. ``"timm"``.
    purpose : str, optional
        What the module is needed for, shown in the error.

    Returns
    -------
    types.ModuleType
        The imported module.

    Raises
    ------
    MissingExtraError
        When the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"`{module}` is needed{why} but is not installed ({exc}); "
            f"install it with: pip install 'featscope[{extra}]'"
        ) from exc
