"""First-order variance shares against known answers: linear models, an input without effect, Monte Carlo noise."""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.analysis.sensitivity import (
    bin_count,
    decile_swing,
    first_order_share,
    noise_variance,
    rank_inputs,
)


def test_bins_grow_like_the_square_root_within_limits():
    assert bin_count(10) == 5 and bin_count(400) == 20 and bin_count(100_000) == 50


def test_linear_model_shares_are_the_squared_coefficients_share():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 3))
    y = 3.0 * x[:, 0] + 1.0 * x[:, 1]  # x2 has no effect
    shares = [first_order_share(x[:, j], y) for j in range(3)]
    assert shares[0] == pytest.approx(0.9, abs=0.02)
    assert shares[1] == pytest.approx(0.1, abs=0.02)
    assert shares[2] == pytest.approx(0.0, abs=0.01)


def test_a_nonlinear_effect_is_seen_where_a_correlation_would_miss_it():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=20_000)
    y = x**2  # correlation with x is 0; E[y | x] = y, so the share is 1
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.05
    assert first_order_share(x, y) == pytest.approx(1.0, abs=0.02)


def test_monte_carlo_noise_is_taken_out_of_the_total_variance():
    rng = np.random.default_rng(3)
    n, episodes = 4000, 50
    theta = rng.uniform(0.1, 0.5, size=(n, 2))
    p = theta[:, 0] * 0.8  # the answer depends on theta_0 alone: its true share is 1
    y = rng.binomial(episodes, p) / episodes
    naive = first_order_share(theta[:, 0], y)  # noise left in the denominator understates the share
    corrected = first_order_share(theta[:, 0], y, noise_variance(y, episodes))
    assert corrected == pytest.approx(1.0, abs=0.06)
    assert naive < corrected - 0.15
    assert first_order_share(theta[:, 1], y, noise_variance(y, episodes)) < 0.03
    expected_noise = np.mean(p * (1 - p)) / episodes
    assert noise_variance(y, episodes) == pytest.approx(expected_noise, rel=0.05)


def test_an_answer_that_does_not_vary_has_no_shares():
    x = np.linspace(0, 1, 100)
    assert first_order_share(x, np.full(100, 0.3)) == 0.0
    assert first_order_share(np.full(100, 0.3), x) == 0.0


def test_decile_swing_and_ranking():
    x = np.arange(100, dtype=float)
    low, high = decile_swing(x, x)
    assert (low, high) == (4.5, 94.5)
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(5000, 2))
    rows = rank_inputs(inputs, ["weak", "strong"], 0.2 * inputs[:, 0] + inputs[:, 1], episodes=0)
    assert [r["input"] for r in rows] == ["strong", "weak"]
    assert rows[0]["high_decile"] > rows[0]["low_decile"]


# ------------------------------------------------------------------------ closed forms
@pytest.mark.parametrize(
    ("draw", "a", "b", "scale2", "share1"),
    [
        ("normal", 1.0, 1.0, 1.0, 0.5),  # a² / (a² + b²)
        ("normal", 2.0, 1.0, 1.0, 0.8),
        ("normal", 1.0, 3.0, 1.0, 0.1),
        ("uniform", 1.0, 2.0, 1.0, 0.2),
        ("uniform", 3.0, -1.0, 1.0, 0.9),  # the sign of a coefficient does not matter
        ("uniform", 1.0, 1.0, 2.0, 0.2),  # Var(X2) four times Var(X1): 1 / (1 + 4)
    ],
)
def test_shares_of_a_linear_model_are_its_variance_fractions(draw, a, b, scale2, share1):
    """Y = a X1 + b X2 with independent X1, X2: S1 = a² Var X1 / (a² Var X1 + b² Var X2), S1 + S2 = 1."""
    rng = np.random.default_rng([7, int(10 * abs(a)), int(10 * abs(b)), int(b < 0)])
    size = 40_000
    if draw == "normal":
        x1, x2 = rng.normal(size=size), scale2 * rng.normal(size=size)
    else:
        x1, x2 = rng.uniform(-1, 1, size), scale2 * rng.uniform(-1, 1, size)
    y = a * x1 + b * x2
    s1, s2 = first_order_share(x1, y), first_order_share(x2, y)
    assert s1 == pytest.approx(share1, abs=0.015)
    assert s2 == pytest.approx(1.0 - share1, abs=0.015)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_an_input_plus_independent_noise_explains_its_own_variance(sigma):
    """Y = X + ε, X ~ N(0, 1), ε ~ N(0, σ²) independent: S = 1 / (1 + σ²)."""
    rng = np.random.default_rng(int(100 * sigma))
    x = rng.normal(size=40_000)
    y = x + sigma * rng.normal(size=x.size)
    assert first_order_share(x, y) == pytest.approx(1.0 / (1.0 + sigma**2), abs=0.015)


