"""Load a checkpoint's weights into a model, safely, whatever wrapper it was saved in.

Checkpoints are read with ``torch.load(..., weights_only=True)`` (or the ``safetensors`` library
for ``.safetensors`` files), so a checkpoint can never run code: a pickle that needs arbitrary
classes is refused with :class:`~featscope.errors.CheckpointError`.

A user who trusts a file (their own training run that pickled extra objects) can allow the full
unpickler, which *runs code from the file*: ``featscope <command> --trust-checkpoint`` or, from
Python, ``with featscope.models.checkpoint.trusted_checkpoints(): ...``. Even then the safe reader
is tried first; the full one is used, with a warning, only for a file the safe one refuses. The
switch is a :class:`contextvars.ContextVar`, so it holds for the ``with`` block (and its thread or
task) only and never leaks into other code.

Training frameworks wrap the state dict in different ways. This module tries every way of
unwrapping it and keeps the one whose keys match the most model keys:

- dict wrappers ``state_dict``, ``model``, ``module``, ``state_dict_ema``, ``model_ema``
  (MMEngine/OpenMMLab, Lightning, timm's train script, DeiT, MAE);
- key prefixes ``module.`` (DistributedDataParallel), ``model.`` (Lightning),
  ``_orig_mod.`` (``torch.compile``), in any combination;
- OpenMMLab classifier layouts (``backbone.``/``neck.``/``head.``) loaded into a bare backbone:
  ``backbone.`` is stripped and the ``neck.``/``head.`` keys are reported as unexpected.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featscope.errors import CheckpointError
from featscope.models._util import first_line

if TYPE_CHECKING:
    import torch

__all__ = ["CheckpointReport", "checkpoints_trusted", "load_checkpoint", "trusted_checkpoints"]

_WRAPPER_KEYS = ("state_dict", "model", "module", "state_dict_ema", "model_ema")
_PREFIXES = ("module.", "model.", "_orig_mod.")
_OPENMMLAB_PREFIX = "backbone."
_SHOWN = 10
_CHUNK = 1 << 20
#: The flag of :func:`trusted_checkpoints`; a ContextVar so that it is scoped to a with-block.
_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "featscope_trusted_checkpoints", default=False
)
#: How the refusal tells the user to allow a file anyway (the CLI flag and the Python switch).
TRUST_HINT = (
    "if you trust the file, pass --trust-checkpoint (Python: `with "
    "featscope.models.checkpoint.trusted_checkpoints(): ...`), which runs the file's code"
)


@contextlib.contextmanager
def trusted_checkpoints(enabled: bool = True) -> Iterator[None]:
    """Allow checkpoints that need code from the file to unpickle, inside a ``with`` block.

    By default featscope reads checkpoints with ``torch.load(weights_only=True)`` and refuses a
    file that holds other Python objects. Inside this block such a file is read with
    ``weights_only=False`` after a warning: **unpickling runs code from the file**, so use it
    only for files you made or trust as you would a Python script. Files the safe reader can
    read are still read with it. The command line sets it with ``--trust-checkpoint``.

    Parameters
    ----------
    enabled : bool, default True
        False turns trust off inside the block (e.g. within an outer trusted block).

    Yields
    ------
    None

    Examples
    --------
    >>> from featscope.models.checkpoint import trusted_checkpoints
    >>> with trusted_checkpoints():  # doctest: +SKIP
    ...     handle = featscope.models.load_model("timm:resnet18", checkpoint="my_run.pth")
    """
    token = _TRUSTED.set(bool(enabled))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def checkpoints_trusted() -> bool:
    """Return whether code-running checkpoints are allowed here (see :func:`trusted_checkpoints`).

    Returns
    -------
    bool
        True inside ``with trusted_checkpoints():`` (or under ``--trust-checkpoint``).
    """
    return _TRUSTED.get()


@dataclass(frozen=True)
class CheckpointReport:
    """What :func:`load_checkpoint` loaded.

    Attributes
    ----------
    path : str
        The checkpoint file.
    sha256 : str
        SHA-256 of the file (hex).
    missing : tuple of str
        Model keys the checkpoint does not have (they keep their current values).
    unexpected : tuple of str
        Checkpoint keys (after unwrapping) the model does not have (ignored).
    prefix_stripped : str
        Key prefixes removed from the checkpoint keys, in order (``"module._orig_mod."``), or
        ``""``.
    wrapper : str
        Dict keys the state dict was found under, joined by ``/`` (``"state_dict"``), or ``""``.
    matched : int
        Number of model keys loaded from the checkpoint.
    """

    path: str
    sha256: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    prefix_stripped: str
    wrapper: str = ""
    matched: int = 0


def load_checkpoint(
    module: torch.nn.Module, path: str | os.PathLike[str], *, strict: bool = False
) -> CheckpointReport:
    """Load the weights of a checkpoint file into ``module`` in place.

    Parameters
    ----------
    module : torch.nn.Module
        The model to load into.
    path : str or os.PathLike
        A ``.pt``/``.pth``/``.bin`` file saved with ``torch.save`` (a state dict, possibly
        wrapped, see the module docstring) or a ``.safetensors`` file.
    strict : bool, default False
        Raise instead of warning when some model keys are missing from the checkpoint or the
        checkpoint has keys the model lacks.

    Returns
    -------
    CheckpointReport
        The file's hash, the unwrapping applied and the keys that did not match.

    Raises
    ------
    CheckpointError
        When the file is missing or unreadable, would need to run code to unpickle (unless
        inside :func:`trusted_checkpoints`), holds no
        tensors, shares no key with the model, has a tensor whose shape differs from the model's
        (naming the key and both shapes), or, with ``strict=True``, any key does not match.

    Warns
    -----
    UserWarning
        Naming the missing and unexpected keys (first 10 and a count) when ``strict=False``.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"checkpoint {str(file)!r} does not exist or is not a file; pass the path of a "
            ".pt/.pth/.bin/.safetensors file"
        )
    loaded = _read(file)
    model_state = module.state_dict()
    model_keys = set(model_state)
    candidates = list(_candidates(loaded))
    if not candidates:
        raise CheckpointError(
            f"checkpoint {str(file)!r} holds no tensors (top-level keys: "
            f"{_shown(_top_keys(loaded))}); pass a file saved with torch.save(model.state_dict())"
        )
    best = max(candidates, key=lambda c: (len(model_keys & c.state.keys()), -c.cost))
    matched = [key for key in model_state if key in best.state]
    if not matched:
        raise CheckpointError(
            f"checkpoint {str(file)!r} shares no key with the model: the model expects e.g. "
            f"{_shown(model_state, 5)} but the checkpoint has e.g. {_shown(best.state, 5)}; "
            "check that the checkpoint belongs to this model"
        )
    # model order, so the first mismatch named is the first layer that differs
    mismatched = [
        (key, tuple(best.state[key].shape), tuple(value.shape))
        for key, value in model_state.items()
        if key in best.state and tuple(best.state[key].shape) != tuple(value.shape)
    ]
    if mismatched:
        key, got, want = mismatched[0]
        more = ""
        if len(mismatched) > 1:
            more = f" (and {len(mismatched) - 1} more: {_shown([k for k, _, _ in mismatched[1:]])})"
        raise CheckpointError(
            f"checkpoint {str(file)!r}: tensor {key!r} has shape {got} but the model's has "
            f"shape {want}{more}; the checkpoint belongs to a different model variant (or a "
            "different number of classes)"
        )
    missing = tuple(key for key in model_state if key not in best.state)
    unexpected = tuple(key for key in best.state if key not in model_keys)
    _report_mismatch(file, missing, unexpected, best, strict=strict)
    module.load_state_dict({key: best.state[key] for key in matched}, strict=False)
    return CheckpointReport(
        path=str(file),
        sha256=_sha256(file),
        missing=missing,
        unexpected=unexpected,
        prefix_stripped="".join(best.prefixes),
        wrapper="/".join(best.wrapper),
        matched=len(matched),
    )


