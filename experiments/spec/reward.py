"""The ``[reward]`` section: how a decision's outcomes become its reward.

The engine computes rewards by this definition (:mod:`experiments.engine.reward`, and
:mod:`experiments.engine.surrogate` for a surrogate reward); the ``[reward.surrogate]`` table
lives in :mod:`experiments.spec.surrogate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictStr, field_validator, model_validator

from experiments.spec.errors import SpecError, only_for_kind
from experiments.spec.limits import MAX_MAGNITUDE
from experiments.spec.surrogate import SurrogateSpec, check_surrogate_reward
from experiments.spec.values import FROZEN, Duration, Number

__all__ = ["RewardSpec", "check_short_term_learner"]


class RewardSpec(BaseModel):
    """How a decision's outcomes become its reward (see :mod:`experiments.engine.reward`).

    ``event``: 1 when the named event occurs within the window. ``sum``: the sum of the
    named event's values within the window. ``retained``: 0 when the named (churn) event
    occurs within the window, else the default, which is 1 unless given. ``change``: the
    share of the way from ``baseline_field`` (the KPI at decision time, a numeric context
    field) to ``target`` that the last named KPI event within the window reached, in
    [-1, 1]. ``surrogate``: the index of the ``sum`` KPI predicted from early signals
    (the ``[reward.surrogate]`` table, :mod:`experiments.spec.surrogate`). ``funnel``: how
    many of the steps named in ``events`` (for example ``["click", "accept"]``) occur within
    the window, each counted once; ``event`` is the last step (filled in from ``events``).
    A funnel's optional ``weights`` (one per step, default 1 each) make it the weighted sum of
    the steps that occurred: a negative weight on a ``churn`` step charges the decision for a
    customer who leaves within the window. ``default`` applies when the window closes with
    nothing.

    ``short_term`` (the ``[reward.short_term]`` table, a reward definition of its own) is what
    a gated ``lookahead_ts`` policy's short-term learner learns (its ``short_term_reward =
    "own"``): joined apart from the reward, as soon as it is known. Where the reward is a
    funnel that waits for its window to close, a click reward here reaches the short-term
    learner when the click happens, as it reaches a click learner, so the closed gate is that
    learner (:mod:`bandit.policies.short_term_gate`). Its window may not exceed the reward's.

    Why a funnel: the deeper step (the purchase) is what revenue follows but is several times
    rarer than the first (the click), so a learner rewarded by it alone learns slowly; counting
    the steps keeps the purchase's weight and learns from every click too. On the simulator's
    world without delayed effects linear Thompson sampling on the purchase alone ended 0.37
    revenue per customer below the click learner over 60 days, on the two steps 0.06 (README,
    "Where the engagement edge comes from").
    """

    model_config = FROZEN

    kind: Literal["event", "sum", "retained", "change", "surrogate", "funnel"]
    event: StrictStr = Field(min_length=1)
    events: tuple[StrictStr, ...] | None = None
    weights: tuple[Number, ...] | None = None
    window: Duration
    default: Number = 0.0
    target: Number | None = None
    baseline_field: StrictStr | None = None
    surrogate: SurrogateSpec | None = None
    short_term: RewardSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _implied_fields(cls, data: Any) -> Any:
        """A retained reward's default is 1; a funnel's ``event`` is its last step."""
        if not isinstance(data, Mapping):
            return data
        if data.get("kind") == "retained" and "default" not in data:
            return {**data, "default": 1.0}
        steps = data.get("events")
        if data.get("kind") == "funnel" and "event" not in data and steps and _is_list(steps):
            return {**data, "event": steps[-1]}
        return data

    @field_validator("short_term", mode="before")
    @classmethod
    def _plain_short_term(cls, value: Any) -> Any:
        """Refused before it is read as a reward: a surrogate needs a table of its own."""
        if isinstance(value, Mapping) and value.get("kind") == "surrogate":
            raise SpecError("kind", "must not be 'surrogate' in a short-term reward")
        return value

    @field_validator("default", "target")
    @classmethod
    def _bounded(cls, value: float | None) -> float | None:
        # Rewards are squared in learning: 1e308 would overflow to inf there, long after
        # the spec was accepted.
        if value is not None and abs(value) > MAX_MAGNITUDE:
            raise ValueError(
                f"must be a number within +-{MAX_MAGNITUDE:g}, the bound on outcome values; "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _change_fields(self) -> RewardSpec:
        for name in ("target", "baseline_field"):
            given = getattr(self, name) is not None
            if self.kind == "change" and not given:
                raise SpecError(name, "is required when kind = 'change'")
            if self.kind != "change" and given:
                raise SpecError(name, f"only applies to kind = 'change'; kind is {self.kind!r}")
        check_surrogate_reward(self.kind, self.window, self.surrogate)
        _check_funnel(self.kind, self.event, self.events)
        _check_weights(self.kind, self.events, self.weights)
        if self.short_term is not None:
            _check_short_term(self, self.short_term)
        return self

    @property
    def named_events(self) -> tuple[str, ...]:
        """Every event the reward reads: a funnel's steps, else its one event."""
        return self.events if self.events is not None else (self.event,)

    @property
    def step_weights(self) -> tuple[float, ...]:
        """What each step of a funnel adds when it occurs: ``weights``, else 1 each (one
        weight for any other kind)."""
        if self.weights is not None:
            return self.weights
        return (1.0,) * len(self.named_events)

    @property
    def label(self) -> str:
        """The reward in one token for tables and figures: ``kind:event``, and a funnel's
        steps joined by ``+`` (``funnel:click+accept``), each with its weight when weighted
        (``funnel:1click+1accept-2.5churn``)."""
        if self.weights is None:
            return f"{self.kind}:{'+'.join(self.named_events)}"
        terms = [f"{w:+g}{name}" for w, name in zip(self.weights, self.named_events, strict=True)]
        return f"{self.kind}:{''.join(terms).removeprefix('+')}"


