"""One call per view: each composes the stages (load, capture, analyse, render, write).

The command-line subcommands are thin wrappers around exactly these calls.
"""

from __future__ import annotations

from featscope.views.embedding import TsneRun, tsne

__all__ = ["TsneRun", "tsne"]