@dataclass(frozen=True)
class _Candidate:
    state: dict[str, Any]
    wrapper: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    @property
    def cost(self) -> int:
        # fewer transformations win ties: the plain reading is the most likely one
        return len(self.wrapper) + len(self.prefixes)


def _read(file: Path) -> Any:
    """Read a checkpoint without running code from it."""
    if file.suffix == ".safetensors":
        from featscope._optional import require

        safetensors_torch = require("safetensors.torch", "hf", "reading .safetensors checkpoints")
        try:
            return safetensors_torch.load_file(str(file), device="cpu")
        except Exception as exc:  # the library raises its own SafetensorError and OSError
            raise CheckpointError(
                f"checkpoint {str(file)!r} is not a readable safetensors file ({exc}); pass a "
                "file written by safetensors.torch.save_file"
            ) from exc
    import pickle

    import torch

    _check_inflation(file)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words it "Unsupported global: GLOBAL x.y" or "unsupported GLOBAL x.y whose module"
        unsafe = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", str(exc), re.IGNORECASE)
        what = (
            f"the Python global {unsafe.group(1)}"
            if unsafe
            else "pickled data that the safe reader refuses"
        )
        if checkpoints_trusted():
            return _read_trusted(file, what, torch)
        if unsafe:
            raise CheckpointError(
                f"checkpoint {str(file)!r} contains {what}, which can only be unpickled by running "
                "code from the file; featscope loads checkpoints with torch.load(weights_only=True)"
                " and refuses to run code from checkpoints; re-save just the weights with "
                f"torch.save(model.state_dict(), path), or {TRUST_HINT}"
            ) from exc
        raise CheckpointError(
            f"checkpoint {str(file)!r} is not a readable torch.save file ({_reason(exc)}); "
            "pass a state dict saved with torch.save or a .safetensors file, or, if the file is "
            f"a pickle you trust, {TRUST_HINT.removeprefix('if you trust the file, ')}"
        ) from exc
    except Exception as exc:  # damaged files make torch raise KeyError, IndexError, EOFError...
        raise CheckpointError(
            f"checkpoint {str(file)!r} cannot be read ({type(exc).__name__}: {first_line(exc)}); "
            "it is damaged or not a checkpoint; pass a state dict "
            "saved with torch.save or a .safetensors file"
        ) from exc


