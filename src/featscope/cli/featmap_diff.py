"""``featscope featmap-diff``: where two models' feature maps differ (feature_map_difference)."""

from __future__ import annotations

import argparse

from featscope.cli.common import (
    add_drawing_flags,
    add_images_argument,
    add_output_flags,
    add_points_flag,
    add_preprocessing_flags,
    add_skip_bad_images_flag,
    drawing_options,
    input_size,
    new_parser,
)
from featscope.cli.featmap import describe_flags, summarize

__all__ = ["build_parser", "run"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope featmap-diff``."""
    parser = new_parser(
        "featmap-diff",
        "Draw |F_a - F_b|, the difference of two models' feature maps at the same capture "
        "points (paired by name), one picture per image, point and level.",
    )
    add_images_argument(parser)
    add_skip_bad_images_flag(parser)
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
    add_preprocessing_flags(group)
    add_points_flag(parser, "capture points present in both models (default: backbone)")
    add_drawing_flags(parser, shared_scale_default=True)
    # unlike featmap's built-in default, a difference is drawn alone unless asked
    describe_flags(parser, overlaid="draw over the photo (default: off)")
    add_output_flags(parser, figures=False)
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
        models,
        images=args.images or None,
        points=args.points,
        checkpoints=checkpoints,
        input_size=input_size(args.input_size),
        mean=args.mean,
        std=args.std,
        overlaid=bool(args.overlaid),
        device=args.device,
        work_dir=args.work_dir,
        backends=args.backend,
        skip_bad_images=args.skip_bad_images,
        **drawing_options(args),
    )
    print(summarize(result).replace("feature maps", "feature-map differences", 1))
    return 0
