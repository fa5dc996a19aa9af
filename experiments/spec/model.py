"""The experiment spec: what an experiment decides, for whom, how it learns and what it rewards.

A spec is written in TOML (see ``examples/``) or posted as JSON with the same fields, and is
validated here once, with errors that name the field by its dotted path and say what was
expected and what was received::

    reward.window: must be a duration such as '14d', '36h', '90m', '30s', ISO-8601 'P14D'
    or a number of seconds; got '14 days'

Every model is frozen and rejects unknown fields, so a typo never silently falls back to a
default. :func:`parse_spec` is the entry point for mappings, :func:`load_spec` for files;
both raise :class:`SpecError` and nothing else for bad input.

The context schema also turns a customer's context (a mapping of field values) into the
numeric vector the policies learn from: numeric and boolean fields take one column each,
categorical fields one column per level (one-hot), in the schema's order.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from numbers import Real
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    Strict,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bandit import POLICIES, BanditValueError, DecisionSpace, Policy, make_policy
from experiments.spec.text import first_text_problem

#: Largest decision space a spec may define; the policies score every action per decision.
MAX_ACTIONS = 100_000
#: Largest magnitude of a numeric context value. Larger ones are unit errors, and the linear
#: policies square their features: a value near 1e308 would overflow the model update to inf
#: and stall learning of the whole experiment.
MAX_CONTEXT_MAGNITUDE = 1e12

_KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_CONTEXT_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DURATION_PATTERN = re.compile(r"(?:\d+(?:\.\d+)?[wdhms])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_SECONDS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_DURATION_HELP = (
    "must be a duration such as '14d', '36h', '90m', '30s', ISO-8601 'P14D' or a number of seconds"
)
_TIMEDELTA = TypeAdapter(timedelta)


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


# --------------------------------------------------------------------------- value types
def _parse_duration(value: object) -> object:
    """Accept '14d' / '36h' / '90m' / '30s' (also compounds like '1d12h'), ISO-8601
    ('P14D', 'PT36H') and plain seconds; return a ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{_DURATION_HELP}; got {value!r}")
    if isinstance(value, Real):
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(f"{_DURATION_HELP}; got {value!r}")
        try:
            return timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"{_DURATION_HELP} that fits in a timedelta; got {value!r}") from None
    if isinstance(value, str):
        text = value.strip()
        if _DURATION_PATTERN.fullmatch(text):
            seconds = sum(
                float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
            )
            try:
                return timedelta(seconds=seconds)
            except OverflowError:
                raise ValueError(
                    f"{_DURATION_HELP} that fits in a timedelta; got {value!r}"
                ) from None
        if text[:1] in ("P", "-"):
            try:
                return _TIMEDELTA.validate_python(text)
            except ValidationError:
                pass
    raise ValueError(f"{_DURATION_HELP}; got {value!r}")


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be a positive duration; got {value.total_seconds():g} seconds")
    return value


#: A length of time; serialised to JSON as seconds (a float).
Duration = Annotated[
    timedelta,
    BeforeValidator(_parse_duration),
    AfterValidator(_positive_duration),
    PlainSerializer(lambda value: value.total_seconds(), return_type=float, when_used="json"),
]
#: A finite real number; ``true``/``false`` and numeric strings are refused.
Number = Annotated[float, Strict(), AllowInfNan(False)]
Integer = Annotated[int, Strict()]
Hour = Annotated[int, Strict(), Field(ge=0, le=23)]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _names(values: Sequence[str]) -> str:
    return "[" + ", ".join(repr(value) for value in values) + "]"


# --------------------------------------------------------------------------- context schema
class _ContextFieldBase(BaseModel):
    """What the three kinds of context field share: required, or optional with a default."""

    model_config = _FROZEN

    @model_validator(mode="before")
    @classmethod
    def _default_makes_optional(cls, data: Any) -> Any:
        # A field given a default but no 'required' is optional: writing both is redundant.
        if isinstance(data, Mapping) and data.get("default") is not None and "required" not in data:
            return {**data, "required": False}
        return data

    @model_validator(mode="after")
    def _required_xor_default(self) -> _ContextFieldBase:
        default = getattr(self, "default", None)
        if self.required and default is not None:
            raise SpecError(
                "default", "a required field takes no default; set required = false or drop it"
            )
        if not self.required and default is None:
            raise SpecError("default", "an optional field (required = false) needs a default")
        return self


