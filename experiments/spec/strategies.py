"""The ``[strategies]`` section: what a customer may receive for an epoch, and how to choose it.

A per-contact reward cannot see what a kind of treatment does to a customer's later weeks, so a
spec may also declare *strategies*: named restrictions of the actions a customer may receive
(the levels allowed per factor, and optionally a contact cadence) held for an *epoch* (at least
a day). At the first decision of each epoch every treated customer is assigned one strategy by
a *strategy policy* (a bandit over the strategy names, contextual on the customer's context at
assignment), and is judged at the epoch's end on the *epoch KPI*: all of the customer's
outcomes of one event in the epoch, summed (``sum``), or 1 unless the (churn) event occurred
(``retained``)::

    [strategies]
    epoch = "14d"
    policy = { name = "linear_ts", params = { noise_variance = "auto" } }   # the default
    kpi = { kind = "sum", event = "revenue", baseline = ["spend_30d"] }

    [[strategies.options]]
    name = "calm"
    allow = { message = ["informational", "educational"] }   # other factors: every level

    [[strategies.options]]
    name = "fewer_contacts"
    max_decisions = 1          # at most 1 decision per epoch ...
    window = "7d"              # ... or, with a window, per rolling window

**Regression adjustment.** ``kpi.baseline`` names numeric context fields holding the
customer's pre-epoch value of the KPI (spend in the last 30 days, say). With a contextual
strategy policy (the linear family: ``linear_ts``, ``linucb``, ``epsilon_greedy``, ...) the
baseline fields must be in the policy's context, and the per-strategy linear model does the
adjustment itself: its prediction for a strategy is a regression of the KPI on the context, so
comparing strategies at the same context compares them net of where the customer started
(Lin 2013's fully interacted regression). A policy that ignores the context (``gaussian_ts``,
``beta_ts``, or a linear one with ``context = []``) learns instead from the KPI adjusted on the
baseline within each cohort of closing epochs (:func:`bandit.adjustment.regression_adjusted`,
CUPED). The report adjusts explicitly either way.

**A panel for what a strategy does over a lifetime.** Redrawn every epoch, a strategy's KPI
measures what one epoch of it does, and that can have the opposite sign of living under it:
on ``examples/mechanism.toml`` withholding urgency for one week *costs* revenue that week
(the click it would have won), while withholding it for good earns the most, because fatigue
compounds. With ``panel = 0.3`` a stable random 30% of treated customers (by a hash of the
customer, as the holdout) keep one strategy, drawn uniformly at their first epoch, for the
whole experiment, and the strategy policy learns only from their epochs, each adjusted on
the customer's baseline at enrolment; everyone else is assigned by the policy every epoch.
The panel is the experiment's persistent randomised arms; the rest exploit what it shows.
``panel_warmup = 3`` puts every treated customer in the panel for the first 3 epochs (a
learning phase with all the experiment's power), after which the ``panel`` share stays.
``panel_settle = 2`` has the policy learn only from a panel customer's epochs from the third
under their strategy on: what a strategy does to a customer's first weeks (the clicks an
urgency message no longer wins) can have the opposite sign of what it does once they live
under it, and it is the latter the policy assigns for.

**Withholding levels (a factorial design).** Instead of naming strategies, a spec may list
levels the strategy policy may withhold, each on its own::

    [strategies.withhold]
    message = ["informational", "educational", "promotional", "urgency", "personalised"]

Every combination is a strategy (``all``, ``no-urgency``, ``no-promotional-urgency``, ...), and
a linear strategy policy learns one effect per level from every epoch, so a spec need not
guess which level does harm: the policy finds it.

:func:`compile_strategies` checks the section against the rest of the spec (factors, levels,
rules, context) and builds the :class:`StrategySet` the engine uses; every refusal names its
field (``strategies.options[1].allow.message``, ``strategies.epoch``, ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, StrictStr, field_validator, model_validator

from bandit import POLICIES, BanditValueError, DecisionSpace, Policy, make_policy
from bandit.policies.drift_ts import DriftTSPolicy
from bandit.policies.linear import LinearPolicy
from experiments.spec.context import ContextEncoder, ContextField
from experiments.spec.errors import SpecError, names
from experiments.spec.limits import MAX_STRATEGIES, check_policy_cost
from experiments.spec.strategy_space import option_mask, withhold_strategies
from experiments.spec.values import FROZEN, Duration, Integer, Number

__all__ = [
    "MIN_EPOCH",
    "Cadence",
    "EpochKpiSpec",
    "StrategiesSpec",
    "StrategySet",
    "StrategySpec",
    "compile_strategies",
    "default_strategy_policy",
    "strategies_model_at",
]

#: The shortest epoch: a strategy is a treatment a customer lives under, not a contact.
MIN_EPOCH = timedelta(days=1)
#: The factor of the strategy policy's one-factor decision space.
STRATEGY_FACTOR = "strategy"
#: At most this many levels in ``[strategies.withhold]``: ``2 ** 8`` is :data:`MAX_STRATEGIES`.
MAX_WITHHELD_LEVELS = 8
#: Policies that cannot choose strategies: one never explores, the other needs transitions.
_REFUSED_POLICIES = ("fixed", "fitted_q")

_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def default_strategy_policy() -> dict[str, Any]:
    """Linear Thompson sampling with a learned noise variance: KPIs are sums of money whose
    spread no one knows in advance."""
    return {"name": "linear_ts", "params": {"noise_variance": "auto"}}


class StrategyPolicySpec(BaseModel):
    """The bandit over strategies (a name of :data:`bandit.POLICIES`) and its parameters."""

    model_config = FROZEN

    name: StrictStr
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        allowed = sorted(name for name in POLICIES if name not in _REFUSED_POLICIES)
        if value not in allowed:
            raise ValueError(f"must be one of {names(allowed)}; got {value!r}")
        return value

    @field_validator("params")
    @classmethod
    def _not_engine_owned(cls, value: dict[str, Any]) -> dict[str, Any]:
        for owned, why in (
            ("exploration_floor", "'strategies.exploration_floor' sets it"),
            ("seed", "the engine seeds the policy"),
        ):
            if owned in value:
                raise ValueError(f"must not set {owned!r}: {why}")
        return value

    @property
    def contextual(self) -> bool:
        """Whether the policy's choice depends on the context (the linear family, and
        drift_ts, which averages linear models)."""
        return issubclass(POLICIES[self.name], LinearPolicy | DriftTSPolicy)


class EpochKpiSpec(BaseModel):
    """The epoch KPI: ``sum`` adds the values of ``event`` in the epoch (0 without any);
    ``retained`` is 0 when ``event`` (a churn) occurred in the epoch, else 1. ``baseline``
    names numeric context fields holding the customer's pre-epoch value."""

    model_config = FROZEN

    kind: Literal["sum", "retained"]
    event: StrictStr = Field(min_length=1)
    baseline: list[StrictStr] = Field(default_factory=list)


