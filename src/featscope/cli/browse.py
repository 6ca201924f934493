"""``featscope browse``: a dataset's images after each transform step, wrapping featscope.browse.

Flags follow MMPretrain's ``tools/visualization/browse_dataset.py`` where they make sense
(``-o/--out-dir``, ``-p/--phase``, ``-n``, ``-m/--mode``); the transform is named by
``--transform`` instead of a config file.
"""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import add_output_flags, add_skip_bad_images_flag, new_parser

__all__ = ["build_parser", "run", "summarize"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope browse``."""
    from featscope.views.browse import DEFAULT_N, MODES

    parser = new_parser(
        "browse",
        "Draw a dataset's images as the model sees them after each transform step. With no "
        "arguments: EfficientNet-Lite0's timm training augmentation on three photos.",
    )
    parser.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="image folder (one sub-folder per class, or loose images), an image, or a "
        "csv/tsv/txt list of path,label rows (default: the demo photos)",
    )
    group = parser.add_argument_group("transform")
    group.add_argument(
        "--transform",
        "-t",
        metavar="SPEC",
        help="timm:NAME or demo:NAME (that model's timm transform), tv:NAME (the preset of its "
        "torchvision weights), or py:package.module:name "
        "(a transform, a function of the image, or a factory; imports and runs that module) "
        "(default: demo:efficientnet-lite0)",
    )
    group.add_argument(
        "--phase",
        "-p",
        choices=["train", "eval"],
        default="train",
        help="a model's training augmentation or its evaluation transform",
    )
    shown = parser.add_argument_group("what to draw")
    shown.add_argument(
        "--mode",
        "-m",
        choices=list(MODES),
        default="pipeline",
        help="original: as loaded; transformed: after the last step; concat: both; "
        "pipeline: every step",
    )
    shown.add_argument(
        "-n",
        "--num",
        dest="n",
        type=int,
        default=DEFAULT_N,
        help="number of images, drawn at random with --seed (0: all)",
    )
    shown.add_argument(
        "--seed", type=int, default=0, help="seed of the image choice and augmentations"
    )
    add_skip_bad_images_flag(shown)
    add_output_flags(parser)
    output = next(g for g in parser._action_groups if g.title == "output")
    output.add_argument(
        "--out-dir",
        "-o",
        metavar="DIR",
        help="write the images straight into DIR (default: a run folder under --work-dir)",
    )
    for action in parser._actions:  # argparse has no public way to reach a flag's help
        if action.dest == "cfg_options":
            action.help = "override options, e.g. mode=concat n=4 phase=eval"
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.browse with the parsed options and say where the images are."""
    from featscope.errors import ParameterError
    from featscope.views.browse import browse

    if args.n is not None and args.n < 0:
        raise ParameterError(f"`-n` {args.n} must be >= 0 (0: all images); pass e.g. -n 8")
    result = browse(
        data=args.data,
        transform=args.transform,
        mode=args.mode,
        n=args.n or None,
        seed=args.seed,
        phase=args.phase,
        skip_bad_images=args.skip_bad_images,
        work_dir=args.work_dir,
        out_dir=args.out_dir,
        backends=args.backend,
        formats=args.format,
        dpi=args.dpi,
        show=args.show,
    )
    print(summarize(result))
    return 0


def summarize(result: Any) -> str:
    """One line: how many images, which transform and mode, and where they are."""
    where = f"; written to {result.out_dir}/" if result.out_dir is not None else ""
    return (
        f"{len(result)} image(s) from {result.source} through {result.transform} "
        f"({len(result.steps)} steps), mode {result.mode}{where}"
    )
