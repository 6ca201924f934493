"""featscope.data."""
