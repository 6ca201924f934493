"""The ``featscope`` command: one module per subcommand, each a thin wrapper of one API call.

``main(argv)`` returns the exit status: 0 on success, 2 for a user error (printed as one line,
``error: <message>``), so a traceback always means a bug in featscope.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

__all__ = ["main"]

#: subcommand -> (module, one-line description)
COMMANDS = {
    "tsne": ("featscope.cli.tsne", "embedding map (t-SNE, UMAP, PCA) of a model's features"),
    "featmap": ("featscope.cli.featmap", "feature maps of a model at capture points"),
    "featmap-diff": ("featscope.cli.featmap_diff", "where two models' feature maps differ"),
    "points": ("featscope.cli.points", "list the capture points of a model"),
    "compare": ("featscope.cli.compare", "several embedding runs side by side in one page"),
    "recon": ("featscope.cli.recon", "what a masked-image model (MAE, SimMIM, MaskFeat) fills in"),
    "shape-bias": ("featscope.cli.shape_bias", "shape vs texture decisions on cue-conflict images"),
    "browse": ("featscope.cli.browse", "a dataset's images after each transform step"),
}

_USAGE = "usage: featscope <command> [options]    (featscope <command> --help for its options)"


def _usage() -> str:
    lines = [_USAGE, "", "commands:"]
    width = max(map(len, COMMANDS)) + 2
    lines += [f"  {name:<{width}}{text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``featscope`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for a user error.
    """
    from featscope import __version__
    from featscope.errors import FeatscopeError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"featscope {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    parser = module.build_parser()
    show_warning = warnings.showwarning
    warnings.showwarning = _show_warning
    package_logger = logging.getLogger("featscope")
    logger_state = (package_logger.handlers[:], package_logger.level, package_logger.propagate)
    try:
        from featscope.cli.config import apply_cfg_options

        args = apply_cfg_options(parser, rest)
        _setup_logging(quiet=getattr(args, "quiet", False))
        return int(module.run(args) or 0)
    except FeatscopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no result was written", file=sys.stderr)
        return 130
    finally:
        # main() may run inside a larger program (or a test suite): leave logging as it was
        warnings.showwarning = show_warning
        handlers, level, propagate = logger_state
        package_logger.handlers[:] = handlers
        package_logger.setLevel(level)
        package_logger.propagate = propagate


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print warnings as one line (``warning: ...``), without the source line."""
    print(f"warning: {message}", file=sys.stderr)


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # The console shows warnings only with --quiet; the logger itself stays at INFO so that
    # the run folder's run.log gets the whole story either way.
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger("featscope")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
