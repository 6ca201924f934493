"""Data-parallel extraction: shard the samples over processes, merge on rank 0 in sample order.

Runs under ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...) or under
:func:`launch`, which starts the processes itself with torchrun's own launcher API. Each rank
extracts a contiguous block of whole batches, so every batch holds exactly the samples it holds
in a single-process run with the same ``batch_size``: the model sees the same inputs in the same
batch shapes and the features are identical, not merely close.

Process groups use gloo on CPU and gloo + NCCL (``"cpu:gloo,cuda:nccl"``) on CUDA; only small
objects (kept positions, error messages, in-RAM shards without a cache folder) travel through
them. With a cache folder each rank writes its shard into ``<cache_dir>/rank<r>-of-<k>/`` and
rank 0 merges the memory-mapped files chunk by chunk, so memory stays bounded on every rank; on
several machines the folder must then be on a shared file system.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import logging
import os
import signal
import sys
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featscope import errors as _errors
from featscope.capture.extract import ExtractionResult, extract_features
from featscope.capture.points import CapturePoint
from featscope.capture.store import read_progress
from featscope.data.samples import ImageSamples
from featscope.errors import CaptureError, FeatscopeError, ParameterError
from featscope.models.handle import ModelHandle

__all__ = [
    "Stopped",
    "distributed_world",
    "extract_features_distributed",
    "launch",
    "process_group",
    "rank_device",
    "shard_range",
]

logger = logging.getLogger(__name__)

#: Rows copied at a time when rank 0 merges shard files (bounded memory).
_MERGE_CHUNK_ROWS = 16384


def distributed_world() -> tuple[int, int]:
    """Return ``(rank, world size)`` of this process: ``(0, 1)`` outside torchrun.

    Returns
    -------
    tuple of int
        From an initialised process group, else from ``RANK``/``WORLD_SIZE``.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


def rank_device(device: str | torch.device) -> str:
    """Return the device of this rank: a bare ``"cuda"`` becomes ``"cuda:<LOCAL_RANK>"``.

    Parameters
    ----------
    device : str or torch.device
        The requested device.

    Returns
    -------
    str
        The device this process should use.
    """
    text = str(device)
    if text == "cuda" and distributed_world()[1] > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return text


@contextlib.contextmanager
def process_group(device: str | torch.device = "cpu") -> Iterator[tuple[int, int]]:
    """Join the process group torchrun describes (if not joined yet); leave it afterwards.

    Parameters
    ----------
    device : str or torch.device
        ``cuda...`` adds NCCL for CUDA tensors; gloo always carries CPU objects.

    Yields
    ------
    tuple of int
        ``(rank, world size)``.
    """
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if str(device).startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
        created = True
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if created:
            dist.destroy_process_group()


