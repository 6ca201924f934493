"""Backends that receive a copy of what a run logs: the :class:`Mirror` protocol and its fan-out.

A run can be *mirrored* to other backends (TensorBoard, Weights & Biases): pass :class:`Mirror`
objects as ``LocalRun(..., mirrors=[...])``. Every figure and ``.png`` written to the folder is
then also logged there as an image, every result's metrics and every
:meth:`LocalRun.log_metrics` call as scalars, and :meth:`LocalRun.log_embedding` as an embedding
projector entry. The folder stays the record: a mirror that fails is reported with a warning,
dropped, and the run goes on (:class:`MirrorFanout`).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from featscope.results import EmbeddingResult, FeatureSet
    from featscope.sinks.run import LocalRun

__all__ = ["Mirror", "MirrorFanout", "escape_field", "figure_rgb", "png_to_rgb"]

logger = logging.getLogger(__name__)


class Mirror:
    """A backend that receives a copy of what a :class:`LocalRun` logs (base class).

    Subclasses (:class:`featscope.sinks.tensorboard.TensorBoardMirror`,
    :class:`featscope.sinks.wandb.WandbMirror`) override the ``log_*`` methods they support; the
    defaults do nothing. The run calls :meth:`start` when it opens, then the ``log_*`` methods,
    then :meth:`close` once. Any exception a mirror raises is turned by the run into a warning,
    and the mirror is dropped for the rest of the run.

    Attributes
    ----------
    name : str
        The backend name (``"tensorboard"``, ``"wandb"``).
    """

    name = "mirror"

    def start(self, run: LocalRun) -> None:
        """Begin logging for ``run`` (its :attr:`LocalRun.run_name` and ``view`` are set).

        Parameters
        ----------
        run : LocalRun
            The open run.
        """

    def location(self) -> dict[str, Any]:
        """Return where this mirror writes, recorded in the manifest under ``backends``.

        Returns
        -------
        dict
            JSON-ready description (a folder, a run id).
        """
        return {}

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log an RGB ``(H, W, 3)`` uint8 image under ``tag``.

        Parameters
        ----------
        tag : str
            Image name; the same tag at later steps makes a series.
        image : numpy.ndarray
            ``(H, W, 3)`` uint8 RGB.
        step : int
            Step (epoch) of the value.
        """

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Log scalar values.

        Parameters
        ----------
        scalars : Mapping of str to float
            Finite values by tag (``"pre_logits/knn_accuracy_map"``).
        step : int
            Step (epoch) of the values.
        """

    def log_embedding(
        self,
        tag: str,
        features: FeatureSet | None,
        result: EmbeddingResult | None,
        thumbnails: np.ndarray | None,
        step: int,
        present: np.ndarray | None = None,
    ) -> None:
        """Log feature vectors and/or their map with labels, class names, ids and thumbnails.

        Parameters
        ----------
        tag : str
            Name of the embedding (usually the capture point).
        features : FeatureSet or None
            The feature vectors.
        result : EmbeddingResult or None
            Their 2-D/3-D map.
        thumbnails : numpy.ndarray or None
            ``(N, s, s, 3)`` uint8, one per sample, or ``None``.
        step : int
            Step (epoch).
        present : numpy.ndarray or None
            ``(N,)`` bool: which rows of ``thumbnails`` are real images (black tiles stand in for
            the others); ``None``: all.
        """

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record run parameters (the manifest's ``metadata`` entries).

        Parameters
        ----------
        config : Mapping
            JSON-ready values by key.
        """

    def close(self, success: bool) -> None:
        """Flush and close; called once, at the end of the run.

        Parameters
        ----------
        success : bool
            Whether the run finished (False when it failed).
        """


class MirrorFanout:
    """The mirrors of one run: every call goes to each, and a failing one is dropped.

    Parameters
    ----------
    mirrors : sequence of Mirror
        The backends, in the order they are called.
    """

    def __init__(self, mirrors: Sequence[Mirror]) -> None:
        self._mirrors: list[Mirror] = list(mirrors)

    def __bool__(self) -> bool:
        return bool(self._mirrors)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the backends still receiving the run."""
        return tuple(m.name for m in self._mirrors)

    def start(self, run: LocalRun) -> dict[str, Any]:
        """Start every mirror; return ``{name: location}`` of those that started."""
        started: dict[str, Any] = {}
        for mirror in list(self._mirrors):
            if self._guard(mirror, "start", lambda m=mirror: m.start(run)):
                try:
                    started[mirror.name] = mirror.location()
                except Exception:  # a description is not worth losing the mirror for
                    started[mirror.name] = {}
        return started

    def call(self, method: str, *args: Any) -> None:
        """Call ``method(*args)`` on every mirror."""
        for mirror in list(self._mirrors):
            self._guard(mirror, method, lambda m=mirror: getattr(m, method)(*args))

    def image(self, tag: str, decode: Callable[[], np.ndarray], step: int) -> None:
        """Log the image ``decode()`` returns; one that cannot be decoded is warned about."""
        try:
            image = decode()
        except Exception as exc:
            message = f"could not read image {tag!r} for the backends ({exc}); not mirrored"
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            return
        self.call("log_image", tag, image, step)

    def close(self, success: bool) -> None:
        """Close every mirror once; later calls reach none."""
        mirrors, self._mirrors = self._mirrors, []
        for mirror in mirrors:
            self._guard(mirror, "close", lambda m=mirror: m.close(success))

    def _guard(self, mirror: Mirror, what: str, call: Callable[[], Any]) -> bool:
        """Run ``call``; on failure warn, drop the mirror and return False (the folder goes on)."""
        try:
            call()
        except Exception as exc:
            if mirror in self._mirrors:
                self._mirrors.remove(mirror)
            message = (
                f"the {mirror.name} backend failed in {what} ({type(exc).__name__}: {exc}); it is "
                "switched off for the rest of this run, the run folder is still written"
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)
            return False
        return True


def escape_field(value: Any) -> str:
    r"""Return ``value`` as one field of a tab-separated line: ``\``, tab, newline escaped.

    Backslashes are doubled and tabs, newlines and carriage returns written as ``\t``, ``\n``
    and ``\r``, so a class name or file name can neither split a field nor a row and the
    original text can be recovered.

    Parameters
    ----------
    value : Any
        Converted with ``str``.

    Returns
    -------
    str
        The escaped text.
    """
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def png_to_rgb(data: bytes) -> np.ndarray:
    """Decode PNG bytes into an ``(H, W, 3)`` uint8 RGB array (alpha composited on white).

    Parameters
    ----------
    data : bytes
        A PNG file's content.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))


def figure_rgb(fig: Figure, dpi: float) -> np.ndarray:
    """Render a figure to an RGB array through PNG (what the ``png`` file would hold)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return png_to_rgb(buffer.getvalue())
