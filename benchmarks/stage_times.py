"""Where a `featscope` command's time goes after the maps: figures, files and the page.

The run log dates the t-SNE's phases, but the last stages of ``featscope tsne`` (drawing the
figures, writing the features, coordinates and figures, building the page) share one log line,
"wrote the interactive page", so its timestamp minus the metrics line counts all three. This
script runs the command in this process with a timer around each of those stages and prints
the seconds of each and of the whole command (after the interpreter's start).

Usage::

    python benchmarks/stage_times.py tsne --features X.npy --labels y.npy --work-dir /tmp/w

Every argument is passed to the ``featscope`` command line unchanged.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any

import featscope.render as render
import featscope.sinks.embedding as sinks
from featscope.cli import main

#: (module, function) pairs timed; the view looks each of them up at call time.
STAGES = (
    (render, "plot_embedding_figures"),
    (sinks, "write_maps"),
    (sinks, "write_thumbnails"),
    (sinks, "write_page"),
)


def timed(seconds: dict[str, float]) -> None:
    """Wrap every stage of :data:`STAGES` to add its run time to ``seconds``."""
    for module, name in STAGES:
        function = getattr(module, name)

        @functools.wraps(function)
        def wrapper(*args: Any, _f: Any = function, _name: str = name, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - start

        setattr(module, name, wrapper)


def run(argv: list[str]) -> dict[str, float]:
    """Run ``featscope <argv>`` with the stages timed; return their seconds and the total."""
    seconds: dict[str, float] = {}
    timed(seconds)
    start = time.perf_counter()
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    seconds["whole command"] = time.perf_counter() - start
    return seconds


if __name__ == "__main__":
    for stage, value in run(sys.argv[1:]).items():
        print(f"{stage:<24} {value:6.2f} s", file=sys.stderr)
