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

``centred = true`` (needs ``contact_half_life``) adds, after the blocks of counts, one block per
half-life of the counts' *expected* part under the policies that chose the contacts: every
decision logs each factor level's chance of being sent (the level marginals of the law its
action was drawn from, :func:`bandit.contact_state.level_marginals`) under the reserved context
key :data:`LEVELS_KEY`, and ``E_l = sum_k 2^(-(t - t_k) / h) p_l(t_k)`` decays them as the
counts decay the indicators. The state columns are then

    [c_1 (L) .. c_H (L), E_1 (L) .. E_H (L), days since the last contact]

``c - E`` is the randomised part of the history, which a policy that reads it
(``lookahead_ts``) can treat as the effect of the sends while ``E`` absorbs what the
policies' choices say about the customer. A holdout decision logs the uniform control's
marginals. A contact logged without marginals (made before ``centred`` was set) counts as
fully expected: ``p = 1[l sent]``, so it adds to ``E`` what it adds to ``c``, and nothing to
``c - E``.

Example::

    [state]
    contact_half_life = "7d"
    lookback = "28d"
    horizon = "28d"
    churn_event = "churn"
    centred = true
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, StrictBool, StrictStr, model_validator

from bandit import POLICIES, DecisionSpace
from bandit.contact_state import contact_feature_names
from experiments.spec.errors import SpecError
from experiments.spec.values import FROZEN, Duration

__all__ = [
    "LEVELS_KEY",
    "STATE_KEY",
    "StateSpec",
    "contact_params",
    "encode_logged",
    "encode_logged_state",
    "logged_levels",
    "require_contact_state",
    "split_logged",
]

#: The key of a logged decision's context that holds the customer state the policy saw. Not
#: a valid context field name (those start with a letter or '_'), so it never collides with
#: one, and a request carrying it is refused as an unknown field.
STATE_KEY = "@state"
#: The key of a logged decision's context that holds each factor level's chance of being sent
#: by the law the decision's action was drawn from (``[state] centred``); reserved like
#: :data:`STATE_KEY`.
LEVELS_KEY = "@levels"


class StateSpec(BaseModel):
    """The customer's observable state (module docstring).

    ``contact_half_life``: half-life of the decayed contact counts, or a list of up to
    :data:`MAX_HALF_LIVES` distinct half-lives, one block of counts each (a fast one for what
    wears off, such as fatigue, and a slow one for what builds up); None (absent) adds no
    contact features. ``lookback``: how far back the customer's decisions are read (contacts
    older than this count as none; the days since the last contact are capped at it).
    ``horizon``: a decision with no next decision of its customer within this is terminal.
    ``churn_event``: an outcome of this event on a decision makes it terminal (None: none).
    ``centred``: log each decision's level marginals and add the counts' expected part to the
    state (module docstring); needs ``contact_half_life``.
    """

    model_config = FROZEN

    contact_half_life: Duration | list[Duration] | None = None
    lookback: Duration = Field(default=timedelta(days=28))
    horizon: Duration = Field(default=timedelta(days=28))
    churn_event: StrictStr | None = Field(default="churn", min_length=1)
    centred: StrictBool = False

    @model_validator(mode="after")
    def _half_lives(self) -> StateSpec:
        if self.centred and self.contact_half_life is None:
            raise SpecError(
                "centred",
                "centres the decayed contact counts on their expected value: it needs "
                'contact_half_life (for example "7d")',
            )
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
        several half-lives each count's name starts with its half-life in days. With
        ``centred`` the expected counts follow the counts, named ``expected[...]`` for
        ``contacts[...]``. None when off.
        """
        if not self.adds_features:
            return []
        *counts, days = contact_feature_names(space)
        if len(self.half_lives) == 1:
            blocks = list(counts)
        else:
            blocks = [
                f"{half_life.total_seconds() / 86_400:g}d:{name}"
                for half_life in self.half_lives
                for name in counts
            ]
        if self.centred:
            blocks += [name.replace("contacts[", "expected[", 1) for name in blocks]
        return [*blocks, days]


def require_contact_state(policy: str, state: StateSpec | None) -> None:
    """A policy that reads the contact state needs ``[state] contact_half_life``, and reads
    ``centred`` expected counts only if it knows them."""
    if state is None or not state.adds_features:
        raise SpecError(
            "state.contact_half_life",
            f"policy {policy!r} acts on the customer's recent contacts: it needs a [state] "
            'section with contact_half_life (for example "7d")',
        )
    if state.centred and not POLICIES[policy].reads_expected_counts:
        raise SpecError(
            "state.centred",
            f"policy {policy!r} reads the contact counts but not their expected parts: "
            "centred is for lookahead_ts (or a policy that reads no contact state)",
        )


def contact_params(policy: str, state: StateSpec | None) -> dict[str, Any]:
    """What a policy that reads the contact state is told of it: how many blocks of counts
    and each block's half-life in days (none for other policies)."""
    if not POLICIES[policy].needs_contact_state or state is None:
        return {}
    days = [value.total_seconds() / 86_400 for value in state.half_lives]
    centred = {"expected_counts": True} if state.centred else {}
    return {"contact_blocks": len(days), "half_lives": days, **centred}


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
    """A logged context's request fields, and its logged state (None when absent). The
    logged level marginals (:data:`LEVELS_KEY`) are not request fields either: dropped."""
    fields = dict(context)
    fields.pop(LEVELS_KEY, None)
    return fields, fields.pop(STATE_KEY, None)


def logged_levels(value: Any, width: int) -> np.ndarray | None:
    """A logged context's level marginals ``(width,)`` from the value under
    :data:`LEVELS_KEY`, or None when it is absent (None) or not ``width`` finite numbers in
    [0, 1] (a contact made before ``centred`` was set, or a hand-edited row: the caller counts
    it as fully expected)."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or len(value) != width:
        return None
    if any(isinstance(item, bool) or not isinstance(item, int | float) for item in value):
        return None
    vector = np.asarray(value, dtype=np.float64)
    if not np.isfinite(vector).all() or (vector < 0).any() or (vector > 1 + 1e-9).any():
        return None
    return np.minimum(vector, 1.0)


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
