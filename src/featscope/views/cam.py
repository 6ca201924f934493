"""The class-activation-map view: which pixels made the model predict this class.

load (models, data.photos) -> the point (capture.cam, by the capture-point contract) -> per
photo: probabilities, the classes to explain (analysis.cam), the maps and their faithfulness
(pytorch-grad-cam through capture.cam) -> render (render.cam) -> write (sinks.cam).
docs/cam.md maps MMPretrain's vis_cam.py flags onto this view.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from featscope.analysis.cam import CamOptions
from featscope.data.photos import reject_model
from featscope.options import Extraction, Figures, Output, Preprocess
from featscope.results import CamMap, CamRun
from featscope.sinks.open import open_run
from featscope.views._run import Stopwatch

__all__ = ["DEFAULT_DEMO_MODEL", "CamMap", "CamOptions", "CamRun", "cam"]

#: The built-in default of ``featscope cam`` with no arguments (its last stage: ``blocks.6``).
DEFAULT_DEMO_MODEL = "demo:efficientnet-lite0"
_USAGE = "cam(data, model=...)"


def cam(
    data: Any = None,
    model: Any = None,
    point: str | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    options: CamOptions | None = None,
    preprocess: Preprocess | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
) -> CamRun:
    """Draw class activation maps (Grad-CAM and its family, by pytorch-grad-cam) of a classifier.

    With no ``data`` and no ``model``: EfficientNet-Lite0 with its ImageNet weights on three
    ``skimage.data`` photos, Grad-CAM of the predicted class at the last stage.

    Parameters
    ----------
    data : path, sequence, ImageSamples, optional
        Image files and folders, PIL images, uint8 arrays or ``(id, image)`` pairs (see
        :func:`~featscope.data.photos.collect_photos`). Default: the demo photos.
    model : str, torch.nn.Module, callable or ModelHandle, optional
        A classifier: a spec, a module, a factory or a handle. Default: the demo model.
    point : str, optional
        The capture point (vis_cam.py's ``--target-layers``): a module path or an alias of a
        module's output with a spatial layout; tokens are laid out by the capture-point
        contract. Default: the last spatial stage (:func:`featscope.capture.cam.default_cam_point`).
    checkpoint : path, optional
        State dict to load into the model.
    options : CamOptions, optional
        Methods, target classes or top-k, smoothing, the faithfulness metric, drawing, sheet.
    preprocess : Preprocess, optional
        Overrides of the model's input size, mean and std.
    extraction : Extraction, optional
        Its ``device``, ``batch_size`` (ScoreCAM/AblationCAM batches) and ``skip_bad_images``.
    figures : Figures, optional
        Its ``formats``, ``dpi`` and ``show`` (the sheet).
    output : Output, optional
        The run folder ``cam_<timestamp>/`` under ``work_dir`` (``None``: nothing written),
        ``backends`` and ``export`` (a copy of the pictures and the sheet).

    Returns
    -------
    CamRun
        The maps (``values`` in [0, 1] at the model's input size, the drawn pictures, the
        probability and faithfulness score of each), the sheet and the run folder.

    Raises
    ------
    featscope.errors.FeatscopeError
        Before any image is read: an unknown point or one without spatial layout (those with
        one listed), a model without a classifier output, a class name that is no class (the
        nearest listed); then unreadable images. No finished run folder is left then.
    """
    from featscope.analysis.cam import class_label, explain_image, resolve_targets
    from featscope.analysis.featmap import fit_photo
    from featscope.capture.cam import CamSession, cam_layer, class_names, default_cam_point
    from featscope.capture.maps import model_input
    from featscope.data.photos import collect_photos, read_photos, safe_name, take_unique
    from featscope.models import load_model
    from featscope.render.cam import cam_sheet, draw_explained
    from featscope.sinks.cam import record_cam_run, write_cam_map, write_cam_sheet

    reject_model(data, _USAGE)
    opts, extraction = options or CamOptions(), extraction or Extraction()
    figures, output = figures or Figures(), output or Output()
    clock, maps, rows, skipped, used = Stopwatch(), [], [], [], set()
    with clock("load"):
        kwargs = {"device": extraction.device, **(preprocess or Preprocess()).to_dict()}
        spec = DEFAULT_DEMO_MODEL if model is None else model
        handle = load_model(spec, checkpoint=checkpoint, **kwargs)
        layer = cam_layer(handle, point or default_cam_point(handle))
        session = CamSession(handle, layer, extraction.batch_size or 64)
        k = session.num_classes()  # a model without a classifier output fails here
        names = class_names(handle, k)
        resolve_targets([0.0] * k, names, opts.targets)  # unknown classes fail before any image
        photos, source = collect_photos(data)
    origin, params = handle.provenance(source), {**opts.to_dict(), "point": layer.name}
    with open_run(output, "cam") as run:
        reading = read_photos(photos, skip_bad_images=extraction.skip_bad_images, skipped=skipped)
        for photo, image in reading:
            given = photo.model_input()
            x, region = model_input(handle, image, given)  # a prepared sample is used as given
            with clock("cam"):
                found = explain_image(session, x, opts, names, origin.seed)
            shown = fit_photo(image, region, opts.max_size) if opts.overlaid else None
            with clock("draw"):
                drawn = draw_explained(found, names, shown, alpha=opts.alpha, by=opts.sheet)
            for method, c, j, title, picture in drawn:
                stem = take_unique(f"{photo.stem}_{safe_name(method)}_{c}", used)
                score, item_params = found.score(method, j), {**params, "region": list(region)}
                head = (photo.id, method, c, class_label(names, c), float(found.probabilities[c]))
                tail = (score, None if score is None else opts.metric, layer.name, stem)
                item_params["title"] = title
                maps.append(
                    CamMap(*head, found.maps[method][j], picture, *tail, item_params, origin)
                )
                if run is not None:
                    with clock("write"):
                        write_cam_map(run, maps[-1], figures.formats, figures.dpi)
            rows.append([d[-1] for d in drawn])
        ids = [p.id for p in photos if p.id not in dict(skipped)]
        sheet = cam_sheet(rows, ids) if opts.sheet != "none" and maps else None
        done = CamRun(tuple(maps), None, origin.model or "", layer.name, params, sheet)
        done = dataclasses.replace(done, skipped=tuple(skipped))
        if run is not None:
            if sheet is not None:
                write_cam_sheet(run, sheet, figures.formats, figures.dpi)
            record_cam_run(run, done, origin, source, photos, params)
    done = dataclasses.replace(done, run_dir=run and run.final_path, timings=clock.timings)
    return _finish(done, figures, output)


def _finish(done: CamRun, figures: Figures, output: Output) -> CamRun:
    """Export copies of the finished pictures (``--out``) and show the sheet (``--show``)."""
    from featscope.render import show
    from featscope.render.featmap import picture_figure
    from featscope.sinks.export import export_files

    if output.export is not None and done.run_dir is not None:
        stems = [m.file for m in done] + (["cam_sheet"] if done.sheet is not None else [])
        files = [done.run_dir / f"{s}.{fmt}" for s in stems for fmt in figures.formats]
        done = dataclasses.replace(done, exported=tuple(export_files(files, output.export)))
    if figures.show and done.sheet is not None:
        show(picture_figure(done.sheet, figures.dpi))
    return done
