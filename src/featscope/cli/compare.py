"""``featscope compare``: several finished tsne runs side by side in one page, a thin wrapper."""

from __future__ import annotations

import argparse

from featscope.cli.common import add_output_flags, add_points_flag, new_parser


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope compare``."""
    parser = new_parser(
        "compare",
        "Show the maps of several `featscope tsne` run folders side by side in one offline page, "
        "with selection linked by sample id (samples present in every run).",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="featscope tsne run folders")
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="the .html file to write (default: compare.html in a new run folder)",
    )
    add_points_flag(parser, "show only these capture points of each run (default: all)")
    add_output_flags(parser, figures=False)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.compare with the parsed options and say where the page is."""
    from featscope.views.compare import compare

    result = compare(args.runs, out=args.out, points=args.points, work_dir=args.work_dir)
    print(
        f"{len(result.results)} maps of {len(result.results[0].ids)} common samples"
        + (f" ({result.n_dropped} not in every run left out)" if result.n_dropped else "")
    )
    print(f"page written to {result.page}")
    return 0
