"""``featscope browse``: a dataset's images after each transform step, wrapping featscope.browse.

Flags follow MMPretrain's ``tools/visualization/browse_dataset.py`` where they make sense
(``-o/--out-dir``, ``-p/--phase``, ``-n``, ``-m/--mode``); the transform is named by
``--transform`` instead of a config file. The pictures go to a run folder under ``--work-dir``;
``--out DIR`` (``-o``, ``--out-dir``) also copies them there once the run folder is finished.
"""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import new_parser
from featscope.cli.groups import add_group, group_from_args

__all__ = ["build_parser", "run", "summarize"]

_DATA_HELP = (
    "image folder (one sub-folder per class, or loose images), an image, or a csv/tsv/txt list "
    "of path,label rows (default: the demo photos)"
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope browse``."""
    from featscope.data.browse import BrowseOptions
    from featscope.options import Extraction, Figures, Output

    parser = new_parser(
        "browse",
        "Draw a dataset's images as the model sees them after each transform step. With no "
        "arguments: EfficientNet-Lite0's timm training augmentation on three photos.",
        cfg_example="mode=concat n=4 phase=eval",
    )
    # the positional and --data fill one dest; SUPPRESS keeps an absent positional from
    # overwriting --data
    parser.add_argument(
        "data", nargs="?", default=argparse.SUPPRESS, metavar="DATA", help=_DATA_HELP
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--data", dest="data", help=f"{_DATA_HELP}; or give it positionally")
    inputs.add_argument(
        "--transform",
        "-t",
        metavar="SPEC",
        help="timm:NAME or demo:NAME (that model's timm transform), tv:NAME (the preset of its "
        "torchvision weights), or py:package.module:name "
        "(a transform, a function of the image, or a factory; imports and runs that module) "
        "(default: demo:efficientnet-lite0)",
    )
    add_group(parser, BrowseOptions, "what to draw")
    add_group(parser, Extraction, "images", only=("skip_bad_images", "progress"))
    add_group(parser, Figures, "figures", only=("formats", "dpi", "show"))
    add_group(parser, Output, "output", aliases={"export": ["--out-dir"]})
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.browse with the parsed options and say where the images are."""
    from featscope.data.browse import BrowseOptions
    from featscope.options import Extraction, Figures, Output
    from featscope.views.browse import browse

    result = browse(
        data=args.data,
        transform=args.transform,
        options=group_from_args(BrowseOptions, args),
        extraction=group_from_args(Extraction, args),
        figures=group_from_args(Figures, args),
        output=group_from_args(Output, args),
    )
    print(summarize(result))
    return 0


def summarize(result: Any) -> str:
    """One line: how many images, which transform and mode, and where they are."""
    where = ""
    if result.exported:
        where = f"; written to {result.out_dir}/ (run folder {result.run_dir}/)"
    elif result.run_dir is not None:
        where = f"; written to {result.run_dir}/"
    return (
        f"{len(result)} image(s) from {result.source} through {result.transform} "
        f"({len(result.steps)} steps), mode {result.mode}{where}"
    )
