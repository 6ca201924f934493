"""featscope.views."""
