"""The benchmarks still import and call what riskstrat exposes, so a refactor cannot break them silently.

Nothing is timed or run: every ``benchmarks`` module is imported, and every
``riskstrat`` import inside a function (the stages import lazily, so a stage
process's peak memory is its own) is resolved. Each call of an imported name,
or of a Prefect task's ``.fn``, is bound to that function's signature with
placeholder arguments, so a parameter renamed, added or taken away is caught
too (a re-ordered one of the same count is not).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
# benchmarks/ is a folder of scripts at the repository root, not part of the installed package.
sys.path.insert(0, str(REPO))

MODULES = sorted(f"benchmarks.{p.stem}" for p in BENCHMARKS.glob("*.py") if p.stem != "__init__")

pytestmark = pytest.mark.slow


def _riskstrat_imports(tree: ast.AST) -> dict[str, tuple[str, str]]:
    """Local name -> (module, attribute) of every ``from riskstrat... import name`` in ``tree``."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "riskstrat":
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def _resolve(module: str, name: str) -> object:
    imported = importlib.import_module(module)
    if hasattr(imported, name):
        return getattr(imported, name)
    return importlib.import_module(f"{module}.{name}")  # ``from riskstrat.features import acute``


def _called(call: ast.Call, names: dict[str, object]) -> tuple[str, object] | None:
    """The imported callable a call runs (``name(...)``, or ``task.fn(...)``: the task's ``.fn``), if any."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in names:
        return func.id, names[func.id]
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "fn"
        and isinstance(func.value, ast.Name)
        and func.value.id in names
    ):
        # getattr(..., None): a task that became a plain function has no .fn, reported by the caller.
        return f"{func.value.id}.fn", getattr(names[func.value.id], "fn", None)
    return None


def _check_function(function: ast.AST, label: str) -> list[str]:
    """Problems with the riskstrat imports and calls of one function (empty when none)."""
    problems = []
    names: dict[str, object] = {}
    for local, (module, name) in _riskstrat_imports(function).items():
        try:
            names[local] = _resolve(module, name)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{label}: from {module} import {name}: {exc}")
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        called = _called(node, names)
        if called is None:
            continue
        if not callable(called[1]):
            problems.append(f"{label}, line {node.lineno}: {called[0]} is not callable (no longer a task?)")
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            continue  # *args or **kwargs: the arguments are not known here
        try:
            signature = inspect.signature(called[1])
        except (TypeError, ValueError):
            continue
        try:
            signature.bind(*[None] * len(node.args), **{k.arg: None for k in node.keywords})
        except TypeError as exc:
            problems.append(f"{label}, line {node.lineno}: {called[0]}{signature}: {exc}")
    return problems


@pytest.mark.parametrize("module", MODULES)
def test_every_benchmark_module_imports(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize("module", MODULES)
def test_riskstrat_imports_and_calls_resolve(module: str) -> None:
    """Every function's imports (lazy ones included) exist and every call fits the callee's signature."""
    tree = ast.parse((BENCHMARKS / f"{module.split('.')[1]}.py").read_text(encoding="utf-8"))
    # Module-level imports are in scope in every function too.
    top = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    problems = []
    for function in _functions(tree).values():
        problems += _check_function(
            ast.Module(body=[*top, function], type_ignores=[]), f"{module}.{function.name}"
        )
    assert not problems, "\n".join(problems)


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def _helpers_called(function: ast.FunctionDef, helpers: dict[str, ast.FunctionDef]) -> set[str]:
    """The module's own functions ``function`` calls, directly or through each other."""
    found: set[str] = set()
    todo = [function]
    while todo:
        for node in ast.walk(todo.pop()):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                if name in helpers and name not in found:
                    found.add(name)
                    todo.append(helpers[name])
    return found


def test_every_stage_resolves_its_riskstrat_imports() -> None:
    """Each stage the runner starts, with the helpers it calls, imports and calls only what riskstrat has."""
    from benchmarks.run import STAGE_RUNS
    from benchmarks.stages import STAGES

    assert {stage for _, stage, _ in STAGE_RUNS} <= set(STAGES)
    helpers = _functions(ast.parse((BENCHMARKS / "stages.py").read_text(encoding="utf-8")))
    problems = []
    for name, stage in STAGES.items():
        node = helpers[stage.__name__]
        used = [node, *(helpers[h] for h in sorted(_helpers_called(node, helpers)))]
        assert any(_riskstrat_imports(f) for f in used), f"stage {name} uses nothing from riskstrat"
        for function in used:
            problems += _check_function(function, f"stage {name}: {function.name}")
    assert not problems, "\n".join(problems)
