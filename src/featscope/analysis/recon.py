"""The arithmetic of a reconstruction: from a masked-image model's prediction to its panels.

The model's forward pass (:func:`featscope.capture.masked.masked_batches`) gives, per batch,
the normalised model input, the seeded patch masks and the prediction for every patch. Here,
in numpy only, that becomes what :class:`featscope.results.ReconstructedImage` holds: the
original (the input de-normalised), the masked picture, the reconstruction (the prediction
everywhere), the pasted picture (original on visible patches, prediction on hidden ones) and the
masked-patch error. :class:`ReconOptions` holds the options of the method and
:meth:`ReconOptions.resolve` turns them into the parameters a given model runs with.

Where featscope differs from MMSelfSup's ``visualize_reconstruction.py`` on purpose:

* the prediction is de-normalised once: with norm-pix targets by each patch's mean and std,
  then by the model's input normalisation; without norm-pix by the input normalisation only
  (the reference de-normalises twice without ``--norm-pix``);
* ``norm_pix`` defaults to what the model was trained with (HF ``config.norm_pix_loss``;
  MAE research-code checkpoints: pixel targets, as the "visualize" checkpoints were trained);
* MaskFeat's HOG pictures are grey lines on black (:func:`hog_picture`); the reference pushes
  the HOG picture through the image de-normalisation, turning its black background into the
  mean colour.

Nothing here imports torch or matplotlib.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featscope.errors import ParameterError
from featscope.options import option
from featscope.results import ReconstructedImage

__all__ = [
    "NORM_PIX_EPS",
    "RECON_BATCH_SIZE",
    "ReconOptions",
    "denormalize_patches",
    "hog_picture",
    "hog_rgb",
    "masked_mse",
    "parse_mask_color",
    "paste",
    "patchify",
    "pixel_mask",
    "reconstruct_batch",
    "to_uint8",
    "unnormalize",
    "unpatchify",
]

#: The epsilon of MAE's norm-pix target ``(x - mean) / sqrt(var + 1e-6)``; the same value as
#: ``featscope.models.mim.patches.NORM_PIX_EPS`` (a test keeps them equal).
NORM_PIX_EPS = 1e-6
#: Images per forward pass of ``featscope recon`` when none is given.
RECON_BATCH_SIZE = 8
#: Seeds go to ``numpy.random.default_rng``, which takes 0 to 2**32 - 1 here.
_MAX_SEED = 2**32 - 1
_NAMED_COLORS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ReconOptions:
    """How images are masked and how the prediction is read (the flags of ``featscope recon``).

    ``None`` takes the model's own value; :meth:`resolve` fills those in and checks what depends
    on the model. Values that are wrong whatever the model are refused here, naming the flag.
    """

    mask_ratio: float | None = option(
        None, "--mask-ratio", type=float,
        help="fraction of patches hidden (default: MAE 0.75, SimMIM 0.6, MaskFeat 0.4)",
    )  # fmt: skip
    seed: int = option(0, "--seed", type=int, help="seed of the masks")
    norm_pix: bool | None = option(
        None, "--norm-pix", action=argparse.BooleanOptionalAction,
        help="the MAE predicts per-patch normalised pixels (default: as the model was trained)",
    )  # fmt: skip
    mask_color: str | tuple[float, float, float] | None = option(
        None, "--mask-color",
        help="colour of hidden patches: mean, a name, #rrggbb or R,G,B "
        "(default: mean, the normalisation mean)",
    )  # fmt: skip
    mask_patch_size: int | None = option(
        None, "--mask-patch-size", type=int,
        help="side of a mask patch in pixels, a multiple of the model patch "
        "(default: SimMIM 32, otherwise the model patch)",
    )  # fmt: skip

    def __post_init__(self) -> None:
        ratio = self.mask_ratio
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1
        ):
            raise ParameterError(
                f"`--mask-ratio` {ratio!r} must be a number between 0 and 1 (exclusive); pass "
                "e.g. 0.75"
            )
        if not _is_int(self.seed) or not 0 <= self.seed <= _MAX_SEED:
            raise ParameterError(
                f"`--seed` must be an integer from 0 to {_MAX_SEED}; got {self.seed!r}"
            )
        if self.norm_pix is not None and not isinstance(self.norm_pix, bool):
            raise ParameterError(f"`--norm-pix` must be True, False or None; got {self.norm_pix!r}")
        size = self.mask_patch_size
        if size is not None and (not _is_int(size) or size < 1):
            raise ParameterError(
                f"`--mask-patch-size` {size!r} must be a positive integer (pixels); pass e.g. 16"
            )
        if self.mask_color is not None and not isinstance(self.mask_color, str):
            object.__setattr__(self, "mask_color", tuple(self.mask_color))
        parse_mask_color(self.mask_color, (0.0, 0.0, 0.0))  # its syntax, before any model loads

    def resolve(self, model: Any, preprocess: Any = None) -> dict[str, Any]:
        """Return the parameters a model runs with: the options with its defaults filled in.

        Parameters
        ----------
        model : MIMModel
            Read for ``spec``, ``family``, ``target``, ``input_size``, ``patch_size``,
            ``norm_pix``, ``default_mask_ratio``, ``default_mask_patch_size`` and
            ``preprocess.mean``.
        preprocess : Preprocess, optional
            Its ``input_size`` must be the model's (these models are fixed-size); ``mean`` and
            ``std`` must be unset (the model predicts in the normalisation it was trained with).

        Returns
        -------
        dict
            ``mask_ratio``, ``mask_patch_size``, ``patch_size``, ``seed``, ``norm_pix``,
            ``mask_color`` (RGB 0-255), ``input_size`` and ``error`` (``"mse_hog"`` or
            ``"mse_pixels_0_1"``: what the error measures).

        Raises
        ------
        ParameterError
            For another input size or normalisation, a mask patch that is no multiple of the
            model's patch or does not tile its input, or ``norm_pix`` on a model that is not an
            MAE.
        """
        size = tuple(model.input_size)
        input_size = getattr(preprocess, "input_size", None)
        if getattr(preprocess, "mean", None) is not None or getattr(preprocess, "std", None):
            raise ParameterError(
                f"{model.spec} predicts in the normalisation it was trained with; leave mean and "
                "std unset (only input_size is read)"
            )
        if input_size is not None and tuple(input_size) != size:
            raise ParameterError(
                f"`input_size` {list(input_size)} does not fit {model.spec}: this {model.family} "
                f"model takes {size[0]}x{size[1]} images only (its position embeddings are "
                f"fixed); leave input_size unset (images are resized to {size[0]}x{size[1]})"
            )
        patch = model.patch_size
        mask_patch = self.mask_patch_size or model.default_mask_patch_size
        if mask_patch < patch or mask_patch % patch or size[0] % mask_patch or size[1] % mask_patch:
            raise ParameterError(
                f"`mask_patch_size` {self.mask_patch_size!r} must be a multiple of the model's "
                f"patch size {patch} that divides its {size[0]}x{size[1]} input; pass e.g. {patch}"
            )
        if self.norm_pix and model.family != "mae":
            raise ParameterError(
                f"`norm_pix` is for MAE models; {model.spec} is a {model.family} model, which "
                "predicts pixels (SimMIM) or HOG (MaskFeat) directly; leave norm_pix unset"
            )
        ratio = model.default_mask_ratio if self.mask_ratio is None else self.mask_ratio
        return {
            "mask_ratio": float(ratio),
            "mask_patch_size": int(mask_patch),
            "patch_size": int(patch),
            "seed": int(self.seed),
            "norm_pix": bool(model.norm_pix if self.norm_pix is None else self.norm_pix),
            "mask_color": list(parse_mask_color(self.mask_color, model.preprocess.mean)),
            "input_size": list(size),
            "error": "mse_hog" if model.target == "hog" else "mse_pixels_0_1",
        }


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


# --------------------------------------------------------------------------- patches and pixels


def patchify(images: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut ``(N, C, H, W)`` images into ``(N, L, p*p*C)`` patch vectors.

    The layout of :func:`featscope.models.mim.patchify` (MAE's): patches row by row, each
    ``(row in patch, column in patch, channel)`` flattened.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, C, H, W)``; ``H`` and ``W`` multiples of ``patch_size``.
    patch_size : int
        Side of a square patch in pixels.

    Returns
    -------
    numpy.ndarray
        ``(N, (H/p)*(W/p), p*p*C)``.

    Raises
    ------
    ParameterError
        When the image sides are not multiples of the patch size.
    """
    n, c, h, w = images.shape
    p = int(patch_size)
    if p < 1 or h % p or w % p:
        raise ParameterError(
            f"image of {h}x{w} pixels cannot be cut into patches of {p} pixels: both sides must "
            f"be multiples of {p}"
        )
    x = images.reshape(n, c, h // p, p, w // p, p).transpose(0, 2, 4, 3, 5, 1)
    return x.reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(
    patches: np.ndarray, patch_size: int, grid: Sequence[int], channels: int = 3
) -> np.ndarray:
    """Put ``(N, L, p*p*C)`` patch vectors back into ``(N, C, H, W)`` images.

    Parameters
    ----------
    patches : numpy.ndarray
        ``(N, L, p*p*C)`` in the layout of :func:`patchify`.
    patch_size : int
        Side of a patch in pixels.
    grid : (int, int)
        Patches per column and per row.
    channels : int, default 3
        Channels per pixel.

    Returns
    -------
    numpy.ndarray
        ``(N, C, gh*p, gw*p)``.

    Raises
    ------
    ParameterError
        When the shape does not match ``grid``, ``patch_size`` and ``channels``.
    """
    n, length, dim = patches.shape
    p = int(patch_size)
    gh, gw = grid
    if length != gh * gw or dim != p * p * channels:
        raise ParameterError(
            f"patches of shape {patches.shape} do not fit a {gh}x{gw} grid of {p}-pixel patches "
            f"with {channels} channels (expected (N, {gh * gw}, {p * p * channels}))"
        )
    x = patches.reshape(n, gh, gw, p, p, channels).transpose(0, 5, 1, 3, 2, 4)
    return x.reshape(n, channels, gh * p, gw * p)


def denormalize_patches(prediction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Bring a norm-pix prediction back to the scale of the input patches.

    ``prediction * sqrt(var + 1e-6) + mean`` with the mean and (unbiased) variance of each
    patch of the input, the inverse of MAE's norm-pix target (MMSelfSup's MAE ``reconstruct``
    and the MAE demo notebook do the same). The statistics come from the true patches, hidden
    ones included: the picture shows the predicted structure at the true brightness and
    contrast.

    Parameters
    ----------
    prediction : numpy.ndarray
        ``(N, L, D)`` predicted norm-pix patches.
    reference : numpy.ndarray
        ``(N, L, D)`` input patches, in the model's normalised input space.

    Returns
    -------
    numpy.ndarray
        ``(N, L, D)`` patches in the space of ``reference``.
    """
    mean = reference.mean(axis=-1, keepdims=True)
    var = reference.var(axis=-1, ddof=1, keepdims=True)
    return prediction * np.sqrt(var + NORM_PIX_EPS) + mean


def unnormalize(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Undo the input normalisation: ``(N, 3, H, W)`` model input -> ``(N, H, W, 3)`` 0-1 pixels.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, C, H, W)`` normalised images.
    mean, std : sequence of float
        The normalisation per channel, on the 0-1 scale.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W, C)`` float64, ``images * std + mean`` clipped to [0, 1], channel last.
    """
    pixels = np.asarray(images, dtype=np.float64).transpose(0, 2, 3, 1)
    return np.clip(pixels * np.asarray(std, float) + np.asarray(mean, float), 0.0, 1.0)


def pixel_mask(patch_masks: np.ndarray, patch_size: int) -> np.ndarray:
    """Spread ``(N, gh, gw)`` patch masks over the pixels: ``(N, gh*p, gw*p)`` bool."""
    return np.asarray(patch_masks, dtype=bool).repeat(patch_size, 1).repeat(patch_size, 2)


def paste(visible: np.ndarray, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Take ``hidden`` where ``mask`` is True and ``visible`` elsewhere.

    Parameters
    ----------
    visible, hidden : numpy.ndarray
        ``(N, H, W, C)`` pictures (or any shape that ``mask[..., None]`` broadcasts to).
    mask : numpy.ndarray
        ``(N, H, W)`` bool, True on hidden pixels.

    Returns
    -------
    numpy.ndarray
        The pasted pictures.
    """
    return np.where(np.asarray(mask, dtype=bool)[..., None], hidden, visible)


def masked_mse(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean squared error per image over the hidden positions.

    Parameters
    ----------
    prediction, target : numpy.ndarray
        ``(N, *S, K)``: ``K`` values per position (the channels of a pixel, the HOG values of
        a cell), positions of shape ``S``.
    mask : numpy.ndarray
        ``(N, *S)`` bool, True on the hidden positions.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64: per image, the mean over hidden positions of the mean over the ``K``
        values of the squared difference.

    Raises
    ------
    ParameterError
        When an image has no hidden position.
    """
    mask = np.asarray(mask, dtype=bool)
    counts = mask.reshape(len(mask), -1).sum(axis=1)
    if len(mask) and not counts.all():
        raise ParameterError("`mask` hides nothing in some image; a masked error needs a mask")
    diff = np.asarray(prediction, np.float64) - np.asarray(target, np.float64)
    squared = (diff**2).mean(axis=-1)
    return (squared * mask).reshape(len(mask), -1).sum(axis=1) / np.maximum(counts, 1)


def to_uint8(pictures: np.ndarray) -> np.ndarray:
    """0-1 pictures -> uint8, rounded to the nearest level and clipped."""
    return np.clip(np.rint(np.asarray(pictures) * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- one batch


def reconstruct_batch(batch: Any, params: Mapping[str, Any]) -> list[ReconstructedImage]:
    """Assemble the panels and the masked-patch error of each image of a batch.

    Parameters
    ----------
    batch : MaskedBatch
        What :func:`featscope.capture.masked.masked_batches` yields: ``ids``, ``stems``,
        ``inputs`` ``(N, 3, H, W)`` (normalised by ``mean`` and ``std``), ``patch_masks``
        ``(N, gh, gw)``, ``prediction`` (``(N, L, p*p*3)`` patches, or ``(N, C, B, hc, wc)``
        HOG cells), ``target`` (the input's HOG cells, or ``None`` for a pixel model) and
        ``cell_size`` (pixels per HOG cell).
    params : Mapping
        From :meth:`ReconOptions.resolve`: ``patch_size``, ``norm_pix``, ``mask_color``.

    Returns
    -------
    list of ReconstructedImage
        One per image. The error is the mean squared error over hidden pixels on the 0-1
        scale, or for a HOG model over the HOG values of hidden patches.
    """
    patch = int(params["patch_size"])
    original = unnormalize(batch.inputs, batch.mean, batch.std)
    mask = pixel_mask(batch.patch_masks, patch)
    color = np.asarray(params["mask_color"], dtype=np.float64) / 255.0
    masked = paste(original, np.broadcast_to(color, original.shape), mask)
    if batch.target is None:
        errors, panels = _pixel_panels(batch, params, original, mask)
    else:
        errors, panels = _hog_panels(batch)
    return [
        ReconstructedImage(
            image_id=image_id,
            original=to_uint8(original[k]),
            mask=mask[k],
            patch_mask=batch.patch_masks[k],
            masked=to_uint8(masked[k]),
            error=float(errors[k]),
            file=f"recon_{stem}",
            **panels(k),
        )
        for k, (image_id, stem) in enumerate(zip(batch.ids, batch.stems, strict=True))
    ]


def _pixel_panels(
    batch: Any, params: Mapping[str, Any], original: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, Callable[[int], dict[str, Any]]]:
    """Pixel models: the prediction as pixels, and the error over hidden pixels."""
    patch = int(params["patch_size"])
    prediction = np.asarray(batch.prediction, dtype=np.float64)
    if params["norm_pix"]:
        prediction = denormalize_patches(prediction, patchify(batch.inputs, patch))
    grid = batch.patch_masks.shape[1:]
    recon = unnormalize(unpatchify(prediction, patch, grid), batch.mean, batch.std)
    pasted = paste(original, recon, mask)
    errors = masked_mse(recon, original, mask)
    return errors, lambda k: {
        "reconstruction": to_uint8(recon[k]),
        "pasted": to_uint8(pasted[k]),
    }


def _hog_panels(batch: Any) -> tuple[np.ndarray, Callable[[int], dict[str, Any]]]:
    """HOG models: the HOG pictures, and the error over the HOG values of hidden cells."""
    prediction = np.asarray(batch.prediction, dtype=np.float32)
    target = np.asarray(batch.target, dtype=np.float32)
    cells_per_patch = prediction.shape[-1] // batch.patch_masks.shape[-1]
    cell_mask = pixel_mask(batch.patch_masks, cells_per_patch)  # (N, hc, wc)
    # cells are (N, C, B, hc, wc): put the C*B values of a cell last for the paste and error
    last = (0, 3, 4, 1, 2)
    pred_cells, target_cells = prediction.transpose(last), target.transpose(last)
    shape = (*pred_cells.shape[:3], -1)
    pasted = paste(target_cells.reshape(shape), pred_cells.reshape(shape), cell_mask)
    pasted = pasted.reshape(pred_cells.shape).transpose(0, 3, 4, 1, 2)
    errors = masked_mse(pred_cells.reshape(shape), target_cells.reshape(shape), cell_mask)

    def panels(k: int) -> dict[str, Any]:
        cells = {"hog_original": target[k], "reconstruction": prediction[k], "pasted": pasted[k]}
        # one brightness scale for the three pictures of an image, so that they compare
        scale = max(float(c.mean(axis=0).max()) for c in cells.values()) or None
        pictures = {name: hog_rgb(c, batch.cell_size, scale=scale) for name, c in cells.items()}
        return {**pictures, "hog_prediction": prediction[k], "hog_target": target[k]}

    return errors, panels


# --------------------------------------------------------------------------- HOG pictures


def hog_picture(cells: np.ndarray, cell_size: int = 8, *, scale: float | None = None) -> np.ndarray:
    """Draw HOG cell histograms as line glyphs on a black picture.

    Where it differs from MMSelfSup's renderer on purpose: each bin's line is drawn through the
    cell's centre (not its corner) along the edge direction of the bin (perpendicular to its
    gradient, 9 directions over 180 degrees rather than 9 lines at 0, 40, ..., 320 degrees).

    Parameters
    ----------
    cells : numpy.ndarray
        ``(C, B, hc, wc)`` histograms (``C`` colour channels, averaged, ``B`` bins over 180
        degrees in MMSelfSup's convention: bin ``k`` holds gradients at ``k * 180 / B`` to
        ``(k + 1) * 180 / B`` degrees from the vertical axis) or ``(B, hc, wc)``.
    cell_size : int, default 8
        Side of a cell in pixels.
    scale : float, optional
        Value drawn at full length and brightness (default: the largest value of ``cells``).

    Returns
    -------
    numpy.ndarray
        ``(hc * cell_size, wc * cell_size)`` uint8; a bin of value ``m`` (over ``scale``) is a
        line through the cell centre along its edge direction, ``m * cell_size`` pixels long,
        of brightness ``255 * sqrt(m)``; overlapping lines keep the brighter value.

    Raises
    ------
    ParameterError
        When ``cells`` is not 3-D or 4-D.
    """
    values = np.asarray(cells, dtype=np.float64)
    if values.ndim == 4:
        values = values.mean(axis=0)
    if values.ndim != 3:
        raise ParameterError(
            f"`cells` must be (C, bins, rows, cols) or (bins, rows, cols); got shape "
            f"{np.asarray(cells).shape}"
        )
    values = np.clip(values, 0.0, None)
    bins, hc, wc = values.shape
    canvas = np.zeros((hc * cell_size, wc * cell_size), dtype=np.float64)
    top = float(values.max()) if scale is None else float(scale)
    if top <= 0:
        return canvas.astype(np.uint8)
    m = np.clip(values / top, 0.0, 1.0)
    # gradient angle from the vertical axis: (gx, gy) = (sin t, cos t); the edge runs along
    # (cos t, -sin t) in (x, y) = (column, row) picture coordinates
    theta = (np.arange(bins) + 0.5) * np.pi / bins
    dx, dy = np.cos(theta), -np.sin(theta)
    steps = np.linspace(-0.5, 0.5, 4 * cell_size + 1)
    rows, cols = np.meshgrid(np.arange(hc), np.arange(wc), indexing="ij")
    cy = (rows + 0.5) * cell_size - 0.5
    cx = (cols + 0.5) * cell_size - 0.5
    for k in range(bins):
        length = m[k] * cell_size  # (hc, wc)
        t = length[..., None] * steps  # (hc, wc, S)
        x = np.rint(cx[..., None] + t * dx[k]).astype(np.int64)
        y = np.rint(cy[..., None] + t * dy[k]).astype(np.int64)
        value = np.broadcast_to((255.0 * np.sqrt(m[k]))[..., None], x.shape)
        keep = (x >= 0) & (x < canvas.shape[1]) & (y >= 0) & (y < canvas.shape[0])
        np.maximum.at(canvas, (y[keep], x[keep]), value[keep])
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def hog_rgb(cells: np.ndarray, cell_size: int = 8, *, scale: float | None = None) -> np.ndarray:
    """:func:`hog_picture` as an ``(H, W, 3)`` uint8 RGB picture (grey lines on black)."""
    return np.repeat(hog_picture(cells, cell_size, scale=scale)[..., None], 3, axis=-1)
