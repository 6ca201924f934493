"""The reconstruction view: what a masked-image model (MAE, SimMIM, MaskFeat) fills in.

``featscope.reconstruct(...)`` is the whole job in one call; ``featscope recon`` is a thin wrapper
around it. It composes :func:`featscope.models.mim.load_mim` (one interface for every family),
the seeded masks of :func:`featscope.models.mim.random_masks`,
:func:`featscope.render.recon.plot_reconstruction` and the run folder.

Per image the result holds, as numpy arrays in the geometry of the model input: ``original``
(the resized input), ``mask`` (pixels of hidden patches), ``masked``, ``reconstruction`` (the
prediction everywhere), ``pasted`` (original on visible patches, prediction on hidden ones) and
``error``: the mean squared error over the hidden pixels, on the 0-1 pixel scale (for MaskFeat,
over the HOG values of the hidden patches).

The run folder holds one figure per image (``recon_<image>.png``), ``overview.png`` (all images,
one row each, when there are several), ``errors.csv``/``errors.json`` and ``masks.npy`` (the
hidden patches, ``(N, gh, gw)``).

Where featscope differs from MMSelfSup's ``visualize_reconstruction.py`` on purpose:

* the prediction is de-normalised once: with norm-pix targets by each patch's mean and std,
  then by the model's input normalisation; without norm-pix by the input normalisation only
  (the reference de-normalises twice without ``--norm-pix``);
* any number of images in batches of any size; image ``i`` gets the same mask for the same
  seed whatever the batch size (the reference: batch size 1, one image);
* the mask is chosen by featscope for every family (MAE too), so ``seed`` fixes it;
* ``norm_pix`` defaults to what the model was trained with (HF ``config.norm_pix_loss``;
  MAE research-code checkpoints: pixel targets, as the "visualize" checkpoints were trained);
* MaskFeat shows five panels: the input, the masked input, the input's HOG picture, the
  predicted HOG picture and the predicted HOG on hidden patches with the input's HOG on visible
  ones, all as grey line pictures (the reference pushes the HOG picture through the image
  de-normalisation, turning its black background into the mean colour).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featscope.data.images import skip_reason
from featscope.errors import DataError, OutputError, ParameterError
from featscope.models import parse_size
from featscope.views._run import Stopwatch, open_run

__all__ = [
    "DEFAULT_DEMO_MODEL",
    "ReconstructedImage",
    "ReconstructionResult",
    "parse_mask_color",
    "reconstruct",
]

logger = logging.getLogger(__name__)

#: The built-in default of ``featscope recon`` with no arguments.
DEFAULT_DEMO_MODEL = "demo:mae"
_NAMED_COLORS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
}


@dataclass(frozen=True)
class ReconstructedImage:
    """One image's reconstruction.

    Attributes
    ----------
    image_id : str
        The image: its path as given, or its name.
    original : numpy.ndarray
        ``(H, W, 3)`` uint8: the model input (resized and cropped), de-normalised.
    mask : numpy.ndarray
        ``(H, W)`` bool, True on pixels of hidden patches.
    patch_mask : numpy.ndarray
        ``(gh, gw)`` bool, True on hidden model patches.
    masked : numpy.ndarray
        ``(H, W, 3)`` uint8: the original with hidden pixels in the mask colour.
    reconstruction : numpy.ndarray
        ``(H, W, 3)`` uint8: the prediction everywhere (MaskFeat: the predicted HOG picture).
    pasted : numpy.ndarray
        ``(H, W, 3)`` uint8: original on visible patches, prediction on hidden ones (MaskFeat:
        the input's HOG on visible patches, the predicted HOG on hidden ones).
    error : float
        Mean squared error over the hidden pixels on the 0-1 scale (MaskFeat: over the HOG
        values of hidden patches).
    hog_original : numpy.ndarray or None
        ``(H, W, 3)`` uint8 HOG picture of the input (MaskFeat only).
    hog_prediction, hog_target : numpy.ndarray or None
        ``(3, 9, hc, wc)`` float32 predicted and input HOG cell histograms (MaskFeat only).
    file : str or None
        File stem of the figure in the run folder.
    """

    image_id: str
    original: np.ndarray
    mask: np.ndarray
    patch_mask: np.ndarray
    masked: np.ndarray
    reconstruction: np.ndarray
    pasted: np.ndarray
    error: float
    hog_original: np.ndarray | None = None
    hog_prediction: np.ndarray | None = None
    hog_target: np.ndarray | None = None
    file: str | None = None


@dataclass(frozen=True)
class ReconstructionResult:
    """What one reconstruction run produced.

    Attributes
    ----------
    images : tuple of ReconstructedImage
        One per input image, in input order.
    model : str
        The model spec.
    family : {"mae", "simmim", "maskfeat"}
        The model family.
    run_dir : pathlib.Path or None
        The finished run folder (``None`` when ``work_dir=None``).
    params : Mapping
        ``mask_ratio``, ``mask_patch_size``, ``patch_size``, ``seed``, ``norm_pix``,
        ``mask_color``, ``input_size``, ``error`` (what the error measures).
    files : tuple of pathlib.Path
        Figures written outside the run folder (``out_file``).
    timings : dict of str to float
        Seconds per stage (``load``, ``predict``, ``draw``, ``write``).
    skipped : tuple of (str, str)
        ``(image, reason)`` of unreadable images skipped with ``skip_bad_images=True``.
    """

    images: tuple[ReconstructedImage, ...]
    model: str
    family: str
    run_dir: Path | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ReconstructedImage]:
        return iter(self.images)

    def __getitem__(self, index: int) -> ReconstructedImage:
        return self.images[index]

    @property
    def original(self) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 originals."""
        return np.stack([i.original for i in self.images])

    @property
    def mask(self) -> np.ndarray:
        """``(N, H, W)`` bool pixel masks (True: hidden)."""
        return np.stack([i.mask for i in self.images])

    @property
    def reconstruction(self) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 reconstructions."""
        return np.stack([i.reconstruction for i in self.images])

    @property
    def pasted(self) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 reconstructions with the visible patches pasted back."""
        return np.stack([i.pasted for i in self.images])

    @property
    def errors(self) -> np.ndarray:
        """``(N,)`` masked-patch errors."""
        return np.array([i.error for i in self.images], dtype=np.float64)

    @property
    def error(self) -> float:
        """Mean masked-patch error over the images."""
        return float(self.errors.mean())


def parse_mask_color(
    value: str | Sequence[float] | None, mean: Sequence[float]
) -> tuple[int, int, int]:
    """Turn a mask colour option into RGB 0-255.

    Parameters
    ----------
    value : str, sequence of 3 numbers or None
        ``None`` or ``"mean"``: the model's normalisation mean (the reference's colour, about
        RGB 124,116,104 for ImageNet models); a name (``black``, ``white``, ``gray``, ``red``,
        ``green``, ``blue``), ``#rrggbb``, ``"r,g,b"`` or three numbers 0-255.
    mean : sequence of 3 float
        The model's mean on the 0-1 scale.

    Returns
    -------
    (int, int, int)
        The colour.

    Raises
    ------
    ParameterError
        For anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "mean"):
        return tuple(round(float(m) * 255) for m in mean)  # type: ignore[return-value]
    parts: Sequence[Any]
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _NAMED_COLORS:
            return _NAMED_COLORS[text]
        if re.fullmatch(r"#[0-9a-f]{6}", text):
            return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        parts = [p for p in re.split(r"[,\s]+", text) if p]
    else:
        parts = list(value)
    try:
        rgb = [float(p) for p in parts]
    except (TypeError, ValueError):
        rgb = []
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ParameterError(
            f"`mask_color` {value!r} is not a colour: pass mean, a name "
            f"({', '.join(_NAMED_COLORS)}), #rrggbb or three values 0-255 such as 0,0,0"
        )
    return tuple(round(c) for c in rgb)  # type: ignore[return-value]


def reconstruct(
    model: Any = None,
    images: Any = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    mask_ratio: float | None = None,
    seed: int = 0,
    norm_pix: bool | None = None,
    mask_color: str | Sequence[float] | None = None,
    mask_patch_size: int | None = None,
    input_size: int | Sequence[int] | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    work_dir: str | os.PathLike[str] | None = "work_dirs",
    backends: Sequence[str] | None = None,
    formats: str | Sequence[str] = ("png",),
    dpi: float = 150,
    out_file: str | os.PathLike[str] | None = None,
    show: bool = False,
    strict: bool = False,
    skip_bad_images: bool = False,
) -> ReconstructionResult:
    """Mask images, let a masked-image model fill them in, and draw the result.

    Parameters
    ----------
    model : str, torch.nn.Module, ModelHandle or MIMModel, optional
        ``"hf:<dir>"`` (``ViTMAEForPreTraining``, ``ViTForMaskedImageModeling``,
        ``SwinForMaskedImageModeling``), ``"mae:vit_large_patch16"`` (MAE research-code
        checkpoint), ``"maskfeat:vit_base_patch16"`` (MMSelfSup checkpoint), ``"demo:mae"``, or a
        module of one of these. Default: the built-in ``demo:mae``.
    images : path, folder, PIL image, array or a sequence of them, optional
        Default: the held-out Fashion-MNIST images shipped with ``demo:mae`` when no model is
        given, else the demo photos.
    checkpoint : str or os.PathLike, optional
        Weights to load into the model.
    mask_ratio : float, optional
        Fraction of mask patches hidden, in (0, 1). Default: the family's (MAE 0.75, SimMIM 0.6,
        MaskFeat 0.4).
    seed : int, default 0
        Seed of the masks: the same seed gives the same mask for the same image position.
    norm_pix : bool, optional
        Whether the model predicts norm-pix targets (MAE only). Default: as trained (HF
        ``config.norm_pix_loss``; False for MAE research-code checkpoints).
    mask_color : str or 3 numbers, optional
        Colour of hidden patches in the *masked* panel (see :func:`parse_mask_color`). Default:
        the normalisation mean, as in the reference.
    mask_patch_size : int, optional
        Side of a mask patch in pixels, a multiple of the model's patch size (SimMIM's mask
        generator). Default: SimMIM 32, others the model's patch size.
    input_size : int or (int, int), optional
        Must equal the model's fixed size when given (these models take one input size).
    batch_size : int, default 8
        Images per forward pass.
    device : str, default "cpu"
        Where to run the model.
    work_dir : path or None, default "work_dirs"
        Parent of the run folder; None writes nothing there.
    backends : sequence of str, optional
        Extra logging backends (see :func:`featscope.views._run.open_run`).
    formats : str or sequence of str, default ("png",)
        Figure formats in the run folder.
    dpi : float, default 150
        Resolution of raster figures.
    out_file : path, optional
        Also save each figure here (format from the suffix, default png); with several images
        the files are numbered ``<stem>_0<suffix>``, ``<stem>_1<suffix>``, ...
    show : bool, default False
        Open each figure in a window.
    strict : bool, default False
        Raise when checkpoint keys do not all match.
    skip_bad_images : bool, default False
        Skip unreadable images (with a warning; listed in ``result.skipped``) instead of
        stopping. The other images keep the masks of their positions.

    Returns
    -------
    ReconstructionResult
        The arrays of each image, the errors and where they were written.

    Raises
    ------
    ModelSpecError
        When the model is not a masked-image model.
    ParameterError
        For an invalid ratio, mask patch size, colour, batch size, input size, or ``norm_pix``
        on a model that is not an MAE.
    DataError
        When an image cannot be read (unless ``skip_bad_images``), or none can.
    CheckpointError
        When the checkpoint does not load (or an MAE checkpoint has no decoder).
    """
    from featscope.data.photos import collect_photos

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ParameterError(f"`batch_size` must be a positive integer; got {batch_size!r}")
    out_paths = _out_files(out_file)
    timings: dict[str, float] = {}
    clock = Stopwatch(timings)
    with clock("load"):
        from featscope.models.mim import load_mim

        mim = load_mim(
            DEFAULT_DEMO_MODEL if model is None else model,
            checkpoint=checkpoint,
            device=device,
            strict=strict,
        )
    opts = _options(mim, mask_ratio, norm_pix, mask_color, mask_patch_size, input_size)
    opts["seed"] = int(seed)
    if images is None and model is None:
        from featscope.models.demo import demo_mae_samples

        images = demo_mae_samples()
    items, source = collect_photos(images, name="images")
    with open_run(work_dir, "recon", backends) as run:
        recons: list[ReconstructedImage] = []
        skipped: list[tuple[str, str]] | None = [] if skip_bad_images else None
        with clock("predict"):
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                recons.extend(_reconstruct_batch(mim, batch, start, seed, opts, skipped))
        if not recons:
            raise DataError(
                f"none of the {len(items)} image(s) could be read (all skipped); pass readable "
                "image files"
            )
        targets = out_paths(len(recons))
        figures = []
        with clock("draw"):
            from featscope.render.recon import plot_reconstruction

            label = "masked-patch HOG MSE" if mim.target == "hog" else "masked-patch MSE"
            # nothing to draw when the figures go nowhere
            wanted = run is not None or bool(targets) or show
            for recon in recons if wanted else ():
                figures.append(plot_reconstruction(recon, error_label=label))
            overview = None
            if run is not None and len(recons) > 1:
                from featscope.render.recon import plot_reconstruction_grid

                overview = plot_reconstruction_grid(recons, error_label=label.split()[-1])
        with clock("write"):
            if run is not None:
                _write_run(run, mim, recons, figures, opts, source, formats, dpi)
                if skipped:
                    run.add_metadata("skipped", [list(pair) for pair in skipped])
                if overview is not None:
                    run.write_figure(overview, "overview", formats=formats, dpi=dpi)
    # --out-file copies only once the run folder is finished: a run that fails (at its
    # manifest, say) leaves no figure outside it either
    with clock("write"):
        written = _write_out_files(figures, targets, dpi)
    run_dir = None if run is None else run.final_path
    for recon in recons:
        logger.info("%s: masked-patch error %.5f", recon.image_id, recon.error)
    if show:
        from featscope.render import show as show_figure

        for figure in figures:
            show_figure(figure)
    return ReconstructionResult(
        images=tuple(recons),
        model=mim.spec,
        family=mim.family,
        run_dir=run_dir,
        params=opts,
        files=tuple(written),
        timings=timings,
        skipped=tuple(skipped or ()),
    )


# --------------------------------------------------------------------------- options


def _options(
    mim: Any,
    mask_ratio: float | None,
    norm_pix: bool | None,
    mask_color: Any,
    mask_patch_size: int | None,
    input_size: Any,
) -> dict[str, Any]:
    size = mim.input_size
    if input_size is not None:
        wanted = parse_size(input_size)
        if wanted != tuple(size):
            raise ParameterError(
                f"`input_size` {list(wanted)} does not fit {mim.spec}: this {mim.family} model "
                f"takes {size[0]}x{size[1]} images only (its position embeddings are fixed); "
                f"leave input_size unset (images are resized to {size[0]}x{size[1]})"
            )
    ratio = mim.default_mask_ratio if mask_ratio is None else mask_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise ParameterError(
            f"`mask_ratio` {mask_ratio!r} must be a number between 0 and 1 (exclusive); pass e.g. "
            "0.75"
        )
    patch = mim.patch_size
    mask_patch = mim.default_mask_patch_size if mask_patch_size is None else mask_patch_size
    if (
        isinstance(mask_patch, bool)
        or not isinstance(mask_patch, int)
        or mask_patch < patch
        or mask_patch % patch
        or size[0] % mask_patch
        or size[1] % mask_patch
    ):
        raise ParameterError(
            f"`mask_patch_size` {mask_patch_size!r} must be a multiple of the model's patch size "
            f"{patch} that divides its {size[0]}x{size[1]} input; pass e.g. {patch}"
        )
    if norm_pix and mim.family != "mae":
        raise ParameterError(
            f"`norm_pix` is for MAE models; {mim.spec} is a {mim.family} model, which predicts "
            "pixels (SimMIM) or HOG (MaskFeat) directly; leave norm_pix unset"
        )
    return {
        "mask_ratio": float(ratio),
        "mask_patch_size": int(mask_patch),
        "patch_size": int(patch),
        "norm_pix": bool(mim.norm_pix if norm_pix is None else norm_pix),
        "mask_color": list(parse_mask_color(mask_color, mim.preprocess.mean)),
        "input_size": list(size),
        "error": "mse_hog" if mim.target == "hog" else "mse_pixels_0_1",
    }


# --------------------------------------------------------------------------- computing


def _reconstruct_batch(
    mim: Any,
    batch: Sequence[Any],
    start: int,
    seed: int,
    opts: dict[str, Any],
    skipped: list[tuple[str, str]] | None = None,
) -> list[ReconstructedImage]:
    """Preprocess, mask, predict and assemble the panels of one batch.

    With ``skipped`` a list, unreadable images are appended to it (with a warning) and left out;
    otherwise their :class:`DataError` propagates.
    """
    import torch

    from featscope.models.mim import (
        denormalize_patches,
        patches_to_hog,
        patchify,
        random_masks,
        unpatchify,
    )

    pictures, kept, positions = [], [], []
    for k, item in enumerate(batch):
        try:
            try:
                pictures.append(mim.preprocess(item.load()))
            except OSError as exc:
                raise DataError(
                    f"image {item.id!r} cannot be read ({exc}); pass an image file"
                ) from exc
        except DataError as exc:
            if skipped is None:
                raise
            reason = skip_reason(exc)
            warnings.warn(f"skipped image {item.id!r}: {reason}", stacklevel=3)
            skipped.append((item.id, reason))
            continue
        kept.append(item)
        positions.append(start + k)
    if not kept:
        return []
    batch = kept
    device = next(iter(mim.module.parameters())).device
    x = torch.stack(pictures).to(device)
    patch, grid = mim.patch_size, mim.grid
    unit = opts["mask_patch_size"] // patch
    # each image's mask depends on its position in the whole input (skipped ones included)
    patch_masks = np.concatenate(
        [
            random_masks(1, grid, opts["mask_ratio"], unit=unit, seed=seed, start=p)
            for p in positions
        ]
    )
    mask = torch.from_numpy(patch_masks.reshape(len(batch), -1)).to(device)
    pred = mim.predict(x, mask).float()
    mean = torch.tensor(mim.preprocess.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(mim.preprocess.std, device=device).view(1, 3, 1, 1)
    original = (x * std + mean).clamp(0, 1)
    pixel_mask = (
        torch.from_numpy(patch_masks).repeat_interleave(patch, 1).repeat_interleave(patch, 2)
    ).to(device)
    color = torch.tensor(opts["mask_color"], dtype=torch.float32, device=device).view(1, 3, 1, 1)
    masked = torch.where(pixel_mask[:, None], color / 255.0, original)
    hog_parts: dict[str, Any] = {}
    if mim.target == "hog":
        target = mim.hog_target(x)
        pasted_hog = torch.where(mask[..., None], pred, target)
        errors = ((pred - target) ** 2)[mask].mean(dim=-1).reshape(len(batch), -1).mean(dim=1)
        u = patch // mim.hog.pool
        hog_parts = {
            "pred": patches_to_hog(pred, grid, u, mim.hog.nbins).cpu().numpy(),
            "target": patches_to_hog(target, grid, u, mim.hog.nbins).cpu().numpy(),
            "pasted": patches_to_hog(pasted_hog, grid, u, mim.hog.nbins).cpu().numpy(),
        }
    else:
        if opts["norm_pix"]:
            pred = denormalize_patches(pred, patchify(x, patch))
        recon = (unpatchify(pred, patch, grid) * std + mean).clamp(0, 1)
        pasted = torch.where(pixel_mask[:, None], recon, original)
        sq = ((recon - original) ** 2).mean(dim=1)  # (N, H, W), over channels
        errors = (sq * pixel_mask).flatten(1).sum(dim=1) / pixel_mask.flatten(1).sum(dim=1)
    out = []
    for k, item in enumerate(batch):
        fields: dict[str, Any] = {
            "image_id": item.id,
            "original": _uint8(original[k]),
            "mask": pixel_mask[k].cpu().numpy(),
            "patch_mask": patch_masks[k],
            "masked": _uint8(masked[k]),
            "error": float(errors[k]),
            "file": f"recon_{item.stem}",
        }
        if hog_parts:
            fields.update(_hog_pictures(hog_parts, k, mim.hog.pool))
        else:
            fields["reconstruction"] = _uint8(recon[k])
            fields["pasted"] = _uint8(pasted[k])
        out.append(ReconstructedImage(**fields))
    return out


def _hog_pictures(parts: dict[str, np.ndarray], k: int, cell: int) -> dict[str, Any]:
    from featscope.render.recon import hog_rgb

    # one brightness scale for the three pictures of an image, so that they compare
    scale = max(float(parts[name][k].mean(axis=0).max()) for name in parts) or None
    return {
        "hog_original": hog_rgb(parts["target"][k], cell, scale=scale),
        "reconstruction": hog_rgb(parts["pred"][k], cell, scale=scale),
        "pasted": hog_rgb(parts["pasted"][k], cell, scale=scale),
        "hog_prediction": parts["pred"][k].astype(np.float32),
        "hog_target": parts["target"][k].astype(np.float32),
    }


def _uint8(image: Any) -> np.ndarray:
    """``(3, H, W)`` tensor on the 0-1 scale -> ``(H, W, 3)`` uint8."""
    array = image.detach().cpu().permute(1, 2, 0).numpy()
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- writing


def _write_run(
    run: Any,
    mim: Any,
    recons: Sequence[ReconstructedImage],
    figures: Sequence[Any],
    opts: dict[str, Any],
    source: str,
    formats: Any,
    dpi: float,
) -> None:
    for recon, figure in zip(recons, figures, strict=True):
        run.write_figure(figure, recon.file, formats=formats, dpi=dpi)
    rows = [
        [r.image_id, r.file, f"{r.error:.8g}", int(r.patch_mask.sum()), r.patch_mask.size]
        for r in recons
    ]
    run.write_csv("errors.csv", ["image", "figure", "error", "hidden_patches", "patches"], rows)
    run.write_json(
        "errors.json",
        {
            "error": opts["error"],
            "mean": float(np.mean([r.error for r in recons])),
            "images": {r.image_id: r.error for r in recons},
        },
    )
    run.write_array("masks.npy", np.stack([r.patch_mask for r in recons]))
    run.add_metadata("model", mim.spec)
    run.add_metadata("family", mim.family)
    run.add_metadata("checkpoint", mim.checkpoint)
    run.add_metadata("checkpoint_sha256", mim.checkpoint_sha256)
    run.add_metadata("images", source)
    run.add_metadata("params", opts)


def _out_files(out_file: Any) -> Any:
    """Check ``out_file`` now; return ``count -> list of paths`` (numbered for several)."""
    if out_file is None:
        return lambda count: []
    from featscope.render.figures import FIGURE_FORMATS

    path = Path(out_file)
    suffix = path.suffix.lower().lstrip(".") or "png"
    suffix = "jpg" if suffix == "jpeg" else suffix
    if suffix not in FIGURE_FORMATS:
        raise ParameterError(
            f"`out_file` {str(out_file)!r} has an unsupported suffix; use one of "
            f"{', '.join('.' + f for f in FIGURE_FORMATS)}"
        )
    if path.parent != Path("") and not path.parent.is_dir():
        raise OutputError(
            f"`out_file` {str(out_file)!r}: folder {str(path.parent)!r} does not exist; create it "
            "or pass another path"
        )
    stem = path.with_suffix("")

    def paths(count: int) -> list[tuple[Path, str]]:
        if count == 1:
            return [(stem, suffix)]
        return [(stem.with_name(f"{stem.name}_{i}"), suffix) for i in range(count)]

    return paths


def _write_out_files(
    figures: Sequence[Any], targets: Sequence[tuple[Path, str]], dpi: float
) -> list[Path]:
    from featscope.render.figures import save_figure

    # save_figure writes each file under a temporary name and renames it when complete; if a
    # later figure fails, the ones this call already wrote are removed too, so a failed run
    # leaves no figure that looks finished
    written: list[Path] = []
    try:
        for figure, (stem, fmt) in zip(figures, targets, strict=False):
            written += save_figure(figure, stem, formats=[fmt], dpi=dpi)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written
