"""``featscope recon``: what a masked-image model fills in (wraps featscope.reconstruct)."""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import add_output_flags, add_skip_bad_images_flag, input_size, new_parser

__all__ = ["build_parser", "run", "summarize"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope recon`` (flag names follow MMSelfSup's tool)."""
    parser = new_parser(
        "recon",
        "Hide random patches of images and draw what a masked-image model (MAE, SimMIM, "
        "MaskFeat) fills in: original, masked, reconstruction, reconstruction + visible. With no "
        "images and no --model: the built-in Fashion-MNIST MAE on held-out test images.",
    )
    parser.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="image files or folders (default: the demo:mae test images without --model, the "
        "demo photos with one)",
    )
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        help="hf:DIR (ViTMAEForPreTraining, ViT/SwinForMaskedImageModeling), "
        "mae:vit_base_patch16|vit_large_patch16|vit_huge_patch14 (MAE research checkpoints), "
        "maskfeat:vit_base_patch16 (MMSelfSup checkpoints) or demo:mae "
        "(default: the built-in demo:mae)",
    )
    group.add_argument("--checkpoint", help="state dict to load (read with weights_only=True)")
    group.add_argument(
        "--input-size", nargs="+", type=int, metavar="N", help="must equal the model's size"
    )
    group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    group.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    add_skip_bad_images_flag(group)
    masking = parser.add_argument_group("masking")
    masking.add_argument(
        "--mask-ratio",
        type=float,
        help="fraction of patches hidden (default: MAE 0.75, SimMIM 0.6, MaskFeat 0.4)",
    )
    masking.add_argument("--seed", type=int, default=0, help="seed of the masks")
    masking.add_argument(
        "--norm-pix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the MAE predicts per-patch normalised pixels (default: as the model was trained)",
    )
    masking.add_argument(
        "--mask-color",
        help="colour of hidden patches: mean, a name, #rrggbb or R,G,B "
        "(default: mean, the normalisation mean)",
    )
    masking.add_argument(
        "--mask-patch-size",
        type=int,
        help="side of a mask patch in pixels, a multiple of the model patch "
        "(default: SimMIM 32, otherwise the model patch)",
    )
    parser.add_argument(
        "--out-file",
        help="also save the figure here (several images: numbered <stem>_0.png, ...)",
    )
    add_output_flags(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.reconstruct with the parsed options and say where the figures are."""
    from featscope.views.recon import reconstruct

    result = reconstruct(
        model=args.model,
        images=args.images or None,
        checkpoint=args.checkpoint,
        mask_ratio=args.mask_ratio,
        seed=args.seed,
        norm_pix=args.norm_pix,
        mask_color=args.mask_color,
        mask_patch_size=args.mask_patch_size,
        input_size=input_size(args.input_size),
        batch_size=args.batch_size,
        device=args.device,
        work_dir=args.work_dir,
        backends=args.backend,
        formats=args.format,
        dpi=args.dpi,
        out_file=args.out_file,
        show=args.show,
        skip_bad_images=args.skip_bad_images,
    )
    print(summarize(result))
    return 0


def summarize(result: Any) -> str:
    """One line: how many images, the mean masked-patch error, and where the figures are."""
    what = "HOG MSE" if result.params.get("error") == "mse_hog" else "MSE (0-1 pixels)"
    where = f"; written to {result.run_dir}/" if result.run_dir is not None else ""
    extra = f"; also {', '.join(str(p) for p in result.files)}" if result.files else ""
    if result.skipped:
        names = ", ".join(name for name, _ in result.skipped)
        extra += f"; skipped {len(result.skipped)} unreadable image(s): {names}"
    return (
        f"reconstructed {len(result)} image(s) with {result.model} ({result.family}, "
        f"mask ratio {result.params['mask_ratio']}, seed {result.params['seed']}): masked-patch "
        f"{what} {result.error:.5f}{where}{extra}"
    )
