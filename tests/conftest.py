"""Suite-wide settings: offline, headless, deterministic, few threads."""

from __future__ import annotations

import os

# Nothing in the test suite may reach the network (model hubs included).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_MODE", "disabled")
