"""featscope.capture."""