class StrategySpec(BaseModel):
    """One strategy: the levels allowed per factor (factors not named keep every level) and
    optionally a cadence: at most ``max_decisions`` decisions per epoch, or per rolling
    ``window`` when one is given."""

    model_config = FROZEN

    name: StrictStr
    description: StrictStr = ""
    allow: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    max_decisions: Integer | None = Field(default=None, ge=1)
    window: Duration | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_PATTERN.fullmatch(value):
            raise ValueError(
                "must be 1 to 64 characters of lowercase letters, digits, '_' and '-', "
                f"starting with a letter or digit; got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _window_needs_a_limit(self) -> StrategySpec:
        if self.window is not None and self.max_decisions is None:
            raise SpecError("window", "needs max_decisions: the number allowed per window")
        return self


class StrategiesSpec(BaseModel):
    """The ``[strategies]`` section (see the module docstring)."""

    model_config = FROZEN

    epoch: Duration
    options: list[StrategySpec] = Field(default_factory=list)
    withhold: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    kpi: EpochKpiSpec
    policy: StrategyPolicySpec = Field(
        default_factory=lambda: StrategyPolicySpec(**default_strategy_policy())
    )
    context: list[StrictStr] | None = None
    exploration_floor: Number | None = Field(default=None, ge=0.0, le=1.0)
    panel: Number = Field(default=0.0, ge=0.0, le=1.0)
    panel_warmup: Integer = Field(default=0, ge=0, le=1000)
    panel_settle: Integer = Field(default=0, ge=0, le=1000)

    @property
    def has_panel(self) -> bool:
        """Whether some epochs have a persistent panel (``panel`` or ``panel_warmup``)."""
        return self.panel > 0.0 or self.panel_warmup > 0

    def panel_share(self, epoch: int) -> float:
        """The share of treated customers in the panel in ``epoch``: all of them during the
        first ``panel_warmup`` epochs, then ``panel``. It never grows, so a customer in the
        panel in some epoch has been in it since enrolment."""
        return 1.0 if epoch < self.panel_warmup else float(self.panel)

    @property
    def adjusts_through_context(self) -> bool:
        """Whether the strategy policy adjusts the KPI for the baseline itself: a contextual
        policy that sees at least one context field. Otherwise (a policy that ignores the
        context, or a linear one given ``context = []``, which learns one mean per strategy)
        the engine regression-adjusts the KPIs on the baseline before learning."""
        return self.policy.contextual and self.context != []

    @field_validator("epoch")
    @classmethod
    def _at_least_a_day(cls, value: timedelta) -> timedelta:
        if value < MIN_EPOCH:
            raise ValueError(
                "must be at least one day ('1d'): a strategy is held for an epoch of a "
                f"customer's life; got {value.total_seconds():g} seconds"
            )
        return value

    @field_validator("options")
    @classmethod
    def _names(cls, value: list[StrategySpec]) -> list[StrategySpec]:
        if len(value) == 1:
            raise ValueError("must name at least 2 strategies to choose between; got 1")
        if len(value) > MAX_STRATEGIES:
            raise ValueError(f"must name at most {MAX_STRATEGIES} strategies; got {len(value):,}")
        seen: set[str] = set()
        for position, option in enumerate(value):
            if option.name in seen:
                raise SpecError(
                    f"[{position}].name", f"must be unique; strategy {option.name!r} repeats"
                )
            seen.add(option.name)
        return value

    @model_validator(mode="after")
    def _options_or_withhold(self) -> StrategiesSpec:
        if bool(self.options) == bool(self.withhold):
            raise SpecError(
                "options",
                "give either strategy options ([[strategies.options]], at least 2) or "
                "[strategies.withhold] (levels the policy may withhold, each on its own), "
                f"not {'both' if self.options else 'neither'}",
            )
        count = sum(len(levels) for levels in self.withhold.values())
        if count > MAX_WITHHELD_LEVELS:
            raise SpecError(
                "withhold",
                f"may name at most {MAX_WITHHELD_LEVELS} levels in all (each doubles the "
                f"number of strategies); got {count}",
            )
        return self


@dataclass(frozen=True)
class Cadence:
    """At most ``max_decisions`` decisions per epoch (``window`` None) or per ``window``."""

    max_decisions: int
    window: timedelta | None

    def since(self, now: datetime, epoch_start: datetime) -> datetime:
        """Where the count of a customer's recent decisions starts."""
        return epoch_start if self.window is None else now - self.window


@dataclass(frozen=True)
class StrategySet:
    """The compiled section: what the engine needs to assign, restrict, measure and learn.

    Attributes:
        section: the validated ``[strategies]`` section.
        names: the strategies' names, in the spec's order (the strategy policy's actions).
        space: the strategy policy's one-factor decision space over ``names``.
        masks: ``(n_strategies, n_actions)`` bool, the actions each strategy allows (the
            spec's rules included).
        cadences: each strategy's cadence, or None.
        encoder: encodes the context fields the strategy policy sees.
        floor: the strategy policy's exploration floor.
    """

    section: StrategiesSpec
    # Everything else follows from the section and the spec: two sets compare by those.
    names: tuple[str, ...] = field(compare=False)
    space: DecisionSpace = field(compare=False)
    masks: np.ndarray = field(compare=False, repr=False)
    cadences: tuple[Cadence | None, ...] = field(compare=False)
    encoder: ContextEncoder = field(compare=False, repr=False)
    floor: float = 0.0

    @property
    def epoch(self) -> timedelta:
        return self.section.epoch

    @property
    def kpi(self) -> EpochKpiSpec:
        return self.section.kpi

    @property
    def fields(self) -> tuple[str, ...]:
        """The context fields the strategy policy sees."""
        return tuple(self.encoder.schema)

    def index_of(self, name: str) -> int:
        """The position of strategy ``name`` (its action in the strategy policy)."""
        return self.names.index(name)

    def build_policy(self, *, seed: int | np.random.Generator | None = None) -> Policy:
        """A fresh strategy policy over :attr:`space` and the policy's context width."""
        return make_policy(
            self.section.policy.name,
            space=self.space,
            n_context=self.encoder.width,
            seed=seed,
            exploration_floor=self.floor,
            **self.section.policy.params,
        )

    def encode(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The strategy policy's context rows ``(n, width)`` from full (already validated)
        contexts; an erased context (``{}``) fails like any context missing a field."""
        fields = self.fields
        return self.encoder.encode_batch(
            [{name: context[name] for name in fields if name in context} for context in contexts]
        )

    def epoch_at(self, origin: datetime, now: datetime) -> tuple[int, datetime, datetime]:
        """The epoch containing ``now`` on the grid of :attr:`epoch` from ``origin``: its
        index, start (inclusive) and end (exclusive). Times before ``origin`` are epoch 0."""
        index = max(0, math.floor((now - origin) / self.epoch))
        start = origin + index * self.epoch
        return index, start, start + self.epoch


def compile_strategies(
    section: StrategiesSpec,
    *,
    space: DecisionSpace,
    context: Mapping[str, ContextField],
    default_floor: float,
) -> StrategySet:
    """Check ``section`` against the spec's decision space and context schema and compile it.

    Raises :class:`SpecError` on ``strategies.<field>`` for an unknown factor or level, a
    strategy that leaves no action the rules allow, context or baseline fields the schema does
    not have (or that are not numeric), a contextual policy that does not see the baseline,
    and a policy or parameters the strategy space cannot take.
    """
    if section.withhold:
        strategy_names, strategy_space, masks = withhold_strategies(section.withhold, space)
        cadences: tuple[Cadence | None, ...] = (None,) * len(strategy_names)
    else:
        masks = np.vstack(
            [
                option_mask(option, position, space)
                for position, option in enumerate(section.options)
            ]
        )
        strategy_names = tuple(option.name for option in section.options)
        strategy_space = DecisionSpace({STRATEGY_FACTOR: list(strategy_names)})
        cadences = tuple(
            None if option.max_decisions is None else Cadence(option.max_decisions, option.window)
            for option in section.options
        )
    for position, baseline in enumerate(section.kpi.baseline):
        item = context.get(baseline)
        if item is None or item.type != "numeric":
            numeric = [key for key, value in context.items() if value.type == "numeric"]
            raise SpecError(
                f"strategies.kpi.baseline[{position}]",
                f"must name a numeric context field, one of {names(numeric)}; got {baseline!r}",
            )
    seen = list(context) if section.context is None else section.context
    for position, name in enumerate(seen):
        if name not in context:
            raise SpecError(
                f"strategies.context[{position}]",
                f"must name a context field, one of {names(list(context))}; got {name!r}",
            )
    if section.adjusts_through_context:
        unseen = [name for name in section.kpi.baseline if name not in seen]
        if unseen:
            raise SpecError(
                "strategies.context",
                f"must include the baseline field(s) {names(unseen)}: a contextual strategy "
                "policy adjusts the epoch KPI for the baseline through its context",
            )
    policy_class = POLICIES[section.policy.name]
    if policy_class.binary_rewards and section.kpi.kind != "retained":
        raise SpecError(
            "strategies.policy.name",
            f"policy {section.policy.name!r} learns from rewards in [0, 1]: it needs kpi kind "
            f"'retained'; got {section.kpi.kind!r}",
        )
    compiled = StrategySet(
        section=section,
        names=strategy_names,
        space=strategy_space,
        masks=masks,
        cadences=cadences,
        encoder=ContextEncoder.from_schema({name: context[name] for name in seen}),
        floor=default_floor if section.exploration_floor is None else section.exploration_floor,
    )
    check_policy_cost(
        "strategies.policy",
        section.policy.name,
        section.policy.params,
        compiled.space.factor_sizes,
        compiled.encoder.width,
    )
    try:
        compiled.build_policy(seed=0)
    except BanditValueError as error:
        raise SpecError("strategies.policy.params", str(error)) from None
    except (TypeError, ValueError) as error:
        raise SpecError(
            "strategies.policy.params",
            f"bad hyper-parameters for {section.policy.name!r}: {error}",
        ) from None
    return compiled


def strategies_model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields live at ``loc`` inside the section (for unknown-field errors)."""
    if not loc:
        return StrategiesSpec
    if loc[0] == "options" and len(loc) == 2:
        return StrategySpec
    sections: dict[str, type[BaseModel]] = {"kpi": EpochKpiSpec, "policy": StrategyPolicySpec}
    if len(loc) == 1:
        return sections.get(str(loc[0]))
    return None
