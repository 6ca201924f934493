"""Model spec strings: the one place ``timm:resnet50``-style strings are parsed.

A spec is ``<prefix>:<target>``:

==========  ==========================================  ===================================
prefix      target                                      example
==========  ==========================================  ===================================
timm        a ``timm.list_models()`` name                ``timm:resnet50``
tv          a ``torchvision.models.get_model`` name      ``tv:resnet18``
hf          a local ``save_pretrained`` dir or hub id   ``hf:./my-vit``
mmpretrain  an MMPretrain model name or config file     ``mmpretrain:resnet18_8xb16_cifar10``
ts          a TorchScript archive                       ``ts:model.pt``
py          ``package.module:factory`` (zero-arg),      ``py:mypkg.nets:build``,
            or ``path/to/file.py:factory``              ``py:nets.py:build``
demo        a built-in demo model                       ``demo:digits``
==========  ==========================================  ===================================

This module imports nothing heavy; the model zoos are only imported to suggest a fix when a spec
is wrong.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass

from featscope.errors import FeatscopeError, ModelSpecError

__all__ = ["PREFIXES", "ModelSpec", "parse_py", "parse_spec"]

#: The valid spec prefixes, in the order they are listed in messages.
PREFIXES = ("timm", "tv", "hf", "mmpretrain", "ts", "py", "demo")

# Long spellings users type from muscle memory map to the canonical prefix.
_PREFIX_ALIASES = {
    "torchvision": "tv",
    "huggingface": "hf",
    "transformers": "hf",
    "torchscript": "ts",
    "jit": "ts",
    "mmpre": "mmpretrain",
    "mmcls": "mmpretrain",
    "mmselfsup": "mmpretrain",
}

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*"
_FACTORY_RE = re.compile(rf"^({_DOTTED}):({_DOTTED})$")
# a file path: anything ending in .py (a Windows path holds a colon too), then the attribute
_FILE_FACTORY_RE = re.compile(rf"^(.+\.py):({_DOTTED})$", re.IGNORECASE)
_TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
_VALID = "valid prefixes: " + ", ".join(f"{p}:" for p in PREFIXES)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes
    ----------
    kind : str
        One of :data:`PREFIXES`.
    target : str
        Everything after the prefix: a model name, a path, a hub id or ``module:factory``.
    raw : str
        The spec string as given.
    """

    kind: str
    target: str
    raw: str

    def factory_path(self) -> tuple[str, str]:
        """Split a ``py:`` target into its module (or file) and attribute path.

        Returns
        -------
        tuple of str
            ``(module, attribute)``, e.g. ``("mypkg.nets", "build")`` or
            ``("path/to/nets.py", "build")``.

        Raises
        ------
        ModelSpecError
            When the spec is not a ``py:`` spec.
        """
        if self.kind != "py":
            raise ModelSpecError(
                f"model spec {self.raw!r} is a {self.kind}: spec, not py:; only py: specs name a "
                "factory"
            )
        module, _, attribute = self.target.rpartition(":")
        return module, attribute


def parse_spec(spec: str) -> ModelSpec:
    """Parse a model spec string.

    Parameters
    ----------
    spec : str
        ``"<prefix>:<target>"``, e.g. ``"timm:resnet50"``, ``"tv:resnet18"``, ``"hf:./vit"``,
        ``"mmpretrain:resnet18_8xb16_cifar10"``, ``"ts:model.pt"``, ``"py:mypkg.nets:build"`` or
        ``"demo:digits"``.

    Returns
    -------
    ModelSpec
        The canonical prefix (long forms such as ``torchvision:`` become ``tv``), the target and
        the raw string.

    Raises
    ------
    ModelSpecError
        When the prefix is missing or unknown (the message suggests a spec), the target is empty,
        or a ``py:`` target is not ``package.module:factory``.
    """
    if not isinstance(spec, str):
        raise ModelSpecError(
            f"model spec must be a string such as 'timm:resnet50'; got {type(spec).__name__}"
        )
    raw = spec
    spec = spec.strip()
    if not spec:
        raise ModelSpecError(f"model spec is empty; pass e.g. timm:resnet50 ({_VALID})")
    prefix, sep, target = spec.partition(":")
    kind = _PREFIX_ALIASES.get(prefix.lower(), prefix.lower())
    if not sep or kind not in PREFIXES:
        raise ModelSpecError(_unknown_prefix_message(raw, spec, prefix if sep else None))
    target = target.strip()
    if not target:
        raise ModelSpecError(f"model spec {raw!r} has nothing after '{kind}:'; {_EXAMPLES[kind]}")
    if kind == "py":
        return parse_py(raw)
    return ModelSpec(kind=kind, target=target, raw=raw)


