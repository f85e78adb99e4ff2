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
