"""``featscope cam``: class activation maps, a thin wrapper of featscope.cam.

Flag names follow MMPretrain's ``vis_cam.py`` where they make sense: ``--target-layers`` is an
alias of ``--point``, ``--target-category`` of ``--target``; ``--method``, ``--eigen-smooth``
and ``--aug-smooth`` keep their names (docs/cam.md maps every flag).
"""

from __future__ import annotations

import argparse

from featscope.cli.common import (
    add_images_argument,
    add_model_flags,
    add_points_flag,
    model_from_args,
    new_parser,
)
from featscope.cli.groups import add_group, group_from_args

__all__ = ["build_parser", "run", "summarize"]

_CFG_EXAMPLE = "methods=['gradcam','scorecam'] topk=3 metric='road'"


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope cam``."""
    from featscope.analysis.cam import CamOptions
    from featscope.options import Extraction, Figures, Output, Preprocess

    parser = new_parser(
        "cam",
        "Draw class activation maps (Grad-CAM, Grad-CAM++, XGradCAM, EigenCAM, LayerCAM, "
        "ScoreCAM, AblationCAM, ... by pytorch-grad-cam) of a classifier, one picture per image, "
        "method and class, with a faithfulness score each. With no images and no --model: "
        "EfficientNet-Lite0 on three photos, the predicted class.",
        cfg_example=_CFG_EXAMPLE,
    )
    add_images_argument(parser)
    add_model_flags(parser)
    add_points_flag(
        parser,
        "the capture point: a module path with a spatial layout (default: the last spatial "
        "stage, e.g. blocks.6 of the demo, layer4 of a ResNet)",
        aliases=("--target-layers",),
    )
    add_group(
        parser,
        CamOptions,
        "class activation maps",
        aliases={"targets": ["--target-category"]},
    )
    add_group(parser, Preprocess, "preprocessing")
    add_group(
        parser,
        Extraction,
        "extraction",
        only=("device", "batch_size", "skip_bad_images"),
        helps={"batch_size": "inputs per forward pass of ScoreCAM and AblationCAM"},
    )
    add_group(parser, Figures, "figures", only=("formats", "dpi", "show"))
    add_group(parser, Output, "output")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.cam with the parsed options and say where the pictures are."""
    from featscope.analysis.cam import CamOptions
    from featscope.errors import ParameterError
    from featscope.options import Extraction, Figures, Output, Preprocess
    from featscope.views.cam import cam

    points = list(args.points or [])
    if len(points) > 1:
        raise ParameterError(
            f"`--point` takes one capture point for class activation maps; got {points}: run "
            "once per point to compare them by their scores"
        )
    result = cam(
        args.data or None,
        model_from_args(args),
        points[0] if points else None,
        checkpoint=args.checkpoint,
        options=group_from_args(CamOptions, args),
        preprocess=group_from_args(Preprocess, args),
        extraction=group_from_args(Extraction, args),
        figures=group_from_args(Figures, args),
        output=group_from_args(Output, args),
    )
    print(summarize(result))
    return 0


def summarize(result) -> str:
    """One line: how many maps of how many images, the mean score per method, and where."""
    images = len({m.image_id for m in result.maps})
    means = []
    for method in dict.fromkeys(m.method for m in result.maps):
        scores = [m.score for m in result.maps if m.method == method and m.score is not None]
        if scores:
            metric = result.maps[0].metric
            means.append(f"{method} {metric} {sum(scores) / len(scores):+.3f}")
    text = f"{len(result.maps)} class activation map(s) of {images} image(s) at {result.point}"
    if means:
        text += " (mean faithfulness: " + ", ".join(means) + ")"
    if result.run_dir is not None:
        text += f"; written to {result.run_dir}/"
    if result.exported:
        text += f"; {len(result.exported)} file(s) copied to --out"
    if result.skipped:
        text += f"; skipped {len(result.skipped)} unreadable image(s) (listed in run.log)"
    return text
