"""The sink protocol: where a view's results go."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Anything a view can hand its results to: ``sink.write(result, name=None)``.

    :class:`~featscope.sinks.LocalRun` is the sink every view writes; it turns each result
    type into its files through the table of :func:`~featscope.sinks.register_writer`.
    """

    def write(self, result: Any, name: str | None = None) -> Any:
        """Write ``result``; return what was written (a run folder: the list of paths).

        Parameters
        ----------
        result : Any
            A result object (``FeatureSet``, ``EmbeddingResult``, a figure, ...).
        name : str, optional
            Key of the result (file stem, manifest entry); default chosen by its writer
            (usually the capture point).

        Returns
        -------
        Any
            The record of what was written.
        """
        ...
