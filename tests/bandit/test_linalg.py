"""Reference tests for the Gaussian-belief updates in ``bandit.linalg``.

Every value is checked against arithmetic done by hand or against the textbook closed form
computed here, independently of the incremental formulas under test.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit.linalg import diffuse, gaussian_update, stable_cholesky


def fractions(*rows: tuple[Fraction | int, ...]) -> np.ndarray:
    return np.array([[float(Fraction(v)) for v in row] for row in rows])


def gaussian_terms(
    mean: np.ndarray, X: np.ndarray, y: np.ndarray, noise_variance: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Curvature ``1/s2`` and score ``(y - X mu)/s2`` of a Gaussian likelihood at ``mu``."""
    return np.full(X.shape[0], 1.0 / noise_variance), (y - X @ mean) / noise_variance


def fold(mean: np.ndarray, cov: np.ndarray, X: np.ndarray, y: np.ndarray, sizes: list[int]):
    """Fold rows into the belief in consecutive batches of the given sizes."""
    start = 0
    for size in sizes:
        rows, targets = X[start : start + size], y[start : start + size]
        mean, cov = gaussian_update(mean, cov, rows, *gaussian_terms(mean, rows, targets))
        start += size
    assert start == X.shape[0]
    return mean, cov


def ridge_posterior(
    prior_mean: np.ndarray,
    prior_cov: np.ndarray,
    X: np.ndarray,
    curvature: np.ndarray,
    score: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Textbook form, explicit inverses: ``P = Sigma^-1 + X^T H X``, ``mu' = mu + P^-1 X^T g``."""
    precision = np.linalg.inv(prior_cov) + X.T @ np.diag(curvature) @ X
    cov = np.linalg.inv(precision)
    return prior_mean + cov @ X.T @ score, cov


# -- hand-computed ridge problem ------------------------------------------------------------

X3 = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
Y3 = np.array([1.0, 2.0, 1.0])


def test_hand_computed_ridge_one_row() -> None:
    """Prior N(0, I) (ridge 1), unit noise, x = [1, 0], y = 1.

    X^T X + I = diag(2, 1), X^T y = [1, 0]: mu = [1/2, 0], Sigma = diag(1/2, 1).
    """
    mean, cov = fold(np.zeros(2), np.eye(2), X3[:1], Y3[:1], [1])
    np.testing.assert_allclose(mean, [0.5, 0.0], rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(cov, [[0.5, 0.0], [0.0, 1.0]], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("sizes", [[1, 1], [2]], ids=["sherman-morrison", "woodbury"])
def test_hand_computed_ridge_two_rows(sizes: list[int]) -> None:
    """Rows [1, 0] -> 1 and [1, 1] -> 2, prior N(0, I), unit noise.

    X^T X + I = [[3, 1], [1, 2]], det 5, inverse [[2, -1], [-1, 3]] / 5.
    X^T y = [1 + 2, 2] = [3, 2]: mu = [6 - 2, -3 + 6] / 5 = [4/5, 3/5].
    """
    mean, cov = fold(np.zeros(2), np.eye(2), X3[:2], Y3[:2], sizes)
    np.testing.assert_allclose(mean, [0.8, 0.6], rtol=1e-14)
    expected = fractions((Fraction(2, 5), Fraction(-1, 5)), (Fraction(-1, 5), Fraction(3, 5)))
    np.testing.assert_allclose(cov, expected, rtol=1e-14)


@pytest.mark.parametrize(
    "sizes",
    [[1, 1, 1], [2, 1], [1, 2], [3]],
    ids=["rank-one", "woodbury+rank-one", "rank-one+woodbury", "solve (n > p)"],
)
def test_hand_computed_ridge_three_rows(sizes: list[int]) -> None:
    """Add [0, 1] -> 1 to the two rows above.

    X^T X + I = [[3, 1], [1, 3]], det 8, inverse [[3, -1], [-1, 3]] / 8.
    X^T y = [3, 2 + 1] = [3, 3]: mu = [9 - 3, -3 + 9] / 8 = [3/4, 3/4].
    """
    mean, cov = fold(np.zeros(2), np.eye(2), X3, Y3, sizes)
    np.testing.assert_allclose(mean, [0.75, 0.75], rtol=1e-14)
    expected = fractions((Fraction(3, 8), Fraction(-1, 8)), (Fraction(-1, 8), Fraction(3, 8)))
    np.testing.assert_allclose(cov, expected, rtol=1e-14)


def test_hand_computed_noise_variance_and_ridge() -> None:
    """Ridge 1/2 (prior variance 2) and noise variance 2 on the two rows above.

    Precision I/2 + X^T X / 2 = ([[2, 1], [1, 1]] + I) / 2, so Sigma = 2 [[2, -1], [-1, 3]] / 5
    and mu = Sigma X^T y / 2 = [[2, -1], [-1, 3]] / 5 [3, 2] = [4/5, 3/5]: the same mean as
    ridge 1 with unit noise, because only ridge * noise_variance enters the mean.
    """
    mean, cov = np.zeros(2), 2.0 * np.eye(2)
    curvature, score = gaussian_terms(mean, X3[:2], Y3[:2], noise_variance=2.0)
    mean, cov = gaussian_update(mean, cov, X3[:2], curvature, score)
    np.testing.assert_allclose(mean, [0.8, 0.6], rtol=1e-14)
    np.testing.assert_allclose(cov, [[0.8, -0.4], [-0.4, 1.2]], rtol=1e-14)


# -- independent closed form -----------------------------------------------------------------


def random_spd(rng: np.random.Generator, p: int) -> np.ndarray:
    root = rng.standard_normal((p, p))
    return root @ root.T / p + 0.5 * np.eye(p)


@pytest.mark.parametrize("n", [1, 2, 5, 6, 17])
def test_equals_closed_form_ridge(n: int) -> None:
    """mu' = (X^T X + lambda I)^-1 X^T y from a zero-mean N(0, I / lambda) prior, p = 5."""
    rng = np.random.default_rng(n)
    p, ridge = 5, 0.7
    X = rng.standard_normal((n, p))
    y = rng.standard_normal(n)
    mean, cov = gaussian_update(np.zeros(p), np.eye(p) / ridge, X, np.ones(n), y)
    gram = X.T @ X + ridge * np.eye(p)
    np.testing.assert_allclose(mean, np.linalg.solve(gram, X.T @ y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov, np.linalg.inv(gram), rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    p=st.integers(1, 6),
    n=st.integers(1, 12),
    weighted=st.booleans(),
)
def test_equals_textbook_posterior_any_prior(seed: int, p: int, n: int, weighted: bool) -> None:
    """General prior mean and covariance, per-row curvature: the n = 1, n <= p, n > p paths."""
    rng = np.random.default_rng(seed)
    prior_mean = rng.standard_normal(p)
    prior_cov = random_spd(rng, p)
    X = rng.standard_normal((n, p))
    curvature = rng.uniform(0.05, 2.0, n) if weighted else np.full(n, 0.25)
    score = rng.standard_normal(n)

    mean, cov = gaussian_update(prior_mean, prior_cov, X, curvature, score)
    ref_mean, ref_cov = ridge_posterior(prior_mean, prior_cov, X, curvature, score)

    np.testing.assert_allclose(mean, ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-8, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 14))
def test_one_batch_equals_row_by_row(seed: int, n: int) -> None:
    """The Gaussian update is conjugate: any split of the rows gives the same posterior."""
    rng = np.random.default_rng(seed)
    p = 4
    X = rng.standard_normal((n, p))
    y = rng.standard_normal(n)
    prior = (rng.standard_normal(p), random_spd(rng, p))
    cut = int(rng.integers(1, n))
    whole = fold(*prior, X, y, [n])
    single = fold(*prior, X, y, [1] * n)
    split = fold(*prior, X, y, [cut, n - cut])
    for other in (single, split):
        np.testing.assert_allclose(other[0], whole[0], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(other[1], whole[1], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("n", [1, 3, 9], ids=["sherman-morrison", "woodbury", "solve"])
def test_result_is_exactly_symmetric(n: int) -> None:
    rng = np.random.default_rng(11)
    p = 4
    prior_cov = random_spd(rng, p)
    prior_cov = 0.5 * (prior_cov + prior_cov.T)
    X = rng.standard_normal((n, p))
    _, cov = gaussian_update(np.zeros(p), prior_cov, X, np.ones(n), rng.standard_normal(n))
    np.testing.assert_array_equal(cov, cov.T)


def test_zero_curvature_rows_change_nothing() -> None:
    """Rows with h = 0 and g = 0 carry no information (the Laplace update at p = 0 or 1)."""
    rng = np.random.default_rng(5)
    prior_mean, prior_cov = rng.standard_normal(3), random_spd(rng, 3)
    for n in (1, 2, 7):
        X = rng.standard_normal((n, 3))
        mean, cov = gaussian_update(prior_mean, prior_cov, X, np.zeros(n), np.zeros(n))
        np.testing.assert_allclose(mean, prior_mean, rtol=1e-14)
        np.testing.assert_allclose(cov, prior_cov, rtol=1e-12, atol=1e-14)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(8)
    mean, cov = rng.standard_normal(3), random_spd(rng, 3)
    X, h, g = rng.standard_normal((2, 3)), np.ones(2), np.ones(2)
    copies = [array.copy() for array in (mean, cov, X, h, g)]
    for n in (1, 2):
        gaussian_update(mean, cov, X[:n], h[:n], g[:n])
    for array, copy in zip((mean, cov, X, h, g), copies, strict=True):
        np.testing.assert_array_equal(array, copy)


# -- Kalman predict --------------------------------------------------------------------------


def test_diffuse_hand_computed() -> None:
    """Sigma = [[2, 1], [1, 2]], q = 1/2, gamma = 1/2, 2 steps.

    Sigma / gamma^2 = 4 Sigma = [[8, 4], [4, 8]]; plus 2 q I = I: [[9, 4], [4, 9]].
    """
    cov = np.array([[2.0, 1.0], [1.0, 2.0]])
    np.testing.assert_array_equal(diffuse(cov, 0.5, 0.5, 2), [[9.0, 4.0], [4.0, 9.0]])
    np.testing.assert_array_equal(diffuse(cov, 0.5, 1.0, 2), [[3.0, 1.0], [1.0, 3.0]])
    np.testing.assert_array_equal(diffuse(cov, 0.0, 0.5, 1), [[4.0, 2.0], [2.0, 4.0]])
    np.testing.assert_array_equal(cov, [[2.0, 1.0], [1.0, 2.0]])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    q=st.floats(0.0, 1.0),
    gamma=st.floats(0.5, 1.0),
    steps=st.integers(0, 50),
    stack=st.booleans(),
)
def test_diffuse_adds_steps_q_and_divides_by_gamma_power(
    seed: int, q: float, gamma: float, steps: int, stack: bool
) -> None:
    rng = np.random.default_rng(seed)
    cov = np.stack([random_spd(rng, 3) for _ in range(4)]) if stack else random_spd(rng, 3)
    before = cov.copy()
    out = diffuse(cov, q, gamma, steps)
    expected = cov / gamma**steps + steps * q * np.eye(3)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_array_equal(cov, before)
    assert out is not cov


def test_diffuse_identity_and_composition() -> None:
    """No noise and no forgetting is the identity; pure noise or pure forgetting compose."""
    rng = np.random.default_rng(2)
    cov = random_spd(rng, 3)
    np.testing.assert_array_equal(diffuse(cov, 0.0, 1.0, 7), cov)
    np.testing.assert_allclose(
        diffuse(diffuse(cov, 0.1, 1.0, 3), 0.1, 1.0, 4), diffuse(cov, 0.1, 1.0, 7), rtol=1e-14
    )
    np.testing.assert_allclose(
        diffuse(diffuse(cov, 0.0, 0.9, 3), 0.0, 0.9, 4), diffuse(cov, 0.0, 0.9, 7), rtol=1e-13
    )


# -- Cholesky --------------------------------------------------------------------------------


def test_stable_cholesky_of_positive_definite_stack() -> None:
    rng = np.random.default_rng(4)
    cov = np.stack([random_spd(rng, 5) for _ in range(3)])
    lower = stable_cholesky(cov)
    np.testing.assert_allclose(lower @ np.swapaxes(lower, 1, 2), cov, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(np.triu(lower[0], 1), 0.0)


@pytest.mark.parametrize("shift", [0.0, -1e-13], ids=["singular", "slightly-indefinite"])
def test_stable_cholesky_of_singular_matrix(shift: float) -> None:
    """A rank-one covariance (and one a rounding error below PSD) still yields a finite factor."""
    v = np.array([1.0, 2.0, -1.0])
    cov = np.outer(v, v) + shift * np.eye(3)
    lower = stable_cholesky(cov)
    assert np.isfinite(lower).all()
    np.testing.assert_allclose(lower @ lower.T, cov, atol=1e-6)
