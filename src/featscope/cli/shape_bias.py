"""``featscope shape-bias``: a classifier's shape bias on the cue-conflict stimuli.

Two forms, each a thin wrapper of one API call::

    featscope shape-bias [--model M] [--checkpoint C] [--data DIR] [--model-name N] [--out F]
    featscope shape-bias plot --csv-dir DIR [--models a b ...] [--colors ...] [--markers ...]
                              [--out figs/]

The first runs :func:`featscope.shape_bias` (with no arguments: EfficientNet-Lite0 with ImageNet
weights), the second :func:`featscope.shape_bias_from_csv` (the reference's
``tools/analysis_tools/shape_bias.py``). Both write a run folder under ``--work-dir``; ``--out``
(``-o``, ``--out-dir``) copies the decision csv, or the plot's figures and json, once it is
finished.
"""

from __future__ import annotations

import argparse
from typing import Any

from featscope.cli.common import add_pretrained_flag, model_from_args, new_parser, print_backends
from featscope.cli.groups import add_group, group_from_args
from featscope.errors import ParameterError

__all__ = ["build_parser", "run"]

# flags of one form that mean nothing in the other: given there, they are an error, not ignored
_EVALUATE_ONLY = (
    "model",
    "checkpoint",
    "data",
    "model_name",
    "mapping",
    "skip_bad_images",
    "input_size",
    "mean",
    "std",
    "in_chans",
    "num_workers",
)
_PLOT_ONLY = ("csv_dir", "csv", "models", "colors", "markers", "plotting_names")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``featscope shape-bias`` (both forms)."""
    from featscope.options import Extraction, Figures, Output, Preprocess

    parser = new_parser(
        "shape-bias",
        "Measure how often a classifier decides by shape rather than texture on the 1,280 "
        "cue-conflict stimuli (Geirhos et al., ICLR 2019) and draw it against humans. "
        "With no --model: EfficientNet-Lite0 with ImageNet weights. "
        "`featscope shape-bias plot --csv-dir DIR` draws decision csvs instead.",
        cfg_example="batch_size=16 model_name=my_r50 format=png",
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=["plot"],
        help="plot: analyse and draw decision csvs (--csv-dir) instead of running a model",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        help="an ImageNet-1k classifier: timm:NAME, tv:NAME, hf:DIR, ts:FILE.pt, "
        "py:pkg.module:factory or demo:NAME (default: demo:efficientnet-lite0)",
    )
    model.add_argument("--checkpoint", help="state dict to load (read with weights_only=True)")
    add_pretrained_flag(model)
    add_group(parser, Preprocess, "preprocessing")
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
    add_group(
        parser,
        Extraction,
        "extraction",
        only=(
            "device",
            "batch_size",
            "fold_bn",
            "num_workers",
            "amp",
            "skip_bad_images",
            "progress",
        ),
        # skip_bad_images None: `plot` can tell it was given
        defaults={"batch_size": 32, "amp": "off", "skip_bad_images": None},
        helps={"batch_size": "images per forward pass"},
    )
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
    add_group(parser, Figures, "figures", only=("formats", "dpi", "show"),
              defaults={"formats": ("png", "pdf")})  # fmt: skip
    add_group(parser, Output, "output", aliases={"export": ["--out-dir"]})
    return parser


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n, None) is not None]


def _groups(args: argparse.Namespace) -> dict[str, Any]:
    from featscope.options import Figures, Output

    return {"figures": group_from_args(Figures, args), "output": group_from_args(Output, args)}


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
    from featscope.options import Extraction, Preprocess
    from featscope.views.shape_bias import shape_bias

    result = shape_bias(
        model=model_from_args(args),
        data=args.data,
        checkpoint=args.checkpoint,
        model_name=args.model_name,
        mapping=args.mapping,
        preprocess=group_from_args(Preprocess, args),
        extraction=group_from_args(Extraction, args, skip_bad_images=bool(args.skip_bad_images)),
        **_groups(args),
    )
    return _report(result)


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
        **_groups(args),
    )
    return _report(result)


def _report(result: Any) -> int:
    """Print the table of shape biases and where the results are."""
    names = result.shown
    width = max(len("decision maker"), *(len(n) for n in names))
    print(f"{'decision maker':<{width}}  shape bias  shape  texture  other")
    for name in names:
        s = result.stats[name]
        print(
            f"{name:<{width}}  {100 * s.shape_bias:9.1f} %  {s.n_shape:5d}  {s.n_texture:7d}  "
            f"{s.n_other:5d}"
        )
    if result.run_dir is not None:
        print(f"results written to {result.run_dir}/")
        print_backends(result.run_dir)
    for path in result.exported:
        print(f"copied to {path}")
    return 0
