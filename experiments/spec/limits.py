"""Bounds on what a spec may ask of memory and time: a spec is untrusted input.

A spec reaches engage from a file or over HTTP, and some of its numbers size arrays: a
Thompson sampler draws ``n_samples`` scores of every action per decision, a linear policy
holds a ``p x p`` covariance over its ``p`` weights, fitted Q keeps ``memory`` transitions with
a mask over every action. Left unbounded, one ``n_samples = 100000000`` takes a server to
14 GB on its first decision. So every size is bounded at parse time, and every refusal names
the field to change:

============================  =======================================================
bound                         what it limits
============================  =======================================================
:data:`MAX_FACTORS`           factors of the decision space (``factors``)
:data:`MAX_FACTOR_NAME`       characters of a factor's name
:data:`MAX_LEVEL_NAME`        characters of a level's name
:data:`MAX_CONTEXT_FIELDS`    fields of the context schema (``context``)
:data:`MAX_CONTEXT_WIDTH`     encoded context columns (one per level of a categorical)
:data:`MAX_STRATEGIES`        strategies (``strategies.options``)
:data:`MAX_N_SAMPLES`         Monte Carlo draws per decision (``policy.params.n_samples``)
:data:`MAX_N_ITERATIONS`      fitted Q's Bellman iterations per refit
:data:`MAX_MEMORY`            fitted Q's remembered transitions
:data:`MAX_STATE_CELLS`       numbers of learned state (covariances, buffers, incidence)
:data:`MAX_DECISION_CELLS`    numbers a decision holds at once (its largest array)
:data:`MAX_DECISION_WORK`     multiply-adds per decision
:data:`MAX_REFIT_WORK`        multiply-adds of one fitted Q refit
:data:`MAX_MAGNITUDE`         rewards, their defaults and targets, real hyper-parameters
:data:`MIN_MAGNITUDE`         the smallest non-zero real hyper-parameter
============================  =======================================================

The last four are budgets on a policy over a spec's space, computed by :func:`policy_cost`
from the sizes alone, before anything is allocated; the policy's own hyper-parameters
(``n_samples``, ``memory``, ``n_iterations``) get the largest value that fits, so the error
says how far to go (``policy.params.n_samples: must be at most 1,250 for this space ...``).
With 8-byte floats the state budget is 64 MB per copy and a decision's largest array 80 MB;
``tests/e2e/test_spec_limits.py`` decides over HTTP with the worst spec these bounds accept
and holds a worker to its memory and time budget.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bandit import POLICIES
from bandit.policies.beta_ts import BetaTSPolicy, GaussianTSPolicy
from bandit.policies.drift_ts import DEFAULT_DRIFT_RATES, DriftTSPolicy
from bandit.policies.epsilon_greedy import EpsilonGreedyPolicy
from bandit.policies.fitted_q import FittedQPolicy
from bandit.policies.linear import LinearPolicy, ThompsonLinearPolicy
from experiments.spec.errors import SpecError, names

#: Largest decision space a spec may define; the policies score every action per decision.
MAX_ACTIONS = 100_000
#: Most factors in a decision space.
MAX_FACTORS = 32
#: Longest factor name (as long as a context field's name or an experiment key).
MAX_FACTOR_NAME = 64
#: Longest level name.
MAX_LEVEL_NAME = 128
#: Most fields in a context schema.
MAX_CONTEXT_FIELDS = 256
#: Most encoded context columns (numeric and boolean fields one each, categoricals one per level).
MAX_CONTEXT_WIDTH = 1_024
#: Most strategies in ``[strategies]``.
MAX_STRATEGIES = 256
#: Most Monte Carlo draws per decision.
MAX_N_SAMPLES = 10_000
#: Most Bellman iterations per fitted Q refit.
MAX_N_ITERATIONS = 100
#: Most transitions fitted Q remembers.
MAX_MEMORY = 100_000
#: Most numbers of learned state a policy holds (8,000,000 floats: 64 MB per copy).
MAX_STATE_CELLS = 8_000_000
#: Most numbers in the largest array one decision builds (80 MB).
MAX_DECISION_CELLS = 10_000_000
#: Most multiply-adds per decision (about a second on one slow core).
MAX_DECISION_WORK = 2_000_000_000
#: Most multiply-adds of one fitted Q refit (its Bellman targets over the memory).
MAX_REFIT_WORK = 20_000_000_000

#: Largest magnitude of a reward's default or target and of a real hyper-parameter: the same
#: bound as an outcome's value. The linear policies square rewards; 1e308 would overflow the
#: update to inf and stall the experiment's learning ("'state.mean' must be finite").
MAX_MAGNITUDE = 1e12
#: Smallest magnitude of a non-zero real hyper-parameter: a ridge of 1e-320 is a prior
#: variance of inf, a noise variance of 1e-300 a covariance that is not positive definite.
MIN_MAGNITUDE = 1e-12

#: Defaults of the size-setting hyper-parameters, as the policies declare them.
_DEFAULTS = {"n_samples": 100, "memory": 2048, "n_iterations": 10}


@dataclass(frozen=True)
class Sizes:
    """What a policy's arrays scale with: the actions ``A``, the level slots ``S`` (one per
    level, plus one per level pair with interactions), the weights ``p`` of a joint linear
    model, the context width ``w`` (intercept included) and whether the model is per arm."""

    actions: int
    slots: int
    weights: int
    width: int
    per_arm: bool


@dataclass(frozen=True)
class Cost:
    """A policy's demands: numbers of state, the largest array per decision, multiply-adds
    per decision and per refit. Each is a function of the size-setting hyper-parameters."""

    state: int
    decision_cells: int
    decision_work: int
    refit_work: int


def sizes_of(factor_sizes: Sequence[int], n_context: int, params: Mapping[str, Any]) -> Sizes:
    """The sizes of a linear policy with ``params`` over factors of these level counts and a
    context of ``n_context`` columns (the formulas of :class:`bandit.features.ActionFeatures`)."""
    interactions = bool(params.get("interactions", False))
    width = n_context + int(bool(params.get("fit_intercept", True)))
    levels = sum(factor_sizes)
    pairs = (
        sum(a * b for i, a in enumerate(factor_sizes) for b in factor_sizes[i + 1 :])
        if interactions
        else 0
    )
    return Sizes(
        actions=math.prod(factor_sizes),
        slots=levels + pairs,
        weights=levels * width + pairs,
        width=width,
        per_arm=len(factor_sizes) == 1 and not interactions,
    )


#: Arguments of a policy's constructor that are not hyper-parameters of a spec.
_NOT_HYPER_PARAMETERS = (
    "self",
    "space",
    "n_context",
    "seed",
    "exploration_floor",
    "contact_blocks",  # these two are set by the spec from [state] contact_half_life
    "half_lives",
    "expected_counts",  # set by the spec from [state] centred
)


def hyper_parameters(name: str) -> list[str]:
    """The hyper-parameters policy ``name`` takes: the keyword arguments of its constructor
    and of the constructors it passes ``**kwargs`` on to."""
    found: list[str] = []
    for cls in POLICIES[name].__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        found += [
            parameter.name
            for parameter in parameters
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY
            and parameter.name not in _NOT_HYPER_PARAMETERS
            and parameter.name not in found
        ]
        keywords = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
        if not keywords:
            break
        # ``**kwargs: Unpack[SomeOptions]`` passed on to a policy that is not a base class
        # (drift_ts builds one kalman_ts per drift rate): the TypedDict names them.
        hint = typing.get_type_hints(init, include_extras=True).get(keywords[0].name)
        for options in typing.get_args(hint):
            found += [key for key in options.__annotations__ if key not in found]
    return [key for key in sorted(found) if key not in _NOT_HYPER_PARAMETERS]


def _int_param(params: Mapping[str, Any], name: str) -> int | None:
    """The integer hyper-parameter ``name``, or its default; None when not an integer (the
    policy reports a wrong type itself)."""
    value = params.get(name, _DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def policy_cost(
    name: str,
    params: Mapping[str, Any],
    factor_sizes: Sequence[int],
    n_context: int,
    *,
    n_samples: int = 0,
    memory: int = 0,
    n_iterations: int = 0,
) -> Cost:
    """Upper estimates of what policy ``name`` costs over this space (see :class:`Cost`)."""
    cls = POLICIES[name]
    if issubclass(cls, DriftTSPolicy):
        # One kalman_ts per drift rate; a decision may draw from every one of them.
        rates = params.get("drift_rates", DEFAULT_DRIFT_RATES)
        copies = len(rates) if isinstance(rates, list | tuple) else 1
        own = {key: value for key, value in params.items() if key in hyper_parameters("kalman_ts")}
        one = policy_cost("kalman_ts", own, factor_sizes, n_context, n_samples=n_samples)
        return Cost(
            state=copies * one.state,
            decision_cells=one.decision_cells,
            decision_work=copies * one.decision_work,
            refit_work=0,
        )
    size = sizes_of(factor_sizes, n_context, params)
    A, S, p, w = size.actions, size.slots, size.weights, size.width
    if not issubclass(cls, LinearPolicy):
        # Uniform, fixed and the per-action samplers: a few (A,) arrays, M draws of each.
        draws = max(n_samples, 1) * A if issubclass(cls, BetaTSPolicy | GaussianTSPolicy) else A
        return Cost(state=2 * A, decision_cells=draws, decision_work=draws, refit_work=0)
    thompson = issubclass(cls, ThompsonLinearPolicy)
    if size.per_arm and not issubclass(cls, FittedQPolicy):
        # One (w, w) block per arm: score variances are A quadratic forms.
        state = A * w * w
        cells = max(A * w, n_samples * A if thompson else 0)
        work = A * w * w + (n_samples * A if thompson else 0)
        return Cost(state=state, decision_cells=cells, decision_work=work, refit_work=0)
    # A joint belief: the (p, p) covariance, and the (S, A) slot incidence.
    state = p * p + S * A
    cells = S * A
    work = p * p + S * A
    if thompson:
        cells = max(cells, n_samples * max(S, A))
        work += S**3 // 3 + n_samples * S * (S + A)
    elif not issubclass(cls, EpsilonGreedyPolicy):
        work += S * S * A  # every action's score variance (LinUCB)
    refit = 0
    if issubclass(cls, FittedQPolicy):
        state += p * p + memory * (2 * n_context + A + 2)
        refit = n_iterations * memory * (p + S * A)
    return Cost(state=state, decision_cells=cells, decision_work=work, refit_work=refit)


def _largest(fits: Any, high: int) -> int:
    """The largest integer in [0, high] for which ``fits`` holds (0 if none): costs grow with
    each hyper-parameter, so a binary search finds it."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _within(cost: Cost) -> bool:
    return (
        cost.state <= MAX_STATE_CELLS
        and cost.decision_cells <= MAX_DECISION_CELLS
        and cost.decision_work <= MAX_DECISION_WORK
        and cost.refit_work <= MAX_REFIT_WORK
    )


