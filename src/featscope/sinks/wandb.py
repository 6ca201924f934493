"""The Weights & Biases backend: figures as images, metrics, and tables of the maps.

One featscope run is one W&B run (``wandb.init(reinit="create_new")``, so it does not end a run
the caller has open). Figures and feature-map images are logged as ``wandb.Image``, metrics as
numbers, and each embedding map as a ``wandb.Table`` with columns ``id, class, label, x, y``
(``z`` for 3-D) and ``thumbnail`` (a ``wandb.Image``): in the W&B app, the table's "2D
Projection" panel plots it. ``x`` and ``y`` are the only numeric columns, so the panel's default
projection shows featscope's map as it is (the label is a string column for that reason).

A map of more than ``wandb.Table.MAX_ROWS`` (10,000) rows would be cut to its first 10,000 by
``run.log``; such a table goes into a W&B artifact instead (``<run>-<tag>-map``, type
``featscope-map``), which holds up to ``wandb.Table.MAX_ARTIFACT_ROWS`` (200,000) rows; above
that a seeded sample of that many rows is logged, with a warning. The per-sample fields of the
map (prediction, correct, cluster, metadata) follow the coordinates as text columns, so that
``x`` and ``y`` stay the only numbers.

Where the run goes is W&B's own business: ``mode`` (or ``WANDB_MODE``) ``"offline"`` writes it
to ``<dir>/wandb/offline-run-*`` for a later ``wandb sync``; ``"disabled"`` makes every call a
no-op. Like MMEngine's ``WandbVisBackend``, anything else ``wandb.init`` accepts can be passed in
``init_kwargs``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope._optional import require
from featscope.sinks.mirrors import Mirror

if TYPE_CHECKING:  # pragma: no cover - typing only
    from featscope.results import EmbeddingResult, FeatureSet
    from featscope.sinks.run import LocalRun

__all__ = ["DEFAULT_PROJECT", "WandbMirror"]

logger = logging.getLogger(__name__)

#: Project of the runs when neither ``project`` nor ``WANDB_PROJECT`` is given.
DEFAULT_PROJECT = "featscope"


class WandbMirror(Mirror):
    """Log a run to Weights & Biases.

    Parameters
    ----------
    project : str, optional
        W&B project; default ``WANDB_PROJECT`` or ``"featscope"``.
    name : str, optional
        Run name; default the run folder's name (``tsne_20250101_120000``).
    mode : {"online", "offline", "disabled"}, optional
        Default: ``WANDB_MODE``, else W&B's default (online).
    dir : str or path-like, optional
        Parent of W&B's ``wandb/`` folder; default ``WANDB_DIR``, else the run's ``work_dir``.
    init_kwargs : Mapping, optional
        More arguments for ``wandb.init`` (``entity``, ``tags``, ``group``, ``settings``, ...).

    Raises
    ------
    MissingExtraError
        When ``wandb`` is not installed (``pip install 'featscope[wandb]'``).
    """

    name = "wandb"

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        mode: str | None = None,
        dir: str | os.PathLike[str] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._wandb = require("wandb", "wandb", "the Weights & Biases backend")
        self.project = project
        self.run_label = name
        self.mode = mode
        self.dir = None if dir is None else Path(dir)
        self.init_kwargs = dict(init_kwargs or {})
        self.run: Any = None
        self._last_step = 0

    def _log(self, data: dict[str, Any], step: int) -> None:
        # W&B drops data logged at a step below the last one; keep it, at the last step.
        if step < self._last_step:
            logger.warning(
                "W&B steps cannot go back: logging %s at step %d instead of %d",
                ", ".join(data),
                self._last_step,
                step,
            )
            step = self._last_step
        self._last_step = step
        self.run.log(data, step=step)

    def start(self, run: LocalRun) -> None:
        """Start the W&B run.

        Parameters
        ----------
        run : LocalRun
            The open run: its name, view and work_dir fill in the defaults.
        """
        wandb = self._wandb
        folder = self.dir
        if folder is None:  # W&B's own variable first: the user set it for a reason
            folder = Path(os.environ["WANDB_DIR"]) if os.environ.get("WANDB_DIR") else run.work_dir
        folder.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {
            "project": self.project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            "name": self.run_label or run.run_name,
            "dir": os.fspath(folder),
            "job_type": run.view,
            "reinit": "create_new",
            # featscope is a library: it must not take over the caller's stdout/stderr.
            "settings": wandb.Settings(console="off"),
        }
        if self.mode is not None:
            kwargs["mode"] = self.mode
        kwargs.update(self.init_kwargs)
        self.run = wandb.init(**kwargs)

    def location(self) -> dict[str, Any]:
        """Return the W&B run's id, project and local folder.

        Returns
        -------
        dict
            ``{"id", "project", "dir"}`` (values may be None in disabled mode).
        """
        run = self.run
        if run is None:
            return {}
        return {
            "id": getattr(run, "id", None),
            "project": getattr(run, "project", None),
            "dir": getattr(run, "dir", None),
        }

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log ``{tag: wandb.Image(image)}`` at ``step``.

        Parameters
        ----------
        tag : str
            Image key.
        image : numpy.ndarray
            ``(H, W, 3)`` uint8 RGB.
        step : int
            W&B step (steps must not decrease within a run).
        """
        self._log({tag: self._wandb.Image(image)}, step)

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Log the values at ``step``.

        Parameters
        ----------
        scalars : Mapping of str to float
            Values by key.
        step : int
            W&B step.
        """
        self._log(dict(scalars), step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Add entries to the run's config.

        Parameters
        ----------
        config : Mapping
            JSON-ready values by key.
        """
        self.run.config.update(dict(config), allow_val_change=True)

    def log_embedding(
        self,
        tag: str,
        features: FeatureSet | None,
        result: EmbeddingResult | None,
        thumbnails: np.ndarray | None,
        step: int,
        present: np.ndarray | None = None,
    ) -> None:
        """Log the map as a ``wandb.Table`` under ``<tag>/map``.

        Parameters
        ----------
        tag : str
            Name of the embedding.
        features : FeatureSet or None
            Unused: W&B's projection panel works on the table's numeric columns, and the
            features would swamp the 2-D map (they stay in the run folder).
        result : EmbeddingResult or None
            The map; nothing is logged without one.
        thumbnails : numpy.ndarray or None
            ``(N, s, s, 3)`` uint8, one ``wandb.Image`` per row.
        step : int
            W&B step.
        present : numpy.ndarray or None
            Which rows have a real thumbnail; the others get none (an empty cell).
        """
        if result is None:
            return
        wandb = self._wandb
        axes = ["x", "y", "z"][: result.n_components]
        extra = list(result.fields)
        columns = ["id", "class", "label", *axes, *extra]
        if thumbnails is not None:
            columns.append("thumbnail")
        table = wandb.Table(columns=columns)
        names = result.class_names
        rows = _rows(len(result.labels), int(wandb.Table.MAX_ARTIFACT_ROWS), tag)
        for i in rows:
            index = int(result.labels[i])
            row: list[Any] = [
                str(result.ids[i]),
                names[index] if 0 <= index < len(names) else str(index),
                str(index),
                *(float(v) for v in result.coords[i]),
                *(str(result.fields[k][i]) for k in extra),
            ]
            if thumbnails is not None:
                has_image = present is None or bool(present[i])
                row.append(wandb.Image(thumbnails[i]) if has_image else None)
            table.add_data(*row)
        if len(rows) <= wandb.Table.MAX_ROWS:
            self._log({f"{tag}/map": table}, step)
            return
        # run.log would keep the first 10,000 rows only; an artifact's table holds them all
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{self.run.name}-{tag}")
        artifact = wandb.Artifact(f"{name}-map", type="featscope-map")
        artifact.add(table, "map")
        self.run.log_artifact(artifact)
        logger.info("W&B: the %d-row map of %s went into artifact %s-map", len(rows), tag, name)

    def close(self, success: bool) -> None:
        """Finish the W&B run (exit code 1 for a failed featscope run).

        Parameters
        ----------
        success : bool
            Whether the featscope run finished.
        """
        run, self.run = self.run, None
        if run is not None:
            run.finish(exit_code=0 if success else 1)


def _rows(n: int, limit: int, tag: str) -> np.ndarray:
    """All rows, or a seeded sample of ``limit`` of them (in order) with a warning."""
    if n <= limit:
        return np.arange(n)
    import warnings

    warnings.warn(
        f"W&B tables hold at most {limit:,} rows; logging a seeded sample of {limit:,} of the "
        f"{n:,} samples of map {tag!r} (all of them are in the run folder's csv)",
        UserWarning,
        stacklevel=4,
    )
    return np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))
