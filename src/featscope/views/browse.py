"""The dataset browser: what the model sees after each transform step.

``featscope.browse(...)`` is the whole job in one call; ``featscope browse`` is a thin wrapper.
It composes :func:`featscope.data.transforms.resolve_transform` (a transform or spec into named
steps), :func:`featscope.data.transforms.trace` (one image through every step) and
:func:`featscope.render.browse.draw_browse` (the grid), and writes one image per sample.

Modes (MMPretrain's ``browse_dataset.py``):

* ``original``: the image as loaded;
* ``transformed``: the output of the last step (what the model is fed);
* ``concat``: original | transformed side by side;
* ``pipeline``: every step as a column, titled with the step's name and the image size.

Where featscope differs from that tool on purpose:

* files are named ``<index>_<class>_<stem>``, so images with the same file name in two class
  folders no longer overwrite each other;
* the grid modes work with current matplotlib (no private ``adjust_bbox`` call);
* every step's output is shown, tensors included, with ``Normalize`` undone for display (the
  tool showed only steps that write an ``img`` key);
* samples are drawn at random with ``seed`` (the tool walked the dataset from the start), and
  the random augmentations are seeded per sample, so a run is reproducible;
* ``show`` needs a display; without one a warning says so instead of a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from featscope.data.samples import ImageSamples
from featscope.errors import DataError, OutputError, ParameterError
from featscope.views._run import Stopwatch, open_run

__all__ = ["DEFAULT_N", "MODES", "BrowseResult", "BrowsedSample", "browse", "display_problem"]

logger = logging.getLogger(__name__)

#: The drawing modes, as in MMPretrain's ``browse_dataset.py``.
MODES = ("original", "transformed", "concat", "pipeline")
#: Samples drawn when ``n`` is not given.
DEFAULT_N = 8
_DEMO = "demo:photos"
_LIST_EXTENSIONS = (".csv", ".tsv", ".txt")
_NON_INTERACTIVE = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


@dataclass(frozen=True)
class BrowsedSample:
    """One drawn sample.

    Attributes
    ----------
    index : int
        Position of the sample in the data source.
    id : str
        Its id: the path relative to the data root, or the demo photo's name.
    label : int or None
        Class index (None for unlabelled images).
    class_name : str or None
        Class name.
    columns : tuple of str
        Title of each drawn column (``"Original"``, step names, ``"transformed"``).
    sizes : tuple of (int, int)
        ``(height, width)`` of each column's (first) image.
    images : tuple of tuple of numpy.ndarray
        The drawn pictures, ``(H, W, 3)`` uint8: one tuple per column, one image per view.
    file : str
        File name without suffix, unique within the run.
    files : tuple of pathlib.Path
        The files written (one per format); empty when nothing was written.
    """

    index: int
    id: str
    label: int | None
    class_name: str | None
    columns: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    images: tuple[tuple[np.ndarray, ...], ...]
    file: str
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class BrowseResult:
    """What one browse run drew and wrote.

    Attributes
    ----------
    samples : tuple of BrowsedSample
        The drawn samples, in source order.
    mode : str
        One of :data:`MODES`.
    transform : str
        The transform's source (``"timm:resnet18 (train)"``, a class name).
    steps : tuple of str
        Names of the transform's steps, in order.
    source : str
        Where the images came from.
    out_dir : pathlib.Path or None
        Folder holding the images (the run folder, or ``out_dir``); None if nothing was written.
    run_dir : pathlib.Path or None
        The finished run folder (None with ``out_dir`` or ``work_dir=None``).
    params : Mapping
        The options used.
    timings : dict of str to float
        Seconds per stage (``load``, ``transform``, ``draw``, ``write``).
    """

    samples: tuple[BrowsedSample, ...]
    mode: str
    transform: str
    steps: tuple[str, ...]
    source: str
    out_dir: Path | None = None
    run_dir: Path | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[BrowsedSample]:
        return iter(self.samples)

    @property
    def files(self) -> list[Path]:
        """Every file written, in sample order."""
        return [path for sample in self.samples for path in sample.files]


def browse(
    data: Any = None,
    transform: Any = None,
    *,
    mode: str = "pipeline",
    n: int | None = DEFAULT_N,
    seed: int = 0,
    phase: str = "train",
    skip_bad_images: bool = False,
    work_dir: str | os.PathLike[str] | None = "work_dirs",
    out_dir: str | os.PathLike[str] | None = None,
    backends: Sequence[str] | None = None,
    formats: str | Sequence[str] = ("png",),
    dpi: float = 150,
    show: bool = False,
) -> BrowseResult:
    """Draw a dataset's images as the model sees them, after each transform step.

    With no arguments: EfficientNet-Lite0's timm training augmentation (random resized crop,
    flip, colour jitter, to-tensor, normalise) on three ``skimage.data`` photos, every step a
    column.

    Parameters
    ----------
    data : str, os.PathLike, ImageSamples or None
        A folder with one sub-folder per class, a folder of loose images (unlabelled), an image
        file, a ``.csv``/``.tsv``/``.txt`` list of ``path,label`` rows, ``ImageSamples``, or
        ``None`` / ``"demo:photos"`` for the demo photos.
    transform : str, callable or None
        A torchvision ``Compose`` (v1 or v2), any callable taking a PIL image, a model spec whose
        transform to use (``"timm:resnet50"``, ``"tv:resnet50"``, ``"demo:efficientnet-lite0"``) or
        ``"py:package.module:name"`` (see :func:`featscope.data.transforms.resolve_transform`;
        a py: spec imports and runs that module). Default: ``demo:efficientnet-lite0``.
    mode : {"pipeline", "original", "transformed", "concat"}, default "pipeline"
        What each image shows (see the module docstring).
    n : int or None, default 8
        Number of samples, drawn at random with ``seed`` (all of them when there are fewer, or
        with ``None``).
    seed : int, default 0
        Seed of the sample choice and of the random augmentations (seeded per sample).
    phase : {"train", "eval"}, default "train"
        For a model-spec transform: its training augmentation or its evaluation transform.
    skip_bad_images : bool, default False
        Leave unreadable images out (with a warning) instead of failing.
    work_dir : path or None, default "work_dirs"
        Parent of the run folder ``browse_<time>`` the images go to; None writes nothing.
    out_dir : path, optional
        Write the images straight into this folder (created if missing) instead of a run
        folder; files of the same name there are replaced. When the run fails, the files it
        wrote there are removed again.
    backends : sequence of str, optional
        Extra logging backends (see :func:`featscope.views._run.open_run`).
    formats : str or sequence of str, default ("png",)
        Image formats: png, pdf, svg, jpg.
    dpi : float, default 150
        Resolution of raster images.
    show : bool, default False
        Also open each image in a window; where there is no display a warning says so.

    Returns
    -------
    BrowseResult
        The drawn samples (pictures, columns, sizes, files), step names and timings.

    Raises
    ------
    ParameterError
        For an unknown mode or phase, ``n < 1``, or a transform step that fails or returns
        something that is not an image (the step is named).
    DataError
        When the data cannot be read or holds no image (an empty folder).
    ModelSpecError
        When a transform spec is wrong.
    """
    from featscope.data.transforms import resolve_transform

    if mode not in MODES:
        raise ParameterError(f"`mode` {mode!r} is not one of {', '.join(MODES)}")
    if n is not None and (isinstance(n, bool) or int(n) != n or n < 1):
        raise ParameterError(f"`n` must be a positive number of samples; got {n!r}; pass e.g. 8")
    clock = Stopwatch()
    with clock("load"):
        samples = _open_data(data)
        pipeline = resolve_transform(transform, phase=phase)
        positions = _choose(len(samples), n, seed)
    params = {"mode": mode, "n": n, "seed": seed, "phase": phase, "transform": pipeline.source}
    logger.info(
        "browse: %d of %d images from %s, transform %s (%d steps), mode %s",
        len(positions),
        len(samples),
        samples.source,
        pipeline.source,
        len(pipeline),
        mode,
    )
    if show:
        problem = display_problem()
        if problem is not None:
            warnings.warn(
                f"cannot show the images: {problem}; they are written to the output folder "
                "instead (open them there), or run where there is a display",
                UserWarning,
                stacklevel=2,
            )
            show = False
    target = Path(out_dir) if out_dir is not None else None
    made = target is not None and not target.exists()
    if target is not None:
        _make_folder(target)
    run_context = open_run(None if target is not None else work_dir, "browse", backends)
    drawn: list[BrowsedSample] = []
    output = None
    try:
        with run_context as run:
            stems = _file_stems(samples, positions)
            output = _Output(run=run, folder=target, formats=formats, dpi=dpi, show=show)
            for position, stem in zip(positions, stems, strict=True):
                sample = _browse_one(
                    samples,
                    int(position),
                    stem,
                    pipeline,
                    mode,
                    seed,
                    clock,
                    output,
                    skip_bad_images,
                )
                if sample is not None:
                    drawn.append(sample)
            if not drawn:
                raise DataError(
                    f"none of the {len(positions)} images chosen from {samples.source!r} could "
                    "be read; check the files"
                )
            if run is not None:
                run.write_json("browse", _index(drawn, pipeline, samples.source, params))
                run.add_metadata("browse", params)
                run.add_metadata("timings", clock.timings)
        if target is not None:
            _write_index(target, _index(drawn, pipeline, samples.source, params))
    except BaseException:
        # a run folder is discarded by open_run; a plain out_dir must not keep the pictures of a
        # failed run either, or they would look like a finished (shorter) one
        if target is not None:
            _discard(output.written if output is not None else [], target if made else None)
        raise
    run_dir = run.final_path if run is not None else None
    if run_dir is not None:
        # write_figure returned paths inside the hidden .partial folder, renamed since
        drawn = [
            dataclasses.replace(s, files=tuple(run_dir / path.name for path in s.files))
            for s in drawn
        ]
    return BrowseResult(
        samples=tuple(drawn),
        mode=mode,
        transform=pipeline.source,
        steps=pipeline.names,
        source=samples.source,
        out_dir=target if target is not None else run_dir,
        run_dir=run_dir,
        params=params,
        timings=clock.timings,
    )


# --------------------------------------------------------------------------- one sample


@dataclass(frozen=True)
class _Output:
    """Where and how each picture goes: the run folder or a plain folder, and a window."""

    run: Any
    folder: Path | None
    formats: Any
    dpi: float
    show: bool
    written: list[Path] = field(default_factory=list)  # files put in `folder` so far

    def write(self, fig: Any, stem: str) -> tuple[Path, ...]:
        files: tuple[Path, ...] = ()
        if self.run is not None:
            files = tuple(self.run.write_figure(fig, stem, formats=self.formats, dpi=self.dpi))
        elif self.folder is not None:
            from featscope.options import check_formats
            from featscope.render.figures import save_figure

            # recorded before saving: a format that fails half-way still leaves its name here
            formats = check_formats(self.formats)
            self.written.extend(self.folder / f"{stem}.{fmt}" for fmt in formats)
            files = tuple(save_figure(fig, self.folder / stem, formats=self.formats, dpi=self.dpi))
        if self.show:
            from featscope.render.figures import show

            show(fig, block=True)
        return files


def _browse_one(
    samples: ImageSamples,
    position: int,
    stem: str,
    pipeline: Any,
    mode: str,
    seed: int,
    clock: Stopwatch,
    output: _Output,
    skip_bad_images: bool = False,
) -> BrowsedSample | None:
    from featscope.data.transforms import trace
    from featscope.render.browse import draw_browse, label_text

    sample_id = samples.ids[position]
    label = int(samples.labels[position]) if samples.labels[position] >= 0 else None
    class_name = samples.class_names[label] if label is not None else None
    with clock("load"):
        try:
            image = samples.load(position)
        except DataError as exc:
            if not skip_bad_images:
                raise
            warnings.warn(f"skipped an unreadable image: {exc}", UserWarning, stacklevel=3)
            return None
    with clock("transform"):
        if mode == "original":
            from featscope.data.transforms import Pipeline

            outputs = trace(Pipeline((), pipeline.source), image, image_id=sample_id)
        else:
            outputs = trace(pipeline, image, seed=_sample_seed(seed, position), image_id=sample_id)
    with clock("draw"):
        panels = _panels(outputs, mode)
        fig = draw_browse(panels, label=label_text(label, class_name), heading=sample_id)
    with clock("write"):
        files = output.write(fig, stem)
    return BrowsedSample(
        index=position,
        id=sample_id,
        label=label,
        class_name=class_name,
        columns=tuple(panel.title for panel in panels),
        sizes=tuple(panel.images[0].shape[:2] for panel in panels),
        images=tuple(panel.images for panel in panels),
        file=stem,
        files=files,
    )


def _panels(outputs: Sequence[Any], mode: str) -> list[Any]:
    from featscope.render.browse import Panel, overlay_mask, to_display

    def panel(output: Any, title: str) -> Panel:
        images = []
        for view, mask in zip(output.views, output.masks, strict=True):
            picture = to_display(view, output.stats)
            images.append(picture if mask is None else overlay_mask(picture, mask))
        return Panel(title=title, images=tuple(images), note=_note(output))

    first, last = outputs[0], outputs[-1]
    if mode == "original":
        return [panel(first, "original")]
    if mode == "transformed":
        return [panel(last, "transformed")]
    if mode == "concat":
        return [panel(first, "original"), panel(last, "transformed")]
    return [panel(output, output.name) for output in outputs]


def _note(output: Any) -> str:
    """Describe the output: its type and, for floats, its value range (what the model is fed)."""
    view = output.views[0]
    if view.dtype.kind != "f" or view.size == 0:
        return output.kind
    return f"{output.kind} [{float(view.min()):.2g}, {float(view.max()):.2g}]"


def _sample_seed(seed: int, position: int) -> int:
    """Return a seed per sample: an image's augmentation must not depend on the others drawn."""
    return int(np.random.SeedSequence([int(seed), int(position)]).generate_state(1)[0])


