"""Spec errors: :class:`SpecError`, and pydantic's validation errors turned into it.

Every bad spec, context or outcome is reported as one line naming the field by its dotted
path and saying what was expected and what was received::

    reward.window: must be a duration such as '14d', '36h', '90m', '30s', ISO-8601 'P14D'
    or a number of seconds; got '14 days'

pydantic's own messages ("Input should be ...", raw locations with union tags) are rewritten
here, in one place, so the service and the CLI show the same words. The translation knows
the spec's models only through the ``model_at`` lookup and the context kinds it is given,
which keeps this module below the models that raise :class:`SpecError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

#: The model whose fields live at a raw pydantic location (union tags included), if known.
ModelAt = Callable[[Sequence[str | int]], type[BaseModel] | None]


class SpecError(ValueError):
    """Bad input to an experiment: a spec, a context or an outcome.

    ``field`` is the dotted path of the offending value (``reward.window``, ``rules[2]``,
    ``context.plan``); ``message`` says what was expected and what was received;
    ``str(error)`` is ``"<field>: <message>"``. ``errors`` lists every problem found as
    ``(field, message)`` pairs, the first being the one the error is named after.
    """

    def __init__(self, field: str, message: str, *, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors: tuple[tuple[str, str], ...] = tuple(errors) or ((field, message),)

    def __reduce__(self) -> tuple[type[SpecError], tuple[str, str], dict[str, object]]:
        """Rebuilt from its own arguments, so it crosses a process boundary (a worker of
        ``engage run``) as itself, not as a broken pool."""
        return type(self), (self.field, self.message), {"errors": self.errors}


#: Most characters of a value an error message repeats back.
ECHO_LIMIT = 80


def only_for_kind(kind: str, owner: str, name: str, value: object, needed_for: str) -> bool:
    """Check that field ``name`` (``value``, ``None`` when absent) is given exactly when the
    reward's ``kind`` is ``owner``; ``needed_for`` says what it holds. True when the caller
    goes on to check its content (``kind`` is ``owner`` and the field is there)."""
    if kind != owner:
        if value is not None:
            raise SpecError(name, f"only applies to kind = {owner!r}; kind is {kind!r}")
        return False
    if value is None:
        raise SpecError(name, f"is required when kind = {owner!r}: {needed_for}")
    return True


def clip(value: object) -> str:
    """``repr(value)``, cut to :data:`ECHO_LIMIT` characters with its full length noted: an
    error repeats what it received, and a 100,000-character level name is not readable."""
    text = repr(value)
    if len(text) <= ECHO_LIMIT:
        return text
    return f"{text[:ECHO_LIMIT]}…({len(text):,} characters)"


def names(values: Sequence[str]) -> str:
    """``values`` as a bracketed list of quoted names, the way messages show choices."""
    return "[" + ", ".join(clip(value) for value in values) + "]"


def dotted(parts: Sequence[str | int]) -> str:
    """A location as a dotted path: ``("rules", 2, "channel")`` -> ``rules[2].channel``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text and not str(part).startswith(("[", ".")):
            text += f".{part}"
        else:
            text += str(part)
    return text.lstrip(".")


def describe(
    error: Mapping[str, Any], *, model_at: ModelAt, context_kinds: Sequence[str]
) -> tuple[str, str]:
    """One pydantic error as (dotted field path, message saying what was expected and got).

    ``model_at`` names the model at a location (for the known fields of an unknown-field
    error); ``context_kinds`` are the tags of the context field union (``numeric``, ...),
    which pydantic puts in the location after the field name and which are dropped here.
    """
    loc = list(error["loc"])
    kind = error["type"]
    got = error.get("input")
    context_tagged = len(loc) >= 3 and loc[0] == "context" and loc[2] in context_kinds
    path = [part for index, part in enumerate(loc) if not (context_tagged and index == 2)]
    if kind == "value_error":
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, SpecError):
            return dotted([*path, cause.field]), cause.message
        return dotted(path), str(cause) if cause is not None else error["msg"]
    if kind == "extra_forbidden":
        model = model_at(loc[:-1])
        known = f"; expected one of {names(list(model.model_fields))}" if model else ""
        return dotted(path), f"unknown field{known}"
    if kind == "missing":
        return dotted(path), "required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        if not isinstance(got, Mapping):
            return dotted(path), (
                "must be a table such as {type = 'numeric'}; "
                f"got {type(got).__name__} {clip(got)}"
            )
        expected = f"one of {names(list(context_kinds))}"
        if got.get("type") is None:
            return dotted([*path, "type"]), f"required field is missing; expected {expected}"
        return dotted([*path, "type"]), f"must be {expected}; got {clip(got.get('type'))}"
    if kind in ("too_short", "string_too_short", "too_long"):
        ctx = error.get("ctx", {})
        if kind == "too_long":
            bound = f"at most {ctx.get('max_length')}"
        else:
            bound = f"at least {ctx.get('min_length')}"
        unit = "character(s)" if kind == "string_too_short" else "item(s)"
        return dotted(path), f"must have {bound} {unit}; got {clip(got)}"
    message = str(error["msg"])
    for prefix, replacement in (("Input should be", "must be"), ("Value should", "must")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
            break
    else:
        message = message[:1].lower() + message[1:]
    if "input" in error:
        message += f"; got {clip(got)}"
    return dotted(path), message


def spec_error(
    error: ValidationError, *, model_at: ModelAt, context_kinds: Sequence[str]
) -> SpecError:
    """A :class:`SpecError` named after the first problem of ``error``, listing them all."""
    problems = [
        describe(item, model_at=model_at, context_kinds=context_kinds) for item in error.errors()
    ]
    field, message = problems[0]
    return SpecError(field, message, errors=problems)
