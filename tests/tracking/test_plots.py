"""Figures of a run: the right artists, PNG output, and no pyplot state left behind."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bandit.lift import welch_lift
from experiments.analysis.lift import LiftRow
from experiments.analysis.plots import (
    allocation_over_time,
    cumulative_curves,
    cumulative_panels,
    lift_intervals,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def drawn_row(
    kpi: str,
    policy: str,
    relative_lift: float,
    ci_low: float,
    ci_high: float,
    av_low: float | None = None,
    av_high: float | None = None,
) -> LiftRow:
    """A LiftRow with the fields the figure draws; the others (not drawn) are placeholders."""
    return LiftRow(
        kpi=kpi,
        policy=policy,
        n_treatment=0,
        n_holdout=0,
        mean_treatment=None,
        mean_holdout=None,
        difference=None,
        diff_low=None,
        diff_high=None,
        relative_lift=relative_lift,
        ci_low=ci_low,
        ci_high=ci_high,
        av_low=av_low,
        av_high=av_high,
        p_value=None,
        stderr=None,
        df=None,
        diff_av_low=None,
        diff_av_high=None,
        confidence=0.95,
        mixing_variance=None,
    )


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def no_pyplot_figures_left() -> None:
    """Every test must leave pyplot's figure manager as empty as it found it."""
    assert plt.get_fignums() == []
    yield
    assert plt.get_fignums() == []


def test_cumulative_curves_draws_running_totals() -> None:
    series = {
        "uniform": np.array([1.0, 2.0, 3.0]),
        "linucb": np.array([0.5, 0.5, 4.0]),
        "engagement": np.array([0.0, 1.0, 1.0]),
    }
    figure = cumulative_curves(series, title="Cumulative reward", ylabel="reward")
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    assert len(axes.lines) == 3
    for line, (name, values) in zip(axes.lines, series.items(), strict=True):
        assert line.get_label() == name
        np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
        np.testing.assert_allclose(line.get_ydata(), np.cumsum(values))
    assert [t.get_text() for t in axes.get_legend().get_texts()] == list(series)
    assert axes.get_title() == "Cumulative reward"
    assert axes.get_ylabel() == "reward"
    assert axes.get_xlabel() == "day"
    assert png_bytes(figure).startswith(PNG_MAGIC)


def test_cumulative_curves_takes_day_labels() -> None:
    figure = cumulative_curves(
        {"a": np.ones(3)}, title="Regret", ylabel="regret", days=np.array([1, 2, 3])
    )
    np.testing.assert_array_equal(figure.axes[0].lines[0].get_xdata(), [1, 2, 3])


