"""The spec's models: its sections and :class:`ExperimentSpec`, the experiment as a whole.

Each section (policy, reward, holdout, contact, learner) validates itself;
:class:`ExperimentSpec` adds the checks that need several sections (a policy that learns
from [0, 1] rewards needs a 0/1 reward; a fixed holdout action must be one the rules allow)
and builds, once, the decision space and the context encoder that decisions reuse. It is
also the one place policies are made from a spec: :meth:`ExperimentSpec.build_policy` for
the treatment group, :meth:`ExperimentSpec.build_holdout_policy` for the control group.

Every model is frozen and rejects unknown fields. Validating a model directly raises
pydantic's ``ValidationError`` (a :class:`SpecError` raised by a validator travels inside
it); :func:`experiments.spec.parse_spec` turns that into one :class:`SpecError`, finding
the model at an error's location with :func:`model_at`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    StrictStr,
    field_validator,
    model_validator,
)

from bandit import POLICIES, BanditValueError, DecisionSpace, Policy, make_policy
from experiments.spec import strategies as strategy_section
from experiments.spec.context import (
    CONTEXT_KINDS,
    ContextEncoder,
    ContextField,
    check_context_names,
    require_numeric_field,
)
from experiments.spec.errors import SpecError, names
from experiments.spec.simulation import SimulationSpec
from experiments.spec.values import FROZEN, Duration, Hour, Integer, Number

#: Largest decision space a spec may define; the policies score every action per decision.
MAX_ACTIONS = 100_000

#: The ``noise_variance`` a linear policy learns its noise variance under (see
#: :meth:`ExperimentSpec.build_policy`).
AUTO_NOISE_VARIANCE = "auto"

_KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class PolicySpec(BaseModel):
    """The bandit algorithm (a name registered in :data:`bandit.POLICIES`) and its
    hyper-parameters, passed to :func:`bandit.make_policy` as keyword arguments."""

    model_config = FROZEN

    name: StrictStr
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in POLICIES:
            raise ValueError(f"must be one of {names(sorted(POLICIES))}; got {value!r}")
        return value

    @field_validator("params")
    @classmethod
    def _not_engine_owned(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "exploration_floor" in value:
            raise ValueError(
                "must not set 'exploration_floor': the spec's top-level 'exploration_floor' sets it"
            )
        if "seed" in value:
            raise ValueError("must not set 'seed': the engine seeds the policy")
        problem = _json_problem(value, "")
        if problem:
            raise ValueError(problem)
        return value


def _json_problem(value: object, where: str) -> str | None:
    """Why ``value`` would not survive a JSON round trip (non-finite numbers, dates, ...)."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'value'} must be finite; got {value}"
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{position}]")
            if problem:
                return problem
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = _json_problem(item, f"{where}.{key}".lstrip("."))
            if problem:
                return problem
        return None
    return (
        f"{where or 'value'} must be a number, string, boolean, list or table; "
        f"got {type(value).__name__}"
    )


class RewardSpec(BaseModel):
    """How a decision's outcomes become its reward (see :mod:`experiments.engine.reward`).

    ``event``: 1 when the named event occurs within the window. ``sum``: the sum of the
    named event's values within the window. ``retained``: 0 when the named (churn) event
    occurs within the window, else the default, which is 1 unless given. ``change``: the
    share of the way from ``baseline_field`` (the KPI at decision time, a numeric context
    field) to ``target`` that the last named KPI event within the window reached, in
    [-1, 1]. ``default`` applies when the window closes with nothing.
    """

    model_config = FROZEN

    kind: Literal["event", "sum", "retained", "change"]
    event: StrictStr = Field(min_length=1)
    window: Duration
    default: Number = 0.0
    target: Number | None = None
    baseline_field: StrictStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _retained_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") == "retained" and "default" not in data:
            return {**data, "default": 1.0}
        return data

    @model_validator(mode="after")
    def _change_fields(self) -> RewardSpec:
        for name in ("target", "baseline_field"):
            given = getattr(self, name) is not None
            if self.kind == "change" and not given:
                raise SpecError(name, "is required when kind = 'change'")
            if self.kind != "change" and given:
                raise SpecError(name, f"only applies to kind = 'change'; kind is {self.kind!r}")
        return self