# --------------------------------------------------------------------------- data


def _open_data(data: Any) -> ImageSamples:
    """Open the data argument; a folder of loose images or an image file is unlabelled."""
    from featscope.data.sources import IMAGE_EXTENSIONS, file_list, image_folder

    if isinstance(data, ImageSamples):
        if len(data) == 0:
            raise DataError("`data` has no samples; pass a folder or file list with images")
        return data
    if data is None or data == _DEMO:
        return _demo_samples()
    if not isinstance(data, (str, os.PathLike)):
        raise DataError(
            f"`data` must be a folder, an image file, a .csv/.tsv/.txt file list, {_DEMO} or "
            f"ImageSamples; got {type(data).__name__}"
        )
    path = Path(data)
    if path.is_dir():
        entries = [e for e in path.iterdir() if not e.name.startswith(".")]
        if not entries:
            raise DataError(
                f"data folder '{path}' is empty; put images in '{path}/<class name>/' (or "
                "directly in it), or pass another folder"
            )
        if any(e.is_dir() for e in entries):
            return image_folder(path)
        return _loose_images([path], str(path))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in _LIST_EXTENSIONS:
            return file_list(path)
        if suffix in IMAGE_EXTENSIONS:
            return _loose_images([path], str(path))
    raise DataError(
        f"data '{path}' is neither a folder, an image file nor a .csv/.tsv/.txt file list; check "
        f"the path, or pass {_DEMO}"
    )


