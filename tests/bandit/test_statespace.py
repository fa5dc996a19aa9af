"""Reference tests for the local-linear-trend Kalman filter in ``bandit.statespace``."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bandit._validation import BanditValueError
from bandit.statespace import FEATURE_NAMES, LocalLinearTrend, TrendPath, TrendState

F = np.array([[1.0, 1.0], [0.0, 1.0]])
Z = np.array([[1.0, 0.0]])


def naive_filter(model: LocalLinearTrend, Y: np.ndarray, mean0: np.ndarray, cov0: np.ndarray):
    """Textbook Kalman filter, one customer and one step at a time, short-form update.

    predict: a = F m, P- = F P F' + Q; update: S = Z P- Z' + H, K = P- Z' S^-1,
    m = a + K (y - Z a), P = (I - K Z) P-. Missing y: m = a, P = P-.
    """
    Q = np.diag([model.level_noise, model.trend_noise])
    H = np.array([[model.obs_noise]])
    n, n_steps = Y.shape
    means = np.empty((n, n_steps, 2))
    covs = np.empty((n, n_steps, 2, 2))
    for i in range(n):
        m = mean0[i].reshape(2, 1)
        P = cov0[i]
        for t in range(n_steps):
            a = F @ m
            P_pred = F @ P @ F.T + Q
            if np.isnan(Y[i, t]):
                m, P = a, P_pred
            else:
                S = Z @ P_pred @ Z.T + H
                K = P_pred @ Z.T @ np.linalg.inv(S)
                m = a + K @ (np.array([[Y[i, t]]]) - Z @ a)
                P = (np.eye(2) - K @ Z) @ P_pred
            means[i, t] = m.ravel()
            covs[i, t] = P
    return means, covs


def test_hand_computed_three_steps() -> None:
    """level_noise = trend_noise = obs_noise = 1, prior mean [0, 0], prior cov I; y = [2, NaN, 5].

    With P = [[a, c], [c, d]]: F P F' = [[a + 2c + d, c + d], [c + d, d]].

    Step 1, y = 2. a = [0, 0]; P- = [[2, 1], [1, 1]] + I = [[3, 1], [1, 2]].
      S = 3 + 1 = 4, K = [3/4, 1/4], v = 2 -> m = [3/2, 1/2].
      P = P- - K K' S = [[3 - 9/4, 1 - 3/4], [., 2 - 1/4]] = [[3/4, 1/4], [1/4, 7/4]].
    Step 2, y missing: predict only. m = [3/2 + 1/2, 1/2] = [2, 1/2].
      P = [[3/4 + 1/2 + 7/4, 1/4 + 7/4], [., 7/4]] + I = [[4, 2], [2, 11/4]].
    Step 3, y = 5. a = [5/2, 1/2];
      P- = [[4 + 4 + 11/4, 2 + 11/4], [., 11/4]] + I = [[47/4, 19/4], [19/4, 15/4]].
      S = 51/4, K = [47/51, 19/51], v = 5 - 5/2 = 5/2.
      m = [5/2 + (5/2)(47/51), 1/2 + (5/2)(19/51)] = [245/51, 73/51].
      P00 = 47/4 - (47/4)^2 / (51/4) = 47/51;  P01 = 19/4 - (47/4)(19/4) / (51/4) = 19/51;
      P11 = 15/4 - (19/4)^2 / (51/4) = (765 - 361) / 204 = 101/51.
    """
    model = LocalLinearTrend(
        level_noise=1.0,
        trend_noise=1.0,
        obs_noise=1.0,
        initial_level_var=1.0,
        initial_trend_var=1.0,
    )
    path = model.filter(np.array([[2.0, np.nan, 5.0]]))

    def f(*values: Fraction | int) -> np.ndarray:
        return np.array([[float(Fraction(v)) for v in values]])

    np.testing.assert_allclose(path.level, f(Fraction(3, 2), 2, Fraction(245, 51)), rtol=1e-14)
    np.testing.assert_allclose(
        path.trend, f(Fraction(1, 2), Fraction(1, 2), Fraction(73, 51)), rtol=1e-14
    )
    np.testing.assert_allclose(path.level_var, f(Fraction(3, 4), 4, Fraction(47, 51)), rtol=1e-14)
    np.testing.assert_allclose(
        path.trend_var, f(Fraction(7, 4), Fraction(11, 4), Fraction(101, 51)), rtol=1e-14
    )
    np.testing.assert_allclose(path.final.cov[0, 0, 1], 19 / 51, rtol=1e-14)
    np.testing.assert_allclose(path.final.cov[0, 1, 0], 19 / 51, rtol=1e-14)


def test_matches_naive_per_customer_recomputation() -> None:
    rng = np.random.default_rng(20240611)
    n, n_steps = 40, 30
    model = LocalLinearTrend(
        level_noise=0.3,
        trend_noise=0.02,
        obs_noise=2.0,
        initial_level_var=50.0,
        initial_trend_var=5.0,
    )
    slope = rng.normal(0.0, 1.0, size=(n, 1))
    Y = 10.0 + slope * np.arange(n_steps) + rng.normal(0.0, 1.5, size=(n, n_steps))
    Y[rng.random((n, n_steps)) < 0.3] = np.nan
    Y[0, :] = np.nan  # a customer never observed
    Y[1, :10] = np.nan  # a customer observed only late
    state = model.initial_state(n, first_level=rng.normal(10.0, 3.0, size=n))

    path = model.filter(Y, state)
    means, covs = naive_filter(model, Y, state.mean, state.cov)

    np.testing.assert_allclose(path.level, means[:, :, 0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(path.trend, means[:, :, 1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(path.level_var, covs[:, :, 0, 0], rtol=1e-10)
    np.testing.assert_allclose(path.trend_var, covs[:, :, 1, 1], rtol=1e-10)
    np.testing.assert_allclose(path.final.cov, covs[:, -1], rtol=1e-10, atol=1e-12)


def test_missing_day_carries_level_by_trend_and_grows_variance() -> None:
    model = LocalLinearTrend(level_noise=0.5, trend_noise=0.1, obs_noise=1.0)
    state = model.filter(np.array([[1.0, 2.0, 3.5, 4.0], [10.0, 8.0, 7.0, 5.0]])).final
    after = model.step(state, np.array([np.nan, np.nan]))

    np.testing.assert_array_equal(after.mean[:, 0], state.mean[:, 0] + state.mean[:, 1])
    np.testing.assert_array_equal(after.mean[:, 1], state.mean[:, 1])
    P = state.cov
    np.testing.assert_allclose(
        after.cov[:, 0, 0], P[:, 0, 0] + 2 * P[:, 0, 1] + P[:, 1, 1] + 0.5, rtol=1e-14
    )
    np.testing.assert_allclose(after.cov[:, 1, 1], P[:, 1, 1] + 0.1, rtol=1e-14)
    assert (after.cov[:, 0, 0] > P[:, 0, 0]).all()
    assert (after.cov[:, 1, 1] > P[:, 1, 1]).all()


def test_mixed_batch_missing_rows_do_not_affect_observed_rows() -> None:
    model = LocalLinearTrend()
    state = model.filter(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])).final
    mixed = model.step(state, np.array([4.0, np.nan]))
    alone = model.step(TrendState(state.mean[:1], state.cov[:1]), np.array([4.0]))
    np.testing.assert_array_equal(mixed.mean[0], alone.mean[0])
    np.testing.assert_array_equal(mixed.cov[0], alone.cov[0])


def test_filtered_trend_converges_to_true_slope() -> None:
    rng = np.random.default_rng(7)
    n, n_steps = 50, 200
    slope = rng.uniform(-2.0, 2.0, size=n)
    Y = 3.0 + slope[:, None] * np.arange(n_steps) + rng.normal(0.0, 1.0, size=(n, n_steps))
    Y[rng.random((n, n_steps)) < 0.2] = np.nan
    model = LocalLinearTrend(level_noise=1e-3, trend_noise=1e-6, obs_noise=1.0)

    path = model.filter(Y)

    # OLS slope sd for 160 points with unit noise is ~0.002; 0.05 leaves a wide margin.
    assert np.abs(path.trend[:, -1] - slope).max() < 0.05
    assert (np.sqrt(path.trend_var[:, -1]) < 0.01).all()
    assert (path.trend_var[:, -1] < path.trend_var[:, 5]).all()


def test_long_series_with_many_missing_stays_finite_and_psd() -> None:
    rng = np.random.default_rng(3)
    n, n_steps = 20, 3000
    Y = rng.normal(100.0, 5.0, size=(n, n_steps)).cumsum(axis=1) / 50.0
    Y[rng.random((n, n_steps)) < 0.9] = np.nan
    Y[:5, 1000:2500] = np.nan  # long silences
    model = LocalLinearTrend(level_noise=1e-4, trend_noise=1e-8, obs_noise=0.5)

    path = model.filter(Y)

    for array in (path.level, path.trend, path.level_var, path.trend_var):
        assert np.isfinite(array).all()
    assert (path.level_var > 0).all()
    assert (path.trend_var > 0).all()
    cov = path.final.cov
    np.testing.assert_array_equal(cov, cov.swapaxes(1, 2))
    assert (np.linalg.eigvalsh(cov) > 0).all()


def test_first_observation_dominates_diffuse_prior() -> None:
    model = LocalLinearTrend()
    path = model.filter(np.array([[250.0, 260.0]]))
    assert path.level[0, 0] == pytest.approx(250.0, abs=1e-3)
    assert path.trend[0, 1] == pytest.approx(10.0, rel=1e-3)


def test_features_columns_and_names() -> None:
    mean = np.array([[3.0, -0.5], [1.0, 2.0]])
    cov = np.array([[[4.0, 0.1], [0.1, 0.25]], [[9.0, 0.0], [0.0, 1.0]]])
    features = TrendState(mean=mean, cov=cov).features()
    assert FEATURE_NAMES == ("level", "trend", "level_sd", "trend_sd")
    np.testing.assert_array_equal(features, [[3.0, -0.5, 2.0, 0.5], [1.0, 2.0, 3.0, 1.0]])


def test_initial_state() -> None:
    model = LocalLinearTrend(initial_level_var=9.0, initial_trend_var=4.0)
    state = model.initial_state(3, first_level=[1.0, 2.0, 3.0])
    np.testing.assert_array_equal(state.mean, [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    np.testing.assert_array_equal(state.cov, np.tile(np.diag([9.0, 4.0]), (3, 1, 1)))
    assert model.initial_state(0).mean.shape == (0, 2)


def test_empty_series_returns_start_state() -> None:
    model = LocalLinearTrend()
    state = model.initial_state(2, first_level=[1.0, 2.0])
    path = model.filter(np.empty((2, 0)), state)
    assert isinstance(path, TrendPath)
    assert path.level.shape == (2, 0)
    np.testing.assert_array_equal(path.final.mean, state.mean)


def test_state_arrays_are_read_only_and_copies() -> None:
    mean = np.zeros((1, 2))
    state = TrendState(mean=mean, cov=np.eye(2)[None])
    mean[0, 0] = 5.0
    assert state.mean[0, 0] == 0.0
    with pytest.raises(ValueError, match="read-only"):
        state.mean[0, 0] = 1.0
    arrays = state.to_arrays()
    arrays["mean"][0, 0] = 7.0
    assert state.mean[0, 0] == 0.0


# -- properties ----------------------------------------------------------------------------

variances = st.floats(1e-4, 1e2)
observations = st.one_of(st.just(np.nan), st.floats(-1e3, 1e3))


@st.composite
def models(draw: st.DrawFn) -> LocalLinearTrend:
    return LocalLinearTrend(
        level_noise=draw(st.one_of(st.just(0.0), variances)),
        trend_noise=draw(st.one_of(st.just(0.0), variances)),
        obs_noise=draw(variances),
        initial_level_var=draw(st.floats(1e-2, 1e6)),
        initial_trend_var=draw(st.floats(1e-2, 1e6)),
    )


series = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(0, 25)),
    elements=observations,
)


@settings(max_examples=60, deadline=None)
@given(model=models(), Y=series)
def test_filter_equals_loop_of_step_and_covariances_stay_psd(
    model: LocalLinearTrend, Y: np.ndarray
) -> None:
    path = model.filter(Y)
    state = model.initial_state(Y.shape[0])
    for t in range(Y.shape[1]):
        state = model.step(state, Y[:, t])
        np.testing.assert_array_equal(path.level[:, t], state.mean[:, 0])
        np.testing.assert_array_equal(path.trend[:, t], state.mean[:, 1])
        np.testing.assert_array_equal(path.level_var[:, t], state.cov[:, 0, 0])
        np.testing.assert_array_equal(path.trend_var[:, t], state.cov[:, 1, 1])
        np.testing.assert_array_equal(state.cov, state.cov.swapaxes(1, 2))
        eigenvalues = np.linalg.eigvalsh(state.cov)
        scale = np.abs(state.cov).max(axis=(1, 2))
        assert (eigenvalues >= -1e-12 * scale[:, None]).all()
    np.testing.assert_array_equal(path.final.mean, state.mean)
    np.testing.assert_array_equal(path.final.cov, state.cov)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 5),
)
def test_to_arrays_from_arrays_round_trip_exactly(data: st.DataObject, n: int) -> None:
    finite = st.floats(-1e6, 1e6, allow_subnormal=True)
    mean = data.draw(hnp.arrays(np.float64, (n, 2), elements=finite))
    root = data.draw(hnp.arrays(np.float64, (n, 2, 2), elements=st.floats(-1e3, 1e3)))
    cov = root @ root.swapaxes(1, 2)
    cov = 0.5 * (cov + cov.swapaxes(1, 2))
    state = TrendState(mean=mean, cov=cov)

    again = TrendState.from_arrays(state.to_arrays())

    assert again.mean.dtype == again.cov.dtype == np.float64
    np.testing.assert_array_equal(again.mean, state.mean)
    np.testing.assert_array_equal(again.cov, state.cov)
    assert again.mean.tobytes() == state.mean.tobytes()
    assert again.cov.tobytes() == state.cov.tobytes()


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"level_noise": -1.0}, "level_noise"),
        ({"trend_noise": float("nan")}, "trend_noise"),
        ({"obs_noise": 0.0}, "obs_noise"),
        ({"obs_noise": float("inf")}, "obs_noise"),
        ({"initial_level_var": 0.0}, "initial_level_var"),
        ({"initial_trend_var": "big"}, "initial_trend_var"),
    ],
)
def test_bad_hyper_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(BanditValueError, match=f"'{field}' parameter of LocalLinearTrend") as info:
        LocalLinearTrend(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    "Y",
    [
        np.array([1.0, 2.0]),
        np.array([[1.0, np.inf]]),
        np.array([[1.0, -np.inf]]),
        [["a", "b"]],
        np.zeros((2, 2, 2)),
    ],
)
def test_bad_series_name_the_field_y_upper(Y: object) -> None:
    with pytest.raises(BanditValueError) as info:
        LocalLinearTrend().filter(Y)  # type: ignore[arg-type]
    assert info.value.field == "Y"


def test_filter_state_row_mismatch_names_y_upper() -> None:
    model = LocalLinearTrend()
    with pytest.raises(BanditValueError, match="3 rows") as info:
        model.filter(np.zeros((2, 4)), model.initial_state(3))
    assert info.value.field == "Y"


@pytest.mark.parametrize("y", [np.zeros(2), np.zeros((3, 1)), np.array([1.0, np.inf, 0.0]), 1.0])
def test_bad_step_observation_names_y(y: object) -> None:
    model = LocalLinearTrend()
    with pytest.raises(BanditValueError) as info:
        model.step(model.initial_state(3), y)  # type: ignore[arg-type]
    assert info.value.field == "y"


def test_step_refuses_non_state() -> None:
    model = LocalLinearTrend()
    with pytest.raises(BanditValueError) as info:
        model.step({"mean": np.zeros((1, 2))}, np.zeros(1))  # type: ignore[arg-type]
    assert info.value.field == "state"


@pytest.mark.parametrize(
    ("arrays", "field"),
    [
        ({"mean": np.zeros((2, 3)), "cov": np.zeros((2, 2, 2))}, "mean"),
        ({"mean": np.zeros((2, 2)), "cov": np.zeros((3, 2, 2))}, "cov"),
        ({"mean": np.full((1, 2), np.nan), "cov": np.zeros((1, 2, 2))}, "mean"),
        ({"mean": np.zeros((1, 2)), "cov": -np.eye(2)[None]}, "cov"),
        ({"mean": np.zeros((1, 2)), "cov": np.array([[[1.0, 0.5], [0.0, 1.0]]])}, "cov"),
        ({"mean": np.zeros((1, 2))}, "cov"),
    ],
)
def test_bad_state_arrays_name_the_field(arrays: dict[str, np.ndarray], field: str) -> None:
    with pytest.raises(BanditValueError) as info:
        TrendState.from_arrays(arrays)
    assert info.value.field == field


def test_bad_initial_state_arguments() -> None:
    model = LocalLinearTrend()
    with pytest.raises(BanditValueError) as info:
        model.initial_state(-1)
    assert info.value.field == "n_customers"
    with pytest.raises(BanditValueError) as info:
        model.initial_state(2, first_level=[1.0])
    assert info.value.field == "first_level"
    with pytest.raises(BanditValueError) as info:
        model.initial_state(1, first_level=[np.nan])
    assert info.value.field == "first_level"
