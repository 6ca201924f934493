"""Class activation maps of one photo, computed by pytorch-grad-cam on a featscope model.

pytorch-grad-cam (the ``grad-cam`` package, the library MMPretrain's ``vis_cam.py`` is built on)
does the methods and the faithfulness metrics; this module only connects it to featscope's
models and capture-point contract, and nothing here re-implements a method:

* :func:`cam_layer` turns a capture point into the module pytorch-grad-cam hooks and a
  ``reshape_transform`` that lays the point's output out as ``(N, C, h, w)`` by the same
  contract the feature maps use (:func:`featscope.capture.tokens.to_feature_map`: ViT tokens on
  their patch grid after the class/register tokens, Swin's channels-last maps permuted), so
  ``--vit-like`` and hand-written reshape functions are not needed;
* :func:`default_cam_point` picks the last spatial stage of the contract;
* :class:`CamSession` wraps the model so that it returns ``(N, K)`` logits whatever its family
  (timm, torchvision, Hugging Face ``ModelOutput``), checks that there is a classifier output,
  and runs the methods and the metric with the model's state restored afterwards.

Gradients are taken with respect to the input (which then carries ``requires_grad``) instead of
the weights: frozen models work, and no ``.grad`` is left on the user's parameters.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from featscope._optional import require
from featscope.capture.points import resolve_points
from featscope.capture.tokens import to_feature_map
from featscope.errors import CaptureError, ParameterError
from featscope.models.handle import ModelHandle, PointInfo
from featscope.models.points import device_and_dtype, feature_info, forward_errors, module_table

__all__ = [
    "CAM_CLASSES",
    "PRE_ATTENTION_NORMS",
    "CamLayer",
    "CamSession",
    "cam_layer",
    "class_names",
    "default_cam_point",
]

#: featscope's method names -> pytorch-grad-cam's classes (vis_cam.py's names, lower case).
CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "layercam": "LayerCAM",
    "hirescam": "HiResCAM",
    "gradcamelementwise": "GradCAMElementWise",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
}
#: Percentiles of the ROAD metric (the library's default is every 10 %; four keep it fast).
ROAD_PERCENTILES = (20, 40, 60, 80)
# pytorch-grad-cam's get_2d_projection (EigenCAM, EigenGradCAM, any method with eigen_smooth)
# takes a full SVD of the (h*w, C) activations: U alone is (h*w)^2 float64, 18.8 GiB at a
# 224x224 point. Past this the process is killed for memory, so the point is refused first.
SVD_BYTES_LIMIT = 2 * 1024**3
_SVD_METHODS = ("eigencam", "eigengradcam")
# points listed in the error for a point without spatial layout
_LISTED = 10
#: The norm before a transformer block's attention, by family (timm, Hugging Face, MMPretrain,
#: CLIP-style): the usual CAM point of a vision transformer.
PRE_ATTENTION_NORMS = ("norm1", "layernorm_before", "ln1", "ln_1")


class CamLayer:
    """A capture point as pytorch-grad-cam needs it: the module and how its output is laid out.

    Attributes
    ----------
    name : str
        The capture point.
    module : torch.nn.Module
        The module whose output is hooked.
    info : PointInfo
        The point's entry in the capture-point contract.
    """

    def __init__(self, handle: ModelHandle, name: str, module: nn.Module, info: PointInfo) -> None:
        self.name, self.module, self.info = name, module, info
        self._handle = handle

    @property
    def tokens(self) -> bool:
        """Whether the channels are the last axis (tokens, channels-last maps)."""
        return self.info.layout in ("NLC", "NHWC")

    def reshape(self, tensor: torch.Tensor) -> torch.Tensor:
        """Lay the output out as ``(N, C, h, w)`` (pytorch-grad-cam's ``reshape_transform``)."""
        return to_feature_map(
            tensor,
            name=self.name,
            num_prefix_tokens=self._handle.num_prefix_tokens,
            patch_grid=self._handle.patch_grid,
            info=self.info,
        )


def _spatial(info: PointInfo) -> bool:
    """Say whether a point is a map or token grid of more than one cell (not a 1x1 pool)."""
    return info.is_map and (info.grid is None or info.grid[0] * info.grid[1] > 1)


def _spatial_points(handle: ModelHandle) -> list[tuple[str, PointInfo]]:
    """List the module paths whose output is a map or tokens on a grid, in module order."""
    modules = module_table(handle.module)
    infos = [(n, handle.point_info(n)) for n in modules if n]
    return [(n, i) for n, i in infos if _spatial(i)]


def default_cam_point(handle: ModelHandle) -> str:
    """Return the last spatial stage of a model, the usual place for class activation maps.

    The last module timm's ``feature_info`` lists as a stage, else the last module (in
    ``named_modules()`` order) of the coarsest stride among those whose output is a map or a
    token grid of more than one cell, widened to the outermost module around it with the same
    grid (``layer4`` rather than ``layer4.1.bn2``). For a vision transformer with a class token
    the last block's output (and the final norm) carries no gradient to the patch tokens (only
    the class token reaches the head), so the last block's pre-attention norm
    (:data:`PRE_ATTENTION_NORMS`: ``norm1`` in timm, ``layernorm_before`` in Hugging Face,
    ``ln1`` in MMPretrain) is taken instead, as pytorch-grad-cam and vis_cam.py do.

    Parameters
    ----------
    handle : ModelHandle
        The model.

    Returns
    -------
    str
        A module path.

    Raises
    ------
    CaptureError
        When no module gives a map (a model of vectors only).
    """
    stages = [n for n, i in feature_info(handle).items() if _spatial(i)]
    if stages:
        name = stages[-1]
    else:
        spatial = _spatial_points(handle)
        if not spatial:
            raise CaptureError(
                f"model {handle.spec} has no module whose output is a map or a token grid, so it "
                "has no class activation maps; list its points with `featscope points --model ...`"
            )
        coarsest = max(i.stride or 0 for _, i in spatial)
        name = [n for n, i in spatial if (i.stride or 0) == coarsest][-1]
        # the last module is often a layer inside the last block (a ResNet's layer4.1.bn2,
        # before the residual sum): climb to the outermost module of the same grid (layer4)
        grids = {n: i.grid for n, i in spatial}
        while "." in name and grids.get(name.rsplit(".", 1)[0]) == grids[name]:
            name = name.rsplit(".", 1)[0]
    if handle.point_info(name).layout == "NLC" and handle.num_prefix_tokens:
        norms = [
            n for n, _ in _spatial_points(handle) if n.rsplit(".", 1)[-1] in PRE_ATTENTION_NORMS
        ]
        return norms[-1] if norms else name
    return name


def cam_layer(handle: ModelHandle, name: str) -> CamLayer:
    """Resolve a capture point to the module pytorch-grad-cam hooks, before any image is read.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    name : str
        A module path or an alias that reads a module's output.

    Returns
    -------
    CamLayer

    Raises
    ------
    CaptureError
        For an unknown point (nearest names listed), a point the model's API computes instead of
        a module, or one whose output has no spatial layout (the points that have one listed).
    """
    (point,) = resolve_points(handle, [name])
    ref = point.ref
    info = handle.point_info(point.name)
    usable = ref.module is not None and ref.io == "output" and ref.select is None
    if not (usable and _spatial(info)):
        spatial = [n for n, _ in _spatial_points(handle)]
        near = difflib.get_close_matches(name, spatial, n=3, cutoff=0.0)
        shown = list(dict.fromkeys([*near, *spatial[-_LISTED:]]))
        why = (
            f"gives {info.describe()}, not a map or token grid"
            if usable
            else "is not the output of one module"
        )
        raise CaptureError(
            f"capture point {name!r} {why}, so it has no class activation map; pick a point with "
            f"a spatial layout, e.g. {', '.join(shown)} (all: `featscope points --model ...`)"
        )
    module = module_table(handle.module)[ref.module]
    return CamLayer(handle, point.name, module, info)


def class_names(handle: ModelHandle, num_classes: int) -> list[str] | None:
    """Return the names of a classifier's classes, where the model or its zoo knows them.

    A Hugging Face config's ``id2label``; for 1000 classes the ImageNet-1k names timm ships
    (``"tabby, tabby cat"``), the head of timm, torchvision and MMPretrain ImageNet models.

    Parameters
    ----------
    handle : ModelHandle
        The model.
    num_classes : int
        Width of its output.

    Returns
    -------
    list of str or None
        One name per class, or ``None`` when they are not known.
    """
    config = getattr(handle.module, "config", None)
    labels = getattr(config, "id2label", None)
    if isinstance(labels, dict) and len(labels) == num_classes:
        try:
            return [str(labels[i]) for i in range(num_classes)]
        except KeyError:
            pass
    if num_classes == 1000:
        try:
            from timm.data import ImageNetInfo
        except ImportError:
            return None
        info = ImageNetInfo()
        return [info.index_to_description(i) for i in range(num_classes)]
    return None


class _Logits(nn.Module):
    """The model as pytorch-grad-cam calls it: input in, ``(N, K)`` logits out."""

    def __init__(self, handle: ModelHandle) -> None:
        super().__init__()
        self.model = handle.module
        self._forward = handle.forward
        self._spec = handle.spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and not x.requires_grad:
            x = x.detach().requires_grad_(True)  # gradients reach the layer without the weights
        out, _ = self._forward(self.model, x)
        logits = getattr(out, "logits", out)
        if isinstance(logits, (tuple, list)) and logits:
            logits = logits[0]
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[1] < 2:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(out).__name__
            raise CaptureError(
                f"model {self._spec} gives {shape}, not a classifier output (one row of class "
                "scores per image), so there is no class to explain; pass a classifier (its "
                "whole model, with the head)"
            )
        return logits.float()


class CamSession:
    """pytorch-grad-cam's methods and metrics on one model and capture point.

    Parameters
    ----------
    handle : ModelHandle
        The classifier, on its device.
    layer : CamLayer
        From :func:`cam_layer`.
    batch_size : int, default 32
        Batch of the methods that run the model once per channel (ScoreCAM, AblationCAM).
    """

    def __init__(self, handle: ModelHandle, layer: CamLayer, batch_size: int = 32) -> None:
        self.gradcam = require("pytorch_grad_cam", "cam", "class activation maps")
        self.handle, self.layer, self.batch_size = handle, layer, batch_size
        self.model = _Logits(handle)

    @contextmanager
    def _restored(self) -> Iterator[None]:
        """Put the model in eval mode without gradients on its weights; restore it all after.

        pytorch-grad-cam leaves the model in eval mode and calls ``model.zero_grad()``, which
        drops the ``.grad`` of every parameter: each module's ``training`` flag, each
        parameter's ``requires_grad`` and its ``.grad`` are put back, also after an error.
        """
        modules = list(self.model.modules())
        training = [m.training for m in modules]
        params = list(self.model.parameters())
        state = [(p.requires_grad, p.grad) for p in params]
        try:
            self.model.eval()
            for p in params:
                p.requires_grad_(False)
            yield
        finally:
            for m, flag in zip(modules, training, strict=True):
                m.training = flag
            for p, (flag, grad) in zip(params, state, strict=True):
                p.requires_grad_(flag)
                p.grad = grad

    def num_classes(self) -> int:
        """Run a zero image of the model's input size once: check the classifier output.

        Returns
        -------
        int
            The number of classes.

        Raises
        ------
        CaptureError
            When the model's output is not one row of class scores per image, or the model
            fails on an input of its own size.
        """
        height, width = self.handle.preprocess.input_size
        channels = getattr(self.handle.preprocess, "channels", None) or 3
        return int(self.probabilities(torch.zeros(1, channels, height, width)).shape[0])

    def probabilities(self, x: torch.Tensor) -> np.ndarray:
        """Softmax of the logits of a ``(1, 3, H, W)`` input, as float64 ``(K,)``."""
        device, dtype = device_and_dtype(self.handle.module)
        with forward_errors(self.handle, x), self._restored(), torch.no_grad():
            logits = self.model(x.to(device=device, dtype=dtype))
        self._num_classes = int(logits.shape[1])
        p = torch.softmax(logits.double(), dim=1)[0].cpu().numpy()
        if not np.isfinite(p).all():
            # NaN scores would be written as maps of a class "predicted" with probability nan
            raise CaptureError(
                f"model {self.handle.spec} gives non-finite class scores (NaN or inf); check "
                "its weights (a checkpoint holding NaN?) and --mean/--std"
            )
        return p

    def _check_classes(self, classes: Sequence[int]) -> None:
        k = getattr(self, "_num_classes", None) or self.num_classes()
        wrong = [int(c) for c in classes if not 0 <= int(c) < k]
        if wrong:
            raise ParameterError(
                f"class {wrong[0]} is outside the model's {k} classes (0..{k - 1}); pass class "
                "indices the model has"
            )

    def _method(self, method: str) -> Any:
        cls = getattr(self.gradcam, CAM_CLASSES[method])
        kwargs: dict[str, Any] = {"reshape_transform": self.layer.reshape}
        if method == "ablationcam":
            layers = self.gradcam.ablation_layer
            kwargs["ablation_layer"] = (
                layers.AblationLayerVit() if self.layer.tokens else layers.AblationLayer()
            )
            kwargs["batch_size"] = self.batch_size
        cam = cls(model=self.model, target_layers=[self.layer.module], **kwargs)
        if method == "scorecam":
            cam.batch_size = self.batch_size  # ScoreCAM reads it if set (its default is 16)
        return cam

    def maps(
        self,
        x: torch.Tensor,
        method: str,
        classes: Sequence[int],
        *,
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
    ) -> np.ndarray:
        """Compute one method's maps of one image for several classes.

        Parameters
        ----------
        x : torch.Tensor
            ``(1, 3, H, W)`` model input.
        method : str
            A key of :data:`CAM_CLASSES`.
        classes : sequence of int
            Class indices to explain.
        eigen_smooth, aug_smooth : bool
            pytorch-grad-cam's smoothings (first principal component; test-time flips and
            scalings).

        Returns
        -------
        numpy.ndarray
            float32 ``(len(classes), H, W)`` in [0, 1], at the input's size.
        """
        self._check_classes(classes)
        self._check_svd_size(method, eigen_smooth)
        targets_mod = self.gradcam.utils.model_targets
        device, dtype = device_and_dtype(self.handle.module)
        x = x.to(device=device, dtype=dtype)
        out = []
        with forward_errors(self.handle, x), self._restored(), torch.enable_grad():
            cam = self._method(method)  # its constructor puts the model in eval mode
            try:
                for index in classes:
                    target = [targets_mod.ClassifierOutputTarget(int(index))]
                    grid = cam(x, target, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
                    out.append(np.asarray(grid[0], dtype=np.float32))
            finally:
                # not `with cam:`: its __exit__ prints and swallows IndexError
                cam.activations_and_grads.release()
        return np.nan_to_num(np.stack(out), nan=0.0)

    def _check_svd_size(self, method: str, eigen_smooth: bool) -> None:
        """Refuse an SVD method at a point so fine that the library's full SVD cannot fit."""
        grid = self.layer.info.grid  # at the model's input size, the size every image gets
        if not (method in _SVD_METHODS or eigen_smooth) or grid is None:
            return
        cells = grid[0] * grid[1]
        need = cells**2 * 8
        if need > SVD_BYTES_LIMIT:
            what = f"`--method` {method}" if method in _SVD_METHODS else "--eigen-smooth"
            raise ParameterError(
                f"{what} at point '{self.layer.name}' ({grid[0]}x{grid[1]}) needs a "
                f"{cells}x{cells} matrix ({need / 1024**3:.1f} GiB) in pytorch-grad-cam's SVD; "
                "pick a coarser point (--point, e.g. a later stage) or another method"
            )

    def faithfulness(
        self, x: torch.Tensor, cams: np.ndarray, classes: Sequence[int], metric: str, seed: int = 0
    ) -> np.ndarray:
        """Score maps by pytorch-grad-cam's metrics (higher is more faithful).

        Parameters
        ----------
        x : torch.Tensor
            ``(1, 3, H, W)`` model input.
        cams : numpy.ndarray
            ``(n, H, W)`` maps in [0, 1], one per class in ``classes``.
        classes : sequence of int
            The class each map explains.
        metric : {"confidence", "road"}
            ``confidence``: ``CamMultImageConfidenceChange``, the change of the class's
            probability when the input is multiplied by the map (0 when the map keeps all that
            matters, negative when it loses it); ``road``: ``ROADCombined`` at
            :data:`ROAD_PERCENTILES`, half the difference of the probability when the least and
            the most relevant pixels are removed and filled in (ROAD, Rong et al. 2022).
        seed : int, default 0
            Seed of ROAD's imputation noise.

        Returns
        -------
        numpy.ndarray
            float64 ``(n,)``.
        """
        self._check_classes(classes)
        metrics = self.gradcam.metrics
        targets_mod = self.gradcam.utils.model_targets
        device, dtype = device_and_dtype(self.handle.module)
        n = len(classes)
        batch = x.to(device=device, dtype=dtype).repeat(n, 1, 1, 1)
        targets = [targets_mod.ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
        if metric == "road":
            scorer: Any = metrics.road.ROADCombined(percentiles=list(ROAD_PERCENTILES))
        else:
            scorer = metrics.cam_mult_image.CamMultImageConfidenceChange()
        with forward_errors(self.handle, x), self._restored(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # ROAD adds noise to what it fills in
            scores = scorer(batch, np.asarray(cams, dtype=np.float32), targets, self.model)
        return np.asarray(scores, dtype=np.float64).reshape(n)