#: The most steps a funnel may count (a reward of up to this many points).
MAX_FUNNEL_STEPS = 8


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _check_funnel(kind: str, event: str, events: tuple[str, ...] | None) -> None:
    """``events`` is given exactly for a funnel: 2 to :data:`MAX_FUNNEL_STEPS` distinct,
    non-empty names, the last of them ``event``."""
    needed_for = 'the steps of the response it counts, in order (for example ["click", "accept"])'
    if not only_for_kind(kind, "funnel", "events", events, needed_for) or events is None:
        return
    if not 2 <= len(events) <= MAX_FUNNEL_STEPS:
        raise SpecError("events", f"must name 2 to {MAX_FUNNEL_STEPS} steps; got {len(events)}")
    for position, name in enumerate(events):
        if not name:
            raise SpecError(f"events[{position}]", "must be a non-empty event name")
    if len(set(events)) != len(events):
        raise SpecError("events", f"must name each step once; got {list(events)}")
    if event != events[-1]:
        raise SpecError(
            "event",
            f"of a funnel is its last step, {events[-1]!r} (it can be left out); got {event!r}",
        )


def _check_short_term(reward: RewardSpec, short_term: RewardSpec) -> None:
    """A short-term reward is a plain reward (no surrogate, no short-term reward of its own)
    beside a reward the engine joins itself (not a surrogate), over no longer a window."""
    if reward.kind == "surrogate":
        raise SpecError(
            "short_term", "does not apply to kind = 'surrogate' (its index is joined on its own)"
        )
    if short_term.short_term is not None:
        raise SpecError("short_term.short_term", "a short-term reward has none of its own")
    if short_term.window > reward.window:
        raise SpecError(
            "short_term.window",
            f"must not exceed the reward's window ({reward.window.total_seconds():g} s); got "
            f"{short_term.window.total_seconds():g} s",
        )


def check_short_term_learner(reward: RewardSpec, policy: str, params: Mapping[str, Any]) -> None:
    """``[reward.short_term]`` is given exactly when the policy is a gated ``lookahead_ts``
    whose short-term learner learns it (``short_term_reward = "own"``)."""
    takes_it = (
        policy == "lookahead_ts"
        and params.get("short_term_reward") == "own"
        and bool(params.get("gate_level"))
    )
    if reward.short_term is not None and not takes_it:
        raise SpecError(
            "reward.short_term",
            "is learned only by a gated lookahead_ts policy's short-term learner: needs "
            "policy.name = 'lookahead_ts' with params gate_level > 0 and short_term_reward = "
            f"'own'; got policy {policy!r} with gate_level {params.get('gate_level')!r} and "
            f"short_term_reward {params.get('short_term_reward')!r}",
        )
    if reward.short_term is None and params.get("short_term_reward") == "own":
        raise SpecError(
            "reward.short_term",
            "is required by policy.params.short_term_reward = 'own': the short-term reward "
            "its short-term learner learns",
        )


def _check_weights(
    kind: str, events: tuple[str, ...] | None, weights: tuple[float, ...] | None
) -> None:
    """``weights`` belongs to a funnel: one finite weight per step, within
    +-:data:`MAX_MAGNITUDE`, not all 0 (a reward that is always 0 teaches nothing)."""
    if weights is None:
        return
    if kind != "funnel":
        raise SpecError("weights", f"only applies to kind = 'funnel'; kind is {kind!r}")
    if events is None or len(weights) != len(events):
        steps = 0 if events is None else len(events)
        raise SpecError(
            "weights", f"must give one weight per step of 'events' ({steps}); got {len(weights)}"
        )
    for position, weight in enumerate(weights):
        if abs(weight) > MAX_MAGNITUDE:
            raise SpecError(
                f"weights[{position}]",
                f"must be a number within +-{MAX_MAGNITUDE:g}, the bound on outcome values; "
                f"got {weight!r}",
            )
    if not any(weights):
        raise SpecError("weights", f"must not all be 0; got {list(weights)}")