#: Slack for a torch.save archive's own records (the pickle, version files) beyond its size.
_INFLATION_SLACK = 1 << 20


def _check_inflation(file: Path) -> None:
    """Refuse a zip checkpoint whose members inflate beyond the file's own size.

    ``torch.save`` stores every record uncompressed, so its records add up to at most the
    archive's size. A crafted archive with deflated records (or records claiming sizes the file
    cannot hold) makes ``torch.load`` allocate the inflated size before any check: a 3 MB file
    became 3 GB. The zip directory is read without inflating anything.
    """
    import zipfile

    size = file.stat().st_size
    try:
        if not zipfile.is_zipfile(file):
            declared = _legacy_declared_bytes(file)
            if declared is not None and declared > size + _INFLATION_SLACK:
                raise CheckpointError(
                    f"checkpoint {str(file)!r} is {size:,} bytes but its storages declare "
                    f"{declared:,}; torch would allocate them before reading, so the file is "
                    "damaged or crafted: re-save the weights with torch.save(model.state_dict(), "
                    "path)"
                )
            return
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch.load reports a damaged archive in its own words
    inflated = sum(m.file_size for m in members)
    if inflated > size + _INFLATION_SLACK:
        biggest = max(members, key=lambda m: m.file_size)
        raise CheckpointError(
            f"checkpoint {str(file)!r} is {size:,} bytes but its records inflate to "
            f"{inflated:,} (largest: {biggest.filename!r}, {biggest.file_size:,}); torch.save "
            "never compresses, so the file is damaged or crafted: re-save the weights with "
            "torch.save(model.state_dict(), path)"
        )


#: Bytes per element of the legacy format's typed storages (``torch.FloatStorage``, ...).
_ELEMENT_BYTES = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4,
                  "Short": 2, "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8,
                  "ComplexDouble": 16}  # fmt: skip


class _Inert:
    """Stands for every global of a scanned pickle: accepts any construction, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _legacy_declared_bytes(file: Path) -> int | None:
    """Sum the storage sizes a legacy (pre-1.6) ``torch.save`` file declares, running nothing.

    The first four pickles of the format (magic number, protocol, system info, the object)
    are read with an unpickler whose every global is :class:`_Inert` and whose persistent ids
    (``("storage", type, key, location, numel, ...)``) are only recorded, so nothing from the
    file runs and nothing is allocated. ``None`` when the file is not in that format.
    """
    import pickle

    sizes: dict[str, int] = {}

    class Scan(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if name.endswith("Storage"):
                return type(name, (_Inert,), {"element": name.removesuffix("Storage")})
            return _Inert

        def persistent_load(self, pid: Any) -> Any:
            if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
                element = getattr(pid[1], "element", "")
                numel = pid[4]
                if isinstance(numel, int):
                    sizes[str(pid[2])] = numel * _ELEMENT_BYTES.get(element, 8)
            return _Inert()

    try:
        with file.open("rb") as handle:
            for _ in range(4):
                Scan(handle).load()
    except Exception:  # not the legacy format, or damaged: torch.load reports it
        return None
    return sum(sizes.values()) if sizes else None


def _reason(exc: BaseException) -> str:
    """Return the line of torch's long weights-only message that says what was refused."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line.lower().startswith(("unsupported", "weightsunpickler error")):
            return line.removeprefix("WeightsUnpickler error: ").split(". ")[0].rstrip(".")
    return first_line(exc)


