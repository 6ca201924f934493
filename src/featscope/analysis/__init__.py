"""featscope.analysis."""
