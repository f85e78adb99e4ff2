"""Summaries of draws and counts: the shortest interval and Jeffreys intervals, against independent computations."""

from __future__ import annotations

import numpy as np
import scipy.stats

from attackprev.inference.summaries import draw_summary, hdi, jeffreys_interval


def test_jeffreys_interval() -> None:
    y, n = np.array([0, 9, 20]), np.array([20, 227, 20])
    lower, upper = jeffreys_interval(y, n, 0.94)
    assert lower[0] == 0.0 and upper[2] == 1.0  # the conventional bounds at y = 0 and y = n
    assert lower[1] < 9 / 227 < upper[1]
    # Beta(9.5, 218.5): mean 0.0417, sd 0.0132; a 94 % interval spans roughly ±1.9 sd, skewed right.
    assert 0.015 < lower[1] < 0.025 and 0.060 < upper[1] < 0.075
    wider_lower, wider_upper = jeffreys_interval(y, n, 0.99)
    assert np.all(wider_lower <= lower) and np.all(wider_upper >= upper)
    # scalars give floats, equal to scipy's quantiles of Beta(y + 1/2, n - y + 1/2)
    lo, hi = jeffreys_interval(9, 227)
    assert isinstance(lo, float) and abs(lo - scipy.stats.beta(9.5, 218.5).ppf(0.03)) < 1e-12
    assert abs(hi - scipy.stats.beta(9.5, 218.5).ppf(0.97)) < 1e-12


def test_hdi_matches_the_shortest_interval_of_a_known_density() -> None:
    """For Beta(2, 30) draws the 94 % HDI approaches the exact shortest interval (equal density at its ends)."""
    dist = scipy.stats.beta(2, 30)
    draws = dist.rvs(size=200_000, random_state=np.random.default_rng(1))
    lo, hi = hdi(draws, 0.94)
    assert abs((dist.cdf(hi) - dist.cdf(lo)) - 0.94) < 0.002
    assert abs(dist.pdf(lo) - dist.pdf(hi)) < 0.05 * dist.pdf(hi)
    s = draw_summary(draws)
    assert s["hdi_94"] == [lo, hi] and abs(s["mean"] - dist.mean()) < 4 * dist.std() / np.sqrt(draws.size)
