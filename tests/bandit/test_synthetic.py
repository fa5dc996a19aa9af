"""The synthetic logistic bandit's drift shapes: the angle over time, written out by hand, and
the weights it gives (a rotation: norms kept, none at angle 0)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit import DecisionSpace
from bandit.synthetic import LogisticEnvironment

ARMS = DecisionSpace({"arm": ["a", "b", "c"]})
QUARTER = math.pi / 2


def world(drift: str) -> LogisticEnvironment:
    return LogisticEnvironment(ARMS, 4, seed=1, drift_angle=QUARTER, horizon=1_000, drift=drift)


def test_angles_by_hand() -> None:
    """horizon 1,000, a quarter turn: linear t / 1000 * pi/2; step 0 before 500, pi/2 from it;
    periodic pi/2 sin(2 pi * 2 * t / 1000): pi/2 at t = 125, 0 at 250, -pi/2 at 375."""
    linear, step, periodic = world("linear"), world("step"), world("periodic")
    assert linear.angle_at(250) == pytest.approx(QUARTER / 4, rel=1e-15)
    assert (step.angle_at(499.9), step.angle_at(500), step.angle_at(999)) == (0.0, QUARTER, QUARTER)
    assert periodic.angle_at(125) == pytest.approx(QUARTER, rel=1e-15)
    assert periodic.angle_at(250) == pytest.approx(0.0, abs=1e-15)
    assert periodic.angle_at(375) == pytest.approx(-QUARTER, rel=1e-15)


@pytest.mark.parametrize("drift", ["linear", "step", "periodic"])
def test_weights_rotate_by_the_angle(drift: str) -> None:
    env = world(drift)
    np.testing.assert_allclose(env.weights_at(0), env.weights, atol=1e-15)
    for t in (130.0, 620.0):
        moved = env.weights_at(t)
        np.testing.assert_allclose(
            np.linalg.norm(moved, axis=1), np.linalg.norm(env.weights, axis=1), rtol=1e-12
        )
        u, v = env._planes
        # Within each plane the (u, v) coordinates turn by the angle.
        angle = env.angle_at(t)
        before = env.weights @ u + 1j * (env.weights @ v)
        after = moved @ u + 1j * (moved @ v)
        np.testing.assert_allclose(after, before * np.exp(1j * angle), atol=1e-12)


def test_unknown_drift_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="drift must be one of"):
        world("sideways")
