"""Pieces of the held-out checks of the synthesis, against exact answers."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from attackprev.evidence.counts import load_counts
from attackprev.validation.sources import HeldOut, _predictive_counts, coverage, forecast, held_out_sources


def test_predictive_count_is_a_binomial_mixture():
    theta = np.array([0.01, 0.02, 0.05, 0.0])  # a draw of exactly 0 must not break it
    below, at, log_p = _predictive_counts(theta, 3, 200)
    clipped = np.clip(theta, 1e-12, 1 - 1e-12)
    assert math.isclose(at, scipy.stats.binom.cdf(3, 200, clipped).mean())
    assert math.isclose(below, scipy.stats.binom.cdf(2, 200, clipped).mean())
    assert math.isclose(math.exp(log_p), scipy.stats.binom.pmf(3, 200, clipped).mean(), rel_tol=1e-9)


def test_randomised_pit_is_uniform_under_the_true_model():
    """Counts drawn from the predictive itself give PIT values whose central-interval coverage is nominal."""
    rng = np.random.default_rng(0)
    theta = rng.beta(2, 60, 400)
    rows = []
    for _ in range(3000):
        n = int(rng.integers(10, 300))
        k = int(rng.binomial(n, rng.choice(theta)))
        below, at, log_p = _predictive_counts(theta, k, n)
        rows.append(HeldOut("s", "T1102", k, n, below + rng.uniform() * (at - below), log_p, 0.0))
    for q, (inside, total, se) in coverage(rows).items():
        assert abs(inside / total - q) < 3 * se, (q, inside / total)


def test_only_sources_of_several_source_families_are_held_out():
    sources = held_out_sources(load_counts())
    assert sources == [f"cisa_{y}" for y in range(2020, 2025)] + [f"mtrends{y}" for y in range(2020, 2025)]


def test_forecast_baselines_score_as_binomials():
    table = load_counts()
    rows = [HeldOut("mtrends2024", "T1059.001", 10, 533, 0.5, -3.0, 0.02)]
    fc = forecast(table, rows, "mtrends2024", "mtrends2023")
    prev = next(c for c in table.counts if c.source_id == "mtrends2023" and c.technique_id == "T1059.001").rate
    assert fc["previous year"]["rows"] == 1
    assert math.isclose(fc["previous year"]["baseline"], scipy.stats.binom.logpmf(10, 533, prev))
    assert math.isclose(fc["previous year"]["difference"], -3.0 - scipy.stats.binom.logpmf(10, 533, prev))
