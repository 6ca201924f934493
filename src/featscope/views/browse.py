"""The dataset browser: what the model sees after each transform step.

``featscope.browse(...)`` composes :mod:`featscope.data.browse` (which images, their seeds and
file names, the columns of a mode), :func:`featscope.data.transforms.resolve_transform`,
:mod:`featscope.render.browse` (one grid per image) and the run folder; ``Output.export``
(``--out``) copies the pictures and ``browse.json`` once the folder is finished. Differences from
MMPretrain's ``browse_dataset.py`` are listed in ``docs/browse.md``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from featscope.data.browse import (
    DEFAULT_N,
    MODES,
    BrowseOptions,
    choose_positions,
    file_stems,
    load_image,
    open_images,
    sample_label,
    sample_seed,
    trace_columns,
)
from featscope.errors import DataError
from featscope.options import Extraction, Figures, Output
from featscope.render.browse import can_show, draw_browse, label_text, step_panel
from featscope.results import BrowsedSample, BrowseResult, Provenance
from featscope.sinks.open import open_run
from featscope.views._run import Stopwatch

__all__ = ["DEFAULT_N", "MODES", "BrowseOptions", "BrowseResult", "BrowsedSample", "browse"]

logger = logging.getLogger(__name__)


def browse(
    data: Any = None,
    transform: Any = None,
    *,
    options: BrowseOptions | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
) -> BrowseResult:
    """Draw a dataset's images as the model sees them, after each transform step.

    With no arguments: EfficientNet-Lite0's timm training augmentation (random resized crop,
    flip, colour jitter, to-tensor, normalise) on three ``skimage.data`` photos, every step a
    column.

    Parameters
    ----------
    data : str, os.PathLike, ImageSamples or None
        A class folder, a folder of loose images, an image file, a ``.csv``/``.tsv``/``.txt``
        file list, ``ImageSamples``, or ``None`` for the demo photos (see
        :func:`featscope.data.browse.open_images`).
    transform : str, callable or None
        A torchvision ``Compose`` (v1 or v2), any callable taking a PIL image, a model spec
        (``"timm:resnet50"``, ``"tv:resnet50"``, ``"demo:efficientnet-lite0"``, the default) or
        ``"py:package.module:name"``, which imports and runs that module (see
        :func:`featscope.data.transforms.resolve_transform`).
    options : BrowseOptions, optional
        Mode (``pipeline``, ``original``, ``transformed``, ``concat``), number of images
        (8, drawn at random; ``None``: all), seed of the choice and of the augmentations
        (seeded per image), and the phase of a model-spec transform.
    extraction : Extraction, optional
        ``skip_bad_images``: leave unreadable images out with a warning instead of failing.
    figures : Figures, optional
        ``formats``, ``dpi``, and ``show`` (open each picture in a window; where there is no
        display a warning says so).
    output : Output, optional
        The run folder ``<work_dir>/browse_<time>/`` (pictures, ``browse.json``, manifest;
        ``work_dir=None`` writes nothing), trackers, and ``export``: a folder that receives a
        copy of the pictures and ``browse.json`` once the run folder is finished.

    Returns
    -------
    BrowseResult
        The drawn samples (pictures, columns, sizes, file stems), step names, run folder,
        copies and timings.

    Raises
    ------
    ParameterError
        For a transform step that fails or returns something that is not an image (the step
        is named), or ``export`` without a ``work_dir``.
    DataError
        When the data cannot be read or holds no image (an empty folder).
    ModelSpecError
        When a transform spec is wrong.
    """
    from featscope.data.transforms import resolve_transform

    options, extraction = options or BrowseOptions(), extraction or Extraction()
    figures, output = figures or Figures(), output or Output()
    clock = Stopwatch()
    with clock("load"):
        samples = open_images(data)
        pipeline = resolve_transform(transform, phase=options.phase)
        positions = choose_positions(len(samples), options.n, options.seed)
    logger.info(
        "browse: %d of %d images from %s, transform %s (%d steps), mode %s",
        len(positions),
        len(samples),
        samples.source,
        pipeline.source,
        len(pipeline),
        options.mode,
    )
    show = figures.show and can_show("the images")
    drawn: list[BrowsedSample] = []
    with open_run(output, "browse") as run:
        for position, stem in zip(positions, file_stems(samples, positions), strict=True):
            with clock("load"):
                image = load_image(samples, position, skip_bad_images=extraction.skip_bad_images)
            if image is None:
                continue
            sample_id = samples.ids[position]
            with clock("transform"):
                seed = sample_seed(options.seed, position)
                outputs = trace_columns(
                    pipeline, image, mode=options.mode, seed=seed, image_id=sample_id
                )
            label = sample_label(samples, position)
            with clock("draw"):
                panels = [step_panel(out) for out in outputs]
                fig = draw_browse(panels, label=label_text(*label), heading=sample_id)
            with clock("write"):
                if run is not None:
                    run.write_figure(fig, stem, formats=figures.formats, dpi=figures.dpi)
            if show:
                from featscope.render import figures as window

                window.show(fig, block=True)
            drawn.append(BrowsedSample.from_panels(position, sample_id, label, panels, stem))
        if not drawn:
            raise DataError(
                f"none of the {len(positions)} images chosen from {samples.source!r} could be "
                "read; check the files"
            )
        params = {**dataclasses.asdict(options), "transform": pipeline.source}
        result = BrowseResult(
            samples=tuple(drawn),
            mode=options.mode,
            transform=pipeline.source,
            steps=pipeline.names,
            source=samples.source,
            formats=figures.formats,
            params=params,
            provenance=Provenance(source=samples.source, seed=options.seed),
            timings=clock.timings,
        )
        if run is not None:
            run.write(result)  # browse.json, and the result in the manifest
            run.add_metadata("timings", clock.timings)
    if run is None:
        return result
    result = dataclasses.replace(result, run_dir=run.final_path)
    if output.export is not None:
        from featscope.sinks.export import export_files

        copies = export_files([*result.files, result.run_dir / "browse.json"], output.export)
        result = dataclasses.replace(result, exported=tuple(copies))
    return result
