"""The TensorBoard backend: scalars, images and the embedding projector.

Event files (scalars, images, the run's parameters as text) are written with
``torch.utils.tensorboard.SummaryWriter``, the writer MMEngine's ``TensorboardVisBackend`` uses.
Embeddings are written in the layout TensorBoard's projector plugin reads from a run folder:

.. code-block:: text

    <log_dir>/projector_config.pbtxt            ProjectorConfig, paths relative to <log_dir>
    <log_dir>/projector/<tag>/<step>/features.tsv   the feature vectors, one row per sample
    <log_dir>/projector/<tag>/<step>/map.tsv        featscope's 2-D/3-D map of them
    <log_dir>/projector/<tag>/<step>/metadata.tsv   header ``label  class_name  id`` and the
                                                    map's fields, one row each
    <log_dir>/projector/<tag>/<step>/sprite.png     the thumbnails, row by row in a square grid
    <log_dir>/projector/<tag>/<step>/bookmarks.json the projector's opening state

The map's entry comes first in the config, so the projector opens on it (a 2-D or 3-D tensor,
which its PCA shows as it is) rather than on a PCA of the features. Its bookmark, a saved state
listed in the projector's "Bookmarks" panel (opened by the projector when an entry has one),
shows the map coloured and labelled by ``class_name`` in one click: the projector itself opens
with "No color map" whatever the files say (its ``metadataChanged`` picks the first colour
option, and saved states are only listed, not loaded; read in TensorBoard 2.x's
``projector_binary.js``). The command that opens
the run is logged when the run closes (``tensorboard --logdir <log_dir>``) and recorded in the
manifest (``backends.tensorboard.command``).

Metadata fields are escaped (see :func:`featscope.sinks.mirrors.escape_field`), so a class or
file name holding a tab or a newline cannot shift a column or a row.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featscope._optional import require
from featscope.errors import ParameterError
from featscope.sinks.layout import safe_stem
from featscope.sinks.mirrors import Mirror, escape_field

if TYPE_CHECKING:  # pragma: no cover - typing only
    from featscope.results import EmbeddingResult, FeatureSet
    from featscope.sinks.run import LocalRun

__all__ = ["MAX_SPRITE_SIDE", "PROJECTOR_CONFIG", "TensorBoardMirror", "sprite_image"]

#: The projector's limit on the sprite image's side, in pixels.
MAX_SPRITE_SIDE = 8192
#: The file name TensorBoard's projector plugin looks for in a run folder.
PROJECTOR_CONFIG = "projector_config.pbtxt"
_METADATA_HEADER = ("label", "class_name", "id")

logger = logging.getLogger(__name__)


def sprite_image(thumbnails: np.ndarray, max_side: int = MAX_SPRITE_SIDE) -> tuple[Any, int]:
    """Tile thumbnails row by row into the square sprite image the projector expects.

    Image ``i`` sits at row ``i // k``, column ``i % k`` of a ``k x k`` grid,
    ``k = ceil(sqrt(N))``; the rest of the grid is black. Thumbnails are shrunk when
    ``k * size`` would exceed ``max_side``.

    Parameters
    ----------
    thumbnails : numpy.ndarray
        ``(N, s, s, 3)`` uint8.
    max_side : int, default 8192
        Largest side of the sprite.

    Returns
    -------
    (PIL.Image.Image, int)
        The sprite and the side of one tile.
    """
    from PIL import Image

    n, size = int(thumbnails.shape[0]), int(thumbnails.shape[1])
    k = max(1, math.ceil(math.sqrt(n)))
    tile = min(size, max_side // k)
    if tile < 1:
        raise ParameterError(
            f"{n} thumbnails do not fit in a {max_side}-pixel sprite; pass fewer samples"
        )
    sprite = Image.new("RGB", (k * tile, k * tile))
    for i, thumb in enumerate(thumbnails):
        image = Image.fromarray(np.ascontiguousarray(thumb[:, :, :3]), "RGB")
        if tile != size:
            image = image.resize((tile, tile), Image.Resampling.BILINEAR)
        sprite.paste(image, ((i % k) * tile, (i // k) * tile))
    return sprite, tile


def _write_matrix(path: Path, matrix: np.ndarray) -> None:
    # float32 shortest round-trip text: what the projector parses (float per tab-field).
    np.savetxt(path, np.asarray(matrix, dtype=np.float32), fmt="%.7g", delimiter="\t")


class TensorBoardMirror(Mirror):
    """Log a run to TensorBoard.

    Parameters
    ----------
    log_dir : str or path-like, optional
        The TensorBoard run folder. Default: ``<work_dir>/tensorboard/<run name>``, so that
        ``tensorboard --logdir <work_dir>/tensorboard`` lists every run side by side.
    flush_secs : int, default 30
        How often the event writer flushes while the run is open (it always flushes on close).

    Raises
    ------
    MissingExtraError
        When ``tensorboard`` is not installed (``pip install 'featscope[tensorboard]'``).
    """

    name = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, flush_secs: int = 30) -> None:
        require("tensorboard", "tensorboard", "the TensorBoard backend")
        self.log_dir: Path | None = None if log_dir is None else Path(log_dir)
        self.flush_secs = int(flush_secs)
        self._writer: Any = None
        self._config: Any = None

    def start(self, run: LocalRun) -> None:
        """Open the event writer in :attr:`log_dir`.

        Parameters
        ----------
        run : LocalRun
            The open run (its work_dir and name place the default folder).
        """
        from torch.utils.tensorboard import SummaryWriter

        if self.log_dir is None:
            self.log_dir = run.work_dir / "tensorboard" / run.run_name
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=self.flush_secs)

    def location(self) -> dict[str, Any]:
        """Return ``{"log_dir": ...}``.

        Returns
        -------
        dict
            The event folder and the command that opens it.
        """
        if self.log_dir is None:
            return {"log_dir": None}
        return {"log_dir": os.fspath(self.log_dir), "command": self.command()}

    def command(self) -> str:
        """Return the shell command that opens this run in TensorBoard."""
        return f"tensorboard --logdir {shlex.quote(os.fspath(self.log_dir or '.'))}"

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Add an ``(H, W, 3)`` uint8 image.

        Parameters
        ----------
        tag : str
            Image name.
        image : numpy.ndarray
            RGB uint8.
        step : int
            Global step.
        """
        self._writer.add_image(tag, image, global_step=step, dataformats="HWC")

    def log_scalars(self, scalars: Mapping[str, float], step: int) -> None:
        """Add one scalar per tag.

        Parameters
        ----------
        scalars : Mapping of str to float
            Values by tag.
        step : int
            Global step.
        """
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, global_step=step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Add each entry as text (``metadata/<key>``, JSON in a code block).

        Parameters
        ----------
        config : Mapping
            JSON-ready values by key.
        """
        for key, value in config.items():
            text = json.dumps(value, sort_keys=True, indent=2, default=str)
            # Indented: TensorBoard renders text as markdown; a code block shows it verbatim.
            self._writer.add_text(f"metadata/{key}", "    " + text.replace("\n", "\n    "))

    def log_embedding(
        self,
        tag: str,
        features: FeatureSet | None,
        result: EmbeddingResult | None,
        thumbnails: np.ndarray | None,
        step: int,
        present: np.ndarray | None = None,
    ) -> None:
        """Write projector entries: the features and the map, with metadata and sprite.

        Parameters
        ----------
        tag : str
            Name of the embedding.
        features : FeatureSet or None
            Feature vectors (entry ``<tag>/features@<step>``).
        result : EmbeddingResult or None
            Their map (entry ``<tag>/<method>@<step>``).
        thumbnails : numpy.ndarray or None
            ``(N, s, s, 3)`` uint8 sprite tiles.
        step : int
            Step of the entries.
        present : numpy.ndarray or None
            Unused: samples without a thumbnail already have a black tile.
        """
        from tensorboard.plugins import projector

        assert self.log_dir is not None
        source: Any = features if features is not None else result
        rel = Path("projector") / safe_stem(tag, "embedding") / f"{step:06d}"
        folder = self.log_dir / rel
        folder.mkdir(parents=True, exist_ok=True)

        names = source.class_names
        columns = dict(result.fields) if result is not None else dict(source.fields)
        with (folder / "metadata.tsv").open("w", encoding="utf-8", newline="\n") as handle:
            handle.write("\t".join(escape_field(f) for f in (*_METADATA_HEADER, *columns)))
            handle.write("\n")
            for row, (label, sample_id) in enumerate(zip(source.labels, source.ids, strict=True)):
                index = int(label)
                name = names[index] if 0 <= index < len(names) else str(index)
                fields = (index, name, sample_id, *(v[row] for v in columns.values()))
                handle.write("\t".join(escape_field(f) for f in fields) + "\n")
        tile = 0
        if thumbnails is not None:
            sprite, tile = sprite_image(thumbnails)
            sprite.save(folder / "sprite.png")

        if self._config is None:
            self._config = projector.ProjectorConfig()
        entries = []
        # the map first: the projector opens on the first entry of its config
        if result is not None:
            _write_matrix(folder / "map.tsv", result.coords)
            entries.append((result.method, "map.tsv", result.coords.shape))
            _write_bookmark(folder / "bookmarks.json", result)
        if features is not None:
            _write_matrix(folder / "features.tsv", features.features)
            entries.append(("features", "features.tsv", features.features.shape))
        for what, file, shape in entries:
            embedding = self._config.embeddings.add()
            embedding.tensor_name = f"{tag}/{what}@{step}"
            embedding.tensor_path = (rel / file).as_posix()
            embedding.tensor_shape.extend([int(shape[0]), int(shape[1])])
            embedding.metadata_path = (rel / "metadata.tsv").as_posix()
            if file == "map.tsv":
                embedding.bookmarks_path = (rel / "bookmarks.json").as_posix()
            if tile:
                embedding.sprite.image_path = (rel / "sprite.png").as_posix()
                embedding.sprite.single_image_dim.extend([tile, tile])
        # Rewritten whole each time: the config lists every entry logged so far.
        projector.visualize_embeddings(os.fspath(self.log_dir), self._config)

    def close(self, success: bool) -> None:
        """Flush and close the event writer.

        Parameters
        ----------
        success : bool
            Unused: TensorBoard keeps what was logged either way.
        """
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            logger.info("open it in TensorBoard: %s", self.command())


def _write_bookmark(path: Path, result: EmbeddingResult) -> None:
    """Write the projector's opening state: featscope's map, coloured and labelled by class.

    The projector lists the states of an entry's ``bookmarks_path`` in its Bookmarks panel; a
    click shows the state's ``projections`` (one dict of coordinates per point, keyed
    ``pca-0``, ``pca-1``...) with the projection, colouring and labels it names.
    """
    dims = result.n_components
    state = {
        "label": f"{result.point}: featscope map, coloured by class",
        "isSelected": True,
        "dataSetDimensions": [len(result.coords), dims],
        "projections": [{f"pca-{d}": float(row[d]) for d in range(dims)} for row in result.coords],
        "selectedProjection": "pca",
        "pcaComponentDimensions": list(range(dims)),
        "selectedColorOptionName": "class_name" if result.labelled else "cluster",
        "selectedLabelOption": "class_name",
        "shuffledDataIndices": [],
        "selectedPoints": [],
        "tSNEIteration": 0,
    }
    path.write_text(json.dumps([state]), encoding="utf-8")
