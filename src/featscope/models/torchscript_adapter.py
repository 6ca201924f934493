"""TorchScript archives (``ts:<path>``), loaded with ``torch.jit.load(path, map_location="cpu")``.

What was checked (torch 2.x, scripted and traced modules, saved and reloaded): a loaded
``RecursiveScriptModule`` lists its submodules in ``named_modules()``, but
``register_forward_hook`` raises ``RuntimeError: register_forward_hook is not supported on
ScriptModules`` on the archive and on every submodule. No hook can fire, so no module path can
be captured. The handle therefore exposes only ``logits``: the archive's output, returned by
:func:`torchscript_forward` in its extras (``PointRef(None)``); a tuple output becomes
``logits.0``, ``logits.1``... in capture. To capture inner layers, export a model whose forward
returns them (or load the Python model with ``py:``).

A TorchScript archive carries no preprocessing, so ImageNet defaults (224, crop 0.875) are used;
override them with ``input_size``/``mean``/``std``. The input channels are read from the first
convolution (a traced one keeps only its weight, whose shape gives them).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from featscope.errors import ModelSpecError
from featscope.models._util import first_line
from featscope.models.generic import with_model_channels
from featscope.models.handle import ModelHandle, PointRef
from featscope.models.preprocessing import ASSUMED, Preprocessing

__all__ = ["HOOKS_SUPPORTED", "load_torchscript", "torchscript_forward"]

#: Whether forward hooks can be registered on a loaded ScriptModule (checked: they cannot).
HOOKS_SUPPORTED = False


def load_torchscript(path: str, *, spec: str | None = None) -> ModelHandle:
    """Load a TorchScript archive.

    Parameters
    ----------
    path : str
        File written by ``torch.jit.save`` (or ``ScriptModule.save``).
    spec : str, optional
        The spec string to record; defaults to ``"ts:<path>"``.

    Returns
    -------
    ModelHandle
        ``family="torchscript"`` with only the ``logits`` alias (see the module docstring).

    Raises
    ------
    ModelSpecError
        When the file does not exist or is not a TorchScript archive (e.g. a state dict).
    """
    import torch

    spec = spec or f"ts:{path}"
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelSpecError(
            f"model spec {spec!r}: TorchScript file {str(file)!r} does not exist; pass the path "
            "of a file written by torch.jit.save"
        )
    try:
        with warnings.catch_warnings():
            # torch >= 2.9 marks TorchScript as deprecated; loading existing archives still works
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(file), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise ModelSpecError(
            f"model spec {spec!r}: {str(file)!r} is not a TorchScript archive ({first_line(exc)}); "
            "if it is a checkpoint (state dict), pass it as the checkpoint of a model spec such "
            "as timm:resnet50 instead"
        ) from exc
    return ModelHandle(
        module=module,
        spec=spec,
        family="torchscript",
        preprocess=with_model_channels(Preprocessing().with_sources(ASSUMED), module),
        aliases={"logits": PointRef(None)},
        forward=torchscript_forward,
    )


def torchscript_forward(module: Any, x: Any) -> tuple[Any, dict[str, Any]]:
    """Run the archive and return its output as the ``logits`` extra.

    Parameters
    ----------
    module : torch.jit.ScriptModule
        The loaded archive.
    x : torch.Tensor
        ``(N, 3, H, W)`` input batch.

    Returns
    -------
    tuple
        ``(output, {"logits": output})``.
    """
    output = module(x)
    return output, {"logits": output}