def _loose_images(paths: list[Path], source: str) -> ImageSamples:
    from featscope.data.images import open_rgb
    from featscope.data.photos import image_paths

    files = image_paths(paths)
    base = paths[0] if paths[0].is_dir() else paths[0].parent
    ids = tuple(f.relative_to(base).as_posix() for f in files)
    return ImageSamples(
        ids=ids,
        labels=np.full(len(ids), -1, dtype=np.int64),
        class_names=(),
        source=source,
        loader=lambda i: open_rgb(files[i]),
    )


def _demo_samples() -> ImageSamples:
    from featscope.data.photos import demo_photos

    photos = demo_photos()
    names = tuple(name for name, _ in photos)
    images = [image for _, image in photos]
    return ImageSamples(
        ids=names,
        labels=np.arange(len(names), dtype=np.int64),
        class_names=names,
        source=_DEMO,
        loader=lambda i: images[i],
    )


def _choose(total: int, n: int | None, seed: int) -> np.ndarray:
    if n is None or n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=int(n), replace=False))


# --------------------------------------------------------------------------- files


def _file_stems(samples: ImageSamples, positions: np.ndarray) -> list[str]:
    """``<index>_<class>_<stem>``: two ``cat.jpg`` in two class folders get two files."""
    from featscope.data.photos import safe_name, take_unique

    width = max(3, len(str(max(len(samples) - 1, 0))))
    used: set[str] = set()
    stems = []
    for position in positions:
        position = int(position)
        sample_id = samples.ids[position]
        label = int(samples.labels[position])
        stem = PurePath(sample_id).stem or "image"
        parts = [f"{position:0{width}d}"]
        if label >= 0 and samples.class_names[label] != stem:
            parts.append(samples.class_names[label])
        parts.append(stem)
        stems.append(take_unique(safe_name("_".join(parts)), used))
    return stems


