"""The reconstruction view: what a masked-image model (MAE, SimMIM, MaskFeat) fills in.

``featscope.reconstruct(...)`` is the whole job in one call; ``featscope recon`` is a thin wrapper
around it. It composes :func:`featscope.models.mim.load_mim` (one interface for every family),
:func:`featscope.capture.masked.masked_batches` (seeded masks and the forward pass),
:func:`featscope.analysis.recon.reconstruct_batch` (the panels and errors),
:func:`featscope.render.recon.plot_reconstruction` and the run folder, which holds one figure
per image (``recon_<image>.png``), ``overview.png`` (all images, one row each, when there are
several), ``errors.csv``/``errors.json`` and ``masks.npy`` (the hidden patches, ``(N, gh, gw)``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from featscope.analysis.recon import RECON_BATCH_SIZE, ReconOptions, reconstruct_batch
from featscope.options import Extraction, Figures, Output, Preprocess
from featscope.render import show
from featscope.render.recon import plot_reconstruction, plot_reconstruction_grid
from featscope.results import ReconstructionResult, ReconstructionRun
from featscope.sinks.open import open_run
from featscope.sinks.recon import export_format, export_reconstruction, write_reconstruction
from featscope.views._run import Stopwatch

__all__ = ["DEFAULT_DEMO_MODEL", "ReconOptions", "reconstruct"]

logger = logging.getLogger(__name__)

#: The built-in default of ``featscope recon`` with no arguments.
DEFAULT_DEMO_MODEL = "demo:mae"


def reconstruct(
    data: Any = None,
    model: Any = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    options: ReconOptions | None = None,
    preprocess: Preprocess | None = None,
    extraction: Extraction | None = None,
    figures: Figures | None = None,
    output: Output | None = None,
    strict: bool = False,
) -> ReconstructionRun:
    """Mask images, let a masked-image model fill them in, and draw the result.

    Parameters
    ----------
    data : path, folder, PIL image, array or a sequence of them, optional
        Default: the held-out Fashion-MNIST images shipped with ``demo:mae`` when no model is
        given, else the demo photos.
    model : str, torch.nn.Module, ModelHandle or MIMModel, optional
        ``"hf:<dir>"`` (``ViTMAEForPreTraining``, ``ViTForMaskedImageModeling``,
        ``SwinForMaskedImageModeling``), ``"mae:vit_large_patch16"`` (MAE research-code
        checkpoint), ``"maskfeat:vit_base_patch16"`` (MMSelfSup checkpoint), ``"demo:mae"``, or a
        module of one of these. Default: the built-in ``demo:mae``.
    checkpoint : str or os.PathLike, optional
        Weights to load into the model.
    options : ReconOptions, optional
        Mask ratio, seed, norm-pix, mask colour and mask patch size (default: the model's).
    preprocess : Preprocess, optional
        Only ``input_size``, which must be the model's (these models take one input size).
    extraction : Extraction, optional
        ``device``, ``batch_size`` (default 8; image ``i`` gets the same mask for the same seed
        whatever the batch size) and ``skip_bad_images`` (unreadable images are skipped with a
        warning and listed in ``skipped``; the others keep the masks of their positions).
    figures : Figures, optional
        ``formats``, ``dpi`` and ``show``.
    output : Output, optional
        The run folder (``work_dir=None``: none) and ``export``, a copy of each figure made after
        the run folder is finished: the format comes from its suffix (default png); with several
        images the copies are numbered ``<stem>_0<suffix>``, ``<stem>_1<suffix>``, ...
    strict : bool, default False
        Raise when checkpoint keys do not all match.

    Returns
    -------
    ReconstructionRun
        The result (reads like a sequence of :class:`~featscope.results.ReconstructedImage`),
        where it was written, the stage timings and the skipped images.

    Raises
    ------
    ModelSpecError
        When the model is not a masked-image model.
    ParameterError
        For an invalid option, an input size other than the model's, an export suffix that is
        not a figure format, or ``norm_pix`` on a model that is not an MAE.
    DataError
        When an image cannot be read (unless ``skip_bad_images``), or none can.
    CheckpointError
        When the checkpoint does not load (or an MAE checkpoint has no decoder).
    """
    from featscope.capture.masked import masked_batches
    from featscope.data.photos import collect_photos
    from featscope.models.mim import load_mim

    options, preprocess = options or ReconOptions(), preprocess or Preprocess()
    extraction = extraction or Extraction(batch_size=RECON_BATCH_SIZE)
    figures = figures or Figures()
    output = output or Output()
    export = export_format(output.export, output.work_dir)
    clock = Stopwatch()
    with clock("load"):
        spec = DEFAULT_DEMO_MODEL if model is None else model
        mim = load_mim(spec, checkpoint=checkpoint, device=extraction.device, strict=strict)
    params = options.resolve(mim, preprocess)
    if data is None and model is None:
        from featscope.models.demo import demo_mae_samples

        data = demo_mae_samples()
    items, source = collect_photos(data)
    skipped: list[tuple[str, str]] | None = [] if extraction.skip_bad_images else None
    with open_run(output, "recon") as run:
        with clock("predict"):
            batches = masked_batches(
                mim,
                items,
                mask_ratio=params["mask_ratio"],
                mask_patch_size=params["mask_patch_size"],
                seed=options.seed,
                batch_size=extraction.batch_size or RECON_BATCH_SIZE,
                skipped=skipped,
            )
            images = [image for batch in batches for image in reconstruct_batch(batch, params)]
        result = ReconstructionResult(
            images, mim.family, params, mim.provenance(source, options.seed)
        )
        with clock("draw"):
            label = "masked-patch HOG MSE" if params["error"] == "mse_hog" else "masked-patch MSE"
            # nothing to draw when the figures go nowhere
            wanted = run is not None or figures.show
            drawn = [plot_reconstruction(i, error_label=label) for i in result] if wanted else []
            several = run is not None and len(result) > 1
            overview = plot_reconstruction_grid(result, error_label="MSE") if several else None
        with clock("write"):
            if run is not None:
                # the export's format is drawn into the run folder too: the export is a copy
                formats = (*figures.formats, export) if export else figures.formats
                write_reconstruction(
                    run, result, drawn, overview=overview, formats=formats, dpi=figures.dpi
                )
                if skipped:
                    run.add_metadata("skipped", [list(pair) for pair in skipped])
    run_dir = None if run is None else run.final_path
    files: list[Any] = []
    if export is not None:
        # after the run folder is finished: a failed run leaves no copy outside it either
        with clock("write"):
            files = export_reconstruction(result, run_dir, output.export)  # type: ignore[arg-type]
    for image in result:
        logger.info("%s: masked-patch error %.5f", image.image_id, image.error)
    if figures.show:
        for figure in drawn:
            show(figure)
    return ReconstructionRun(result, run_dir, tuple(files), clock.timings, tuple(skipped or ()))
