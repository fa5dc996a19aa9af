"""Off-policy evaluation of logged decisions from any source (``engage evaluate``).

A log (read and validated by :mod:`experiments.analysis.log_table`) has columns ``action``,
``reward``, ``propensity``, an optional ``timestamp`` and row key, and context columns. The
target policy is either one of ours, replayed progressively in time order (every row is scored
before the policy learns it), or given as a table of target probabilities, one row per logged
row and one column per action name, joined to the log by key or by position as read.

The reward model for the direct method and doubly robust is a ridge regression of reward on
action-specific context features, cross-fitted, so DM and DR never score a row with a model
that has seen its reward.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bandit import DecisionSpace, Policy, make_policy
from bandit.ope import OffPolicyReport, estimate_all
from bandit.policies import EpsilonGreedyPolicy
from experiments.analysis.log_table import (
    KEY_COLUMNS,
    LoggedData,
    load_log,
    numeric_column,
    read_table,
)
from experiments.errors import InvalidInputError

__all__ = [
    "Evaluation",
    "evaluate_log",
    "read_target_probabilities",
    "replay_chunk",
    "replay_policy_probabilities",
    "reward_model_predictions",
]

#: Rows scored together before the policy learns them (all scored before being learned): at
#: most this many, and fewer on short logs so that a replayed policy learns about 64 times.
MAX_REPLAY_CHUNK = 256
REPLAY_STEPS = 64


@dataclass(frozen=True)
class Evaluation:
    """The estimates plus what a reader needs to trust them."""

    report: OffPolicyReport
    n_rows: int
    target: str
    unsupported_names: tuple[str, ...]


def replay_chunk(rows: int) -> int:
    """Rows scored per learning step: ``rows // 64`` within [1, 256], so a short log still
    teaches the replayed policy before most of its rows are scored."""
    return int(np.clip(rows // REPLAY_STEPS, 1, MAX_REPLAY_CHUNK))


def _progressive(
    log: LoggedData, score: Callable[[np.ndarray], np.ndarray], learner: Policy
) -> np.ndarray:
    """Score each chunk of rows with ``score`` before ``learner`` learns it; ``(n, A)``."""
    out = np.empty((log.actions.size, len(log.action_names)))
    chunk = replay_chunk(log.actions.size)
    for start in range(0, log.actions.size, chunk):
        rows = slice(start, start + chunk)
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
    scaled = replace(log, contexts=_standardised(log.contexts))
    rewards_ok = not policy.binary_rewards or (log.rewards.min() >= 0 and log.rewards.max() <= 1)
    if not rewards_ok:
        raise InvalidInputError(
            f"policy '{policy_name}' needs rewards in [0, 1]; this log has others",
            field="policy",
        )
    return _progressive(scaled, policy.action_probabilities, policy)


def _target_rows(columns: dict[str, np.ndarray], log: LoggedData, name: str) -> np.ndarray:
    """For each logged row (time order), the row of the target table that belongs to it.

    By key when both tables carry the log's key column (``id`` or ``decision_id``), otherwise by
    position as read: the target's ``i``-th row belongs to the log's ``i``-th row as it stood in
    the file, before the log was put in time order.
    """
    n_target = next(iter(columns.values())).size
    target_key = next((key for key in KEY_COLUMNS if key in columns), None)
    if target_key is not None and target_key != log.key_name:
        raise InvalidInputError(
            f"{name} has a '{target_key}' column but the log does not: rows cannot be matched",
            field="target_probs",
        )
    if target_key is None or log.keys is None:
        if n_target != log.actions.size:
            raise InvalidInputError(
                f"{name} has {n_target} rows; the log has {log.actions.size}",
                field="target_probs",
            )
        return log.order
    keys = columns[target_key].astype(str)
    position = {key: row for row, key in enumerate(keys)}
    if len(position) != keys.size:
        raise InvalidInputError(f"{name} repeats a value of '{target_key}'", field="target_probs")
    if np.unique(log.keys).size != log.keys.size:
        raise InvalidInputError(f"the log repeats a value of '{target_key}'", field=target_key)
    unmatched = [key for key in log.keys if key not in position]
    if unmatched or keys.size != log.keys.size:
        raise InvalidInputError(
            f"{name} and the log name different rows by '{target_key}' "
            f"({len(unmatched)} logged rows have no target row, e.g. {unmatched[:1]})",
            field="target_probs",
        )
    return np.array([position[key] for key in log.keys], dtype=np.int64)


def read_target_probabilities(path: Path, log: LoggedData) -> tuple[np.ndarray, tuple[str, ...]]:
    """A table of target probabilities: one row per logged row, one column per action, returned
    in the log's time order (joined by key or by position as read: see :func:`_target_rows`).

    Columns for actions the log never contains are allowed (they are the mass the log cannot
    speak for); they come after the logged actions, whose names are returned with them.
    """
    table = read_table(path, field="target_probs")
    columns = {
        name: np.asarray(table.column(name).to_numpy(zero_copy_only=False))
        for name in table.column_names
    }
    missing = [name for name in log.action_names if name not in columns]
    if missing:
        raise InvalidInputError(
            f"{path.name} lacks a column for action(s) {missing}", field="target_probs"
        )
    rows = _target_rows(columns, log, path.name)
    action_columns = [name for name in columns if name not in KEY_COLUMNS]
    names = log.action_names + tuple(
        name for name in action_columns if name not in log.action_names
    )
    table_values = np.stack([numeric_column(table.column(name), name) for name in names], axis=1)
    probabilities = table_values[rows]
    if (probabilities < 0).any() or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6):
        raise InvalidInputError(
            "target probabilities must be >= 0 and sum to 1 in every row", field="target_probs"
        )
    return probabilities, names


def evaluate_log(
    log_path: Path,
    *,
    policy: str | None = None,
    target_probs: Path | None = None,
    seed: int = 0,
    drop_columns: Collection[str] = (),
) -> Evaluation:
    """IPS, SNIPS, DM and DR of the target on the log, with intervals and diagnostics."""
    log = load_log(log_path, drop_columns=drop_columns)
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