def _read_trusted(file: Path, what: str, torch: Any) -> Any:
    """Read ``file`` with the full unpickler (runs its code) after warning the user."""
    warnings.warn(
        f"checkpoint {str(file)!r} holds {what}; loading it with torch.load(weights_only=False) "
        "because checkpoints are trusted (--trust-checkpoint): this runs code from the file",
        UserWarning,
        stacklevel=4,
    )
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except Exception as exc:  # any error of the file's own code: report it, not as a crash
        raise CheckpointError(
            f"checkpoint {str(file)!r} could not be unpickled even with --trust-checkpoint "
            f"({type(exc).__name__}: {first_line(exc)}); it may need a class from a module "
            "that is not importable here, or the file is damaged"
        ) from exc


def _candidates(loaded: Any) -> list[_Candidate]:
    """Every reading of the loaded object as a flat ``{key: tensor}`` state dict."""
    import torch

    out: list[_Candidate] = []

    def visit(obj: Any, wrapper: tuple[str, ...]) -> None:
        if not isinstance(obj, Mapping) or len(wrapper) > 3:
            return
        tensors = {
            k: v for k, v in obj.items() if isinstance(v, torch.Tensor) and isinstance(k, str)
        }
        if tensors:
            out.extend(_prefix_variants(_Candidate(tensors, wrapper)))
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                visit(obj[key], (*wrapper, key))

    visit(loaded, ())
    return out


def _prefix_variants(base: _Candidate) -> list[_Candidate]:
    """Return the candidate with every combination of known key prefixes stripped (3 deep)."""
    variants = [base]
    frontier = [base]
    for _ in range(3):
        grown = []
        for cand in frontier:
            for prefix in (*_PREFIXES, _OPENMMLAB_PREFIX):
                if prefix in cand.prefixes or not any(k.startswith(prefix) for k in cand.state):
                    continue
                # keys without the prefix are kept as they are (e.g. a head next to a backbone)
                state = {_strip(k, prefix): v for k, v in cand.state.items()}
                grown.append(_Candidate(state, cand.wrapper, (*cand.prefixes, prefix)))
        variants.extend(grown)
        frontier = grown
    return variants


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def _report_mismatch(
    file: Path,
    missing: tuple[str, ...],
    unexpected: tuple[str, ...],
    best: _Candidate,
    *,
    strict: bool,
) -> None:
    """Warn (or raise when strict) about keys that did not match, naming them."""
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} model key(s) missing from the checkpoint (they keep their current "
            f"values): {_shown(missing)}"
        )
    if unexpected:
        note = ""
        if _OPENMMLAB_PREFIX in best.prefixes and any(
            k.startswith(("head.", "neck.")) for k in unexpected
        ):
            note = (
                " (an OpenMMLab classifier checkpoint: its head./neck. weights belong to modules "
                "this backbone-only model does not have)"
            )
        parts.append(
            f"{len(unexpected)} checkpoint key(s) not in the model (ignored){note}: "
            f"{_shown(unexpected)}"
        )
    how = ""
    if best.wrapper or best.prefixes:
        how = f" after unwrapping {'/'.join(best.wrapper) or '-'} and stripping " + (
            "".join(best.prefixes) or "no prefix"
        )
    message = f"checkpoint {str(file)!r}{how}: " + "; ".join(parts)
    if strict:
        raise CheckpointError(message + "; pass strict=False to load the matching keys anyway")
    warnings.warn(message, stacklevel=3)


def _shown(keys: Any, limit: int = _SHOWN) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return f"[{shown}]{more}"


def _top_keys(loaded: Any) -> list[str]:
    return [str(k) for k in loaded] if isinstance(loaded, Mapping) else [type(loaded).__name__]


def _sha256(file: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks so large checkpoints never sit in memory twice."""
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
