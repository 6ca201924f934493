"""The view layer's shape: thin views, results in results.py, small signatures, no private reach."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "featscope"
VIEWS = SRC / "views"
#: The most lines views/ may hold: views compose stage objects and compute nothing. 1,700 for
#: nine views (class activation maps, views/cam.py, came ninth), about a hundred and fifty each
#: beside the shared helpers.
VIEWS_BUDGET = 1_700
#: The most parameters of a public function or method (sklearn-style estimators in analysis/
#: keep flat keyword parameters, as scikit-learn's and openTSNE's do).
MAX_PARAMETERS = 15
#: Libraries whose use means computing or drawing, which views leave to analysis/ and render/.
NUMERICAL = {"numpy", "torch", "scipy", "sklearn", "PIL", "matplotlib", "openTSNE"}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else ""


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def test_no_private_name_is_imported_from_another_package():
    offenders = []
    for path in _modules():
        own = _package(path)
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                continue
            parts = node.module.split(".")
            if parts[0] != "featscope" or len(parts) < 2 or parts[1] == own:
                continue
            private_module = any(p.startswith("_") for p in parts[2:])
            private_names = [a.name for a in node.names if a.name.startswith("_")]
            if private_module or private_names:
                offenders.append(f"{path.relative_to(SRC)}: from {node.module} import ...")
    assert not offenders, offenders


def test_views_hold_no_numerical_code():
    offenders = []
    for path in sorted(VIEWS.rglob("*.py")):
        for node in ast.walk(_tree(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            offenders += [f"{path.name} imports {n}" for n in names if n.split(".")[0] in NUMERICAL]
    assert not offenders, offenders


def test_views_stay_within_their_budget():
    lines = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in VIEWS.glob("*.py")}
    assert sum(lines.values()) <= VIEWS_BUDGET, lines


@pytest.mark.parametrize("package", ["views", "cli"])
def test_result_types_are_defined_in_results(package):
    offenders = []
    for path in sorted((SRC / package).rglob("*.py")):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in node.decorator_list
            ):
                offenders.append(f"{path.relative_to(SRC)}: {node.name}")
    assert not offenders, f"define results in featscope/results.py: {offenders}"


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = fn.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return [n for n in names if n not in ("self", "cls")]


def test_no_public_function_takes_more_than_fifteen_parameters():
    offenders = []
    for path in _modules():
        tree = _tree(path)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions = [(node.name, node)]
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                estimator = _package(path) == "analysis"
                functions = [
                    (f"{node.name}.{item.name}", item)
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and not (estimator and item.name == "__init__")
                    and (item.name == "__init__" or not item.name.startswith("_"))
                ]
            else:
                continue
            for name, fn in functions:
                if name.split(".")[-1].startswith("_") and not name.endswith("__init__"):
                    continue
                count = len(_parameters(fn))
                if count > MAX_PARAMETERS:
                    offenders.append(f"{path.relative_to(SRC)}: {name} takes {count}")
    assert not offenders, offenders
