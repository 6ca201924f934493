"""featscope.cli."""
