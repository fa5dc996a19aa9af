"""A package's public names loaded from their modules on first use (:pep:`562`).

A package such as :mod:`experiments.analysis` lists its public names in ``__all__`` and, in
``HOMES``, the module of the package that defines each. Importing the package then imports none
of its modules: ``experiments.analysis.LiveReport`` loads the report module when first read, and
a program that needs one module of a room does not pay for the others' dependencies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["load_on_first_use"]


def load_on_first_use(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose public names live in the modules
    ``homes`` names (name -> module of the package). Call it from the package's ``__init__``::

        __getattr__, __dir__ = load_on_first_use(__name__, HOMES)

    A name is imported on its first read and then kept in the package's namespace.
    """
    namespace = vars(sys.modules[package])

    def load(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value
        return value

    def names() -> list[str]:
        return sorted({*namespace, *homes})

    return load, names