def _discard(files: Sequence[Path], folder: Path | None) -> None:
    """Remove the files of a failed run, and ``folder`` when this run made it."""
    for path in files:
        path.unlink(missing_ok=True)
    if folder is not None:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty: anything else there is not ours


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create `out_dir` '{folder}': {exc.strerror or exc}; pass a writable folder"
        ) from exc


def _index(
    drawn: Sequence[BrowsedSample], pipeline: Any, source: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "source": source,
        "transform": pipeline.source,
        "steps": list(pipeline.names),
        "params": dict(params),
        "samples": [
            {
                "index": s.index,
                "id": s.id,
                "label": s.label,
                "class_name": s.class_name,
                "columns": list(s.columns),
                "sizes": [list(size) for size in s.sizes],
                "file": s.file,
            }
            for s in drawn
        ],
    }


def _write_index(folder: Path, index: Mapping[str, Any]) -> None:
    import json

    from featscope._atomic import write_text_atomic

    path = folder / "browse.json"
    try:
        write_text_atomic(path, json.dumps(index, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- showing


def display_problem() -> str | None:
    """Say why no window can be opened here, or return None when one can.

    Returns
    -------
    str or None
        The reason (a non-interactive matplotlib backend, or no ``DISPLAY`` on Linux).
    """
    import matplotlib

    backend = matplotlib.get_backend()
    if backend.lower() in _NON_INTERACTIVE:
        return f"matplotlib backend {backend!r} is non-interactive"
    if backend.lower().startswith("module://"):
        return None  # notebook backends draw inline
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "there is no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    return None
