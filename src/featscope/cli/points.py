"""``featscope points``: list the capture points of a model (aliases, then module paths)."""

from __future__ import annotations

import argparse

from featscope.cli.common import add_model_flags, input_size, new_parser


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope points``."""
    parser = new_parser("points", "List the capture points of a model.")
    add_model_flags(parser)
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the aliases the model supports, then every module path."""
    from featscope.models import load_model

    handle = load_model(
        args.model or "demo:digits-cnn",
        checkpoint=args.checkpoint,
        input_size=input_size(args.input_size),
        device=args.device,
    )
    print(f"# {handle.spec} ({handle.family})")
    for alias, ref in handle.aliases.items():
        where = "model API" if ref.module is None else (f"{ref.io} of {ref.module or '<model>'}")
        print(f"{alias:<12} -> {where}")
    for name, module in handle.module.named_modules():
        if name:
            print(f"{name:<40} {type(module).__name__}")
    return 0
