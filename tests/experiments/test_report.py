"""The live report: every statistic recomputed from the stored rewards, undefined ones null."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_support import KEY, populate
from sqlalchemy import Engine
from sqlmodel import Session

from bandit.lift import welch_lift
from experiments.analysis.lift import LiftRow
from experiments.analysis.report import (
    build_live_report,
    live_report_markdown,
    off_policy_sample,
    off_policy_summary,
)
from experiments.engine.registry import find_experiment
from experiments.spec import parse_spec
from experiments.store.aggregates import experiment_counts
from experiments.store.database import Database
from experiments.store.errors import NotFoundError
from experiments.store.rewards import reward_rows
from experiments.store.snapshots import latest_snapshot, latest_snapshot_version, unpack_state
from experiments.vocabulary import Group


def stored(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """The reward values of the treatment and of the holdout, read straight from the store."""
    with Session(engine) as session:
        rows = reward_rows(session, experiment_key=KEY)
    values = np.array([row.value for row in rows])
    holdout = np.array([row.group == Group.HOLDOUT for row in rows])
    return values[~holdout], values[holdout]


def test_report_recomputes_from_the_stored_rewards(engine: Engine) -> None:
    populate(engine)
    report = build_live_report(Database(engine), KEY)
    treatment, holdout = stored(engine)
    assert treatment.size >= 2
    assert holdout.size >= 2
    assert report.lift == LiftRow.from_lift("sum:revenue", "live", welch_lift(treatment, holdout))
    assert [(g.group, g.n) for g in report.groups] == [
        (Group.TREATMENT, treatment.size),
        (Group.HOLDOUT, holdout.size),
    ]
    assert report.groups[0].mean == pytest.approx(treatment.mean(), rel=1e-14)
    assert report.groups[1].variance == pytest.approx(holdout.var(ddof=1), rel=1e-12)
    with Session(engine) as session:
        counts = experiment_counts(session, experiment_key=KEY)
        version = latest_snapshot_version(session, experiment_key=KEY)
    data = report.to_json()
    assert {name: data[name] for name in counts} == counts
    assert (report.kpi, report.status, report.policy_version) == ("sum:revenue", "running", version)
    assert report.off_policy is not None
    assert report.off_policy.rows == treatment.size + holdout.size
    assert set(report.off_policy.estimates) >= {"ips", "snips"}
    assert report.off_policy.measured_holdout == pytest.approx(holdout.mean(), rel=1e-14)


def test_periods_split_by_decision_day_and_end_at_the_overall_lift(engine: Engine) -> None:
    populate(engine, days=3)
    daily = build_live_report(Database(engine), KEY)
    assert [period.period for period in daily.periods] == [0, 1, 2]
    assert sum(period.rewards for period in daily.periods) == daily.rewards.total == 36
    assert daily.lift is not None
    last = daily.periods[-1]
    assert last.lift == pytest.approx(daily.lift.difference, rel=1e-12)
    assert (last.lift_low, last.lift_high) == pytest.approx(
        (daily.lift.diff_low, daily.lift.diff_high), rel=1e-12
    )
    two_days = build_live_report(Database(engine), KEY, period_days=2)
    assert [period.rewards for period in two_days.periods] == [24, 12]
    assert two_days.to_json()["period_days"] == 2


def test_undefined_statistics_are_null_in_json(engine: Engine) -> None:
    """Holdout customers pay nothing: the holdout mean is 0, so every relative figure is
    undefined; it is None in the model and null in JSON, never NaN."""
    populate(engine, holdout_pays=False)
    report = build_live_report(Database(engine), KEY)
    assert report.lift is not None
    assert report.lift.mean_holdout == 0.0
    relative = ("relative_lift", "ci_low", "ci_high", "av_low", "av_high")
    assert [getattr(report.lift, name) for name in relative] == [None] * 5
    data = report.to_json()
    assert [data["lift"][name] for name in relative] == [None] * 5
    json.dumps(data, allow_nan=False)  # raises on NaN or infinity anywhere
    assert "n/a" in live_report_markdown(report)


def test_an_experiment_without_rewards_reports_counts_only(engine: Engine) -> None:
    populate(engine, days=0)
    report = build_live_report(Database(engine), KEY)
    assert (report.lift, report.periods, report.off_policy) == (None, (), None)
    assert [(g.n, g.mean, g.variance) for g in report.groups] == [(0, None, None)] * 2
    assert report.policy_version == 0
    with pytest.raises(NotFoundError):
        build_live_report(Database(engine), "missing")
    with pytest.raises(ValueError, match="period_days"):
        build_live_report(Database(engine), KEY, period_days=0)


def test_an_off_policy_summary_on_its_own_sample_equals_one_that_samples(engine: Engine) -> None:
    """Reading only the sampled rows (off_policy_sample on the ids, as engage run does) gives
    the estimates of the summary that reads every row and samples them itself."""
    populate(engine, days=3)
    with Session(engine) as session:
        rows = reward_rows(session, experiment_key=KEY)
        state = unpack_state(latest_snapshot(session, experiment_key=KEY).state)
        spec = parse_spec(find_experiment(session, KEY).spec)
    max_rows = len(rows) // 2
    keep = off_policy_sample(len(rows), seed=3, max_rows=max_rows)
    assert keep is not None
    assert keep.size == max_rows
    assert np.all(np.diff(keep) > 0)
    assert off_policy_sample(len(rows), seed=3, max_rows=len(rows)) is None
    itself = off_policy_summary(spec, rows, state, seed=3, max_rows=max_rows)
    given = off_policy_summary(spec, [rows[i] for i in keep], state, seed=3, sampled=True)
    assert itself is not None
    assert itself.sampled
    assert given == itself
