"""``featscope tsne``: embedding maps of a model's features, a thin wrapper of featscope.tsne."""

from __future__ import annotations

import argparse

from featscope.cli.common import (
    add_model_flags,
    add_output_flags,
    add_points_flag,
    add_skip_bad_images_flag,
    input_size,
    new_parser,
)
from featscope.data.thumbnails import DEFAULT_MAX_THUMBNAILS


def _learning_rate(text: str) -> float | str:
    return text if text == "auto" else float(text)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope tsne`` (flag names follow MMPretrain's vis_tsne.py)."""
    parser = new_parser(
        "tsne",
        "Map a model's features at one or more capture points with t-SNE (or UMAP, PCA). "
        "With no --model, --data or --features: the built-in digits demo.",
    )
    add_model_flags(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="image folder (one sub-folder per class) or csv/tsv list")
    data.add_argument("--features", help="saved features (.npy, .npz or .csv) instead of a model")
    data.add_argument("--labels", help="labels of --features (.npy, .txt or .csv)")
    data.add_argument("--class-names", help="file with one class name per line")
    data.add_argument("--class-idx", nargs="+", type=int, help="classes to show")
    data.add_argument(
        "--max-num-class", type=int, default=20, help="classes if no --class-idx (0: all)"
    )
    data.add_argument("--max-num-samples", type=int, default=100, help="samples per class (0: all)")
    data.add_argument(
        "--sample",
        choices=["random", "first"],
        default="random",
        help="seeded random samples per class, or the first ones (the reference's rule)",
    )
    data.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    data.add_argument("--batch-size", type=int, default=64)
    data.add_argument("--num-workers", type=int, help="DataLoader workers (default: auto)")
    add_skip_bad_images_flag(data)
    scale = parser.add_argument_group("large runs (docs/scale.md)")
    scale.add_argument(
        "--amp",
        choices=["auto", "off", "bf16", "fp16"],
        default="auto",
        help="mixed precision of the forward pass (auto: bf16 on CUDA, float32 elsewhere)",
    )
    scale.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="stream features to memory-mapped .npy files in DIR (bounded memory), with a "
        "progress record after every batch so that a killed run can be resumed",
    )
    scale.add_argument(
        "--resume",
        action="store_true",
        help="continue the extraction in --cache-dir from its last complete batch (or reuse "
        "it when finished); refused if the model, data or options changed",
    )
    scale.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="K",
        help="extract with K processes (data-parallel; or run under torchrun "
        "--nproc_per_node=K -m featscope tsne ...); rank 0 writes the results",
    )
    add_points_flag(
        parser,
        "capture points: backbone, neck, pre_logits, logits or module paths "
        "(default: pre_logits; backbone neck pre_logits for the demo)",
        option_strings=("--vis-stage", "--point"),  # MMPretrain's name first, as in its help
    )
    emb = parser.add_argument_group("embedding")
    emb.add_argument("--method", choices=["tsne", "umap", "pca"], default="tsne")
    emb.add_argument("--n-components", type=int, choices=[2, 3], default=2)
    emb.add_argument("--perplexity", type=float, default=30.0)
    emb.add_argument("--early-exaggeration", type=float, default=12.0)
    emb.add_argument("--learning-rate", type=_learning_rate, default="auto")
    emb.add_argument(
        "--n-iter",
        type=int,
        default=750,
        help="iterations, incl. 250 exaggerated (reference: 1000)",
    )
    emb.add_argument("--n-iter-without-progress", type=int, default=300)
    emb.add_argument("--init", choices=["pca", "random"], default="pca")
    emb.add_argument("--pca-dims", type=int, default=50, help="PCA first to this width (0: off)")
    add_output_flags(parser)
    fig = parser.add_argument_group("figure")
    fig.add_argument("--legend", action="store_true", help="legend with the class names")
    fig.add_argument("--annotate", action="store_true", help="write the class index at points")
    fig.add_argument("--point-size", type=float, help="marker size (default: from N)")
    page = parser.add_argument_group("interactive page (embedding.html)")
    page.add_argument(
        "--no-html",
        dest="html",
        action="store_false",
        help="do not write the interactive page embedding.html",
    )
    page.add_argument(
        "--thumbnails",
        type=int,
        default=DEFAULT_MAX_THUMBNAILS,
        metavar="N",
        help="samples that get an image thumbnail on the page (0: none)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run featscope.tsne with the parsed options and say where the result is."""
    from featscope.views.embedding import tsne

    result = tsne(
        model=args.model,
        data=args.data,
        points=args.points,
        features=args.features,
        labels=args.labels,
        class_names=args.class_names,
        checkpoint=args.checkpoint,
        input_size=input_size(args.input_size),
        mean=args.mean,
        std=args.std,
        class_idx=args.class_idx,
        max_num_class=args.max_num_class,
        max_num_samples=args.max_num_samples,
        sample=args.sample,
        seed=args.seed,
        method=args.method,
        n_components=args.n_components,
        perplexity=args.perplexity,
        early_exaggeration=args.early_exaggeration,
        learning_rate=args.learning_rate,
        n_iter=args.n_iter,
        n_iter_without_progress=args.n_iter_without_progress,
        init=args.init,
        pca_dims=args.pca_dims,
        device=args.device,
        amp=args.amp,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        skip_bad_images=args.skip_bad_images,
        cache_dir=args.cache_dir,
        resume=args.resume,
        nproc=args.nproc,
        work_dir=args.work_dir,
        backends=args.backend,
        formats=tuple(args.format),
        dpi=args.dpi,
        legend=args.legend,
        annotate=args.annotate,
        point_size=args.point_size,
        show=args.show,
        progress=not args.quiet,
        html=args.html,
        thumbnails=args.thumbnails,
    )
    for r in result.results:
        m = r.metrics
        print(
            f"{r.point:<16} {len(r.labels)} samples  10-NN acc. map "
            f"{m.get('knn_accuracy_map', float('nan')):.3f}  features "
            f"{m.get('knn_accuracy_features', float('nan')):.3f}  trustworthiness "
            f"{m.get('trustworthiness', float('nan')):.3f}"
        )
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable images (listed in run.log)")
    if result.run_dir is not None:
        print(f"results written to {result.run_dir}/")
    return 0
