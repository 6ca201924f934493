"""``featscope compare``: several finished tsne runs side by side in one page, a thin wrapper."""

from __future__ import annotations

import argparse

from featscope.cli.common import add_points_flag, new_parser
from featscope.cli.groups import add_group, group_from_args
from featscope.options import EmbeddingOptions, Extraction, Output


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope compare``."""
    parser = new_parser(
        "compare",
        "Show the maps of several `featscope tsne` run folders side by side in one offline page, "
        "with selection linked by sample id (samples present in every run).",
        cfg_example='points=["layer4"] work_dir="runs"',
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="featscope tsne run folders")
    add_points_flag(parser, "show only these capture points of each run (default: all)")
    add_group(parser, EmbeddingOptions, "maps", only=["align"])
    add_group(parser, Extraction, "console", only=["progress"])
    add_group(
        parser,
        Output,
        "output",
        only=["work_dir", "export"],
        helps={"export": "also copy the page (compare.html in the run folder) to this file"},
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.compare with the parsed options and say where the page is."""
    from featscope.views.compare import compare

    result = compare(
        args.runs,
        points=args.points,
        output=group_from_args(Output, args),
        align=group_from_args(EmbeddingOptions, args).align,
    )
    print(
        f"{len(result.results)} maps of {len(result.results[0].ids)} common samples"
        + (f" ({result.n_dropped} not in every run left out)" if result.n_dropped else "")
    )
    print(f"page written to {result.page}")
    return 0