class HoldoutSpec(BaseModel):
    """The randomized control group: its share of customers and the policy that serves it
    (uniform random, or always the business-as-usual ``action``). Customers are assigned by
    a stable hash of the experiment key, or of ``salt`` when given: experiments with the same
    salt and share hold out the same customers (the arms of an ``engage run`` do)."""

    model_config = FROZEN

    share: Number = Field(default=0.1, ge=0.0, lt=1.0)
    policy: Literal["uniform", "fixed"] = "uniform"
    action: dict[str, StrictStr] | None = None
    salt: StrictStr | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _action_iff_fixed(self) -> HoldoutSpec:
        if self.policy == "fixed" and self.action is None:
            raise SpecError(
                "action",
                "is required when policy = 'fixed': the business-as-usual action, "
                "one level per factor",
            )
        if self.policy != "fixed" and self.action is not None:
            raise SpecError("action", "only applies to policy = 'fixed'; policy is 'uniform'")
        return self


class ContactSpec(BaseModel):
    """Contact rules: at most ``max_decisions`` per customer per ``window``; no decisions
    while the customer's local hour (context field ``local_hour_field``) is in
    ``quiet_hours = (start, end)``, which wraps midnight when ``start > end``."""

    model_config = FROZEN

    max_decisions: Integer | None = Field(default=None, ge=1)
    window: Duration = timedelta(days=7)
    quiet_hours: tuple[Hour, Hour] | None = None
    local_hour_field: StrictStr | None = None

    @model_validator(mode="after")
    def _quiet_hours(self) -> ContactSpec:
        if self.quiet_hours is not None:
            start, end = self.quiet_hours
            if start == end:
                raise SpecError(
                    "quiet_hours", f"must be [start, end] with start != end; got [{start}, {end}]"
                )
            if self.local_hour_field is None:
                raise SpecError(
                    "local_hour_field",
                    "is required with quiet_hours: the numeric context field holding the "
                    "customer's local hour",
                )
        return self

    def is_quiet(self, local_hour: float) -> bool:
        """True when ``local_hour`` (0 <= h < 24; fractions allowed) falls in the quiet hours.

        The quiet period is ``[start, end)``: (22, 8) is quiet from 22:00 to 07:59.
        """
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        hour = math.floor(local_hour) % 24
        return start <= hour < end if start < end else hour >= start or hour < end


class LearnerSpec(BaseModel):
    """Publish a new policy snapshot every ``batch_size`` new rewards or every
    ``interval_seconds``, whichever comes first."""

    model_config = FROZEN

    batch_size: Integer = Field(default=100, ge=1)
    interval_seconds: Number = Field(default=60.0, gt=0.0)


