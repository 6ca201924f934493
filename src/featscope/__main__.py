"""``python -m featscope``: the ``featscope`` command (also what ``torchrun -m featscope`` runs)."""

from __future__ import annotations

import sys

from featscope.cli import main

if __name__ == "__main__":
    sys.exit(main())
