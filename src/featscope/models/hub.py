"""Pretrained weights through each library's own download and cache, and what weights a model has.

featscope downloads nothing unless asked (``pretrained=True``, ``--pretrained``). Then each zoo
uses its own cache: timm and Hugging Face the Hugging Face hub cache (``HF_HOME``, ``HF_HUB_CACHE``)
or, for timm weights published by URL, torch's hub cache (``TORCH_HOME``); torchvision and
MMPretrain torch's hub cache. Weights already there load without the network. With
``HF_HUB_OFFLINE`` set (featscope's tests set it) nothing is fetched: weights that are not
cached fail with one line naming the model and the cache folder to fill.

:data:`WEIGHTS` names what weights a loaded model holds. ``"random"`` (an architecture built by
name with neither a checkpoint nor pretrained weights) is logged once as a warning, because its
features show an untrained network.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from featscope.errors import ModelSpecError
from featscope.models._util import first_line

__all__ = [
    "WEIGHTS",
    "checkpoint_follows",
    "download_to_torch_cache",
    "hf_cache_dir",
    "is_offline",
    "log_random_weights",
    "torch_cache_dir",
    "weights_unavailable",
]

logger = logging.getLogger(__name__)

#: What weights a loaded model holds (``handle.weights``):
#: ``"random"``: built by name, with neither a checkpoint nor pretrained weights;
#: ``"pretrained"``: the zoo's own weights (``pretrained=True``, a Hugging Face hub model);
#: ``"checkpoint"``: a checkpoint file was loaded (``checkpoint=...``, ``--checkpoint``);
#: ``"shipped"``: a built-in demo model with the weights featscope ships;
#: ``"given"``: the weights of what the user handed over (a module, a ``py:`` factory, a
#: TorchScript archive, a Hugging Face ``save_pretrained`` directory).
WEIGHTS = ("random", "pretrained", "checkpoint", "shipped", "given")

_TRUE = {"1", "ON", "YES", "TRUE"}
# set by checkpoint_follows(): the caller loads weights right after building the model
_CHECKPOINT_FOLLOWS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "featscope_checkpoint_follows", default=False
)


@contextlib.contextmanager
def checkpoint_follows() -> Iterator[None]:
    """Build models inside this block without the random-weights warning.

    For callers that load a checkpoint into the model themselves right after
    :func:`featscope.models.load_model` (the masked-image-model loader does).

    Yields
    ------
    None
    """
    token = _CHECKPOINT_FOLLOWS.set(True)
    try:
        yield
    finally:
        _CHECKPOINT_FOLLOWS.reset(token)


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids downloads.

    Returns
    -------
    bool
        True when either variable is ``1``/``ON``/``YES``/``TRUE``.
    """
    return any(
        os.environ.get(var, "").upper() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hf_cache_dir() -> str:
    """Return the Hugging Face hub cache folder that ``huggingface_hub`` uses in this process."""
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - timm and transformers both depend on it
        home = os.environ.get("HF_HOME", os.path.join("~", ".cache", "huggingface"))
        return os.path.expanduser(os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub")))


def torch_cache_dir() -> str:
    """Return where torch's hub keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def weights_unavailable(spec: str, cache: str, exc: BaseException | None = None) -> ModelSpecError:
    """Build the one-line error for pretrained weights that are neither cached nor downloadable.

    Parameters
    ----------
    spec : str
        The model spec (``"timm:resnet50"``).
    cache : str
        The cache folder the weights were looked for in.
    exc : BaseException, optional
        The library's error (its first line is quoted when the network was allowed).

    Returns
    -------
    ModelSpecError
        To raise (``from exc``).
    """
    if is_offline():
        why = "HF_HUB_OFFLINE is set, so nothing is downloaded"
    else:
        why = f"the download failed: {first_line(exc) if exc is not None else 'no network'}"
    return ModelSpecError(
        f"model spec {spec!r}: its pretrained weights are not in the cache {cache} and cannot "
        f"be fetched ({why}); download them once with network access (unset HF_HUB_OFFLINE), "
        "or pass a checkpoint file (--checkpoint) instead of --pretrained"
    )


def download_to_torch_cache(url: str, spec: str) -> Path:
    """Return the cached file of ``url`` in torch's hub cache, downloading it when allowed.

    Parameters
    ----------
    url : str
        The weights' address (torchvision's and OpenMMLab's weights are published by URL).
    spec : str
        The model spec, for the error.

    Returns
    -------
    pathlib.Path
        ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``, as ``torch.hub`` names it.

    Raises
    ------
    ModelSpecError
        When the file is not cached and cannot be downloaded (offline, or no network); no
        connection is attempted while offline.
    """
    import torch

    cache = torch_cache_dir()
    target = Path(cache) / os.path.basename(urlparse(url).path)
    if target.is_file():
        return target
    if is_offline():
        raise weights_unavailable(spec, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=True)
    except OSError as exc:  # URLError, HTTPError, socket and disk errors are all OSErrors
        raise weights_unavailable(spec, cache, exc) from exc
    return target


def log_random_weights(spec: str) -> None:
    """Warn (once per load, through logging) that a model's weights are random.

    Parameters
    ----------
    spec : str
        The model spec, e.g. ``"timm:resnet50"``.
    """
    if _CHECKPOINT_FOLLOWS.get():
        return
    logger.warning(
        "%s has random weights: no --checkpoint and no --pretrained; its features show an "
        "untrained network",
        spec,
    )
