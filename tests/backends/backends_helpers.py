"""Helpers of the backend tests: tiny results, and readers built on the backends' own code."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from featscope.results import EmbeddingResult, FeatureSet

# A class name and an id that would break a tab-separated file or an HTML page if not escaped.
NASTY_NAMES = ("plain", "tab\there", "line\nbreak", "<script>alert(1)</script>")


def tiny_maps(n: int = 12, dim: int = 5, seed: int = 0, point: str = "neck"):
    """A FeatureSet and its 2-D EmbeddingResult with awkward class names and ids."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(NASTY_NAMES)
    ids = tuple(f"img\t{i}.png" if i == 1 else f"img_{i}.png" for i in range(n))
    fs = FeatureSet(
        features=rng.normal(size=(n, dim)).astype(np.float32),
        labels=labels,
        class_names=NASTY_NAMES,
        ids=ids,
        point=point,
    )
    result = EmbeddingResult(
        coords=rng.normal(size=(n, 2)),
        labels=labels,
        class_names=NASTY_NAMES,
        ids=ids,
        point=point,
        method="pca",
        metrics={"knn_accuracy_map": 0.75, "trustworthiness": 0.5, "broken": float("nan")},
    )
    return fs, result


def thumbs(n: int, size: int = 8, seed: int = 1) -> np.ndarray:
    """Distinct random thumbnails, ``(n, size, size, 3)`` uint8."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- TensorBoard


def tb_events(log_dir: Path):
    """TensorBoard's own EventAccumulator over a run folder, everything kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


class ProjectorClient:
    """TensorBoard's projector plugin, serving a logdir in-process (no server, no network)."""

    def __init__(self, logdir: Path) -> None:
        from tensorboard.backend.event_processing import plugin_event_multiplexer
        from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
        from tensorboard.plugins import base_plugin
        from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin

        multiplexer = plugin_event_multiplexer.EventMultiplexer()
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        context = base_plugin.TBContext(
            logdir=str(logdir),
            data_provider=MultiplexerDataProvider(multiplexer, str(logdir)),
            multiplexer=multiplexer,
        )
        self.apps = ProjectorPlugin(context).get_plugin_apps()

    def get(self, route: str, **query: Any) -> bytes:
        from werkzeug.test import Client
        from werkzeug.wrappers import Response

        response = Client(self.apps[route], Response).get(route, query_string=query)
        assert response.status_code == 200, (route, query, response.data[:300])
        return response.data

    def runs(self) -> list[str]:
        return json.loads(self.get("/runs"))

    def info(self, run: str) -> dict:
        return json.loads(self.get("/info", run=run))

    def tensor(self, run: str, name: str, shape: tuple[int, int]) -> np.ndarray:
        return np.frombuffer(self.get("/tensor", run=run, name=name), np.float32).reshape(shape)

    def metadata(self, run: str, name: str) -> list[list[str]]:
        text = self.get("/metadata", run=run, name=name).decode("utf-8")
        return [line.split("\t") for line in text.split("\n") if line]

    def sprite(self, run: str, name: str) -> np.ndarray:
        import io

        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(self.get("/sprite_image", run=run, name=name))))


# ----------------------------------------------------------------------------- W&B


def wandb_records(path: Path):
    """Yield the protobuf records of an offline run's ``.wandb`` file.

    The file is a LevelDB-style log (W&B's own format, read by ``wandb sync``): a 7-byte header
    (``:W&B``, magic, version), then 32 KiB blocks of chunks ``crc32 (4) | length (2) | type
    (1) | data``, a record split over FIRST/MIDDLE/LAST chunks. Records are W&B's own
    ``wandb_internal_pb2.Record`` messages.
    """
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", data[:7]
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the rest of a block too short for a chunk header is padding
            pos += left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL, LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk if kind == 4 else chunk)
            pending = b""
            yield record
        elif kind == 2:  # FIRST
            pending = chunk
        elif kind == 3:  # MIDDLE
            pending += chunk


def wandb_run_file(work_dir: Path) -> Path:
    files = sorted(Path(work_dir).glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0]


def wandb_history(path: Path) -> dict[int, dict[str, Any]]:
    """``{step: {key: value}}`` of the history rows (nested keys joined with '.')."""
    rows: dict[int, dict[str, Any]] = defaultdict(dict)
    for record in wandb_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row = {}
        for item in record.history.item:
            key = ".".join(item.nested_key) if item.nested_key else item.key
            row[key] = json.loads(item.value_json)
        rows[int(row["_step"])].update(row)
    return dict(rows)


def wandb_table_artifacts(path: Path) -> list[tuple[dict, dict[str, str]]]:
    """``(table json, {artifact path: local file})`` of each table the run logged."""
    out = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") != "artifact":
            continue
        files = {c.path: c.local_path for c in record.artifact.manifest.contents}
        for name, local in files.items():
            if name.endswith(".table.json"):
                out.append((json.loads(Path(local).read_text(encoding="utf-8")), files))
    return out


# ----------------------------------------------------------------------------- tiny model


def tiny_net(seed: int = 0):
    """conv(3->4) -> relu -> conv stride 2 (4->6) -> relu -> pool -> flatten -> linear(6->10)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 10),
    )


def tiny_handle(seed: int = 0):
    """``tiny_net`` with a 16x16, no-crop preprocessing."""
    from featscope.models.handle import ModelHandle, Preprocessing

    return ModelHandle(
        tiny_net(seed).eval(),
        spec=f"tiny-{seed}",
        family="factory",
        preprocess=Preprocessing(
            input_size=(16, 16), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0
        ),
    )


def photo(seed: int = 0, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    """A random RGB uint8 picture."""
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
