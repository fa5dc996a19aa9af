"""Off-policy evaluation of logs from any source, on synthetic logs with a known truth."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from experiments.analysis.evaluate import evaluate_log
from experiments.analysis.log_table import load_log
from experiments.errors import InvalidInputError

MEANS = {"a": 0.2, "b": 0.5, "c": 0.8}


def write_log(path: Path, n: int = 3000, seed: int = 0, *, propensity: bool = True) -> None:
    """Uniform logging over a, b, c with Bernoulli rewards of known means."""
    rng = np.random.default_rng(seed)
    names = list(MEANS)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["timestamp", "action", "reward", "segment", "spend"]
        writer.writerow([*header, "propensity"] if propensity else header)
        for row in range(n):
            action = names[rng.integers(3)]
            reward = float(rng.random() < MEANS[action])
            values = [f"2026-01-01T00:{row // 60 % 60:02d}:{row % 60:02d}", action, reward]
            values += [rng.choice(["x", "y"]), round(float(rng.normal()), 3)]
            writer.writerow([*values, 1 / 3] if propensity else values)


def test_target_probabilities_recover_the_known_value(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    write_log(log)
    target = tmp_path / "target.csv"
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c"])
        for _ in range(3000):
            writer.writerow([0.0, 0.25, 0.75])
    truth = 0.25 * MEANS["b"] + 0.75 * MEANS["c"]
    evaluation = evaluate_log(log, target_probs=target)
    for name in ("ips", "snips", "dr"):
        estimate = evaluation.report.estimates()[name]
        assert estimate.ci_low <= truth <= estimate.ci_high, estimate
    # DM's interval reflects only the spread of predictions, not the model's own error.
    assert evaluation.report.dm is not None
    assert abs(evaluation.report.dm.value - truth) < 0.03
    assert evaluation.unsupported_names == ()
    assert evaluation.report.ips.max_weight == pytest.approx(0.75 * 3)


def test_replayed_policy_learns_to_prefer_the_best_action(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    write_log(log)
    evaluation = evaluate_log(log, policy="linucb")
    assert evaluation.report.snips is not None
    # Uniform logging is worth 0.5; a learner converging on 'c' (0.8) is clearly better.
    assert evaluation.report.snips.value > 0.65
    assert evaluation.target == "policy linucb"


def test_unsupported_actions_are_named(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    write_log(log, n=200)
    target = tmp_path / "target.csv"
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "d"])
        for _ in range(200):
            writer.writerow([0.5, 0.0, 0.0, 0.5])
    assert evaluate_log(log, target_probs=target).unsupported_names == ("d",)


def test_log_without_propensities_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    write_log(log, n=10, propensity=False)
    with pytest.raises(InvalidInputError) as error:
        load_log(log)
    assert error.value.field == "propensity"
    assert "no 'propensity' column" in str(error.value)


def test_categorical_context_is_one_hot(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    write_log(log, n=50)
    loaded = load_log(log)
    assert loaded.feature_names == ("segment=x", "segment=y", "spend")
    assert loaded.contexts[:, :2].sum(axis=1).tolist() == [1.0] * 50