def shard_range(n_samples: int, batch_size: int, rank: int, world: int) -> range:
    """Return the sample positions of ``rank``: a contiguous block of whole batches.

    Parameters
    ----------
    n_samples, batch_size : int
        Samples in all, images per batch.
    rank, world : int
        This process and the number of processes.

    Returns
    -------
    range
        Positions ``start..stop``; the batches are split as evenly as possible (earlier ranks
        get one more when they do not divide), and may be empty when there are fewer batches
        than processes.
    """
    n_batches = -(-n_samples // batch_size)
    first = rank * n_batches // world
    last = (rank + 1) * n_batches // world
    return range(min(first * batch_size, n_samples), min(last * batch_size, n_samples))


def _error_payload(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(exc)


def _raise_payload(rank: int, payload: tuple[str, str]) -> None:
    name, message = payload
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, FeatscopeError):
        raise cls(message)
    raise CaptureError(f"rank {rank} failed with {name}: {message}")


def extract_features_distributed(
    handle: ModelHandle,
    samples: ImageSamples,
    points: str | Iterable[str | CapturePoint],
    *,
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    **kwargs: Any,
) -> ExtractionResult | None:
    """Extract this rank's shard; return the merged features on rank 0 and ``None`` elsewhere.

    Must run inside :func:`process_group` (every rank calls it with the same arguments).

    Parameters
    ----------
    handle, samples, points, batch_size
        As for :func:`featscope.capture.extract_features`.
    cache_dir : path, optional
        Each rank streams its shard to ``<cache_dir>/rank<r>-of-<k>/`` (resumable with
        ``resume``); rank 0 merges them into ``<cache_dir>/merged/``. Must be on a file system
        every rank can read when the ranks run on several machines.
    resume : bool, default False
        Continue each rank's shard from its last complete batch.
    **kwargs
        Passed on to :func:`featscope.capture.extract_features`.

    Returns
    -------
    ExtractionResult or None
        On rank 0: the features of all samples in sample order, equal to a single-process run
        with the same ``batch_size``. ``None`` on the other ranks.

    Raises
    ------
    FeatscopeError
        On every rank, when any rank fails (the message of the first failing rank).
    """
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    shard = shard_range(len(samples), batch_size, rank, world)
    shard_dir = None if cache_dir is None else Path(cache_dir) / f"rank{rank}-of-{world}"
    out: ExtractionResult | None = None
    error: tuple[str, str] | None = None
    if kwargs.get("amp") == "auto" and torch.device(kwargs.get("device", "cpu")).type == "cpu":
        # on a CPU "auto" checks bfloat16 on the first images, and each rank sees other first
        # images: the ranks could decide differently, so a distributed CPU run stays float32
        kwargs = {**kwargs, "amp": "off"}
    try:
        if len(shard):
            out = extract_features(
                handle,
                samples.subset(np.arange(shard.start, shard.stop)),
                points,
                batch_size=batch_size,
                cache_dir=shard_dir,
                resume=resume,
                _fingerprint_extra={"shard": f"{rank}/{world}"},
                **kwargs,
            )
    except Exception as exc:  # every rank must learn of it, or the others wait forever
        error = _error_payload(exc)
        failure: BaseException | None = exc
    else:
        failure = None
    errors: list[Any] = [None] * world
    dist.all_gather_object(errors, error)
    for r, payload in enumerate(errors):
        if payload is not None:
            if r == rank and failure is not None:
                raise failure
            _raise_payload(r, payload)
    if cache_dir is not None:
        # the shards are on disk: send only their small metadata, merge the files on rank 0
        meta = None if out is None else (shard.start, out.kept + shard.start, list(out.skipped))
        gathered: list[Any] = [None] * world if rank == 0 else None  # type: ignore[assignment]
        dist.gather_object(meta, gathered, dst=0)
        if rank != 0:
            return None
        merged = _merge_files(Path(cache_dir), world, gathered)
        return dataclasses.replace(merged, settings=_settings(out, world))
    payload = (
        None if out is None else (out.features, out.pooling, out.kept + shard.start, out.skipped)
    )
    gathered = [None] * world if rank == 0 else None  # type: ignore[assignment]
    dist.gather_object(payload, gathered, dst=0)
    if rank != 0:
        return None
    parts = [p for p in gathered if p is not None]
    names = list(parts[0][0])
    return ExtractionResult(
        features={n: np.concatenate([p[0][n] for p in parts]) for n in names},
        pooling=dict(parts[0][1]),
        kept=np.concatenate([p[2] for p in parts]).astype(np.int64),
        skipped=tuple(s for p in parts for s in p[3]),
        settings=_settings(out, world),
    )


def _settings(out: ExtractionResult | None, world: int) -> dict[str, Any]:
    """Rank 0's record of how the model ran (every rank runs it the same way)."""
    return {} if out is None else {**out.settings, "processes": world}


def _merge_files(cache_dir: Path, world: int, metas: list[Any]) -> ExtractionResult:
    """Concatenate the shard files of every rank, in rank (= sample) order, chunk by chunk."""
    shards = []
    for r, meta in enumerate(metas):
        if meta is None:
            continue
        record = read_progress(cache_dir / f"rank{r}-of-{world}")
        assert record is not None  # the rank finished, so its record exists
        shards.append((r, meta, record))
    outputs = shards[0][2]["outputs"]
    total = sum(int(rec["rows"]) for _, _, rec in shards)
    merged_dir = cache_dir / "merged"
    merged_dir.mkdir(parents=True, exist_ok=True)
    features: dict[str, np.ndarray] = {}
    for name, info in outputs.items():
        target = np.lib.format.open_memmap(
            merged_dir / info["file"], mode="w+", dtype=np.float32, shape=(total, info["dim"])
        )
        row = 0
        for r, _meta, rec in shards:
            source = np.load(cache_dir / f"rank{r}-of-{world}" / info["file"], mmap_mode="r")
            rows = int(rec["rows"])
            for lo in range(0, rows, _MERGE_CHUNK_ROWS):
                hi = min(rows, lo + _MERGE_CHUNK_ROWS)
                target[row + lo : row + hi] = source[lo:hi]
            row += rows
        target.flush()
        del target
        features[name] = np.load(merged_dir / info["file"], mmap_mode="r")
    return ExtractionResult(
        features=features,
        pooling={name: info["pooling"] for name, info in outputs.items()},
        kept=np.concatenate([meta[1] for _, meta, _ in shards]).astype(np.int64),
        skipped=tuple(tuple(s) for _, meta, _ in shards for s in meta[2]),
    )


def _set_threads(nproc: int) -> None:
    """Share the cores between the local ranks, unless the user set ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    torch.set_num_threads(max(1, cpus // max(1, nproc)))


def _mappingproxy(d: dict[Any, Any]) -> types.MappingProxyType:
    return types.MappingProxyType(d)


def _reduce_mappingproxy(m: types.MappingProxyType) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _mappingproxy, (dict(m),)


def _console_level() -> int | None:
    """Level of the console handler the caller set on the ``featscope`` logger, if any."""
    levels = [
        h.level
        for h in logging.getLogger("featscope").handlers
        if type(h) is logging.StreamHandler  # the console, not run.log's FileHandler
    ]
    return min(levels) if levels else None


def _log_to_console(level: int) -> None:
    """Give a launched process the console logging of its parent, rank-tagged after rank 0.

    Spawned processes start with logging unconfigured, so without this the progress messages
    of ``--nproc`` runs were lost (their warnings, printed by ``warnings``, got through).
    """
    rank = int(os.environ.get("RANK", "0"))
    handler = logging.StreamHandler(sys.stderr)
    prefix = f"[rank {rank}] " if rank else ""
    handler.setFormatter(logging.Formatter(prefix + "%(message)s"))
    handler.setLevel(level)
    package = logging.getLogger("featscope")
    package.handlers[:] = [handler]
    package.setLevel(min(level, logging.INFO))
    package.propagate = False


def _entrypoint(
    fn: Callable[..., Any], nproc: int, kwargs: dict[str, Any], console_level: int | None = None
) -> Any:
    """Run ``fn(**kwargs)`` in one launched process; return errors as values (one line each)."""
    _set_threads(nproc)
    if console_level is not None:
        _log_to_console(console_level)
    # results travel back through a multiprocessing queue (pickle); frozen results hold
    # read-only mappings, which pickle cannot take by default
    copyreg.pickle(types.MappingProxyType, _reduce_mappingproxy)
    _stop_on_signals()
    try:
        return ("ok", fn(**kwargs))
    except FeatscopeError as exc:
        return ("error", _error_payload(exc))
    except KeyboardInterrupt as exc:
        # the parent is stopping (Ctrl-C reaches the whole process group; the launcher sends
        # SIGTERM): the unwinding above closed the data loaders and released their
        # semaphores; leave without a traceback (the parent prints the one line)
        sys.exit(128 + getattr(exc, "signum", signal.SIGINT))


class Stopped(KeyboardInterrupt):
    """A stop signal received by a launched process or its launcher (``signum`` says which).

    A ``KeyboardInterrupt``, so that every clean-up written for Ctrl-C runs, and the command
    line prints its one ``interrupted (...)`` line with the right exit status.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"received {signal.Signals(signum).name}")
        self.signum = int(signum)