class NumericField(_ContextFieldBase):
    """A real-valued feature, optionally bounded to ``[min, max]`` (inclusive)."""

    type: Literal["numeric"]
    required: StrictBool = True
    default: Number | None = None
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _bounds(self) -> NumericField:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError("max", f"must be >= min ({self.min:g}); got {self.max:g}")
        if self.default is not None:
            problem = self.bound_problem(self.default)
            if problem:
                raise SpecError("default", problem)
        return self

    def bound_problem(self, value: float) -> str | None:
        """Why ``value`` is outside ``[min, max]``, or None when it is inside."""
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            low = "-inf" if self.min is None else f"{self.min:g}"
            high = "inf" if self.max is None else f"{self.max:g}"
            return f"must be a number in [{low}, {high}]; got {value:g}"
        return None


class CategoricalField(_ContextFieldBase):
    """One level out of a fixed list, encoded one-hot (one column per level)."""

    type: Literal["categorical"]
    levels: list[StrictStr] = Field(min_length=1)
    required: StrictBool = True
    default: StrictStr | None = None

    @model_validator(mode="after")
    def _levels(self) -> CategoricalField:
        seen: set[str] = set()
        for position, level in enumerate(self.levels):
            if not level:
                raise SpecError(f"levels[{position}]", "must be a non-empty string; got ''")
            if level in seen:
                raise SpecError(f"levels[{position}]", f"must be unique; {level!r} repeats")
            seen.add(level)
        if self.default is not None and self.default not in seen:
            raise SpecError(
                "default", f"must be one of the levels {_names(self.levels)}; got {self.default!r}"
            )
        return self


class BooleanField(_ContextFieldBase):
    """A true/false feature, encoded as 1.0/0.0."""

    type: Literal["boolean"]
    required: StrictBool = True
    default: StrictBool | None = None


ContextField = Annotated[
    NumericField | CategoricalField | BooleanField, Field(discriminator="type")
]
_CONTEXT_KINDS: dict[str, type[BaseModel]] = {
    "numeric": NumericField,
    "categorical": CategoricalField,
    "boolean": BooleanField,
}


