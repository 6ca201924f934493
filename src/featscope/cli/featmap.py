"""``featscope featmap``: feature maps of a model, a thin wrapper of featscope.feature_maps."""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import (
    add_images_argument,
    add_model_flags,
    add_points_flag,
    model_from_args,
    new_parser,
)
from featscope.cli.groups import add_group, group_from_args

__all__ = ["add_featmap_groups", "build_parser", "groups_from_args", "run", "summarize"]

_CFG_EXAMPLE = "channel_reduction=none topk=6 arrangement=[2,3]"


def add_featmap_groups(
    parser: argparse.ArgumentParser, *, shared_scale: bool, overlaid: str
) -> None:
    """Add the option groups ``featmap`` and ``featmap-diff`` share, after their model flags.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    shared_scale : bool
        The command's default of ``--shared-scale``.
    overlaid : str
        Help of ``--overlaid``, which states the command's own default.
    """
    from featscope.analysis.featmap import FeatmapStyle
    from featscope.options import Extraction, Figures, Output, Preprocess

    add_group(parser, Preprocess, "preprocessing")
    add_group(parser, Extraction, "extraction", only=("device", "skip_bad_images", "progress"))
    add_group(
        parser,
        FeatmapStyle,
        "drawing",
        defaults={"shared_scale": shared_scale},
        helps={"overlaid": overlaid},
    )
    add_group(parser, Figures, "figures", only=("formats", "dpi", "show"))
    add_group(parser, Output, "output")


def groups_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the option groups of a parsed ``featmap``/``featmap-diff`` command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed flags.

    Returns
    -------
    dict
        ``preprocess``, ``style``, ``extraction``, ``figures`` and ``output``, each checked.
    """
    from featscope.analysis.featmap import FeatmapStyle
    from featscope.options import Extraction, Figures, Output, Preprocess

    return {
        "preprocess": group_from_args(Preprocess, args),
        "style": group_from_args(FeatmapStyle, args),
        "extraction": group_from_args(Extraction, args),
        "figures": group_from_args(Figures, args),
        "output": group_from_args(Output, args),
    }


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope featmap`` (flag names follow MMRazor's tool)."""
    parser = new_parser(
        "featmap",
        "Draw a model's feature maps at one or more capture points, one picture per image, "
        "point and level. With no images and no --model: EfficientNet-Lite0 on three photos.",
        cfg_example=_CFG_EXAMPLE,
    )
    add_images_argument(parser)
    add_model_flags(parser)
    add_points_flag(
        parser,
        "capture points: module paths or backbone, neck (default: backbone; the demo: "
        "blocks.1 blocks.3 blocks.6)",
    )
    add_featmap_groups(
        parser,
        shared_scale=False,
        overlaid="draw over the photo (default: on for the built-in demo, off otherwise)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.feature_maps with the parsed options and say where the pictures are."""
    from featscope.views.featmap import feature_maps

    result = feature_maps(
        args.data or None,
        model_from_args(args),
        args.points,
        checkpoint=args.checkpoint,
        **groups_from_args(args),
    )
    print(summarize(result))
    return 0


def summarize(result: Any, what: str = "feature maps") -> str:
    """One line: how many maps of how many images at which outputs, and where."""
    images = len({m.image_id for m in result.maps})
    names = list(dict.fromkeys(m.name for m in result.maps))
    shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
    where = f"; written to {result.run_dir}/" if result.run_dir is not None else ""
    if result.exported:
        where += f"; {len(result.exported)} picture(s) copied to --out"
    if result.skipped:
        where += f"; skipped {len(result.skipped)} unreadable image(s) (listed in run.log)"
    return f"{len(result.maps)} {what} of {images} image(s) at {shown}{where}"
