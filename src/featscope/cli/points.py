"""``featscope points``: list the capture points of a model with what each gives.

Aliases first, then every module path, each with its layout, per-image shape and stride at the
model's input size (the capture-point contract, :meth:`ModelHandle.point_info`): from timm's
``feature_info`` where it lists the module (marked ``feature_info``), else from one forward pass
of a zero image.
"""

from __future__ import annotations

import argparse

from featscope.cli.common import add_model_flags, model_from_args, new_parser
from featscope.cli.groups import add_group, group_from_args
from featscope.options import Extraction, Preprocess


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope points``."""
    parser = new_parser(
        "points",
        "List the capture points of a model and what each gives.",
        cfg_example='model="timm:resnet18"',
    )
    add_model_flags(parser)
    add_group(parser, Preprocess, "preprocessing")
    add_group(parser, Extraction, "device", only=["device"])
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the aliases the model supports, then every module path, with their shapes."""
    from featscope.models import load_model

    handle = load_model(
        model_from_args(args, "demo:digits-cnn"),
        checkpoint=args.checkpoint,
        device=group_from_args(Extraction, args).device,
        **group_from_args(Preprocess, args).to_dict(),
    )
    height, width = handle.preprocess.input_size
    print(f"# {handle.spec} ({handle.family}), shapes per image for a {height}x{width} input")
    for info in handle.points():
        if info.name in handle.aliases:
            ref = handle.aliases[info.name]
            where = "model API" if ref.module is None else f"{ref.io} of {ref.module or '<model>'}"
            kind = f"-> {where}"
        else:
            kind = type(handle.module.get_submodule(info.name)).__name__
        source = "  [feature_info]" if info.source == "feature_info" else ""
        print(f"{info.name:<32} {kind:<28} {info.describe()}{source}")
    return 0
