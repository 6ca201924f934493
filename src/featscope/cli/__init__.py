"""The ``featscope`` command: one module per subcommand, each a thin wrapper of one API call.

``main(argv)`` returns the exit status: 0 on success, 2 for a user error (printed as one line,
``error: <message>``), so a traceback always means a bug in featscope.

Interruptions end a run cleanly: Ctrl-C (SIGINT), SIGTERM (``kill``, a batch scheduler's time
limit) and SIGHUP (the terminal closed) unwind the run like an error, so the hidden ``.partial``
run folder is removed, no ``manifest.json`` is written, one line is printed and the exit status
is ``128 + signal number`` (130, 143, 129). ``kill -9`` cannot be caught: it leaves the hidden
``.partial`` folder, which the next run in the same work dir removes once its process is gone.

Every subcommand that takes ``--checkpoint`` also takes ``--trust-checkpoint``; the command runs
inside :func:`featscope.models.checkpoint.trusted_checkpoints` when it is given.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import NoReturn

__all__ = ["Interrupted", "main", "run_and_exit"]

#: Signals that end a run like Ctrl-C does (SIGHUP only where it exists).
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when a stop signal (SIGTERM, SIGHUP) arrives.

    A ``KeyboardInterrupt`` subclass, so that everything that cleans up after Ctrl-C (the run
    folder's ``with`` block, progress bars) cleans up after ``kill`` too.

    Parameters
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = int(signum)


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
    "cam": ("featscope.cli.cam", "class activation maps (Grad-CAM family): why this class"),
}

_USAGE = "usage: featscope <command> [options]    (featscope <command> --help for its options)"


def _usage() -> str:
    lines = [_USAGE, "", "commands:"]
    width = max(map(len, COMMANDS)) + 2
    lines += [f"  {name:<{width}}{text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def run_and_exit() -> NoReturn:
    """Run :func:`main` as the ``featscope`` program, then end the process without teardown.

    A run that imported torch, scikit-learn, matplotlib and Bokeh spends 0.7-1.5 s at
    interpreter exit tearing those modules down (1.5 s after the 20 s image job of
    docs/benchmarks.md). Every result is written and closed by then, so the exit handlers
    registered with :mod:`atexit` (logging's, W&B's, multiprocessing's) run, the streams are
    flushed, and the process ends there. :func:`main` itself returns normally, for callers in a
    larger program. The quick exit is skipped when something may still need the interpreter:
    a profiler or tracer around the program (``python -m cProfile -m featscope``, which writes
    its output after the module returns) or threads other than the main one (they are joined
    by the normal exit).
    """
    code = main()
    if sys.getprofile() is not None or sys.gettrace() is not None or threading.active_count() > 1:
        sys.exit(code)
    # the documented exit handlers, which os._exit would skip; only the module teardown is left
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


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
    show_warning = warnings.showwarning
    warnings.showwarning = _show_warning
    package_logger = logging.getLogger("featscope")
    logger_state = (package_logger.handlers[:], package_logger.level, package_logger.propagate)
    from featscope.progress import set_enabled

    progress_state = set_enabled(True)
    try:
        with _signals_interrupt():
            module = importlib.import_module(COMMANDS[command][0])
            parser = module.build_parser()
            _add_trust_flag(parser)
            args = _parse(parser, rest)
            quiet = getattr(args, "quiet", False) or not getattr(args, "progress", True)
            _setup_logging(quiet=quiet)
            set_enabled(not quiet)  # --quiet: no bars, no progress lines, for every stage
            from featscope.models.checkpoint import trusted_checkpoints

            with trusted_checkpoints(bool(getattr(args, "trust_checkpoint", False))):
                return int(module.run(args) or 0)
    except FeatscopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # Interrupted, or featscope.capture.distributed.Stopped from the --nproc launcher
        signum = getattr(exc, "signum", signal.SIGINT)
        name = signal.Signals(signum).name
        print(
            f"interrupted ({name}); the unfinished run was discarded, no result was written",
            file=sys.stderr,
        )
        return 128 + int(signum)
    finally:
        # main() may run inside a larger program (or a test suite): leave logging as it was
        warnings.showwarning = show_warning
        set_enabled(progress_state)
        handlers, level, propagate = logger_state
        package_logger.handlers[:] = handlers
        package_logger.setLevel(level)
        package_logger.propagate = propagate


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`Interrupted` while the command runs, then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {}
    for signum in _STOP_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(signum, old)


def _add_trust_flag(parser: argparse.ArgumentParser) -> None:
    """Give ``--trust-checkpoint`` to a subcommand that reads checkpoints but lacks it."""
    from featscope.cli.common import add_trust_checkpoint_flag

    options = parser._option_string_actions  # argparse has no public listing
    if "--checkpoint" in options and "--trust-checkpoint" not in options:
        add_trust_checkpoint_flag(parser)


def _parse(parser: argparse.ArgumentParser, rest: list[str]) -> argparse.Namespace:
    """Parse with config and ``--cfg-options``; ``--trust-checkpoint`` from argv only."""
    from featscope.cli.config import apply_cfg_options
    from featscope.errors import ParameterError

    # A config file may come from someone else: it must not be able to make featscope run code.
    plain = parser.parse_args(rest)
    on_command_line = bool(getattr(plain, "trust_checkpoint", False))
    args = apply_cfg_options(parser, rest)
    if getattr(args, "trust_checkpoint", False) and not on_command_line:
        raise ParameterError(
            "`trust_checkpoint` was set by --config or --cfg-options, but it lets a checkpoint "
            "run code, so it is only accepted on the command line: pass --trust-checkpoint"
        )
    for dest, value in vars(args).items():
        code = _code_spec(value)
        if code is not None and value != getattr(plain, dest, None):
            flag = "--" + dest.replace("_", "-")
            raise ParameterError(
                f"`{dest}` = {code!r} was set by --config or --cfg-options, but a "
                f"{code.partition(':')[0]}: spec runs code from a file or module, so only the "
                f"command line may choose it: pass {flag} {code}"
            )
    return args


#: Spec prefixes whose value names code that featscope runs (TorchScript, Python modules).
_CODE_PREFIXES = frozenset({"py", "ts", "torchscript", "jit"})
#: OpenMMLab prefixes: a ``.py`` config file is Python that mmengine executes.
_MM_PREFIXES = frozenset({"mmpretrain", "mmpre", "mmcls", "mmselfsup"})


def _code_spec(value: object) -> str | None:
    """Return the first model or data spec in ``value`` that runs code, or ``None``."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(item, str):
            continue
        prefix, sep, rest = item.partition(":")
        prefix = prefix.strip().lower()
        if sep and (
            prefix in _CODE_PREFIXES
            or (prefix in _MM_PREFIXES and rest.strip().lower().endswith(".py"))
        ):
            return item
    return None


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
