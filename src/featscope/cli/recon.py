"""``featscope recon``: what a masked-image model fills in (wraps featscope.reconstruct)."""

from __future__ import annotations

import argparse
from typing import Any

from featscope.analysis.recon import RECON_BATCH_SIZE, ReconOptions
from featscope.cli.common import add_images_argument, new_parser
from featscope.cli.groups import add_group, group_from_args
from featscope.options import Extraction, Figures, Output, Preprocess

__all__ = ["build_parser", "run", "summarize"]


#: This subcommand's words for flags of shared groups.
_HELP = {
    "export": "also copy each figure here once the run folder is finished, in the format of its "
    "suffix (png without one); several images give <stem>_0.png, <stem>_1.png, ...",
    "input_size": "must equal the model's size: S or H W (default: the model's)",
}


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope recon`` (flag names follow MMSelfSup's tool)."""
    parser = new_parser(
        "recon",
        "Hide random patches of images and draw what a masked-image model (MAE, SimMIM, "
        "MaskFeat) fills in: original, masked, reconstruction, reconstruction + visible. With no "
        "images and no --model: the built-in Fashion-MNIST MAE on held-out test images.",
        cfg_example="mask_ratio=0.6 seed=3 mask_color=black",
    )
    data_help = (
        "image files or folders (default: the demo:mae test images without --model, the demo "
        "photos with one)"
    )
    add_images_argument(parser, data_help)
    group = parser.add_argument_group("model and images")
    group.add_argument(
        "--model",
        help="hf:DIR (ViTMAEForPreTraining, ViT/SwinForMaskedImageModeling), "
        "mae:vit_base_patch16|vit_large_patch16|vit_huge_patch14 (MAE research checkpoints), "
        "maskfeat:vit_base_patch16 (MMSelfSup checkpoints) or demo:mae "
        "(default: the built-in demo:mae)",
    )
    group.add_argument("--checkpoint", help="state dict to load (read with weights_only=True)")
    add_group(parser, Preprocess, "model input", only=["input_size"], helps=_HELP)
    extraction = ["device", "batch_size", "skip_bad_images", "progress"]
    add_group(
        parser, Extraction, "extraction", only=extraction,
        defaults={"batch_size": RECON_BATCH_SIZE}, helps={"batch_size": "images per forward pass"},
    )  # fmt: skip
    add_group(parser, ReconOptions, "masking")
    add_group(parser, Figures, "figures", only=["formats", "dpi", "show"])
    add_group(parser, Output, "output", aliases={"export": ["--out-file"]}, helps=_HELP)
    parser.epilog = (
        "example: featscope recon photo.jpg --model hf:./vit-mae-base --mask-ratio 0.75 "
        "--seed 0 -o mae.png"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.reconstruct with the parsed options and say where the figures are."""
    from featscope.views.recon import reconstruct

    result = reconstruct(
        args.data or None,
        args.model,
        checkpoint=args.checkpoint,
        options=group_from_args(ReconOptions, args),
        preprocess=group_from_args(Preprocess, args),
        extraction=group_from_args(Extraction, args),
        figures=group_from_args(Figures, args),
        output=group_from_args(Output, args),
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
