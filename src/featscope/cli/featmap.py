"""``featscope featmap``: feature maps of a model, a thin wrapper of featscope.feature_maps."""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import (
    add_drawing_flags,
    add_images_argument,
    add_model_flags,
    add_output_flags,
    add_points_flag,
    add_skip_bad_images_flag,
    drawing_options,
    input_size,
    new_parser,
)

# add_drawing_flags and drawing_options moved to cli.common; still importable from here
__all__ = [
    "add_drawing_flags",
    "build_parser",
    "describe_flags",
    "drawing_options",
    "run",
    "summarize",
]


def describe_flags(parser: argparse.ArgumentParser, *, overlaid: str) -> None:
    """Give the shared flags the help texts of the feature-map commands.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser of ``featmap`` or ``featmap-diff``, with its flags added.
    overlaid : str
        Help of ``--overlaid``, which states the command's own default.
    """
    texts = {
        "cfg_options": "override options, e.g. channel_reduction=none topk=6 arrangement=[2,3]",
        "arrangement": "rows and columns of the --topk grid; at least min(channels, topk) cells",
        "overlaid": overlaid,
    }
    for action in parser._actions:  # argparse has no public way to reach a flag's help
        if action.dest in texts:
            action.help = texts[action.dest]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope featmap`` (flag names follow MMRazor's tool)."""
    parser = new_parser(
        "featmap",
        "Draw a model's feature maps at one or more capture points, one picture per image, "
        "point and level. With no images and no --model: EfficientNet-Lite0 on three photos.",
    )
    add_images_argument(parser)
    add_skip_bad_images_flag(parser)
    add_model_flags(parser)
    add_points_flag(
        parser,
        "capture points: module paths or backbone, neck (default: backbone; the demo: "
        "blocks.1 blocks.3 blocks.6)",
    )
    add_drawing_flags(parser, shared_scale_default=False)
    describe_flags(
        parser, overlaid="draw over the photo (default: on for the built-in demo, off otherwise)"
    )
    add_output_flags(parser, figures=False)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.feature_maps with the parsed options and say where the pictures are."""
    from featscope.views.featmap import feature_maps

    result = feature_maps(
        model=args.model,
        images=args.images or None,
        points=args.points,
        checkpoint=args.checkpoint,
        input_size=input_size(args.input_size),
        mean=args.mean,
        std=args.std,
        overlaid=args.overlaid,
        device=args.device,
        work_dir=args.work_dir,
        backends=args.backend,
        skip_bad_images=args.skip_bad_images,
        **drawing_options(args),
    )
    print(summarize(result))
    return 0


def summarize(result: Any) -> str:
    """One line: how many maps of how many images at which outputs, and where."""
    images = len({m.image_id for m in result.maps})
    names = list(dict.fromkeys(m.name for m in result.maps))
    shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
    where = f"; written to {result.run_dir}/" if result.run_dir is not None else ""
    if result.skipped:
        where += f"; skipped {len(result.skipped)} unreadable image(s) (listed in run.log)"
    return f"{len(result.maps)} feature maps of {images} image(s) at {shown}{where}"