def _stop_on_signals() -> None:
    """In a launched process, turn SIGTERM/SIGHUP/SIGINT into :class:`Stopped`."""

    def handler(signum: int, frame: object) -> None:
        raise Stopped(signum)

    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(getattr(signal, name), handler)


def launch(fn: Callable[..., Any], kwargs: dict[str, Any], nproc: int) -> Any:
    """Run ``fn(**kwargs)`` in ``nproc`` local processes, as ``torchrun --standalone`` would.

    Uses torch's own launcher (:func:`torch.distributed.launcher.api.elastic_launch`) with a
    local c10d rendezvous, so each process sees the same ``RANK``/``WORLD_SIZE``/
    ``MASTER_ADDR`` environment as under ``torchrun``.

    Parameters
    ----------
    fn : callable
        An importable function (processes are spawned, so it is pickled by reference).
    kwargs : dict
        Its keyword arguments (picklable).
    nproc : int
        Number of processes (>= 1).

    Returns
    -------
    Any
        What ``fn`` returned on rank 0.

    Raises
    ------
    ParameterError
        For a bad ``nproc``, or when called inside a distributed run already.
    FeatscopeError
        The error of a rank whose ``fn`` raised one (re-raised here, one line).
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ParameterError(f"`nproc` must be an integer >= 1; got {nproc!r}; pass e.g. 2")
    if distributed_world()[1] > 1:
        raise ParameterError(
            "`nproc` starts its own processes, but this process already runs under torchrun "
            f"(WORLD_SIZE={os.environ.get('WORLD_SIZE')}); leave out --nproc under torchrun"
        )
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"featscope-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
    )
    from torch.distributed.elastic.multiprocessing.api import SignalException

    # the launcher logs each step of a shutdown as a warning; featscope prints one line
    loggers = [logging.getLogger("torch.distributed.elastic")] + [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith("torch.distributed.elastic.")
    ]
    levels = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        results = elastic_launch(config, _entrypoint)(fn, nproc, kwargs, _console_level())
    except SignalException as exc:
        # the launcher replaced the command's signal handlers and stopped the workers
        raise Stopped(int(exc.sigval)) from None
    finally:
        for lg, lvl in levels:
            lg.setLevel(lvl)
    for rank in sorted(results):
        status, value = results[rank]
        if status == "error":
            _raise_payload(rank, value)
    return results[0][1]
