from __future__ import annotations

import subprocess
import sys

import pytest

from featscope.errors import ModelSpecError
from featscope.models.spec import PREFIXES, ModelSpec, parse_spec


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("timm:resnet50", "timm", "resnet50"),
        ("timm:vit_tiny_patch16_224", "timm", "vit_tiny_patch16_224"),
        ("tv:resnet18", "tv", "resnet18"),
        ("torchvision:resnet18", "tv", "resnet18"),
        ("hf:./my-vit", "hf", "./my-vit"),
        ("hf:google/vit-base-patch16-224", "hf", "google/vit-base-patch16-224"),
        ("ts:model.pt", "ts", "model.pt"),
        ("ts:C:\\models\\m.pt", "ts", "C:\\models\\m.pt"),
        ("py:mypkg.nets:build", "py", "mypkg.nets:build"),
        ("demo:digits", "demo", "digits"),
        ("TIMM:resnet50", "timm", "resnet50"),
        ("  tv:resnet18 ", "tv", "resnet18"),
    ],
)
def test_parse_spec_kinds(spec: str, kind: str, target: str) -> None:
    parsed = parse_spec(spec)
    assert parsed == ModelSpec(kind=kind, target=target, raw=spec)


def test_factory_path_splits_module_and_attribute() -> None:
    assert parse_spec("py:a.b.c:make.model").factory_path() == ("a.b.c", "make.model")
    with pytest.raises(ModelSpecError, match="not py:"):
        parse_spec("timm:resnet50").factory_path()


def test_bare_zoo_name_suggests_both_prefixes() -> None:
    with pytest.raises(
        ModelSpecError, match=r"no prefix.*did you mean timm:resnet50 or tv:resnet50"
    ):
        parse_spec("resnet50")


def test_timm_only_name_suggests_timm() -> None:
    with pytest.raises(ModelSpecError, match=r"did you mean timm:vit_tiny_patch16_224\?"):
        parse_spec("vit_tiny_patch16_224")


def test_error_lists_valid_prefixes() -> None:
    with pytest.raises(ModelSpecError) as info:
        parse_spec("resnet50")
    for prefix in PREFIXES:
        assert f"{prefix}:" in str(info.value)


def test_existing_pt_file_suggests_ts(tmp_path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    with pytest.raises(ModelSpecError, match=r"did you mean ts:.*model\.pt"):
        parse_spec(str(path))


def test_existing_directory_suggests_hf(tmp_path) -> None:
    with pytest.raises(ModelSpecError, match="did you mean hf:"):
        parse_spec(str(tmp_path))


def test_prefix_typo_suggests_the_prefix() -> None:
    with pytest.raises(ModelSpecError, match=r"unknown prefix 'tim'.*did you mean timm:resnet50\?"):
        parse_spec("tim:resnet50")


def test_module_colon_factory_without_prefix_suggests_py() -> None:
    with pytest.raises(ModelSpecError, match=r"did you mean py:mypkg\.nets:build"):
        parse_spec("mypkg.nets:build")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("timm:", "nothing after 'timm:'"),
        ("py:just_a_module", r"py:package\.module:factory"),
        ("py:pkg.mod:", r"py:package\.module:factory"),
        ("py:pkg.mod:1bad", r"py:package\.module:factory"),
    ],
)
def test_malformed_specs(spec: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        parse_spec(spec)


def test_non_string_spec_rejected() -> None:
    with pytest.raises(ModelSpecError, match="must be a string"):
        parse_spec(3)  # type: ignore[arg-type]


def test_models_package_import_is_light() -> None:
    code = (
        "import sys, featscope.models, featscope.models.spec; "
        "names = ('torch', 'timm', 'transformers', 'torchvision'); "
        "heavy = [m for m in names if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
