"""Class activation maps: the options of a run, and which classes each image is explained for.

The maps themselves come from pytorch-grad-cam (:mod:`featscope.capture.cam` runs it on the
model); what is decided from numbers alone lives here and is tested on plain arrays:
:class:`CamOptions` (the flags of MMPretrain's ``vis_cam.py`` where they make sense),
:func:`cam_methods` (their names), :func:`resolve_targets` (a class by index or by name, or the
model's top-k predictions, with the nearest names listed for a name that is no class),
:func:`explain_image` (one image's maps and scores for every method, asked of the session that
runs the model) and :func:`cam_peak` (where a map is largest).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.analysis.featmap import DEFAULT_MAX_SIZE
from featscope.analysis.resize import check_alpha
from featscope.errors import ParameterError
from featscope.options import option

__all__ = [
    "CAM_METHODS",
    "CAM_METRICS",
    "SHEET_LAYOUTS",
    "CamOptions",
    "ExplainedImage",
    "cam_methods",
    "cam_peak",
    "cam_title",
    "class_label",
    "explain_image",
    "resolve_targets",
]

#: The methods, by their lower-case vis_cam.py names (pytorch-grad-cam's classes).
CAM_METHODS = (
    "gradcam",
    "gradcam++",
    "xgradcam",
    "eigencam",
    "eigengradcam",
    "layercam",
    "hirescam",
    "gradcamelementwise",
    "scorecam",
    "ablationcam",
)
# other spellings users type (the class names of pytorch-grad-cam, with dashes)
_METHOD_ALIASES = {"gradcamplusplus": "gradcam++", "grad-cam": "gradcam", "grad-cam++": "gradcam++"}
#: Faithfulness metrics (see :meth:`featscope.capture.cam.CamSession.faithfulness`).
CAM_METRICS = ("confidence", "road", "none")
#: How the sheet's columns are ordered: by method (then class) or by class (then method).
SHEET_LAYOUTS = ("methods", "classes", "none")


def _canonical_method(name: Any) -> str:
    key = str(name).strip().lower().replace("_", "")
    key = _METHOD_ALIASES.get(key, key)
    if key not in CAM_METHODS:
        near = difflib.get_close_matches(key, CAM_METHODS, n=3)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        raise ParameterError(
            f"`--method` {name!r} is not a class activation method; {hint}pick from "
            f"{', '.join(CAM_METHODS)}"
        )
    return key


def cam_methods(methods: str | Sequence[str]) -> tuple[str, ...]:
    """Return the canonical names of methods (case-insensitive, ``GradCAM++`` -> ``gradcam++``).

    Parameters
    ----------
    methods : str or sequence of str
        Names as vis_cam.py spells them (``GradCAM``, ``GradCAM++``, ``EigenCAM``, ...).

    Returns
    -------
    tuple of str
        Distinct names in the order given.

    Raises
    ------
    ParameterError
        For an empty list or an unknown name (the nearest listed).
    """
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names:
        raise ParameterError(f"`--method` is empty; pass one or more of {', '.join(CAM_METHODS)}")
    return tuple(dict.fromkeys(_canonical_method(m) for m in names))


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"`{name}` {value!r} is not True or False")
    return bool(value)


@dataclass(frozen=True)
class CamOptions:
    """What a class-activation-map run computes and how it draws it.

    ``targets`` empty means the model's ``topk`` most probable classes for each image; classes
    named by index or by name are the same for every image. Every value is checked when the
    options are made; the message names the flag.
    """

    methods: tuple[str, ...] = option(
        ("gradcam",), "--method", nargs="+", metavar="METHOD", from_arg=tuple,
        help=f"one or more of {', '.join(CAM_METHODS)} (vis_cam.py's names, any case)",
    )  # fmt: skip
    targets: tuple[str, ...] = option(
        (), "--target", nargs="+", metavar="CLASS", from_arg=tuple,
        help="classes to explain, by index or name (default: the --topk predicted classes)",
    )  # fmt: skip
    topk: int = option(1, "--topk", type=int, help="predicted classes per image without --target")
    eigen_smooth: bool = option(
        False, "--eigen-smooth", action="store_true",
        help="keep the first principal component of the weighted activations (less noise)",
    )  # fmt: skip
    aug_smooth: bool = option(
        False, "--aug-smooth", action="store_true",
        help="average over flipped and rescaled inputs (6 passes: slower, smoother)",
    )  # fmt: skip
    metric: str = option(
        "confidence", "--metric", choices=CAM_METRICS,
        help="faithfulness score per map: confidence change when the image is multiplied by "
        "the map, or ROAD (slower)",
    )  # fmt: skip
    alpha: float = option(0.5, "--alpha", type=float, help="heat-map weight in the blend")
    max_size: int | None = option(
        DEFAULT_MAX_SIZE, "--max-size", type=int,
        help="longest side of the pictures; larger photos are scaled down (0: keep)",
    )  # fmt: skip
    sheet: str = option(
        "methods", "--sheet", choices=SHEET_LAYOUTS,
        help="one sheet of every map, images in rows, columns by method or by class",
    )  # fmt: skip
    overlaid: bool = option(
        True, "--overlaid", action=argparse.BooleanOptionalAction,
        help="draw the maps over the photo (default: on; --no-overlaid: the heat map alone)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        targets = (self.targets,) if isinstance(self.targets, (str, int)) else self.targets
        targets = () if targets is None else targets  # None: the predicted classes, as ()
        if isinstance(self.topk, bool) or not isinstance(self.topk, (int, np.integer)):
            raise ParameterError(f"`--topk` {self.topk!r} is not an integer; pass e.g. --topk 3")
        if self.topk < 1:
            raise ParameterError(f"`--topk` {self.topk} must be at least 1")
        if self.metric not in CAM_METRICS:
            raise ParameterError(
                f"`--metric` {self.metric!r} is not one of {', '.join(CAM_METRICS)}"
            )
        if self.sheet not in SHEET_LAYOUTS:
            raise ParameterError(
                f"`--sheet` {self.sheet!r} is not one of {', '.join(SHEET_LAYOUTS)}"
            )
        size = self.max_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ParameterError(f"`--max-size` {size!r} is not an integer >= 0 (0: keep)")
        values = {
            "methods": cam_methods(self.methods),
            "targets": tuple(str(t).strip() for t in targets),
            "topk": int(self.topk),
            "eigen_smooth": _flag(self.eigen_smooth, "eigen_smooth"),
            "aug_smooth": _flag(self.aug_smooth, "aug_smooth"),
            "alpha": check_alpha(self.alpha),
            "max_size": int(size) if size else None,
            "overlaid": _flag(self.overlaid, "overlaid"),
        }
        if any(not t for t in values["targets"]):
            raise ParameterError("`--target` holds an empty name; pass class indices or names")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the options, JSON-ready."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def class_label(names: Sequence[str] | None, index: int) -> str:
    """Return the short name of class ``index`` (the first synonym of ``"tabby, tabby cat"``)."""
    if names is None or not 0 <= index < len(names):
        return f"class {index}"
    return str(names[index]).split(",")[0].strip() or f"class {index}"


def _by_name(target: str, names: Sequence[str]) -> int:
    key = target.lower()
    synonyms: dict[str, int] = {}
    for index, name in enumerate(names):
        for form in (str(name), *str(name).split(",")):
            synonyms.setdefault(form.strip().lower(), index)
    if key in synonyms:
        return synonyms[key]
    near = difflib.get_close_matches(key, list(synonyms), n=5, cutoff=0.5)
    # quoted: a full ImageNet name ("tabby, tabby cat") holds commas itself
    hint = f"nearest: {', '.join(map(repr, near))}" if near else "pass a class index instead"
    raise ParameterError(f"`--target` {target!r} is no class of this model; {hint}")


def resolve_targets(
    probabilities: np.ndarray,
    names: Sequence[str] | None,
    targets: Sequence[str | int] = (),
    topk: int = 1,
) -> tuple[int, ...]:
    """Say which classes to explain for one image.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(K,)`` class probabilities of the image.
    names : sequence of str or None
        The model's class names (``"tabby, tabby cat"``: each comma-separated synonym matches),
        or ``None`` when only indices are known.
    targets : sequence of str or int, optional
        Class indices (``3``, ``"3"``) or names, case-insensitive. Empty: the top-k classes.
    topk : int, default 1
        How many of the most probable classes, when ``targets`` is empty.

    Returns
    -------
    tuple of int
        Distinct class indices, in the order given (top-k: most probable first, ties by index).

    Raises
    ------
    ParameterError
        For an index outside ``0..K-1``, or a name that is no class (the nearest names listed;
        without class names: the advice to pass an index).
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    k = p.shape[0]
    if not targets:
        if topk > k:
            # each class is a full set of maps: 5000 on a 1000-class model is a typo, not "all"
            raise ParameterError(
                f"`--topk` {topk} is more than the model's {k} classes; pass at most {k}"
            )
        order = np.argsort(-p, kind="stable")
        return tuple(int(i) for i in order[: int(topk)])
    found = []
    for target in targets:
        text = str(target).strip()
        if text.lstrip("-").isdigit():
            index = int(text)
            if not 0 <= index < k:
                raise ParameterError(
                    f"`--target` {index} is outside the model's {k} classes (0..{k - 1})"
                )
        elif names is None:
            raise ParameterError(
                f"`--target` {text!r} is a name, but this model's classes have no names; pass "
                f"a class index 0..{k - 1}"
            )
        else:
            index = _by_name(text, names)
        found.append(index)
    return tuple(dict.fromkeys(found))