# --------------------------------------------------------------------------- the other sections
class PolicySpec(BaseModel):
    """The bandit algorithm (a name registered in :data:`bandit.POLICIES`) and its
    hyper-parameters, passed to :func:`bandit.make_policy` as keyword arguments."""

    model_config = _FROZEN

    name: StrictStr
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in POLICIES:
            raise ValueError(f"must be one of {_names(sorted(POLICIES))}; got {value!r}")
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
    """How a decision's outcomes become its reward (see :mod:`experiments.reward`).

    ``event``: 1 when the named event occurs within the window. ``sum``: the sum of the
    named event's values within the window. ``retained``: 0 when the named (churn) event
    occurs within the window, else the default, which is 1 unless given. ``change``: the
    share of the way from ``baseline_field`` (the KPI at decision time, a numeric context
    field) to ``target`` that the last named KPI event within the window reached, in
    [-1, 1]. ``default`` applies when the window closes with nothing.
    """

    model_config = _FROZEN

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
    (uniform random, or always the business-as-usual ``action``)."""

    model_config = _FROZEN

    share: Number = Field(default=0.1, ge=0.0, lt=1.0)
    policy: Literal["uniform", "fixed"] = "uniform"
    action: dict[str, StrictStr] | None = None

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

    model_config = _FROZEN

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

    model_config = _FROZEN

    batch_size: Integer = Field(default=100, ge=1)
    interval_seconds: Number = Field(default=60.0, gt=0.0)


# --------------------------------------------------------------------------- the experiment
class ExperimentSpec(BaseModel):
    """One experiment: decision space, context schema, policy, reward, holdout, exploration
    floor, contact rules and learner cadence. Build it with :func:`parse_spec` or
    :func:`load_spec`, which turn validation failures into :class:`SpecError`."""

    model_config = _FROZEN

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

    # Derived once at validation; private, so they stay out of dumps.
    _space: DecisionSpace = PrivateAttr()
    _columns: tuple[tuple[str, str, int, tuple[str, ...]], ...] = PrivateAttr()
    _n_context: int = PrivateAttr()

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
        if isinstance(value, Mapping):
            sizes = [len(levels) for levels in value.values() if isinstance(levels, list | tuple)]
            if len(sizes) == len(value) and math.prod(sizes) > MAX_ACTIONS:
                raise ValueError(
                    f"must define at most {MAX_ACTIONS:,} actions; these factors define "
                    f"{math.prod(sizes):,}"
                )
        return value

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_shapes(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value  # pydantic reports the type error
        for position, rule in enumerate(value):
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
        return value

    @field_validator("context")
    @classmethod
    def _context_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _CONTEXT_NAME_PATTERN.fullmatch(name):
                raise SpecError(
                    name,
                    "context field names must be 1 to 64 letters, digits or '_', not starting "
                    f"with a digit; got {name!r}",
                )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentSpec:
        """Checks that need several sections; runs after every section is valid by itself."""
        try:
            space = DecisionSpace(self.factors, self.rules)
        except BanditValueError as error:
            raise SpecError(error.field, str(error)) from None
        columns: list[tuple[str, str, int, tuple[str, ...]]] = []
        width = 0
        for name, spec in self.context.items():
            levels = tuple(spec.levels) if isinstance(spec, CategoricalField) else ()
            columns.append((name, spec.type, width, levels))
            width += len(levels) if levels else 1
        self._space = space
        self._columns = tuple(columns)
        self._n_context = width

        self._check_policy()
        if self.reward.kind == "change":
            # Required: a baseline filled in from a default would make the change meaningless.
            self._check_numeric_field(
                "reward.baseline_field", self.reward.baseline_field, required=True
            )
        if self.holdout.action is not None:
            self._check_holdout_action(self.holdout.action)
        if self.contact.local_hour_field is not None:
            self._check_numeric_field("contact.local_hour_field", self.contact.local_hour_field)
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

    def _check_numeric_field(self, where: str, name: str | None, *, required: bool = False) -> None:
        spec = self.context.get(name or "")
        if spec is None:
            numeric = [key for key, field in self.context.items() if field.type == "numeric"]
            raise SpecError(
                where,
                f"must name a numeric field of the context schema, one of {_names(numeric)}; "
                f"got {name!r}",
            )
        if spec.type != "numeric":
            raise SpecError(where, f"must name a numeric context field; {name!r} is {spec.type}")
        if required and not spec.required:
            raise SpecError(
                where, f"must name a required context field; {name!r} is optional (has a default)"
            )

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

    def build_policy(self, *, seed: int | np.random.Generator | None = None) -> Policy:
        """A fresh policy for the treatment group: the spec's policy, hyper-parameters and
        exploration floor over this decision space and context width."""
        return make_policy(
            self.policy.name,
            space=self._space,
            n_context=self._n_context,
            seed=seed,
            exploration_floor=self.exploration_floor,
            **self.policy.params,
        )

    def build_holdout_policy(self, *, seed: int | np.random.Generator | None = None) -> Policy:
        """The holdout group's control policy: uniform random, or always the
        business-as-usual action. Neither learns, and neither has an exploration floor."""
        if self.holdout.policy == "fixed":
            return make_policy(
                "fixed",
                space=self._space,
                n_context=self._n_context,
                seed=seed,
                action=self.holdout.action,
            )
        return make_policy("uniform", space=self._space, n_context=self._n_context, seed=seed)

    @property
    def n_context(self) -> int:
        """Width of the encoded context vector."""
        return self._n_context

    @property
    def feature_names(self) -> list[str]:
        """Name of every column of the encoded context: the field name for numeric and
        boolean fields, ``"name=level"`` for each level of a categorical field."""
        names: list[str] = []
        for name, _kind, _offset, levels in self._columns:
            names.extend([f"{name}={level}" for level in levels] if levels else [name])
        return names

    def encode_context(self, context: Mapping[str, Any]) -> np.ndarray:
        """Validate one customer's context and encode it, shape ``(n_context,)`` float64.

        Unknown fields, missing required fields and values of the wrong kind raise
        :class:`SpecError` on ``context.<name>``; a missing (or null) optional field takes
        its default. Numbers must be finite reals within the field's bounds (``true`` and
        ``false`` are not numbers), categories one of the levels, booleans ``true``/``false``.
        """
        row = np.zeros(self._n_context, dtype=np.float64)
        self._encode_into(row, context, "context")
        return row

    def encode_contexts(self, contexts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode a batch of contexts, shape ``(n, n_context)``; errors name
        ``contexts[i].<name>``."""
        if isinstance(contexts, Mapping | str) or not isinstance(contexts, Sequence):
            raise SpecError(
                "contexts", f"must be a list of context objects; got {type(contexts).__name__}"
            )
        rows = np.zeros((len(contexts), self._n_context), dtype=np.float64)
        for position, context in enumerate(contexts):
            self._encode_into(rows[position], context, f"contexts[{position}]")
        return rows

    def _encode_into(self, row: np.ndarray, context: object, where: str) -> None:
        if not isinstance(context, Mapping):
            raise SpecError(
                where, f"must be an object of context fields; got {type(context).__name__}"
            )
        for key in context:
            if key not in self.context:
                raise SpecError(
                    f"{where}.{key}",
                    f"unknown context field; expected one of {_names(list(self.context))}",
                )
        for name, kind, offset, levels in self._columns:
            spec = self.context[name]
            value = context.get(name)
            if value is None:
                if spec.required:
                    raise SpecError(f"{where}.{name}", f"required {kind} field is missing")
                value = spec.default
            if kind == "numeric":
                row[offset] = _numeric_value(spec, value, f"{where}.{name}")  # type: ignore[arg-type]
            elif kind == "boolean":
                if not isinstance(value, bool | np.bool_):
                    raise SpecError(f"{where}.{name}", f"must be true or false; got {value!r}")
                row[offset] = 1.0 if value else 0.0
            else:
                if not isinstance(value, str) or value not in levels:
                    raise SpecError(
                        f"{where}.{name}", f"must be one of {_names(levels)}; got {value!r}"
                    )
                row[offset + levels.index(value)] = 1.0

    def to_json_dict(self) -> dict[str, Any]:
        """The spec as JSON-able data (durations in seconds); :func:`parse_spec` reads it
        back to an equal spec."""
        return self.model_dump(mode="json")


