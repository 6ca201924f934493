"""``featscope shape-bias``: a classifier's shape bias on the cue-conflict stimuli.

Two forms, each a thin wrapper of one API call::

    featscope shape-bias [--model M] [--checkpoint C] [--data DIR] [--model-name N]
    featscope shape-bias plot --csv-dir DIR [--models a b ...] [--colors ...] [--markers ...]
                              [--out-dir figs/]

The first runs :func:`featscope.shape_bias` (with no arguments: EfficientNet-Lite0 with ImageNet
weights), the second :func:`featscope.shape_bias_from_csv` (the reference's
``tools/analysis_tools/shape_bias.py``).
"""

from __future__ import annotations

import argparse

from featscope.cli.common import (
    add_model_flags,
    add_output_flags,
    add_skip_bad_images_flag,
    input_size,
    new_parser,
)
from featscope.errors import ParameterError

__all__ = ["build_parser", "run"]

# flags of one form that mean nothing in the other: given there, they are an error, not ignored
_EVALUATE_ONLY = ("model", "checkpoint", "data", "model_name", "mapping", "skip_bad_images")
_PLOT_ONLY = ("csv_dir", "csv", "models", "colors", "markers", "plotting_names", "out_dir")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope shape-bias`` (both forms)."""
    parser = new_parser(
        "shape-bias",
        "Measure how often a classifier decides by shape rather than texture on the 1,280 "
        "cue-conflict stimuli (Geirhos et al., ICLR 2019) and draw it against humans. "
        "With no --model: EfficientNet-Lite0 with ImageNet weights. "
        "`featscope shape-bias plot --csv-dir DIR` draws decision csvs instead.",
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=["plot"],
        help="plot: analyse and draw decision csvs (--csv-dir) instead of running a model",
    )
    add_model_flags(parser)
    evaluate = parser.add_argument_group("evaluation")
    evaluate.add_argument(
        "--data",
        help="cue-conflict stimuli folder (default: $FEATSCOPE_CUE_CONFLICT, then "
        "~/.cache/featscope/cue-conflict)",
    )
    evaluate.add_argument(
        "--model-name", help="name of the model in the csv and legend (default: from --model)"
    )
    evaluate.add_argument(
        "--mapping",
        help="JSON/csv of output classes per category, for models with neither 1000 nor 16 "
        "outputs (default: the shipped ImageNet table)",
    )
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument("--num-workers", type=int, help="DataLoader workers (default: auto)")
    add_skip_bad_images_flag(evaluate, default=None)  # None: `plot` can tell it was given
    plot = parser.add_argument_group("plot (featscope shape-bias plot ...)")
    plot.add_argument("--csv-dir", nargs="+", help="folder(s) of decision csvs")
    plot.add_argument("--csv", nargs="+", help="decision csv file(s), besides or instead of dirs")
    plot.add_argument(
        "--models",
        "--model-names",
        dest="models",
        nargs="+",
        help="decision makers (csv subj) to draw, in order; humans are always drawn "
        "(default: all, by shape bias)",
    )
    plot.add_argument(
        "--colors", nargs="+", help="one colour per --models entry (name, #hex, R,G,B)"
    )
    plot.add_argument("--markers", nargs="+", help="one matplotlib marker per --models entry")
    plot.add_argument("--plotting-names", nargs="+", help="legend names per --models entry")
    plot.add_argument("--out-dir", help="write the figure and json here instead of a run folder")
    add_output_flags(parser)
    parser.set_defaults(format=["png", "pdf"])
    return parser


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n, None) is not None]


def run(args: argparse.Namespace) -> int:
    """Run the evaluation or the plot with the parsed options and print the shape biases."""
    if args.action == "plot":
        return _plot(args)
    stray = _given(args, _PLOT_ONLY)
    if stray:
        raise ParameterError(
            f"{', '.join(stray)} belong to `featscope shape-bias plot`; add `plot` to draw "
            "csvs, or leave them out to evaluate a model"
        )
    from featscope.views.shape_bias import shape_bias

    result = shape_bias(
        model=args.model,
        data=args.data,
        model_name=args.model_name,
        checkpoint=args.checkpoint,
        mapping=args.mapping,
        input_size=input_size(args.input_size),
        mean=args.mean,
        std=args.std,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        skip_bad_images=bool(args.skip_bad_images),
        work_dir=args.work_dir,
        backends=args.backend,
        formats=tuple(args.format),
        dpi=args.dpi,
        show=args.show,
        progress=not args.quiet,
    )
    _print_table(result, result.shown)
    if result.run_dir is not None:
        print(f"results written to {result.run_dir}/")
    return 0


def _plot(args: argparse.Namespace) -> int:
    stray = _given(args, _EVALUATE_ONLY)
    if stray:
        raise ParameterError(
            f"{', '.join(stray)} evaluate a model and do nothing in `featscope shape-bias plot`; "
            "leave them out (or drop `plot`)"
        )
    paths = [*(args.csv_dir or []), *(args.csv or [])]
    if not paths:
        raise ParameterError(
            "`featscope shape-bias plot` needs --csv-dir DIR (or --csv FILE ...): the decision "
            "csvs to draw"
        )
    from featscope.views.shape_bias import shape_bias_from_csv

    result = shape_bias_from_csv(
        paths,
        models=args.models,
        colors=args.colors,
        markers=args.markers,
        labels=args.plotting_names,
        out_dir=args.out_dir,
        work_dir=args.work_dir,
        backends=args.backend,
        formats=tuple(args.format),
        dpi=args.dpi,
        show=args.show,
    )
    _print_table(result, result.shown)
    if result.run_dir is not None:
        print(f"results written to {result.run_dir}/")
    return 0


def _print_table(result, names) -> None:
    width = max(len("decision maker"), *(len(n) for n in names))
    print(f"{'decision maker':<{width}}  shape bias  shape  texture  other")
    for name in names:
        s = result.stats[name]
        print(
            f"{name:<{width}}  {100 * s.shape_bias:9.1f} %  {s.n_shape:5d}  {s.n_texture:7d}  "
            f"{s.n_other:5d}"
        )
