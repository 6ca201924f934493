"""``featscope tsne``: embedding maps of a model's features, a thin wrapper of featscope.tsne."""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import (
    add_model_flags,
    add_points_flag,
    model_from_args,
    new_parser,
    print_backends,
)
from featscope.cli.groups import add_group, group_from_args
from featscope.data.thumbnails import DEFAULT_MAX_THUMBNAILS
from featscope.options import EmbeddingOptions, Extraction, Figures, Output, Preprocess, Selection


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope tsne`` (flag names follow MMPretrain's vis_tsne.py)."""
    parser = new_parser(
        "tsne",
        "Map a model's features at one or more capture points with t-SNE (or UMAP, PCA). "
        "With no --model, --data or --features: the built-in digits demo.",
        cfg_example="perplexity=50 legend=true class_idx=[0,2]",
    )
    add_model_flags(parser)
    add_group(parser, Preprocess, "preprocessing")
    add_points_flag(
        parser,
        "capture points: backbone, neck, pre_logits, logits or module paths "
        "(default: pre_logits; backbone.1 neck pre_logits for the demo)",
        aliases=("--vis-stage",),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        help="image folder (one sub-folder per class) or csv/tsv list (default: the digits)",
    )
    data.add_argument("--features", help="saved features (.npy, .npz or .csv) instead of a model")
    data.add_argument("--labels", help="labels of --features (.npy, .txt or .csv)")
    data.add_argument("--class-names", help="file with one class name per line")
    add_group(parser, Selection, "samples")
    add_group(parser, Extraction, "extraction (large runs: docs/scale.md)")
    add_group(parser, EmbeddingOptions, "embedding")
    add_group(parser, Figures, "figures")
    add_group(parser, Output, "output")
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
        model=model_from_args(args),
        data=args.data,
        points=args.points,
        features=args.features,
        labels=args.labels,
        class_names=args.class_names,
        checkpoint=args.checkpoint,
        embedding=group_from_args(EmbeddingOptions, args),
        selection=group_from_args(Selection, args),
        preprocess=group_from_args(Preprocess, args),
        extraction=group_from_args(Extraction, args),
        figures=group_from_args(Figures, args),
        output=group_from_args(Output, args),
        html=args.html,
        thumbnails=args.thumbnails,
    )
    for r in result.results:
        m = r.metrics
        print(
            f"{r.point:<16} {len(r.labels)} samples  10-NN acc. map "
            f"{_number(m, 'knn_accuracy_map')}  features "
            f"{_number(m, 'knn_accuracy_features')}  trustworthiness "
            f"{_number(m, 'trustworthiness')}"
        )
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable images (listed in run.log)")
    if result.run_dir is not None:
        print(f"results written to {result.run_dir}/")
        print_backends(result.run_dir)
    return 0


def _number(metrics: Any, key: str) -> str:
    """Return a metric with three decimals, or "n/a" where it was left out (no labels)."""
    value = metrics.get(key)
    return "n/a" if value is None else f"{value:.3f}"
