"""``featscope featmap-diff``: where two models' feature maps differ (feature_map_difference)."""

from __future__ import annotations

import argparse

from featscope.cli.common import add_images_argument, add_points_flag, new_parser
from featscope.cli.featmap import add_featmap_groups, groups_from_args, summarize

__all__ = ["build_parser", "run"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope featmap-diff``."""
    parser = new_parser(
        "featmap-diff",
        "Draw |F_a - F_b|, the difference of two models' feature maps at the same capture "
        "points (paired by name), one picture per image, point and level.",
        cfg_example="channel_reduction=none topk=6 arrangement=[2,3]",
    )
    add_images_argument(parser)
    group = parser.add_argument_group("models")
    group.add_argument(
        "--model",
        dest="models",
        action="append",
        metavar="SPEC",
        help="give it twice: model A then model B (timm:NAME, tv:NAME, hf:DIR, ts:FILE.pt, "
        "py:pkg.module:factory, demo:NAME)",
    )
    group.add_argument(
        "--checkpoint",
        dest="checkpoints",
        action="append",
        metavar="FILE",
        help="give it once per model, in the order of --model ('none' for no checkpoint)",
    )
    add_points_flag(parser, "capture points present in both models (default: backbone)")
    # unlike featmap's built-in default, a difference is drawn alone unless asked
    add_featmap_groups(parser, shared_scale=True, overlaid="draw over the photo (default: off)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.feature_map_difference with the parsed options."""
    from featscope.errors import ParameterError
    from featscope.views.featmap import feature_map_difference

    models = args.models or []
    if len(models) != 2:
        raise ParameterError(
            f"`--model` must be given twice (model A, then model B); got {len(models)}: "
            f"{models}; e.g. --model ts:teacher.pt --model ts:student.pt"
        )
    checkpoints = args.checkpoints
    if checkpoints is not None:
        if len(checkpoints) != 2:
            raise ParameterError(
                f"`--checkpoint` must be given once per model (twice, 'none' for a model "
                f"without one); got {len(checkpoints)}: {checkpoints}"
            )
        checkpoints = [None if c.lower() == "none" else c for c in checkpoints]
    result = feature_map_difference(
        args.data or None,
        models,
        args.points,
        checkpoints=checkpoints,
        **groups_from_args(args),
    )
    print(summarize(result, "feature-map differences"))
    return 0