def cam_title(method: str, name: str, probability: float) -> str:
    """Return a map's title: ``"gradcam: espresso 0.95"``."""
    return f"{method}: {name} {probability:.2f}"


def cam_peak(values: np.ndarray) -> tuple[int, int]:
    """Return ``(row, col)`` of a map's largest value (the first one, in row-major order)."""
    x = np.asarray(values)
    if x.ndim != 2 or x.size == 0:
        raise ParameterError(f"a class activation map is (H, W); got shape {x.shape}")
    row, col = np.unravel_index(int(np.argmax(x)), x.shape)
    return int(row), int(col)


@dataclass(frozen=True)
class ExplainedImage:
    """One image's class activation maps: what the model predicted and each method's maps.

    Attributes
    ----------
    probabilities : numpy.ndarray
        ``(K,)`` class probabilities.
    classes : tuple of int
        The classes explained, in order.
    maps : Mapping of str to numpy.ndarray
        Per method, float32 ``(len(classes), H, W)`` maps in [0, 1].
    scores : Mapping of str to numpy.ndarray or None
        Per method, the faithfulness of each map (``None`` with ``metric="none"``).
    """

    probabilities: np.ndarray
    classes: tuple[int, ...]
    maps: dict[str, np.ndarray]
    scores: dict[str, np.ndarray | None]

    def entries(self, by: str = "methods") -> list[tuple[str, int, int]]:
        """List ``(method, class index, position in classes)`` in the sheet's order (``by``)."""
        methods = list(self.maps)
        if by == "classes":
            return [(m, c, j) for j, c in enumerate(self.classes) for m in methods]
        return [(m, c, j) for m in methods for j, c in enumerate(self.classes)]

    def score(self, method: str, position: int) -> float | None:
        """Return the faithfulness of one map, or ``None`` when it was not scored."""
        scores = self.scores[method]
        return None if scores is None else float(scores[position])


def explain_image(
    session: Any, x: Any, options: CamOptions, names: Sequence[str] | None, seed: int = 0
) -> ExplainedImage:
    """Compute every method's maps of one image for its classes, and score them.

    Parameters
    ----------
    session : featscope.capture.cam.CamSession
        Runs the model (``probabilities``, ``maps``, ``faithfulness``).
    x : torch.Tensor
        ``(1, C, H, W)`` model input.
    options : CamOptions
        Methods, targets or top-k, smoothing and metric.
    names : sequence of str or None
        The class names (for targets by name).
    seed : int, default 0
        Seed of the metric's noise.

    Returns
    -------
    ExplainedImage
    """
    probabilities = session.probabilities(x)
    classes = resolve_targets(probabilities, names, options.targets, options.topk)
    smoothing = {"eigen_smooth": options.eigen_smooth, "aug_smooth": options.aug_smooth}
    maps, scores = {}, {}
    for method in options.methods:
        maps[method] = session.maps(x, method, classes, **smoothing)
        scores[method] = (
            None
            if options.metric == "none"
            else session.faithfulness(x, maps[method], classes, options.metric, seed)
        )
    return ExplainedImage(probabilities, classes, maps, scores)
