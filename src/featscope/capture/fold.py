"""Fold each BatchNorm into the convolution before it, on a copy of the model, for inference.

In eval mode a BatchNorm is a per-channel affine map, so when it directly follows a convolution it
can be folded into that convolution's weights and bias (``torch.nn.utils.fusion``); the network
then reads and writes every such activation once instead of twice. On the 2-core CPU of
docs/benchmarks.md ResNet-18 at 224 px runs about 1.15x faster, with features equal to float32
rounding.

torch.fx finds the pairs: a ``Conv2d`` whose only user is a ``BatchNorm2d``, each called once.
``torch.fx.experimental.optimization.fuse`` is not used because it returns a ``GraphModule`` in
which the containers it inlined (``layer1``, a timm ``stages.2``) are never called, so hooks on
them would not fire. Here the pairs are folded into a deep copy of the original module tree
instead (the copy is also what gets traced, since tracing runs ``forward``): the convolution gets
the folded weights and the BatchNorm becomes ``Identity``, so every module name still exists and
a hook on any module that holds both members of a pair, or neither, sees what it saw before. The
caller's model is never changed. Pairs split by a capture point are left alone (the convolution
itself, the BatchNorm, or a container ending with the one or starting with the other: what
crosses its boundary would change); so are half-precision models (the check's tolerance is
float32's) and all but the exact torch classes (timm's ``BatchNormAct2d`` also applies an
activation; ``Conv2dSame`` pads in ``forward``). The folded copy is checked against the model on
two real images before it is used.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

import torch

from featscope.capture.hooks import capture
from featscope.capture.points import CapturePoint
from featscope.capture.pooling import flatten_outputs
from featscope.errors import FeatscopeError
from featscope.models.handle import ModelHandle

__all__ = ["batchnorm_pairs", "fold_batchnorm", "folded_handle"]

logger = logging.getLogger(__name__)


def batchnorm_pairs(module: torch.nn.Module) -> list[tuple[str, str]]:
    """Return the ``(conv, batchnorm)`` module paths that can be folded, in graph order.

    Parameters
    ----------
    module : torch.nn.Module
        The model. It is traced symbolically (torch.fx): its ``forward`` runs on proxies, so
        pass a copy of a model whose forward keeps state.

    Returns
    -------
    list of (str, str)
        Pairs where the convolution's only user is the BatchNorm and each is called once; empty
        when the model cannot be traced (data-dependent control flow, unusual inputs).
    """
    if not _has_foldable_bn(module):
        return []  # no tracing at all for transformers and BatchNorm-free networks
    modules = dict(module.named_modules())
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception as exc:  # any model code may fail under tracing
        logger.debug("no BatchNorm folding: %s cannot be traced (%s)", type(module).__name__, exc)
        return []
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not _foldable_bn(modules.get(node.target)):
            continue
        source = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if not isinstance(source, torch.fx.Node) or source.op != "call_module":
            continue
        if type(modules.get(source.target)) is not torch.nn.Conv2d or len(source.users) != 1:
            continue
        if calls[source.target] == 1 and calls[node.target] == 1:
            pairs.append((str(source.target), str(node.target)))
    return pairs


def _splits(pair: tuple[str, str], keep: Collection[str]) -> bool:
    """Whether a kept module holds one member of ``pair`` but not the other."""

    def inside(path: str, container: str) -> bool:
        return container == "" or path == container or path.startswith(container + ".")

    conv, bn = pair
    return any(inside(conv, k) != inside(bn, k) for k in keep)


def _has_foldable_bn(module: torch.nn.Module) -> bool:
    return any(_foldable_bn(m) for m in module.modules())


def _foldable_bn(module: Any) -> bool:
    return (
        type(module) is torch.nn.BatchNorm2d
        and module.track_running_stats
        and module.running_mean is not None
        and module.running_var is not None
    )


def fold_batchnorm(
    module: torch.nn.Module, keep: Collection[str] = ()
) -> tuple[torch.nn.Module, tuple[str, ...]]:
    """Return an eval-mode copy of ``module`` with its conv+BatchNorm pairs folded.

    Parameters
    ----------
    module : torch.nn.Module
        The model; not changed.
    keep : collection of str
        Module paths whose inputs or outputs are captured: a pair is not folded when one of
        these modules holds one member of the pair and not the other (the member itself, or a
        container that ends with the convolution or starts with the BatchNorm), since what
        crosses its boundary would change.

    Returns
    -------
    module : torch.nn.Module
        The folded copy, or ``module`` itself when nothing was folded.
    folded : tuple of str
        The paths of the BatchNorms that became ``Identity``.
    """
    if not _has_foldable_bn(module):
        return module, ()  # no copy and no tracing for transformers and BatchNorm-free networks
    if any(p.is_floating_point() and p.dtype != torch.float32 for p in module.parameters()):
        # the check's tolerance is float32's; half-precision models are run as they are
        return module, ()
    try:
        # traced and folded on the copy: tracing runs forward(), which may keep state
        folded = copy.deepcopy(module)
    except Exception as exc:  # a module holding something uncopyable
        logger.debug("no BatchNorm folding: the model cannot be copied (%s)", exc)
        return module, ()
    pairs = [pair for pair in batchnorm_pairs(folded) if not _splits(pair, keep)]
    if not pairs:
        return module, ()
    folded.eval()
    with torch.no_grad():
        for conv_path, bn_path in pairs:
            conv = folded.get_submodule(conv_path)
            bn = folded.get_submodule(bn_path)
            folded.set_submodule(conv_path, torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn))
            folded.set_submodule(bn_path, torch.nn.Identity())
    return folded, tuple(b for _, b in pairs)


def folded_handle(
    handle: ModelHandle,
    points: Collection[CapturePoint],
    probe: Callable[[], torch.Tensor | None],
) -> tuple[ModelHandle, tuple[str, ...]]:
    """Return a handle on a folded copy of the model, checked to give the same point values.

    The copy and the model are run on the same two images; the copy is used only when every
    capture point agrees (difference at most 1e-3 of the largest value, float32 rounding being
    about 1e-6).

    Parameters
    ----------
    handle : ModelHandle
        The model.
    points : collection of CapturePoint
        The points that will be captured; their modules are not folded.
    probe : callable
        Returns a batch of model inputs for the check (None: no check possible, no folding);
        called only when there is something to fold.

    Returns
    -------
    handle : ModelHandle
        ``handle`` itself when nothing was folded or the check failed, else a handle on the copy.
    folded : tuple of str
        The paths of the folded BatchNorms (empty when ``handle`` is returned).
    """
    keep = {p.ref.module for p in points if p.ref.module is not None}
    module, folded = fold_batchnorm(handle.module, keep)
    if not folded:
        return handle, ()
    images = probe()
    if images is None:
        return handle, ()
    candidate = dataclasses.replace(handle, module=module)
    if not _same_values(handle, candidate, points, images):
        logger.warning(
            "BatchNorm folding was checked and not used: the folded copy of %s gives other "
            "values at the capture points; the model runs as it is",
            handle.spec,
        )
        return handle, ()
    return candidate, folded


def _same_values(
    a: ModelHandle, b: ModelHandle, points: Collection[CapturePoint], images: torch.Tensor
) -> bool:
    parameter = next(a.module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    # two images show a wrong fold as well as many (it changes every output), at a quarter of
    # the cost of the eight the bfloat16 check needs
    x = images[:2].to(device=device, dtype=dtype)
    try:
        with capture(a, points) as tap:
            expected = tap.run(x)
        with capture(b, points) as tap:
            got = tap.run(x)
    except (FeatscopeError, RuntimeError) as exc:  # the input size may not suit the model
        logger.debug("no BatchNorm folding: the check could not run (%s)", exc)
        return False
    for name, value in expected.items():
        want = flatten_outputs(name, value)
        have = flatten_outputs(name, got[name])
        for key, tensor in want.items():
            other = have.get(key)
            if other is None or other.shape != tensor.shape:
                return False
            scale = float(tensor.abs().max()) if tensor.numel() else 0.0
            if not torch.allclose(other.float(), tensor.float(), rtol=0, atol=1e-3 * scale + 1e-6):
                return False
    return True
