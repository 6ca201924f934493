"""``featscope featmap``: feature maps of a model, a thin wrapper of featscope.feature_maps."""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import add_model_flags, input_size, new_parser

__all__ = ["add_drawing_flags", "build_parser", "drawing_options", "run", "summarize"]

_REDUCTIONS = ["pixel_wise_max", "squeeze_mean", "select_max", "none"]


def add_drawing_flags(parser: argparse.ArgumentParser, *, shared_scale_default: bool) -> None:
    """Add the drawing flags shared by ``featmap`` and ``featmap-diff`` (MMRazor's names).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    shared_scale_default : bool
        Whether ``--shared-scale`` is on unless ``--no-shared-scale`` is given.
    """
    group = parser.add_argument_group("drawing")
    group.add_argument(
        "--channel-reduction",
        choices=_REDUCTIONS,
        default="pixel_wise_max",
        help="how channels become one map; none: a grid of the --topk strongest channels",
    )
    group.add_argument("--topk", type=int, default=20, help="channels in the grid (with none)")
    group.add_argument("--arrangement", nargs=2, type=int, default=[4, 5], metavar=("ROWS", "COLS"))
    group.add_argument(
        "--overlaid",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw over the photo (default: on for the built-in demo, off otherwise)",
    )
    group.add_argument(
        "--use-norm", action="store_true", help="standardise each channel before drawing"
    )
    group.add_argument(
        "--resize-shape", nargs=2, type=int, metavar=("H", "W"), help="size of every picture"
    )
    group.add_argument("--alpha", type=float, default=0.5, help="heat-map weight in the blend")
    group.add_argument(
        "--shared-scale",
        action=argparse.BooleanOptionalAction,
        default=shared_scale_default,
        help="one colour scale for all levels and tiles of an image and point",
    )
    group.add_argument(
        "--nan-policy",
        choices=["raise", "mask"],
        default="raise",
        help="NaN/inf in a map: an error, or drawn as the lowest value",
    )
    group.add_argument(
        "--max-size",
        type=int,
        default=1024,
        help="longest side of the pictures; larger photos are scaled down (0: keep)",
    )


def drawing_options(args: argparse.Namespace) -> dict:
    """Return the drawing keyword arguments of the views from parsed flags."""
    return {
        "channel_reduction": None if args.channel_reduction == "none" else args.channel_reduction,
        "topk": args.topk,
        "arrangement": tuple(args.arrangement),
        "resize_shape": None if args.resize_shape is None else tuple(args.resize_shape),
        "alpha": args.alpha,
        "use_norm": args.use_norm,
        "shared_scale": args.shared_scale,
        "nan_policy": args.nan_policy,
        "max_size": args.max_size,
    }


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope featmap`` (flag names follow MMRazor's tool)."""
    parser = new_parser(
        "featmap",
        "Draw a model's feature maps at one or more capture points, one picture per image, "
        "point and level. With no images and no --model: EfficientNet-Lite0 on three photos.",
    )
    parser.add_argument(
        "images", nargs="*", metavar="IMAGE", help="image files or folders (default: demo photos)"
    )
    add_model_flags(parser)
    parser.add_argument(
        "--point",
        "--vis-stage",
        dest="points",
        nargs="+",
        metavar="POINT",
        help="capture points: module paths or backbone, neck (default: backbone; the demo: "
        "blocks.1 blocks.3 blocks.6)",
    )
    add_drawing_flags(parser, shared_scale_default=False)
    group = parser.add_argument_group("output")
    group.add_argument("--work-dir", default="work_dirs", help="parent folder of the run folder")
    group.add_argument("--quiet", action="store_true", help="warnings only")
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
    return f"{len(result.maps)} feature maps of {images} image(s) at {shown}{where}"
