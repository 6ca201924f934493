"""featscope.render."""
