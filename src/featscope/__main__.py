"""``python -m featscope``: the ``featscope`` command (also what ``torchrun -m featscope`` runs)."""

from __future__ import annotations

from featscope.cli import run_and_exit

if __name__ == "__main__":
    run_and_exit()
