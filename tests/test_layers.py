"""The layers point one way: core <- ingest <- features <- models <- evaluation <- worklists <- pipelines.

Every ``import`` in the source (at module level, inside functions and under
``TYPE_CHECKING`` alike) is parsed and checked against the arrows below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PACKAGES: dict[str, str] = {
    "riskstrat": "riskstrat",
    "ingest": "riskstrat.ingest",
    "features": "riskstrat.features",
    "models": "riskstrat.models",
    "evaluation": "riskstrat.evaluation",
    "worklists": "riskstrat.worklists",
    "pipelines": "riskstrat.pipelines",
}
"""Source folder -> the package it installs as."""

STAGES = ("ingest", "features", "models", "evaluation", "worklists")

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "riskstrat": (*STAGES, "pipelines"),  # the core imports no stage
    "ingest": ("features", "models", "evaluation", "worklists", "pipelines"),
    "features": ("models", "evaluation", "worklists", "pipelines"),
    "models": ("evaluation", "worklists", "pipelines"),
    "evaluation": ("worklists", "pipelines"),
    "worklists": ("pipelines",),
}
"""Layer -> the layers it must never import."""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a source file imports, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from riskstrat import features`` imports the package ``riskstrat.features``.
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    """The layer a ``riskstrat...`` module belongs to (None outside riskstrat)."""
    parts = module.split(".")
    if parts[0] != "riskstrat":
        return None
    if len(parts) > 1 and parts[1] in PACKAGES and parts[1] != "riskstrat":
        return parts[1]
    return "riskstrat"


def arrows() -> list[tuple[str, str, str]]:
    """(file:line, from layer, to layer) for every import between riskstrat layers."""
    found = []
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, module in imported_modules(path):
                target = layer_of(module)
                if target is not None and target != folder:
                    found.append((f"{path.relative_to(ROOT)}:{line} imports {module}", folder, target))
    return found


def test_the_parser_sees_the_arrows_there_are():
    found = {(source, target) for _, source, target in arrows()}
    assert ("pipelines", "models") in found and ("features", "ingest") in found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_points_up(layer):
    wrong = [where for where, source, target in arrows() if source == layer and target in FORBIDDEN[layer]]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)
