"""Errors raised by featscope.

Every error a user can cause is a :class:`FeatscopeError`. Its message names the parameter, the
value received, the rule it broke and the fix, so the command line can print it as one line
(``error: <message>``) and exit with status 2. Any other exception escaping featscope is a bug.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "CheckpointError",
    "DataError",
    "FeatscopeError",
    "MissingExtraError",
    "ModelSpecError",
    "OutputError",
    "ParameterError",
]


class FeatscopeError(Exception):
    """Base class of every error caused by user input (exit status 2 on the command line)."""


class ParameterError(FeatscopeError, ValueError):
    """A parameter has a value outside its rule (wrong range, unknown choice, wrong type)."""


class ModelSpecError(FeatscopeError, ValueError):
    """A model spec string cannot be parsed or the model it names cannot be built."""


class CheckpointError(FeatscopeError):
    """A checkpoint cannot be read, is unsafe to unpickle, or does not fit the model."""


class DataError(FeatscopeError):
    """Input data is missing, unreadable or inconsistent (images, file lists, features, labels)."""


class CaptureError(FeatscopeError):
    """A capture point does not exist or produced an output featscope cannot turn into features."""


class OutputError(FeatscopeError):
    """The run folder or an output file cannot be written."""


class MissingExtraError(FeatscopeError, ImportError):
    """An optional dependency is missing; the message gives the ``pip install`` command."""
