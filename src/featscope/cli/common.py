"""Flags shared by several subcommands (model, images, points, config), defined once."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from featscope.errors import ParameterError

__all__ = [
    "HelpFormatter",
    "Parser",
    "add_config_flags",
    "add_images_argument",
    "add_model_flags",
    "add_points_flag",
    "add_pretrained_flag",
    "add_trust_checkpoint_flag",
    "model_from_args",
    "new_parser",
    "print_backends",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each flag's default, except where there is none or its help already states it.

    ``ArgumentDefaultsHelpFormatter`` appends ``(default: None)`` to every flag without a default,
    even after a help text that says what happens then ("default: the built-in demo model"), and
    ``(default: True)`` to a switch that turns something off.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default:" in text or action.help == argparse.SUPPRESS:
            return text
        if action.nargs == 0 and action.option_strings and action.default is not None:
            # a switch is off until given; for a store_false switch (--quiet, --no-html), which
            # holds True until given, "(default: True)" would read as "quiet by default"
            return f"{text} (default: off)"
        if action.default is None:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors lead with the problem and its fix, on one line.

    argparse prints the whole usage (26 lines for ``featscope tsne``) before the line that
    matters; here the message comes first, with the nearest flag for a misspelt one and a
    pointer to ``--help``. The exit status stays 2.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message>[; did you mean --flag?] (see ... --help ...)`` and exit 2."""
        hint = ""
        if message.startswith("unrecognized arguments:"):
            import difflib

            flags = [f for f in self._option_string_actions if f.startswith("--")]
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], flags, n=1)
                if word.startswith("-") and close:
                    hint = f"; did you mean {close[0]}?"
                    break
        self.exit(2, f"error: {message}{hint} (see {self.prog} --help for every option)\n")


def new_parser(
    command: str, description: str, *, cfg_example: str | None = None
) -> argparse.ArgumentParser:
    """Return the parser of ``featscope <command>`` with ``--config``/``--cfg-options``.

    Parameters
    ----------
    command : str
        The subcommand, for the usage line.
    description : str
        One paragraph for ``--help``.
    cfg_example : str, optional
        Example ``--cfg-options`` items that use this subcommand's own keys.
    """
    parser = Parser(
        prog=f"featscope {command}",
        description=description,
        formatter_class=HelpFormatter,
    )
    add_config_flags(parser, cfg_example)
    return parser


def add_config_flags(parser: argparse.ArgumentParser, example: str | None = None) -> None:
    """Add ``--config FILE.toml`` and ``--cfg-options key=value ...``."""
    parser.add_argument("--config", metavar="FILE", help="TOML file with any of these options")
    text = "override options: a flag's name without dashes, '=', a TOML value"
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        metavar="KEY=VALUE",
        help=f"{text}, e.g. {example}" if example else text,
    )


def add_model_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the model spec and its checkpoint; return the group.

    The preprocessing overrides and ``--device`` come from the ``Preprocess`` and ``Extraction``
    option groups, which each subcommand adds with :func:`featscope.cli.groups.add_group`.
    """
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        help="timm:NAME, tv:NAME, hf:DIR, mmpretrain:NAME_OR_CONFIG, ts:FILE.pt, "
        "py:pkg.module:factory, py:FILE.py:factory or demo:NAME (default: the built-in demo model)",
    )
    group.add_argument("--checkpoint", help="state dict to load (read with weights_only=True)")
    add_pretrained_flag(group)
    add_trust_checkpoint_flag(group)
    return group


def add_pretrained_flag(group: argparse._ActionsContainer) -> None:
    """Add ``--pretrained``: the zoo's weights for a timm:, tv:, hf: or mmpretrain: model."""
    group.add_argument(
        "--pretrained",
        action="store_true",
        help="load the library's pretrained weights (timm:, tv:, hf: hub ids, mmpretrain:) "
        "through its own cache; without it and without --checkpoint the weights are random",
    )


