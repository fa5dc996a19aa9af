"""Imports point one way: cli -> experiments -> bandit, bandit stays pure math, the store
and the simulator stand on their own inside experiments, cli uses only what experiments makes
public, and no module of experiments grows past 500 lines or class past 300."""

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


def imported_names(path: Path, package: str) -> set[str]:
    """What each import in ``path`` (a module of ``package``) brings in, dotted: ``import a.b``
    gives ``a.b``, ``from a import b`` gives ``a.b`` (``b`` a submodule or a name of ``a``) and
    relative imports are resolved against ``package``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def store_may_import(name: str) -> bool:
    """Of ``experiments``, the store may use only the vocabulary and its own modules."""
    if name != "experiments" and not name.startswith("experiments."):
        return True
    return name.startswith(("experiments.vocabulary.", "experiments.store.")) or name in {
        "experiments.vocabulary",
        "experiments.store",
    }


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parent.parts)


def test_store_imports_only_the_vocabulary_and_itself() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_names(path, package_of(path)) if not store_may_import(name)
        )
        for path in (ROOT / "experiments" / "store").rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_store_rule_notices_an_offender(tmp_path: Path) -> None:
    """The check above is not vacuous: the imports it must refuse are refused."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import experiments\n"
        "import experiments.engine\n"
        "from experiments import errors, vocabulary\n"
        "from experiments.errors import InvalidInputError\n"
        "from experiments.store import models\n"
        "from experiments.store.errors import StoreError\n"
        "from experiments.vocabulary import Group\n"
        "from . import models, schema\n"
        "from .. import engine\n"
        "from ..spec import parse_spec\n"
        "import sqlalchemy\n"
    )
    names = imported_names(sample, "experiments.store")
    refused = sorted(name for name in names if not store_may_import(name))
    assert refused == [
        "experiments",
        "experiments.engine",
        "experiments.errors",
        "experiments.errors.InvalidInputError",
        "experiments.spec.parse_spec",
    ]
    assert {"experiments.store.models", "experiments.store.schema"} <= names


#: What ``experiments/simulate`` may import of ``experiments``: the simulator is a world of
#: its own that the engine drives, so it shares only the vocabulary.
SIMULATE_MAY_IMPORT = ("experiments.vocabulary", "experiments.simulate")


def simulate_may_import(name: str) -> bool:
    """Of ``experiments``, the simulator may use only the vocabulary and its own modules."""
    if name != "experiments" and not name.startswith("experiments."):
        return True
    return any(name == root or name.startswith(f"{root}.") for root in SIMULATE_MAY_IMPORT)


def test_simulate_imports_only_the_vocabulary_and_itself() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_names(path, package_of(path)) if not simulate_may_import(name)
        )
        for path in (ROOT / "experiments" / "simulate").rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_simulate_rule_notices_an_offender() -> None:
    names = [
        "experiments",
        "experiments.spec.load_spec",
        "experiments.simulatex",
        "experiments.simulate.model.Mechanism",
        "experiments.vocabulary.Group",
        "numpy",
    ]
    refused = [name for name in names if not simulate_may_import(name)]
    assert refused == ["experiments", "experiments.spec.load_spec", "experiments.simulatex"]


def module_path(module: str) -> Path | None:
    """The source file of an ``experiments`` module (a package's ``__init__.py``), if any."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def public_names(path: Path) -> list[str] | None:
    """The literal ``__all__`` of a module's source, or None when it has none."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            assert node.value is not None
            return list(ast.literal_eval(node.value))
    return None


def non_public_imports(path: Path) -> list[str]:
    """What ``path`` imports from ``experiments`` that is not public: a name missing from the
    ``__all__`` of the module it comes from, a ``_private`` name or module, a module without
    ``__all__``, or a whole module by ``import experiments...``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [
                f"import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "experiments"
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "experiments":
                continue
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"{node.module} (private module)")
                continue
            source = module_path(node.module)
            names = None if source is None else public_names(source)
            if names is None:
                found.append(f"{node.module} (no __all__)")
                continue
            found += [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if alias.name not in names or alias.name.startswith("_")
            ]
    return found


def test_cli_imports_only_public_names_of_experiments() -> None:
    offenders = {
        str(path.relative_to(ROOT)): non_public_imports(path)
        for path in (ROOT / "cli").rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_public_names_rule_notices_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import experiments.spec\n"
        "from experiments.spec import load_spec\n"
        "from experiments.store._sql import chunks\n"
        "from experiments.store.models import _private\n"
        "from experiments.engine import DecisionEngine, planning\n"
        "from experiments.nowhere import thing\n"
        "from typing import Any\n"
    )
    assert public_names(module_path("experiments.spec") or tmp_path) is not None
    assert non_public_imports(sample) == [
        "import experiments.spec",
        "experiments.store._sql (private module)",
        "experiments.store.models._private",
        "experiments.engine.planning",
        "experiments.nowhere (no __all__)",
    ]


#: Rooms stay small enough to read in one sitting: lines per module and per class, exclusive.
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def oversized(path: Path) -> dict[str, int]:
    """The module (by path) and the classes (``path:Class``) of ``path`` over the bounds."""
    source = path.read_text()
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    found = {name: len(source.splitlines())} if len(source.splitlines()) >= MAX_MODULE_LINES else {}
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
            lines = node.end_lineno - node.lineno + 1
            if lines >= MAX_CLASS_LINES:
                found[f"{name}:{node.name}"] = lines
    return found


def test_every_module_of_experiments_under_500_lines_and_class_under_300() -> None:
    found: dict[str, int] = {}
    for path in sorted((ROOT / "experiments").rglob("*.py")):
        found.update(oversized(path))
    assert found == {}


def test_the_size_rule_notices_an_offender(tmp_path: Path) -> None:
    body = "\n".join(f"    x{index} = {index}" for index in range(MAX_CLASS_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"class Big:\n{body}\n" + "\n" * MAX_MODULE_LINES)
    assert oversized(sample) == {
        "sample.py": MAX_CLASS_LINES + 1 + MAX_MODULE_LINES,
        "sample.py:Big": MAX_CLASS_LINES + 1,
    }
