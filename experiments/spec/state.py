"""The ``[state]`` section: the customer's observable state that decisions see and log, and the
transitions a value-function policy learns from.

A fatiguing message does its harm in the customer's later weeks; a learner can only credit it
if the state it acts on shows what the customer was recently sent. With ``contact_half_life``
set, the engine appends to every decision's encoded context the customer's decayed contact
counts per factor level and the days since the last contact, computed from the customer's
stored decisions within ``lookback`` (:mod:`experiments.engine.customer_state`), and logs that
vector with the decision under the reserved context key :data:`STATE_KEY`, so what is learned
and evaluated later is exactly what the policy saw.

``horizon`` and ``churn_event`` say when a logged decision is the last of its customer for a
value-function policy (``fitted_q``, :mod:`experiments.engine.transitions`): when its customer
churned after it, or made no next decision within ``horizon``.

Example::

    [state]
    contact_half_life = "7d"
    lookback = "28d"
    horizon = "28d"
    churn_event = "churn"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, StrictStr, model_validator

from bandit import DecisionSpace
from bandit.contact_state import contact_feature_names
from experiments.spec.errors import SpecError
from experiments.spec.values import FROZEN, Duration

__all__ = ["STATE_KEY", "StateSpec", "encode_logged", "encode_logged_state", "split_logged"]

#: The key of a logged decision's context that holds the customer state the policy saw. Not
#: a valid context field name (those start with a letter or '_'), so it never collides with
#: one, and a request carrying it is refused as an unknown field.
STATE_KEY = "@state"


class StateSpec(BaseModel):
    """The customer's observable state (module docstring).

    ``contact_half_life``: half-life of the decayed contact counts, or a list of up to
    :data:`MAX_HALF_LIVES` distinct half-lives, one block of counts each (a fast one for what
    wears off, such as fatigue, and a slow one for what builds up); None (absent) adds no
    contact features. ``lookback``: how far back the customer's decisions are read (contacts
    older than this count as none; the days since the last contact are capped at it).
    ``horizon``: a decision with no next decision of its customer within this is terminal.
    ``churn_event``: an outcome of this event on a decision makes it terminal (None: none).
    """

    model_config = FROZEN

    contact_half_life: Duration | list[Duration] | None = None
    lookback: Duration = Field(default=timedelta(days=28))
    horizon: Duration = Field(default=timedelta(days=28))
    churn_event: StrictStr | None = Field(default="churn", min_length=1)

    @model_validator(mode="after")
    def _half_lives(self) -> StateSpec:
        if isinstance(self.contact_half_life, list):
            count = len(self.contact_half_life)
            if not 1 <= count <= MAX_HALF_LIVES:
                raise SpecError(
                    "contact_half_life",
                    f"must be a duration or a list of 1 to {MAX_HALF_LIVES} durations; got {count}",
                )
            if len(set(self.contact_half_life)) != count:
                raise SpecError("contact_half_life", "must list distinct durations")
        longest = max(self.half_lives, default=None)
        if longest is not None and self.lookback < longest:
            raise SpecError(
                "lookback",
                "must be at least the longest contact_half_life: a shorter look-back drops "
                f"contacts that still count more than half; got "
                f"{self.lookback.total_seconds():g}s < {longest.total_seconds():g}s",
            )
        return self

    @property
    def half_lives(self) -> tuple[timedelta, ...]:
        """The half-lives of the blocks of counts, in the order given (none when off)."""
        value = self.contact_half_life
        if value is None:
            return ()
        return tuple(value) if isinstance(value, list) else (value,)

    @property
    def adds_features(self) -> bool:
        """Whether decisions' contexts are augmented with contact features."""
        return self.contact_half_life is not None

    def feature_names(self, space: DecisionSpace) -> list[str]:
        """Names of the appended columns: one count per factor level per half-life, then the
        days since the last contact (:func:`bandit.contact_state.contact_feature_names`); with
        several half-lives each count's name starts with its half-life in days. None when off.
        """
        if not self.adds_features:
            return []
        *counts, days = contact_feature_names(space)
        if len(self.half_lives) == 1:
            return [*counts, days]
        blocks = [
            f"{half_life.total_seconds() / 86_400:g}d:{name}"
            for half_life in self.half_lives
            for name in counts
        ]
        return [*blocks, days]


#: The most blocks of contact counts a ``[state]`` section may ask for.
MAX_HALF_LIVES = 4


def encode_logged_state(value: Any, width: int, where: str) -> np.ndarray:
    """A logged state (a list of ``width`` finite numbers) as a vector; :class:`SpecError`
    on ``<where>.@state`` otherwise."""
    field = f"{where}.{STATE_KEY}"
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise SpecError(field, f"must be a list of {width} numbers; got {type(value).__name__}")
    if len(value) != width or any(
        isinstance(item, bool) or not isinstance(item, int | float) for item in value
    ):
        raise SpecError(field, f"must be a list of {width} numbers; got {list(value)!r}")
    vector = np.asarray(value, dtype=np.float64)
    if not np.isfinite(vector).all():
        raise SpecError(field, "must hold finite numbers")
    return vector


def split_logged(context: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """A logged context's request fields, and its logged state (None when absent)."""
    fields = dict(context)
    return fields, fields.pop(STATE_KEY, None)


def encode_logged(
    encode_contexts: Callable[[Sequence[Mapping[str, Any]]], np.ndarray],
    width: int,
    contexts: Sequence[Mapping[str, Any]],
) -> np.ndarray:
    """Logged contexts as the policies saw them, ``(n, d + width)``: the request fields
    through ``encode_contexts``, then the logged state of ``width`` columns (required when
    ``width > 0``). Errors name ``contexts[i].<field>``."""
    if not width:
        return encode_contexts(contexts)
    split = [split_logged(context) for context in contexts]
    encoded = encode_contexts([fields for fields, _ in split])
    states = np.zeros((len(split), width))
    for row, (_, state) in enumerate(split):
        if state is None:
            raise SpecError(f"contexts[{row}].{STATE_KEY}", "required field is missing")
        states[row] = encode_logged_state(state, width, f"contexts[{row}]")
    return np.concatenate([encoded, states], axis=1)
