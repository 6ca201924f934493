"""The package tree is the pipeline: imports go one way, and `import featscope` stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "featscope"
# `lightning` (a module) is an entry point beside `cli`: the Lightning callback over the Monitor.
ORDER = ["models", "data", "capture", "analysis", "render", "sinks", "views", "lightning", "cli"]
# Modules every stage may use: they import no other featscope module than these.
BASE = ["errors", "results", "options", "progress"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _stage_files(stage: str) -> list[Path]:
    module = SRC / f"{stage}.py"
    return [module] if module.is_file() else sorted((SRC / stage).rglob("*.py"))


@pytest.mark.parametrize("module", BASE)
def test_base_modules_import_no_stage(module):
    own = {
        name.split(".")[1]
        for name in _imports(SRC / f"{module}.py")
        if name.startswith("featscope.") and len(name.split(".")) > 1
    }
    assert own <= set(BASE), f"{module}.py imports featscope.{sorted(own - set(BASE))}"


@pytest.mark.parametrize("stage", ORDER)
def test_imports_go_one_way(stage):
    later = ORDER[ORDER.index(stage) + 1 :]
    offenders = []
    for path in _stage_files(stage):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "featscope" and len(parts) > 1 and parts[1] in later:
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert not offenders, offenders


@pytest.mark.parametrize(
    ("stage", "forbidden"), [("render", "torch"), ("analysis", "torch"), ("analysis", "matplotlib")]
)
def test_stage_does_not_import(stage, forbidden):
    # analysis/ may import torch inside a function (the t-SNE neighbour search uses it when
    # installed), never at module level; every other pair is forbidden everywhere.
    top_level_only = (stage, forbidden) == ("analysis", "torch")
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _stage_files(stage)
        for name in (_top_level_imports(path) if top_level_only else _imports(path))
        if name.split(".")[0] == forbidden
    ]
    assert not offenders, offenders


def _top_level_imports(path: Path) -> set[str]:
    """Imports executed when the module is imported (outside any function or class)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif _is_type_checking_block(node):
            todo.extend(node.orelse)  # `if TYPE_CHECKING:` imports never run
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return names


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def test_nothing_below_cli_reads_argv_or_prints():
    offenders = []
    for stage in ORDER[:-1]:
        for path in _stage_files(stage):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} print()")
                if isinstance(node, ast.Attribute) and node.attr == "argv":
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} sys.argv")
    assert not offenders, offenders


def _loaded_by(imports: str, modules: tuple[str, ...]) -> str:
    """Which of ``modules`` a fresh interpreter has loaded after ``import <imports>``."""
    code = f"import sys, {imports}; print(','.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_featscope_is_cheap():
    heavy = ("torch", "matplotlib", "matplotlib.pyplot", "sklearn", "openTSNE", "timm",
             "transformers", "scipy")  # fmt: skip
    assert _loaded_by("featscope", heavy) == ""


def test_import_of_the_analysis_layer_is_cheap():
    """The estimators load their libraries when they fit (numba, scipy, openTSNE), not before."""
    heavy = ("torch", "numba", "scipy", "sklearn", "openTSNE", "matplotlib")
    assert _loaded_by("featscope.analysis, featscope.analysis.tsne", heavy) == ""


def test_lazy_names_resolve():
    import featscope

    for name in featscope.__all__:
        assert getattr(featscope, name) is not None, name
