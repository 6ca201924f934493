"""featscope.sinks."""
