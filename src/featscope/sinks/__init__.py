"""Write results: the local run folder (atomic, manifest last)."""

from __future__ import annotations

from featscope.sinks.local import LocalRun

__all__ = ["LocalRun"]
