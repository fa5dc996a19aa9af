"""Smoke test of the policy benchmark: our policies only, a few rounds, structure not speed.

The references (``vowpalwabbit``, ``mabwiser``) are optional: nothing here needs them.
No timing is asserted; speed and reward targets belong to ``make bench``.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from rich.console import Console

from bench import agents as bench_agents
from bench.agents import LIKE_FOR_LIKE_TS, OUR_POLICIES, PolicyAgent, like_for_like_agents
from bench.core import run_agent
from bench.environments import environment_specs, make_stream, truth_rows
from bench.lifetime_agents import LIFETIME_POLICIES
from bench.policies import BenchConfig, run_benchmark
from bench.report import write_results
from bench.summary import thompson_targets

TINY = BenchConfig(
    rounds=60,
    factored_rounds=40,
    tail=20,
    window=20,
    small_batch=1,
    large_batch=10,
    drift_batch=1,
    factored_batch=10,
    latency_calls=5,
    # Caps on wall time, far above what these sizes take: the smoke test checks that every
    # measurement completes, and a cap that binds on a loaded machine (fitted_q's batch-1
    # run stopped after 3 of 5 rounds under a load of 5-8) would make it a timing test.
    latency_seconds=600.0,
    factored_speed_rounds=5,
    memory_rounds=20,
    max_seconds=600.0,
)


@pytest.fixture(scope="module")
def outcome():
    return run_benchmark(
        TINY, references=False, console=Console(file=io.StringIO()), show_progress=False
    )


def test_every_policy_runs_in_every_environment(outcome) -> None:
    assert set(outcome.results) == {"A", "B", "C", "D", "E", "F", "S", "J", "P"}
    for key in ("A", "C", "D", "E", "F", "S", "J", "P"):
        assert list(outcome.results[key].ours()) == list(OUR_POLICIES)
    assert list(outcome.results["B"].agents) == [
        *OUR_POLICIES,
        *LIFETIME_POLICIES,
        "linucb per-arm",
    ]
    assert outcome.payload["references_run"] == []


def test_like_for_like_row_beside_linear_ts_on_stationary_worlds(outcome) -> None:
    """linear_ts without the floor runs on A, D, E, F next to (not instead of) linear_ts."""
    for key in "ADEF":
        agents = outcome.results[key].agents
        assert list(agents) == [*OUR_POLICIES, LIKE_FOR_LIKE_TS]
        assert (agents[LIKE_FOR_LIKE_TS].kind, agents[LIKE_FOR_LIKE_TS].policy) == (
            "like-for-like",
            "linear_ts",
        )
        assert LIKE_FOR_LIKE_TS not in outcome.results[key].ratios
    for key in "BCSJP":
        assert LIKE_FOR_LIKE_TS not in outcome.results[key].agents
    assert like_for_like_agents(("linucb",), 0) == []
    spec = environment_specs(0.0)["A"]
    (alike,) = like_for_like_agents(("linear_ts",), 0)
    policy = alike.build(spec).policy  # type: ignore[attr-defined]
    default = PolicyAgent("linear_ts", spec.space(), spec.n_context, 0).policy
    assert (policy.exploration_floor, default.exploration_floor) == (0.0, 0.01)
    assert (policy.scale, policy.noise_variance) == (default.scale, default.noise_variance)


def test_thompson_targets_judge_both_rows(outcome) -> None:
    """One verdict per row and batch; the detail is each row minus the reference."""
    results = {}
    for key in "AD":
        result = dataclasses.replace(outcome.results[key])
        reference = dataclasses.replace(result.agents["linucb"], name="MABWiser LinTS")
        result.agents = {**result.agents, "MABWiser LinTS": reference}
        results[key] = result
    found = thompson_targets(results, 1, 10)
    assert [item.target for item in found] == [
        f"stationary: {name} >= MABWiser LinTS - 0.003 at batch {batch}"
        for name in ("linear_ts", LIKE_FOR_LIKE_TS)
        for batch in (1, 10)
    ]
    gap = (
        results["D"].agents[LIKE_FOR_LIKE_TS].runs[10].expected_tail
        - results["D"].agents["linucb"].runs[10].expected_tail
    )
    assert found[3].detail.endswith(f"D {gap:+.4f}")
    assert found[3].passed == (
        min(
            r.agents[LIKE_FOR_LIKE_TS].runs[10].expected_tail
            - r.agents["linucb"].runs[10].expected_tail
            for r in results.values()
        )
        >= -0.003
    )


def test_run_summaries_are_consistent(outcome) -> None:
    cases = [("A", (1, 10), 60), ("C", (1,), 60), ("B", (10,), 40)]
    cases += [(key, (1, 10), 60) for key in "DEF"] + [(key, (1,), 60) for key in "SJP"]
    for key, batches, rounds in cases:
        for agent in outcome.results[key].agents.values():
            assert sorted(agent.runs) == sorted(batches)
            for run in agent.runs.values():
                assert (run.rounds, run.planned_rounds, run.truncated) == (rounds, rounds, False)
                assert run.tail_rounds == 20
                assert len(run.curve) == rounds // 20
                assert 0.0 <= run.expected_all <= run.optimal_all <= 1.0
                assert run.regret_tail >= 0.0
                assert run.ceiling_tail <= run.optimal_tail
                assert 0.0 <= run.reward_all <= 1.0
                measured_speed = run.rounds_per_second  # measured, never judged here
                assert measured_speed > 0


def test_latency_memory_and_derived_results(outcome) -> None:
    for agent in outcome.results["B"].agents.values():
        assert agent.latency is not None
        assert agent.latency.calls == 5
        assert agent.latency.p50_ms <= agent.latency.p99_ms <= agent.latency.max_ms
        assert agent.speed_small is not None
        assert agent.speed_small.rounds == 5
    for key in ("A", "B"):
        for agent in outcome.results[key].agents.values():
            assert agent.memory is not None
            assert agent.memory.peak_mib >= 0
    assert outcome.results["B"].per_arm_level is not None
    assert set(outcome.results["B"].rounds_to_per_arm) == set(outcome.results["B"].agents)
    for key in "CSJP":
        assert outcome.results[key].drift is not None
    assert outcome.results["A"].ratios == {name: {} for name in OUR_POLICIES}
    # No references here, so no Thompson comparison; the drift policy at rest is judged.
    assert [item.target.split(":")[0] for item in outcome.targets] == [
        *"AAA",
        *"CSJP",
        "stationary",
        "B",
    ]
    assert all(item.passed in (True, False) for item in outcome.targets)


def test_results_are_written_as_json_and_markdown(outcome, tmp_path) -> None:
    json_path, md_path = write_results(tmp_path, outcome.payload, outcome.tables, "# header\n")
    payload = json.loads(json_path.read_text())
    assert set(payload["environments"]) == {"A", "B", "C", "D", "E", "F", "S", "J", "P"}
    run = payload["environments"]["A"]["agents"]["linucb"]["runs"]["1"]
    fields = {
        "reward_all",
        "expected_tail",
        "optimal_tail",
        "ceiling_tail",
        "rounds_per_second",
        "curve",
    }
    assert fields <= set(run)
    assert {"python", "packages", "blas", "git"} <= set(payload["machine"])
    assert len(payload["targets"]) == 9
    text = md_path.read_text()
    assert text.startswith("# header")
    assert "### A: K=8 arms" in text
    assert "| linucb per-arm |" in text


def test_references_are_optional(monkeypatch) -> None:
    """Without the bench extra the reference lists are empty and nothing is imported."""
    monkeypatch.setattr(
        bench_agents, "references_available", lambda: {"vowpalwabbit": False, "mabwiser": False}
    )
    assert bench_agents.reference_agents(0) == []
    assert [spec.name for spec in bench_agents.per_arm_agents(0, references=True)] == [
        "linucb per-arm"
    ]


def test_every_agent_sees_the_same_rounds() -> None:
    """Common random numbers: reward = 1[u < p(a)] whatever the batch size."""
    spec = environment_specs(2 * np.pi)["C"]
    stream = make_stream(spec, 50)
    for batch_size in (1, 7, 50):
        agent = PolicyAgent("fixed", spec.space(), spec.n_context, seed=0)
        record = run_agent(agent, stream, batch_size=batch_size)
        np.testing.assert_array_equal(record.expected, stream.table[:, 0])
        np.testing.assert_array_equal(record.rewards, stream.uniforms < stream.table[:, 0])


def test_drifting_truth_is_evaluated_at_each_round() -> None:
    spec = environment_specs(np.pi)["C"]
    environment = spec.environment(horizon=10)
    X = np.random.default_rng(0).standard_normal((4, spec.n_context))
    rows = truth_rows(environment, X, start=3)
    for i in range(4):
        np.testing.assert_allclose(rows[i], environment.expected(X[i : i + 1], 3 + i)[0])
    assert not np.allclose(rows[0], environment.expected(X[:1], 0)[0])


def test_regret_against_the_optimum_and_the_floor_ceiling() -> None:
    """Recomputed from the truth table: the uniform value is the mean over the actions, the
    ceiling 0.99 optimal + 0.01 uniform (the default floor), regrets the differences."""
    spec = environment_specs(0.0)["A"]
    stream = make_stream(spec, 50)
    assert stream.table is not None
    np.testing.assert_allclose(stream.uniform, stream.table.mean(axis=1), rtol=1e-15)
    np.testing.assert_allclose(stream.optimal, stream.table.max(axis=1), rtol=1e-15)
    agent = PolicyAgent("uniform", spec.space(), spec.n_context, seed=0)
    run = run_agent(agent, stream, batch_size=5).summary(tail=20, window=10)
    last = slice(30, 50)
    ceiling = 0.99 * stream.table[last].max(axis=1) + 0.01 * stream.table[last].mean(axis=1)
    assert run.ceiling_tail == pytest.approx(ceiling.mean(), rel=1e-14)
    assert run.regret_tail == pytest.approx(run.optimal_tail - run.expected_tail, rel=1e-14)
    assert run.ceiling_regret_tail == pytest.approx(ceiling.mean() - run.expected_tail, rel=1e-14)
    assert 0.0 < run.ceiling_regret_tail < run.regret_tail


def test_promotion_bench_writes_its_counts(tmp_path) -> None:
    """One seed of each stream, structure only (the counts are `python -m bench.promotion`'s)."""
    from bench.promotion import main

    main(seeds=1, stationary_seeds=1, out=tmp_path)
    payload = json.loads((tmp_path / "promotion.json").read_text())
    (run,) = payload["poisoned"]
    assert sorted(run["verdicts"]) == ["1", "2", "3", "4"]
    assert run["verdicts"]["4"]["status"] == "pending"
    assert set(payload["stationary"]) == {"linear_ts", "beta_ts", "epsilon_greedy"}
    assert all(counts["verdicts"] == 6 for counts in payload["stationary"].values())