def check_policy_cost(
    where: str,
    name: str,
    params: Mapping[str, Any],
    factor_sizes: Sequence[int],
    n_context: int,
) -> None:
    """Refuse policy ``name`` with ``params`` over this space when it would exceed a budget.

    ``where`` is the spec path of the policy section (``policy``, ``strategies.policy``); an
    error names ``<where>.params.<name>`` for a hyper-parameter over its largest fitting
    value, else ``<where>`` with the sizes that drive the cost.
    """
    if name not in POLICIES:
        return  # the name's own validator reports it
    known = hyper_parameters(name)
    for key in params:
        if key not in known:
            expected = f"expected one of {names(known)}" if known else "it takes none"
            raise SpecError(
                f"{where}.params.{key}",
                f"is not a hyper-parameter of policy {name!r}; {expected}",
            )
    for key, given in params.items():
        # A list (drift_ts's drift_rates) is bounded item by item.
        for value in given if isinstance(given, list | tuple) else [given]:
            if isinstance(value, bool) or not isinstance(value, int | float) or key in _DEFAULTS:
                continue
            if value and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
                raise SpecError(
                    f"{where}.params.{key}",
                    f"must be 0 or a number between {MIN_MAGNITUDE:g} and {MAX_MAGNITUDE:g} in "
                    f"magnitude; got {value!r}",
                )
    chosen: dict[str, int] = {}
    for key, most in (
        ("n_samples", MAX_N_SAMPLES),
        ("memory", MAX_MEMORY),
        ("n_iterations", MAX_N_ITERATIONS),
    ):
        value = _int_param(params, key)
        if value is None:
            return
        if key in params and value > most:
            raise SpecError(f"{where}.params.{key}", f"must be at most {most:,}; got {value:,}")
        chosen[key] = value

    def cost(**change: int) -> Cost:
        return policy_cost(name, params, factor_sizes, n_context, **{**chosen, **change})

    if _within(cost()):
        return
    size = sizes_of(factor_sizes, n_context, params)
    space = (
        f"{size.actions:,} actions, {size.slots:,} level slots, {size.width:,} context "
        f"columns with the intercept"
    )
    cls = POLICIES[name]
    tunable = [("n_samples", MAX_N_SAMPLES)]
    if issubclass(cls, FittedQPolicy):
        tunable += [("memory", MAX_MEMORY), ("n_iterations", MAX_N_ITERATIONS)]
    for key, most in tunable:
        if _within(cost(**{key: 1})):
            largest = _largest(lambda value, key=key: _within(cost(**{key: value})), most)
            raise SpecError(
                f"{where}.params.{key}",
                f"must be at most {largest:,} for this space ({space}), to keep a decision "
                f"within {MAX_DECISION_CELLS:,} numbers and {MAX_DECISION_WORK:,} "
                f"multiply-adds and the learned state within {MAX_STATE_CELLS:,} numbers; "
                f"got {chosen[key]:,}",
            )
    minimal = cost(n_samples=1, memory=1, n_iterations=1)
    over = [
        f"{value:,} {what} (at most {most:,})"
        for value, most, what in (
            (minimal.state, MAX_STATE_CELLS, "numbers of learned state"),
            (minimal.decision_cells, MAX_DECISION_CELLS, "numbers per decision"),
            (minimal.decision_work, MAX_DECISION_WORK, "multiply-adds per decision"),
            (minimal.refit_work, MAX_REFIT_WORK, "multiply-adds per refit"),
        )
        if value > most
    ]
    interactions = " or interactions = false" if params.get("interactions") else ""
    raise SpecError(
        where,
        f"policy {name!r} is too large for this space ({space}): it would need "
        f"{' and '.join(over)}; use fewer factor levels or context fields{interactions}",
    )