def parse_py(
    spec: str, what: str = "model", error: type[FeatscopeError] = ModelSpecError
) -> ModelSpec:
    """Parse a ``py:`` spec, for a model, a transform or data alike.

    Parameters
    ----------
    spec : str
        ``"py:package.module:name"`` or ``"py:path/to/file.py:name"`` (``name`` may be dotted).
    what : str, default "model"
        What the spec names, for the error message.
    error : type, default ModelSpecError
        The error to raise (data specs raise :class:`~featscope.errors.DataError`).

    Returns
    -------
    ModelSpec
        ``kind="py"``.

    Raises
    ------
    ModelSpecError
        (or ``error``) When the spec does not have that form.
    """
    prefix, _, target = spec.strip().partition(":")
    target = target.strip()
    if prefix.lower() != "py" or not (_FACTORY_RE.match(target) or _FILE_FACTORY_RE.match(target)):
        raise error(
            f"{what} spec {spec!r}: a py: spec must be py:package.module:factory (a dotted module "
            "path, a colon, then a function that takes no arguments), e.g. py:mypkg.nets:build, "
            "or py:path/to/file.py:factory"
        )
    return ModelSpec(kind="py", target=target, raw=spec)


_EXAMPLES = {
    "timm": "give a timm model name, e.g. timm:resnet50",
    "tv": "give a torchvision model name, e.g. tv:resnet18",
    "hf": "give a save_pretrained directory or a hub id, e.g. hf:./my-vit",
    "mmpretrain": "give an MMPretrain model name or config file, e.g. "
    "mmpretrain:resnet18_8xb16_cifar10",
    "ts": "give the path of a TorchScript file, e.g. ts:model.pt",
    "py": "give package.module:factory or file.py:factory, e.g. py:mypkg.nets:build",
    "demo": "give a demo model name, e.g. demo:digits",
}


def _unknown_prefix_message(raw: str, spec: str, prefix: str | None) -> str:
    """Build the error for a spec without a known prefix, with the most likely fix."""
    if prefix is None:
        head = f"model spec {raw!r} has no prefix"
    else:
        head = f"model spec {raw!r} has an unknown prefix {prefix!r}"
    return f"{head} ({_VALID}); {_suggest(spec, prefix)}"


def _suggest(spec: str, prefix: str | None) -> str:
    """Guess what the user meant by a spec without a valid prefix."""
    if os.path.isdir(spec):
        return f"did you mean hf:{spec} (a Hugging Face save_pretrained directory)?"
    if os.path.isfile(spec):
        if spec.lower().endswith(".py"):
            return f"did you mean mmpretrain:{spec} (an OpenMMLab config file)?"
        if spec.lower().endswith(_TORCHSCRIPT_SUFFIXES):
            return (
                f"did you mean ts:{spec}? (if the file is a state dict rather than TorchScript, "
                "pass it as the checkpoint of a model spec, e.g. timm:resnet50)"
            )
        return f"did you mean ts:{spec} (a TorchScript file)?"
    if prefix is not None:
        # a typo of a prefix ("tim:") is likelier than a factory module of that name
        close = difflib.get_close_matches(prefix.lower(), [*PREFIXES, *_PREFIX_ALIASES], n=1)
        if close:
            fixed = _PREFIX_ALIASES.get(close[0], close[0])
            return f"did you mean {fixed}:{spec.partition(':')[2]}?"
        if _FACTORY_RE.match(spec):
            return f"did you mean py:{spec} (a factory function)?"
        return "write the spec as <prefix>:<target>, e.g. timm:resnet50"
    return _suggest_zoo(spec)


def _suggest_zoo(name: str) -> str:
    """Suggest ``timm:``/``tv:`` for a bare model name, checking the zoos when installed."""
    in_timm = _in_zoo(name, "timm")
    in_tv = _in_zoo(name, "tv")
    if in_timm and not in_tv:
        return f"did you mean timm:{name}?"
    if in_tv and not in_timm:
        return f"did you mean tv:{name}?"
    return f"did you mean timm:{name} or tv:{name}?"


def _in_zoo(name: str, zoo: str) -> bool | None:
    """Whether ``name`` is a model of the zoo; ``None`` when the zoo is not installed."""
    try:
        if zoo == "timm":
            import timm

            return bool(timm.list_models(name))
        from torchvision import models

        return name in models.list_models()
    except ImportError:
        return None
