"""Off-policy evaluation of logged decisions from any source (``engage evaluate``).

A log is a CSV or Parquet table with columns ``action``, ``reward``, ``propensity`` (the
logging policy's probability of the logged action), an optional ``timestamp``, and context
columns (numeric, or anything else one-hot encoded by level). The target policy is either one
of ours, replayed progressively in time order (every row is scored before the policy learns
it), or given as a table of target probabilities, one row per logged row and one column per
action name.

The reward model for the direct method and doubly robust is a ridge regression of reward on
action-specific context features, cross-fitted, so DM and DR never score a row with a model
that has seen its reward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bandit import DecisionSpace, Policy, make_policy
from bandit.ope import OffPolicyReport, estimate_all
from bandit.policies import EpsilonGreedyPolicy
from experiments.errors import InvalidInputError

__all__ = [
    "REQUIRED",
    "Evaluation",
    "LoggedData",
    "evaluate_log",
    "load_log",
    "read_table",
    "read_target_probabilities",
    "replay_policy_probabilities",
    "reward_model_predictions",
]

REQUIRED = ("action", "reward", "propensity")
#: Rows scored together before the policy learns them (all scored before being learned).
REPLAY_CHUNK = 256


@dataclass(frozen=True)
class LoggedData:
    """A validated log: action names, indices, rewards, propensities, context matrix."""

    action_names: tuple[str, ...]
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    contexts: np.ndarray
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    """The estimates plus what a reader needs to trust them."""

    report: OffPolicyReport
    n_rows: int
    target: str
    unsupported_names: tuple[str, ...]


def read_table(path: Path) -> dict[str, np.ndarray]:
    """Columns of a CSV or Parquet file as numpy arrays (strings stay strings)."""
    if not path.exists():
        raise InvalidInputError(f"no such file: {path}", field="log")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
        else:
            raise InvalidInputError(f"{path.name}: expected a .csv or .parquet file", field="log")
    except InvalidInputError:
        raise
    except Exception as error:  # pyarrow raises its own error types for malformed files
        raise InvalidInputError(
            f"{path.name}: cannot read the table ({error})", field="log"
        ) from None
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def _numeric(values: np.ndarray, name: str) -> np.ndarray:
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"column '{name}' must be numeric", field=name) from None
    if not np.isfinite(numbers).all():
        raise InvalidInputError(f"column '{name}' has missing or infinite values", field=name)
    return numbers


def load_log(path: Path) -> LoggedData:
    """Read and validate a logged-decision table."""
    columns = read_table(path)
    missing = [name for name in REQUIRED if name not in columns]
    if "propensity" in missing:
        raise InvalidInputError(
            f"{path.name} has no 'propensity' column: off-policy evaluation needs the logging "
            "policy's probability of each logged action",
            field="propensity",
        )
    if missing:
        raise InvalidInputError(f"{path.name} lacks column(s) {missing}", field=missing[0])
    actions_raw = np.asarray(columns["action"]).astype(str)
    if actions_raw.size < 2:
        raise InvalidInputError("the log needs at least 2 rows", field="log")
    rewards = _numeric(columns["reward"], "reward")
    propensities = _numeric(columns["propensity"], "propensity")
    if propensities.min() <= 0 or propensities.max() > 1:
        raise InvalidInputError("column 'propensity' must lie in (0, 1]", field="propensity")
    order = np.arange(actions_raw.size)
    if "timestamp" in columns:
        order = np.argsort(np.asarray(columns["timestamp"]).astype(str), kind="stable")
    names, actions = np.unique(actions_raw, return_inverse=True)
    features: list[np.ndarray] = []
    feature_names: list[str] = []
    for name, values in columns.items():
        if name in (*REQUIRED, "timestamp"):
            continue
        try:
            numeric = np.asarray(values).astype(np.float64)
            if not np.isfinite(numeric).all():
                raise InvalidInputError(
                    f"context column '{name}' has missing or infinite values", field=name
                )
            features.append(numeric[:, None])
            feature_names.append(name)
        except (TypeError, ValueError):
            levels, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
            features.append(np.eye(levels.size)[codes])
            feature_names.extend(f"{name}={level}" for level in levels)
    contexts = np.concatenate(features, axis=1) if features else np.zeros((actions.size, 0))
    return LoggedData(
        action_names=tuple(str(name) for name in names),
        actions=actions[order].astype(np.int64),
        rewards=rewards[order],
        propensities=propensities[order],
        contexts=contexts[order],
        feature_names=tuple(feature_names),
    )


def _progressive(
    log: LoggedData, score: Callable[[np.ndarray], np.ndarray], learner: Policy
) -> np.ndarray:
    """Score each chunk of rows with ``score`` before ``learner`` learns it; ``(n, A)``."""
    out = np.empty((log.actions.size, len(log.action_names)))
    for start in range(0, log.actions.size, REPLAY_CHUNK):
        rows = slice(start, start + REPLAY_CHUNK)
        out[rows] = score(log.contexts[rows])
        learner.update(log.contexts[rows], log.actions[rows], log.rewards[rows])
    return out


def _standardised(contexts: np.ndarray) -> np.ndarray:
    scale = contexts.std(axis=0)
    scale[scale == 0] = 1.0
    return (contexts - contexts.mean(axis=0)) / scale


def reward_model_predictions(log: LoggedData, *, seed: int = 0, folds: int = 2) -> np.ndarray:
    """Cross-fitted ridge predictions ``q(x, a)`` for every row and action, ``(n, A)``.

    Rows are split into ``folds`` interleaved folds; each fold is predicted by a model fit on
    the others, so no row is scored by a model that saw its reward (cross-fitting, as in
    Chernozhukov et al. 2018, "Double/debiased machine learning").
    """
    space = DecisionSpace({"action": list(log.action_names)})
    contexts = _standardised(log.contexts)
    out = np.empty((log.actions.size, len(log.action_names)))
    fold_of = np.arange(log.actions.size) % folds
    for fold in range(folds):
        train, test = fold_of != fold, fold_of == fold
        model = EpsilonGreedyPolicy(space, contexts.shape[1], seed=seed)
        model.update(contexts[train], log.actions[train], log.rewards[train])
        out[test] = model.expected_rewards(contexts[test])
    return out


def replay_policy_probabilities(log: LoggedData, policy_name: str, *, seed: int = 0) -> np.ndarray:
    """Target probabilities of one of our policies, replayed in time order, ``(n, A)``."""
    space = DecisionSpace({"action": list(log.action_names)})
    try:
        policy = make_policy(policy_name, space=space, n_context=log.contexts.shape[1], seed=seed)
    except ValueError as error:
        raise InvalidInputError(str(error), field="policy") from None
    scaled = LoggedData(**{**log.__dict__, "contexts": _standardised(log.contexts)})
    rewards_ok = not policy.binary_rewards or (log.rewards.min() >= 0 and log.rewards.max() <= 1)
    if not rewards_ok:
        raise InvalidInputError(
            f"policy '{policy_name}' needs rewards in [0, 1]; this log has others",
            field="policy",
        )
    return _progressive(scaled, policy.action_probabilities, policy)


def read_target_probabilities(path: Path, log: LoggedData) -> tuple[np.ndarray, tuple[str, ...]]:
    """A table of target probabilities: one row per logged row, one column per action.

    Columns for actions the log never contains are allowed (they are the mass the log cannot
    speak for); they come after the logged actions, whose names are returned with them.
    """
    columns = read_table(path)
    missing = [name for name in log.action_names if name not in columns]
    if missing:
        raise InvalidInputError(
            f"{path.name} lacks a column for action(s) {missing}", field="target_probs"
        )
    first = next(iter(columns.values()))
    if first.size != log.actions.size:
        raise InvalidInputError(
            f"{path.name} has {first.size} rows; the log has {log.actions.size}",
            field="target_probs",
        )
    names = log.action_names + tuple(name for name in columns if name not in log.action_names)
    table = np.stack([_numeric(columns[name], name) for name in names], axis=1)
    if (table < 0).any() or not np.allclose(table.sum(axis=1), 1.0, atol=1e-6):
        raise InvalidInputError(
            "target probabilities must be >= 0 and sum to 1 in every row", field="target_probs"
        )
    return table, names


def evaluate_log(
    log_path: Path,
    *,
    policy: str | None = None,
    target_probs: Path | None = None,
    seed: int = 0,
) -> Evaluation:
    """IPS, SNIPS, DM and DR of the target on the log, with intervals and diagnostics."""
    log = load_log(log_path)
    names = log.action_names
    if policy is not None and target_probs is None:
        probabilities = replay_policy_probabilities(log, policy, seed=seed)
        target = f"policy {policy}"
    elif target_probs is not None and policy is None:
        probabilities, names = read_target_probabilities(target_probs, log)
        target = f"probabilities from {target_probs.name}"
    else:
        raise InvalidInputError(
            "give exactly one target: --policy NAME or --target-probs FILE", field="target"
        )
    model = np.zeros((log.actions.size, len(names)))
    # Actions the log never tried get a zero reward model: DM/DR say nothing reliable there.
    model[:, : len(log.action_names)] = reward_model_predictions(log, seed=seed)
    report = estimate_all(
        reward=log.rewards,
        action=log.actions,
        propensity=log.propensities,
        target_probs=probabilities,
        expected_reward=model,
    )
    unsupported = tuple(names[index] for index in report.unsupported_actions)
    return Evaluation(
        report=report, n_rows=int(log.actions.size), target=target, unsupported_names=unsupported
    )
