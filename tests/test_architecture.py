"""Imports point one way: cli -> experiments -> bandit, and bandit stays pure math."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "bandit": {"experiments", "cli", "sqlmodel", "sqlalchemy", "fastapi", "mlflow", "httpx"},
    "experiments": {"cli"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_down(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_bandit_imports_only_numpy_scipy_and_stdlib() -> None:
    import sys

    allowed = {"numpy", "scipy", "bandit", "__future__"} | set(sys.stdlib_module_names)
    extra = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) - allowed)
        for path in (ROOT / "bandit").rglob("*.py")
    }
    assert {name: bad for name, bad in extra.items() if bad} == {}
