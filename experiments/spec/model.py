"""The spec's models: its sections and :class:`ExperimentSpec`, the experiment as a whole.

Each section (policy, reward, holdout, contact, learner: :mod:`experiments.spec.sections`;
simulation; strategies) validates itself; :class:`ExperimentSpec` adds the checks that need
several sections (a policy that learns from [0, 1] rewards needs a 0/1 reward; a fixed
holdout action must be one the rules allow)
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
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    StrictStr,
    field_validator,
    model_validator,
)

from bandit import (
    POLICIES,
    BanditValueError,
    DecisionSpace,
    FittedQPolicy,
    Policy,
    make_policy,
)
from experiments.spec.context import (
    CONTEXT_KINDS,
    ContextEncoder,
    ContextField,
    check_context_names,
    require_numeric_field,
)
from experiments.spec.errors import SpecError, clip
from experiments.spec.guardrails import GuardrailSpec, GuardrailsSpec
from experiments.spec.limits import (
    MAX_ACTIONS,
    MAX_CONTEXT_FIELDS,
    MAX_CONTEXT_WIDTH,
    MAX_FACTOR_NAME,
    MAX_FACTORS,
    MAX_LEVEL_NAME,
    check_policy_cost,
)
from experiments.spec.report import ReportSpec
from experiments.spec.reward import RewardSpec, check_short_term_learner
from experiments.spec.sections import (
    ContactSpec,
    HoldoutSpec,
    LearnerSpec,
    PolicySpec,
    PromotionSpec,
)
from experiments.spec.simulation import SimulationSpec
from experiments.spec.state import (
    StateSpec,
    contact_params,
    encode_logged,
    require_contact_state,
)
from experiments.spec.strategies import (
    StrategiesSpec,
    StrategySet,
    compile_strategies,
    strategies_model_at,
)
from experiments.spec.surrogate import SurrogateSpec
from experiments.spec.values import FROZEN, Number

#: The ``noise_variance`` a linear policy learns its noise variance under (see
#: :meth:`ExperimentSpec.build_policy`).
AUTO_NOISE_VARIANCE = "auto"

_KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ExperimentSpec(BaseModel):
    """One experiment: decision space, context schema, policy, reward, holdout, exploration
    floor, contact rules, learner cadence, the world ``engage run`` simulates it in and,
    optionally, the customer state decisions see (``[state]``, :mod:`experiments.spec.state`).
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
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    strategies: StrategiesSpec | None = None
    state: StateSpec | None = None
    report: ReportSpec | None = None
    guardrails: GuardrailsSpec = Field(default_factory=GuardrailsSpec)

    # Derived once at validation; private, so they stay out of dumps.
    _space: DecisionSpace = PrivateAttr()
    _encoder: ContextEncoder = PrivateAttr()
    _strategy_set: StrategySet | None = PrivateAttr(default=None)

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

    @field_validator("factors")
    @classmethod
    def _factor_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for factor, levels in value.items():
            _check_name(factor, factor, "factor name", MAX_FACTOR_NAME)
            for position, level in enumerate(levels):
                _check_name(level, f"{factor}[{position}]", "level", MAX_LEVEL_NAME)
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
        if len(value) > MAX_CONTEXT_FIELDS:
            raise ValueError(f"must have at most {MAX_CONTEXT_FIELDS:,} fields; got {len(value):,}")
        width = sum(len(getattr(item, "levels", ())) or 1 for item in value.values())
        if width > MAX_CONTEXT_WIDTH:
            raise ValueError(
                f"must encode to at most {MAX_CONTEXT_WIDTH:,} columns (one per numeric or "
                f"boolean field, one per level of a categorical field); got {width:,}"
            )
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
        for path, reward in (
            ("reward", self.reward),
            ("reward.short_term", self.reward.short_term),
        ):
            if reward is not None and reward.kind == "change":
                # Required: a baseline filled in from a default would make the change meaningless.
                require_numeric_field(
                    self.context, f"{path}.baseline_field", reward.baseline_field, required=True
                )
        if self.holdout.action is not None:
            self._check_holdout_action(self.holdout.action)
        if self.contact.local_hour_field is not None:
            require_numeric_field(
                self.context, "contact.local_hour_field", self.contact.local_hour_field
            )
        for name in self.reward.surrogate.covariates if self.reward.surrogate else ():
            require_numeric_field(self.context, "reward.surrogate.covariates", name)
        self.simulation.check_levels(self.factors)
        for position, name in enumerate(self.report.covariates if self.report else ()):
            require_numeric_field(self.context, f"report.covariates[{position}]", name)
        if self.strategies is not None:
            self._strategy_set = compile_strategies(
                self.strategies,
                space=self._space,
                context=self.context,
                default_floor=self.exploration_floor,
            )
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
        if cls.needs_contact_state:
            require_contact_state(self.policy.name, self.state)
        check_short_term_learner(self.reward, self.policy.name, self.policy.params)
        if self.promotion.enabled and issubclass(cls, FittedQPolicy):
            raise SpecError(
                "promotion.enabled",
                f"safe promotion judges a snapshot by its immediate reward; policy "
                f"{self.policy.name!r} maximises a long-term value, which it cannot judge",
            )
        # Before building: the policy's arrays are allocated in its constructor.
        check_policy_cost(
            "policy",
            self.policy.name,
            self.policy.params,
            self._space.factor_sizes,
            self.n_features,
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

    def strategy_set(self) -> StrategySet | None:
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
        params.update(contact_params(self.policy.name, self.state))
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
                n_context=self.n_features,
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
            n_context=self.n_features,
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
                n_context=self.n_features,
                seed=seed,
                action=self.holdout.action,
            )
        return make_policy("uniform", space=self._space, n_context=self.n_features, seed=seed)

    @property
    def holdout_salt(self) -> str:
        """What the holdout (and a strategy panel) hash customers with: ``holdout.salt``,
        else the key. Experiments with the same salt and share hold out the same customers."""
        return self.holdout.salt or self.key

    @property
    def n_context(self) -> int:
        """Width of the encoded context vector."""
        return self._encoder.width

    @property
    def state_feature_names(self) -> list[str]:
        """Names of the customer-state columns appended to the encoded context (``[state]``
        with ``contact_half_life``; none otherwise)."""
        return self.state.feature_names(self._space) if self.state is not None else []

    @property
    def n_features(self) -> int:
        """Width of what the policies see and decisions log: the encoded context, then the
        customer-state columns."""
        return self._encoder.width + len(self.state_feature_names)

    def encode_logged(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Logged decisions' contexts as the policies saw them, ``(n, n_features)``: the
        encoded request fields, then the logged customer state (key ``@state``, required when
        the spec adds state). Errors name ``contexts[i].<field>``."""
        return encode_logged(self.encode_contexts, len(self.state_feature_names), contexts)

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
        back to an equal spec. Sections a spec does not use (``state``, ``report``,
        ``reward.surrogate``, ``guardrails`` at its defaults) are left out, so a spec's stored
        form does not change with the sections engage has."""
        data = self.model_dump(mode="json")
        for section in ("state", "report"):
            if data[section] is None:
                del data[section]
        _drop_unused_tables(data["reward"])
        if self.guardrails == GuardrailsSpec():
            del data["guardrails"]
        return data


def _drop_unused_tables(reward: dict[str, Any]) -> None:
    """Leave the tables a stored reward (or its short-term reward) does not use out of it."""
    for table in ("surrogate", "short_term"):
        if reward[table] is None:
            del reward[table]
    if "short_term" in reward:
        _drop_unused_tables(reward["short_term"])


def _check_action_count(factors: Any) -> None:
    """Refuse more than :data:`MAX_FACTORS` factors, and factors whose levels multiply to
    more than :data:`MAX_ACTIONS` actions, before the decision space is built (its arrays
    have one row per action)."""
    if isinstance(factors, Mapping):
        if len(factors) > MAX_FACTORS:
            raise ValueError(f"must have at most {MAX_FACTORS} factors; got {len(factors):,}")
        sizes = [len(levels) for levels in factors.values() if isinstance(levels, list | tuple)]
        if len(sizes) == len(factors) and math.prod(sizes) > MAX_ACTIONS:
            raise ValueError(
                f"must define at most {MAX_ACTIONS:,} actions; these factors define "
                f"{math.prod(sizes):,}"
            )


#: What joins factors and levels in an action's name (``offer=bundle|channel=sms``).
_SEPARATORS = ("|", "=")


def _check_name(name: str, where: str, what: str, longest: int) -> None:
    """Refuse an empty name, one with spaces around it (``"push "`` would look like
    ``"push"`` everywhere it is shown), one holding an action-name separator and one longer
    than ``longest`` characters (names become MLflow param and metric names, and columns)."""
    if len(name) > longest:
        raise SpecError(
            where, f"must be a {what} of at most {longest} characters; got {len(name):,}"
        )
    if not name.strip():
        raise SpecError(where, f"must be a non-empty {what}; got {clip(name)}")
    if name != name.strip():
        raise SpecError(
            where, f"must be a {what} without leading or trailing spaces; got {clip(name)}"
        )
    for separator in _SEPARATORS:
        if separator in name:
            raise SpecError(
                where,
                f"must be a {what} without {separator!r}, which joins factors and levels in "
                f"action names (offer=bundle|channel=sms); got {clip(name)}",
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
    "promotion": PromotionSpec,
    "state": StateSpec,
    "simulation": SimulationSpec,
    "report": ReportSpec,
    "guardrails": GuardrailsSpec,
}


def model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields live at ``loc`` (pydantic's raw location, tags included)."""
    if not loc:
        return ExperimentSpec
    if len(loc) == 1 and loc[0] in _SECTIONS:
        return _SECTIONS[str(loc[0])]
    if tuple(loc) == ("reward", "surrogate"):
        return SurrogateSpec
    if tuple(loc) == ("reward", "short_term"):
        return RewardSpec
    if len(loc) == 3 and tuple(loc[:2]) == ("guardrails", "kpi"):
        return GuardrailSpec
    if len(loc) == 3 and loc[0] == "context":
        return CONTEXT_KINDS.get(str(loc[2]))
    if loc[0] == "strategies":
        return strategies_model_at(loc[1:])
    return None
