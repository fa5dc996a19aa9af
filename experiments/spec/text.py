"""Text the store can hold verbatim, on every database.

PostgreSQL ``text`` cannot hold the NUL character, and a lone surrogate is not Unicode (it
cannot be encoded at all). Anything else, markup and quotes included, is stored and returned
as given. The HTTP schemas check request fields with :func:`text_problem`; specs are checked
whole with :func:`first_text_problem` when parsed, whichever way they arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored verbatim (NUL, lone surrogate), or ``None`` if it can."""
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it contains a lone surrogate)"
    return None


def first_text_problem(value: Any, where: str = "") -> tuple[str, str] | None:
    """``(dotted path, message)`` of the first unstorable string (key or value) in JSON-like
    ``value``, or ``None``. Iterative, so any depth the JSON parser accepted is walked."""
    pending: list[tuple[str, Any]] = [(where, value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return path, problem
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                name = str(key)
                problem = text_problem(name)
                if problem is not None:
                    escaped = name.encode("ascii", "backslashreplace").decode()
                    return f"{path}.{escaped}" if path else escaped, f"key {problem}"
                pending.append((f"{path}.{name}" if path else name, child))
        elif isinstance(item, list | tuple):
            pending.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return None
