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


#: What ``experiments/simulate`` may import of ``experiments``: the simulator is a world of
#: its own that the engine drives, so it shares only the vocabulary.
SIMULATE_MAY_IMPORT = ("experiments.vocabulary", "experiments.simulate")


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module ``path`` imports (``from a import b`` gives ``a.b``, which
    may be a name inside ``a``), relative imports resolved against the file's package."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_simulate_imports_nothing_of_experiments_but_the_vocabulary() -> None:
    def allowed(name: str) -> bool:
        return any(name == root or name.startswith(f"{root}.") for root in SIMULATE_MAY_IMPORT)

    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] == "experiments" and not allowed(name)
        )
        for path in (ROOT / "experiments" / "simulate").rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
