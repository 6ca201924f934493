"""featscope.models."""