def _numeric_value(spec: NumericField, value: object, where: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise SpecError(where, f"must be a number; got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise SpecError(where, f"must be a finite number; got {value!r}")
    if abs(number) > MAX_CONTEXT_MAGNITUDE:
        raise SpecError(
            where, f"must be a number within +-{MAX_CONTEXT_MAGNITUDE:g}; got {value!r}"
        )
    problem = spec.bound_problem(number)
    if problem:
        raise SpecError(where, problem)
    return number


# --------------------------------------------------------------------------- parsing
def _dotted(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text and not str(part).startswith(("[", ".")):
            text += f".{part}"
        else:
            text += str(part)
    return text.lstrip(".")


_SECTIONS: dict[str, type[BaseModel]] = {
    "policy": PolicySpec,
    "reward": RewardSpec,
    "holdout": HoldoutSpec,
    "contact": ContactSpec,
    "learner": LearnerSpec,
}


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields live at ``loc`` (pydantic's raw location, tags included)."""
    if not loc:
        return ExperimentSpec
    if len(loc) == 1 and loc[0] in _SECTIONS:
        return _SECTIONS[str(loc[0])]
    if len(loc) == 3 and loc[0] == "context":
        return _CONTEXT_KINDS.get(str(loc[2]))
    return None


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error as (dotted field path, message saying what was expected and got)."""
    loc = list(error["loc"])
    kind = error["type"]
    got = error.get("input")
    context_tagged = len(loc) >= 3 and loc[0] == "context" and loc[2] in _CONTEXT_KINDS
    path = [part for index, part in enumerate(loc) if not (context_tagged and index == 2)]
    if kind == "value_error":
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, SpecError):
            return _dotted([*path, cause.field]), cause.message
        return _dotted(path), str(cause) if cause is not None else error["msg"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = f"; expected one of {_names(list(model.model_fields))}" if model else ""
        return _dotted(path), f"unknown field{known}"
    if kind == "missing":
        return _dotted(path), "required field is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        if not isinstance(got, Mapping):
            return _dotted(path), (
                f"must be a table such as {{type = 'numeric'}}; got {type(got).__name__} {got!r}"
            )
        expected = f"one of {_names(list(_CONTEXT_KINDS))}"
        if got.get("type") is None:
            return _dotted([*path, "type"]), f"required field is missing; expected {expected}"
        return _dotted([*path, "type"]), f"must be {expected}; got {got.get('type')!r}"
    if kind in ("too_short", "string_too_short", "too_long"):
        ctx = error.get("ctx", {})
        if kind == "too_long":
            bound = f"at most {ctx.get('max_length')}"
        else:
            bound = f"at least {ctx.get('min_length')}"
        unit = "character(s)" if kind == "string_too_short" else "item(s)"
        return _dotted(path), f"must have {bound} {unit}; got {got!r}"
    message = str(error["msg"])
    for prefix, replacement in (("Input should be", "must be"), ("Value should", "must")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
            break
    else:
        message = message[:1].lower() + message[1:]
    if "input" in error:
        message += f"; got {got!r}"
    return _dotted(path), message


def parse_spec(data: Mapping[str, Any]) -> ExperimentSpec:
    """Validate a spec given as a mapping (parsed TOML or JSON).

    Raises :class:`SpecError` named after the first bad field; ``errors`` lists them all.
    Text must be storable as is on every database (:mod:`experiments.text`): no NUL, no lone
    surrogate, in keys or values.
    """
    if not isinstance(data, Mapping):
        raise SpecError("spec", f"must be a table of spec fields; got {type(data).__name__}")
    unstorable = first_text_problem(data)
    if unstorable is not None:
        raise SpecError(*unstorable)
    try:
        return ExperimentSpec.model_validate(dict(data))
    except ValidationError as error:
        problems = [_describe(item) for item in error.errors()]
        field, message = problems[0]
        raise SpecError(field, message, errors=problems) from None


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a TOML spec file; unreadable files and TOML syntax errors raise
    :class:`SpecError` on the field ``file``."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file", f"no spec file at {str(source)!r}") from None
    except UnicodeDecodeError as error:
        raise SpecError("file", f"{str(source)!r} is not UTF-8 text: {error}") from None
    except OSError as error:
        raise SpecError("file", f"cannot read {str(source)!r}: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError("file", f"{str(source)!r} is not valid TOML: {error}") from None
    return parse_spec(data)


QUICKSTART_SPEC = """\
# engage quickstart: which offer, sent by which channel, gets a click within a day?
# Every field is described in experiments/spec.py; examples/engagement.toml shows them all.
key = "quickstart"
description = "Which offer, sent by which channel, gets a click within a day."

# The decision space: one level per factor makes an action (3 x 3 = 9 actions).
[factors]
offer = ["none", "data_bundle", "discount"]
channel = ["sms", "email", "push"]

# Never offer a data bundle by email.
[[rules]]
offer = "data_bundle"
channel = "email"

# What we know about the customer at decision time. A field with a default is optional.
[context]
tenure_months = { type = "numeric", min = 0 }
plan = { type = "categorical", levels = ["prepaid", "postpaid"] }
is_roaming = { type = "boolean", default = false }

# Clicks are 0/1, so logistic Thompson sampling fits.
[policy]
name = "logistic_ts"

# Reward 1 when the customer clicks within a day of the decision, else 0.
[reward]
kind = "event"
event = "click"
window = "1d"
default = 0.0

# 10% of customers get a uniformly random action: the baseline for lift.
[holdout]
share = 0.1
policy = "uniform"
"""


def example_spec_text() -> str:
    """A small, valid spec to start from (what ``engage init`` writes); the same text as
    ``examples/quickstart.toml``."""
    return QUICKSTART_SPEC


__all__ = [
    "MAX_ACTIONS",
    "BooleanField",
    "CategoricalField",
    "ContactSpec",
    "ContextField",
    "Duration",
    "ExperimentSpec",
    "HoldoutSpec",
    "LearnerSpec",
    "NumericField",
    "PolicySpec",
    "RewardSpec",
    "SpecError",
    "example_spec_text",
    "load_spec",
    "parse_spec",
]