class ExperimentSpec(BaseModel):
    """One experiment: decision space, context schema, policy, reward, holdout, exploration
    floor, contact rules, learner cadence and the world ``engage run`` simulates it in.
    Build it with :func:`parse_spec` or :func:`load_spec`, which turn validation failures
    into :class:`SpecError`."""

    model_config = FROZEN

    key: StrictStr
    description: StrictStr = ""
    factors: dict[StrictStr, list[StrictStr]]
    rules: list[dict[StrictStr, StrictStr | list[StrictStr]]] = Field(default_factory=list)
    context: dict[StrictStr, ContextField] = Field(default_factory=dict)
    policy: PolicySpec
    reward: RewardSpec
    holdout: HoldoutSpec = Field(default_factory=HoldoutSpec)
    exploration_floor: Number = Field(default=0.01, ge=0.0, le=1.0)
    contact: ContactSpec = Field(default_factory=ContactSpec)
    learner: LearnerSpec = Field(default_factory=LearnerSpec)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    strategies: strategy_section.StrategiesSpec | None = None

    # Derived once at validation; private, so they stay out of dumps.
    _space: DecisionSpace = PrivateAttr()
    _encoder: ContextEncoder = PrivateAttr()
    _strategy_set: strategy_section.StrategySet | None = PrivateAttr(default=None)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY_PATTERN.fullmatch(value):
            raise ValueError(
                "must be 1 to 64 characters of lowercase letters, digits, '_' and '-', "
                f"starting with a letter or digit; got {value!r}"
            )
        return value

    @field_validator("factors", mode="before")
    @classmethod
    def _factor_count(cls, value: Any) -> Any:
        _check_action_count(value)
        return value

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_shapes(cls, value: Any) -> Any:
        _check_rule_shapes(value)
        return value

    @field_validator("context")
    @classmethod
    def _context_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_context_names(value)
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentSpec:
        """Checks that need several sections; runs after every section is valid by itself."""
        try:
            self._space = DecisionSpace(self.factors, self.rules)
        except BanditValueError as error:
            raise SpecError(error.field, str(error)) from None
        self._encoder = ContextEncoder.from_schema(self.context)

        self._check_policy()
        if self.reward.kind == "change":
            # Required: a baseline filled in from a default would make the change meaningless.
            require_numeric_field(
                self.context, "reward.baseline_field", self.reward.baseline_field, required=True
            )
        if self.holdout.action is not None:
            self._check_holdout_action(self.holdout.action)
        if self.contact.local_hour_field is not None:
            require_numeric_field(
                self.context, "contact.local_hour_field", self.contact.local_hour_field
            )
        self.simulation.check_levels(self.factors)
        if self.strategies is not None:
            self._strategy_set = strategy_section.compile_for(self)
        return self

    def _check_policy(self) -> None:
        cls = POLICIES[self.policy.name]
        binary_kinds = ("event", "retained")
        if cls.binary_rewards and (
            self.reward.kind not in binary_kinds or not 0.0 <= self.reward.default <= 1.0
        ):
            raise SpecError(
                "policy.name",
                f"policy {self.policy.name!r} learns from rewards in [0, 1]: it needs reward "
                f"kind 'event' or 'retained' with a default in [0, 1]; got kind "
                f"{self.reward.kind!r} with default {self.reward.default:g} "
                "(use linear_ts, kalman_ts, linucb or epsilon_greedy for other rewards)",
            )
        try:
            self.build_policy()
        except BanditValueError as error:
            raise SpecError("policy.params", str(error)) from None
        except (TypeError, ValueError) as error:  # a policy may reject a value's type itself
            raise SpecError(
                "policy.params", f"bad hyper-parameters for {self.policy.name!r}: {error}"
            ) from None

    def _check_holdout_action(self, action: Mapping[str, str]) -> None:
        try:
            index = self._space.index_of(action)
        except BanditValueError as error:
            raise SpecError("holdout.action", str(error)) from None
        if not self._space.allowed[index]:
            raise SpecError(
                "holdout.action",
                f"must be an action the rules allow; {self._space.action_name(index)!r} is "
                "excluded by the rules",
            )

    # ----------------------------------------------------------------- derived values
    def decision_space(self) -> DecisionSpace:
        """The decision space of ``factors`` and ``rules`` (built once, at validation)."""
        return self._space

    def strategy_set(self) -> strategy_section.StrategySet | None:
        """The compiled ``[strategies]`` section (built once, at validation), or None."""
        return self._strategy_set

    def build_policy(
        self,
        *,
        seed: int | np.random.Generator | None = None,
        exploration_floor: float | None = None,
    ) -> Policy:
        """A fresh policy for the treatment group: the spec's policy and hyper-parameters
        over this decision space and context width, with ``exploration_floor`` (None: the
        spec's own ``exploration_floor``; the engine passes an experiment's current one).

        A linear policy with a Gaussian likelihood whose ``params`` do not fix
        ``noise_variance`` learns it from the rewards (``noise_variance = "auto"``), so its
        exploration follows the reward's own scale: a fixed guess too large for 0/1 clicks
        keeps Thompson sampling near uniform, one too small for revenue makes it greedy. A
        policy that refuses ``"auto"`` keeps its own default.
        """
        params = dict(self.policy.params)
        learned = "noise_variance" not in params and getattr(
            POLICIES[self.policy.name], "gaussian_likelihood", False
        )
        if learned:
            params["noise_variance"] = AUTO_NOISE_VARIANCE
        floor = self.exploration_floor if exploration_floor is None else exploration_floor
        try:
            return make_policy(
                self.policy.name,
                space=self._space,
                n_context=self._encoder.width,
                seed=seed,
                exploration_floor=floor,
                **params,
            )
        except BanditValueError as error:
            if not (learned and error.field == "noise_variance"):
                raise
        return make_policy(
            self.policy.name,
            space=self._space,
            n_context=self._encoder.width,
            seed=seed,
            exploration_floor=floor,
            **self.policy.params,
        )

    def build_holdout_policy(self, *, seed: int | np.random.Generator | None = None) -> Policy:
        """The holdout group's control policy: uniform random, or always the
        business-as-usual action. Neither learns, and neither has an exploration floor."""
        if self.holdout.policy == "fixed":
            return make_policy(
                "fixed",
                space=self._space,
                n_context=self._encoder.width,
                seed=seed,
                action=self.holdout.action,
            )
        return make_policy("uniform", space=self._space, n_context=self._encoder.width, seed=seed)

    @property
    def n_context(self) -> int:
        """Width of the encoded context vector."""
        return self._encoder.width

    @property
    def feature_names(self) -> list[str]:
        """Name of every column of the encoded context: the field name for numeric and
        boolean fields, ``"name=level"`` for each level of a categorical field."""
        return self._encoder.feature_names

    def encode_context(self, context: Mapping[str, Any]) -> np.ndarray:
        """Validate one customer's context and encode it, shape ``(n_context,)`` float64.

        Unknown fields, missing required fields and values of the wrong kind raise
        :class:`SpecError` on ``context.<name>``; a missing (or null) optional field takes
        its default. Numbers must be finite reals within the field's bounds (``true`` and
        ``false`` are not numbers), categories one of the levels, booleans ``true``/``false``.
        """
        return self._encoder.encode(context)

    def encode_contexts(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode a batch of contexts, shape ``(n, n_context)``; errors name
        ``contexts[i].<name>``."""
        return self._encoder.encode_batch(contexts)

    def to_json_dict(self) -> dict[str, Any]:
        """The spec as JSON-able data (durations in seconds); :func:`parse_spec` reads it
        back to an equal spec."""
        return self.model_dump(mode="json")


def _check_action_count(factors: Any) -> None:
    """Refuse factors whose levels multiply to more than :data:`MAX_ACTIONS` actions,
    before the decision space is built (its arrays have one row per action)."""
    if isinstance(factors, Mapping):
        sizes = [len(levels) for levels in factors.values() if isinstance(levels, list | tuple)]
        if len(sizes) == len(factors) and math.prod(sizes) > MAX_ACTIONS:
            raise ValueError(
                f"must define at most {MAX_ACTIONS:,} actions; these factors define "
                f"{math.prod(sizes):,}"
            )


def _check_rule_shapes(rules: Any) -> None:
    """Each rule must be a non-empty table of factor -> level name or list of level names.
    Rules given as anything but a list are left to pydantic, which reports the type error."""
    if not isinstance(rules, list | tuple):
        return
    for position, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or not rule:
            raise SpecError(
                f"[{position}]",
                "must be a table naming at least one factor, such as "
                f"{{channel = 'push', timing = 'night'}}; got {rule!r}",
            )
        for factor, levels in rule.items():
            if isinstance(levels, str):
                continue
            if (
                isinstance(levels, list | tuple)
                and levels
                and all(isinstance(level, str) for level in levels)
            ):
                continue
            raise SpecError(
                f"[{position}].{factor}",
                f"must be a level name or a non-empty list of level names; got {levels!r}",
            )


_SECTIONS: dict[str, type[BaseModel]] = {
    "policy": PolicySpec,
    "reward": RewardSpec,
    "holdout": HoldoutSpec,
    "contact": ContactSpec,
    "learner": LearnerSpec,
    "simulation": SimulationSpec,
}


def model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields live at ``loc`` (pydantic's raw location, tags included)."""
    if not loc:
        return ExperimentSpec
    if len(loc) == 1 and loc[0] in _SECTIONS:
        return _SECTIONS[str(loc[0])]
    if len(loc) == 3 and loc[0] == "context":
        return CONTEXT_KINDS.get(str(loc[2]))
    return None