@pytest.mark.parametrize(
    ("series", "days", "message"),
    [
        ({}, None, "at least one policy"),
        ({"a": np.ones((2, 2))}, None, "must be 1-D"),
        ({"a": np.ones(3)}, np.arange(4), "has 3 days but 'days' has 4"),
    ],
)
def test_cumulative_curves_rejects_bad_series(series, days, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cumulative_curves(series, title="t", ylabel="y", days=days)


def test_allocation_over_time_stacks_one_area_per_label() -> None:
    days = np.arange(5)
    shares = np.array([[0.25, 0.25, 0.25, 0.25]] * 3 + [[0.7, 0.1, 0.1, 0.1]] * 2)
    labels = ["email", "sms", "push", "none"]
    figure = allocation_over_time(days, shares, labels, title="Channel allocation")
    (axes,) = figure.axes
    areas = [c for c in axes.collections if isinstance(c, PolyCollection)]
    assert len(areas) == 4
    assert [t.get_text() for t in axes.get_legend().get_texts()] == labels
    assert axes.get_ylim() == (0.0, 1.0)
    # The top of the stack is the row total, 1 every day.
    top = areas[-1].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(1.0)
    assert png_bytes(figure).startswith(PNG_MAGIC)


def test_allocation_over_time_folds_small_actions_into_other() -> None:
    rng = np.random.default_rng(0)
    raw = rng.random((10, 30))
    raw[:, 7] += 5.0  # one dominant action must survive the folding
    shares = raw / raw.sum(axis=1, keepdims=True)
    labels = [f"action {i}" for i in range(30)]
    figure = allocation_over_time(np.arange(10), shares, labels, title="t", max_areas=12)
    axes = figure.axes[0]
    assert len([c for c in axes.collections if isinstance(c, PolyCollection)]) == 12
    names = [t.get_text() for t in axes.get_legend().get_texts()]
    assert names[-1] == "other (19)"
    assert "action 7" in names


def test_allocation_over_time_checks_shapes() -> None:
    with pytest.raises(ValueError, match=r"shape \(n_days, n_labels\) = \(3, 2\)"):
        allocation_over_time(np.arange(3), np.ones((3, 3)) / 3, ["a", "b"], title="t")
    with pytest.raises(ValueError, match="non-negative"):
        allocation_over_time(np.arange(2), np.array([[1.5, -0.5]] * 2), ["a", "b"], title="t")


def test_lift_intervals_draws_points_intervals_bands_and_zero() -> None:
    rows = [
        drawn_row("revenue", "interaction", 0.02, -0.01, 0.05, -0.03, 0.07),
        drawn_row("revenue", "engagement", 0.08, 0.04, 0.12, 0.01, 0.15),
        drawn_row("retention", "interaction", -0.01, -0.03, 0.01),  # no always-valid interval
        drawn_row("retention", "engagement", 0.03, 0.01, 0.05, -0.01, 0.07),
        drawn_row("retention", "uniform", math.nan, math.nan, math.nan),  # holdout mean 0
    ]
    figure = lift_intervals(rows, title="Lift over holdout")
    revenue, retention = figure.axes
    assert revenue.get_title(loc="left") == "revenue"
    assert retention.get_title(loc="left") == "retention"
    assert [t.get_text() for t in revenue.get_yticklabels()] == ["interaction", "engagement"]
    assert [t.get_text() for t in retention.get_yticklabels()] == [
        "interaction",
        "engagement",
        "uniform",
    ]

    def bands(axes):
        return [p for p in axes.patches if isinstance(p, Rectangle)]

    def error_bars(axes):
        return [c for c in axes.containers if isinstance(c, ErrorbarContainer)]

    assert len(bands(revenue)) == 2
    assert len(bands(retention)) == 1  # only engagement has an always-valid interval
    assert len(error_bars(revenue)) == 2
    assert len(error_bars(retention)) == 2
    assert [t.get_text() for t in revenue.texts] == ["+2.0%", "+8.0%"]
    assert [t.get_text() for t in retention.texts] == ["-1.0%", "+3.0%", "n/a"]
    # The always-valid band spans exactly its interval.
    band = bands(revenue)[1]
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((0.01, 0.15))
    for axes in (revenue, retention):
        zero_lines = [line for line in axes.lines if list(line.get_xdata()) == [0.0, 0.0]]
        assert len(zero_lines) == 1
    assert figure.get_suptitle() == "Lift over holdout"
    assert png_bytes(figure).startswith(PNG_MAGIC)


def test_lift_intervals_needs_rows() -> None:
    with pytest.raises(ValueError, match="at least one LiftRow"):
        lift_intervals([], title="t")


def test_lift_row_from_lift_puts_intervals_on_the_relative_scale() -> None:
    rng = np.random.default_rng(1)
    lift = welch_lift(rng.normal(11.0, 2.0, 400), rng.normal(10.0, 2.0, 400))
    row = LiftRow.from_lift("revenue", "engagement", lift)
    assert row.relative_lift == lift.relative_lift
    assert (row.ci_low, row.ci_high) == lift.relative_ci
    expected = tuple(bound / lift.mean_holdout for bound in lift.always_valid_ci)
    assert (row.av_low, row.av_high) == pytest.approx(expected, rel=1e-12)
    assert row.av_low < row.ci_low < row.relative_lift < row.ci_high < row.av_high


def test_lift_row_from_lift_without_holdout_mean() -> None:
    lift = welch_lift(np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.0, 1.0]))
    row = LiftRow.from_lift("revenue", "engagement", lift)
    assert row.relative_lift is None  # undefined: NaN in the Lift, None (null in JSON) here
    assert row.av_low is None
    assert row.av_high is None


def test_lift_intervals_accepts_look_alike_rows() -> None:
    """Any row with the LiftRow attributes will do (e.g. the report's own row type)."""
    row = SimpleNamespace(
        kpi="revenue",
        policy="engagement",
        relative_lift=0.05,
        ci_low=0.01,
        ci_high=0.09,
        av_low=None,
        av_high=None,
        p_value=0.01,
    )
    figure = lift_intervals([row], title="t")
    assert [t.get_text() for t in figure.axes[0].texts] == ["+5.0%"]


def test_cumulative_panels_give_each_policy_its_own_axis() -> None:
    figure = cumulative_panels(
        {"clicks": np.array([0.1, 0.2, 0.3]), "revenue": np.array([10.0, 20.0, 30.0])},
        title="own regret",
        ylabels={"clicks": "regret (event:click)", "revenue": "regret (sum:revenue)"},
    )
    left, right = figure.axes
    np.testing.assert_allclose(left.lines[0].get_ydata(), [0.1, 0.3, 0.6])
    np.testing.assert_allclose(right.lines[0].get_ydata(), [10.0, 30.0, 60.0])
    assert (left.get_ylabel(), right.get_ylabel()) == (
        "regret (event:click)",
        "regret (sum:revenue)",
    )
    assert left.get_ylim()[1] < 1.0 < right.get_ylim()[1]  # not one shared scale
    with pytest.raises(ValueError, match="missing"):
        cumulative_panels({"a": np.ones(2)}, title="t", ylabels={})