def model_from_args(args: argparse.Namespace, default: str | None = None) -> Any:
    """Return what the view's ``model`` parameter gets: the spec, or a pretrained model.

    Views take a spec or a loaded :class:`~featscope.models.ModelHandle`; ``--pretrained``
    loads the handle here, through :func:`featscope.load_model`, with the input size and
    channels the command line gives (a timm ViT is resized and a timm model built for that
    many channels while its weights are loaded). The view then loads the checkpoint, moves the
    model to the device and applies the rest of the preprocessing as for any model.

    Raises
    ------
    ParameterError
        ``--pretrained`` without ``--model``.
    """
    spec = args.model or default
    if not getattr(args, "pretrained", False):
        return spec
    if spec is None:
        raise ParameterError(
            "--pretrained needs a model from a zoo: add --model timm:NAME, tv:NAME, hf:HUB_ID "
            "or mmpretrain:NAME"
        )
    from featscope.models import load_model

    shape = {k: getattr(args, k, None) for k in ("input_size", "in_chans")}
    return load_model(spec, pretrained=True, **shape)


def add_trust_checkpoint_flag(group: argparse._ActionsContainer) -> None:
    """Add ``--trust-checkpoint``: allow checkpoints whose unpickling runs code from the file.

    ``featscope.cli.main`` adds it to every subcommand that has ``--checkpoint`` and reads it
    from the command line only (a ``--config`` file cannot turn it on).
    """
    group.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load a checkpoint the safe reader (torch.load weights_only=True) refuses with the "
        "full unpickler, which RUNS CODE FROM THE FILE; only for files you trust as a script",
    )


class _Paths(argparse.Action):
    """Gather image paths from ``--data`` and the positional ``IMAGE`` into one list.

    Both spellings share the dest ``data``: what the command line gives is joined in order and
    replaces a ``--config`` value; no paths at all leave that value (or none).
    """

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if not values or values is self.default:
            return
        current = getattr(namespace, self.dest, None)
        given = current is not None and current is not self.default
        setattr(namespace, self.dest, [*current, *values] if given else list(values))


def add_images_argument(
    parser: argparse.ArgumentParser,
    help_text: str = "image files or folders (default: the demo photos)",
) -> None:
    """Add the images of an image view: ``--data`` and the same paths positionally.

    Both fill ``args.data`` (a list; ``None`` when none is given: the view's demo images), in
    the order given, so ``featscope featmap a.jpg --data b.jpg`` reads both.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    help_text : str, optional
        What the paths are, with the subcommand's default.
    """
    parser.add_argument("data", nargs="*", metavar="IMAGE", action=_Paths, help=help_text)
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", nargs="+", action=_Paths, metavar="PATH", help=f"{help_text}; same as IMAGE"
    )


def add_points_flag(
    parser: argparse.ArgumentParser, help_text: str, *, aliases: tuple[str, ...] = ()
) -> None:
    """Add the capture points flag ``--point``, the same on every subcommand.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    help_text : str
        The flag's help, with the subcommand's default points.
    aliases : tuple of str, optional
        Other spellings: ``tsne`` accepts ``--vis-stage``, the name of MMPretrain's and
        MMSelfSup's t-SNE tools.
    """
    parser.add_argument(
        "--point", *aliases, dest="points", nargs="+", metavar="POINT", help=help_text
    )


def print_backends(run_dir: object) -> None:
    """Print how to open the run's mirrors: the TensorBoard command, the W&B run folder."""
    import json
    from pathlib import Path

    # the manifest alone: reading the whole run back would cost as much as a big run's files
    manifest = json.loads((Path(str(run_dir)) / "manifest.json").read_text(encoding="utf-8"))
    backends = (manifest.get("metadata") or {}).get("backends") or {}
    command = (backends.get("tensorboard") or {}).get("command")
    if command:
        print(f"open it in TensorBoard: {command}")
    folder = (backends.get("wandb") or {}).get("dir")
    if folder:
        print(f"W&B run files: {folder}")