@pytest.mark.parametrize("bins", [None, 5, 50])
def test_an_answer_that_is_noise_alone_gives_every_input_no_share(bins):
    """Y independent of every X: S = 0; without the finite-bin correction the bins' means alone would give
    about (B − 1) / n, which the correction removes."""
    rng = np.random.default_rng(8)
    x = rng.uniform(size=(10_000, 4))
    y = rng.normal(size=10_000)
    shares = [first_order_share(x[:, j], y, bins=bins) for j in range(4)]
    assert max(shares) < 0.005


def test_a_pure_interaction_has_no_first_order_shares():
    """Y = X1 X2 with independent zero-mean inputs: E[Y | X1] = X1 E[X2] = 0, so S1 = S2 = 0 although Y depends on
    both."""
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, size=(40_000, 2))
    y = x[:, 0] * x[:, 1]
    assert first_order_share(x[:, 0], y) < 0.01 and first_order_share(x[:, 1], y) < 0.01
    assert first_order_share(x[:, 0], np.abs(x[:, 0]) + y) > 0.1  # the same product beside a main effect


def test_noise_variance_is_the_mean_unbiased_binomial_variance():
    """Var(Ŷ) of a binomial share of M episodes, estimated without bias: Ŷ (1 − Ŷ) / (M − 1), averaged."""
    assert noise_variance(np.array([0.5, 0.5]), 11) == pytest.approx(0.25 / 10)
    assert noise_variance(np.array([0.0, 1.0, 0.2]), 5) == pytest.approx((0 + 0 + 0.16) / 3 / 4)
    assert noise_variance(np.array([0.5]), 1) == 0.0  # one episode: no estimate of its noise
    assert noise_variance(np.array([0.5]), 0) == 0.0


def test_a_linear_answer_on_an_even_grid_has_a_closed_form_share():
    """n evenly spaced x in B bins of m: the bins' means explain 1 − (m² − 1) / (n² − 1) of Var(x); the finite-bin
    correction then subtracts B m (m² − 1) (B − 1) / ((n − B) n (n² − 1))."""
    n, bins = 100, 10
    m = n // bins
    x = np.linspace(0, 1, n)
    between = 1 - (m**2 - 1) / (n**2 - 1)
    correction = bins * m * (m**2 - 1) * (bins - 1) / ((n - bins) * n * (n**2 - 1))
    assert first_order_share(x, 0.01 * x) == pytest.approx(between - correction, rel=1e-9)  # 0.98911
    assert first_order_share(x, 5.0 - 3.0 * x) == pytest.approx(between - correction, rel=1e-9)


def test_noise_as_large_as_the_variance_gives_no_share():
    x = np.linspace(0, 1, 100)
    y = 0.01 * x
    assert first_order_share(x, y, noise=float(np.var(y))) == 0.0
    assert first_order_share(x, y, noise=2 * float(np.var(y))) == 0.0


@pytest.mark.parametrize(
    ("n", "bins"), [(0, 5), (1, 5), (30, 5), (42, 6), (56, 7), (2500, 50), (2601, 50), (10**6, 50)]
)
def test_bin_count_edges(n, bins):
    assert bin_count(n) == bins  # round(√n), at least 5 and at most 50


def test_decile_swing_of_few_draws_uses_one_draw_each_end():
    assert decile_swing(np.array([3.0, 1.0, 2.0]), np.array([30.0, 10.0, 20.0])) == (10.0, 30.0)
    x = np.arange(25, dtype=float)  # 25 // 10 = 2 draws per end
    assert decile_swing(x, 2 * x) == (1.0, 47.0)


def test_rank_inputs_breaks_ties_by_name_and_uses_the_noise():
    inputs = np.ones((100, 2))
    rows = rank_inputs(inputs, ["b", "a"], np.linspace(0, 1, 100), episodes=0)
    assert [r["input"] for r in rows] == ["a", "b"] and all(r["share"] == 0.0 for r in rows)
    rng = np.random.default_rng(10)
    n, episodes = 4000, 50
    theta = rng.uniform(0.1, 0.5, size=(n, 1))
    y = rng.binomial(episodes, 0.8 * theta[:, 0]) / episodes
    (row,) = rank_inputs(theta, ["t"], y, episodes)
    assert row["share"] == pytest.approx(first_order_share(theta[:, 0], y, noise_variance(y, episodes)), rel=1e-12)
    assert row["share"] == pytest.approx(1.0, abs=0.06)
