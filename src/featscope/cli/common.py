"""Flags shared by several subcommands (model, preprocessing, output), defined once."""

from __future__ import annotations

import argparse

__all__ = ["add_config_flags", "add_model_flags", "add_output_flags", "new_parser"]


def new_parser(command: str, description: str) -> argparse.ArgumentParser:
    """Return the parser of ``featscope <command>`` with ``--config``/``--cfg-options``."""
    parser = argparse.ArgumentParser(
        prog=f"featscope {command}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_flags(parser)
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE.toml`` and ``--cfg-options key=value ...``."""
    parser.add_argument("--config", metavar="FILE", help="TOML file with any of these options")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        metavar="KEY=VALUE",
        help="override options, e.g. perplexity=50 legend=true class_idx=[0,2]",
    )


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Add the model spec, its checkpoint and preprocessing overrides."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        help="timm:NAME, tv:NAME, hf:DIR, ts:FILE.pt, py:pkg.module:factory or demo:NAME "
        "(default: the built-in demo model)",
    )
    group.add_argument("--checkpoint", help="state dict to load (read with weights_only=True)")
    group.add_argument(
        "--input-size", nargs="+", type=int, metavar="N", help="input size: S or H W"
    )
    group.add_argument("--mean", nargs=3, type=float, help="normalisation mean (0-1 scale)")
    group.add_argument("--std", nargs=3, type=float, help="normalisation std (0-1 scale)")
    group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")


def input_size(values: list[int] | None) -> tuple[int, int] | None:
    """``--input-size S`` or ``--input-size H W`` as ``(H, W)``."""
    from featscope.errors import ParameterError

    if not values:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise ParameterError(f"`--input-size` takes 1 or 2 integers (S or H W); got {values}")


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """Add where and how results are written and shown."""
    group = parser.add_argument_group("output")
    group.add_argument("--work-dir", default="work_dirs", help="parent folder of the run folder")
    group.add_argument(
        "--format",
        nargs="+",
        default=["png"],
        choices=["png", "pdf", "svg", "jpg"],
        help="figure formats",
    )
    group.add_argument("--dpi", type=int, default=150, help="resolution of raster figures")
    group.add_argument("--show", action="store_true", help="open the figures in a window")
    group.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
