"""CI-sized slice of the validation suite (`python -m attackprev.validation` runs the full sizes).

The tests call the suite's own functions with smaller sizes: 300 exact SBC fits for two
sources, judged by :func:`calibration_verdict`, two negative controls that the same rule must
reject (the engine fed a quarter of the data, and twice the data), and 10 NUTS fits against
the exact engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats

from attackprev.inference.mcmc import SamplerSettings
from attackprev.model.priors import PRIORS
from attackprev.validation.compare import compare_engines
from attackprev.validation.coverage import central_coverage
from attackprev.validation.mcmc import Refitter, data_swap_is_exact
from attackprev.validation.sbc import (
    VERDICT_ALPHA,
    calibration_verdict,
    exact_sbc,
    rank_pit,
    thin,
    uniformity,
)
from attackprev.validation.simulate import design_trials, draw_prior, simulate

PRIOR = PRIORS["halfnormal1"]
SEED = 20180406


#: Data sets of the exact engine's SBC slice; the sizing is explained at its tests.
EXACT_REPLICATES = 300


@pytest.fixture(scope="module")
def sim2():
    """300 prior-predictive data sets with T1102's design (n = 227, 951); the first 10 feed NUTS."""
    return simulate(PRIOR, design_trials(2, SEED), EXACT_REPLICATES, SEED)


# -- the statistics themselves -----------------------------------------------------------------
def test_uniformity_tests_accept_uniform_and_reject_humped_pits():
    rng = np.random.default_rng(1)
    assert uniformity(rng.uniform(size=200)).chi2_p > 0.01
    humped = uniformity(rng.beta(2.0, 2.0, size=200))  # an over-dispersed posterior's PITs
    assert humped.chi2_p < 0.001 and humped.ks_p < 0.001


def test_calibration_verdict_passes_calibrated_pits_and_fails_posteriors_twice_too_wide_or_narrow():
    # PITs of Normal posteriors whose truth is a draw from them (Φ(z)), and of the same posteriors
    # widened (Φ(z/2)) or narrowed (Φ(2z)) by 2 about their mean, for one of four parameters
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4, EXACT_REPLICATES))
    names = ("a", "b", "c", "d")
    calibrated = {p: scipy.stats.norm.cdf(z[i]) for i, p in enumerate(names)}
    assert calibration_verdict(calibrated).passed
    for factor, caught in ((2.0, "c 50 %"), (0.5, "c 95 %")):
        off = dict(calibrated, c=scipy.stats.norm.cdf(z[2] / factor))
        verdict = calibration_verdict(off)
        assert caught in verdict.failures and all(f.startswith("c ") for f in verdict.failures), verdict
    # false alarms: at most VERDICT_ALPHA of calibrated runs fail (0.1 of 100 expected at most)
    runs = [calibration_verdict({p: rng.uniform(size=EXACT_REPLICATES) for p in names}) for _ in range(100)]
    assert sum(not v.passed for v in runs) <= 1


def test_central_coverage_counts_pits_inside_the_tails():
    cov = central_coverage(np.array([0.01, 0.05, 0.5, 0.95, 0.99]), 0.9)
    assert (cov.hits, cov.replicates) == (3, 5)
    assert cov.se == pytest.approx(np.sqrt(0.09 / 5))


def test_thinning_and_randomised_ranks():
    draws = np.arange(2 * 1000).reshape(2, 1000)
    kept = thin(draws, 50)
    assert kept.shape == (2, 50) and kept[0, 0] == 19 and kept[1, -1] == 1999
    u = rank_pit(np.array([0, 100]), 100, np.random.default_rng(0))
    assert 0 <= u[0] < 1 / 101 and 100 / 101 <= u[1] < 1


def test_prior_draws_respect_the_model_support():
    mu, kappa = draw_prior(PRIOR, np.random.default_rng(0), 20000)
    assert kappa.min() >= 1e-3 and kappa.max() <= 1e7 and 0 < mu.min() and mu.max() < 1


def test_simulation_is_reproducible():
    a = simulate(PRIOR, design_trials(20, SEED), 5, SEED)
    b = simulate(PRIOR, design_trials(20, SEED), 5, SEED)
    assert np.array_equal(a.successes, b.successes) and np.array_equal(a.mu, b.mu)


# -- SBC slice of the exact engine -----------------------------------------------------------
# One rule, `calibration_verdict`, for the engine and for its negative controls: per parameter (μ, log κ,
# θ_1, θ_new) a KS test and exact binomial tests of central 50 / 80 / 95 % coverage, 16 tests, each
# failing at p ≤ 0.001 / 16. A calibrated engine fails with probability ≤ 0.001 (Bonferroni).
#
# Sizing. With two sources μ, κ and θ_new hardly respond to the amount of data (their posteriors are set
# by the spread between two sources and the prior); θ_1's is ~√(n_1)-limited and carries the power. Over
# 2000 data sets of this design θ_1's coverage at 50 / 80 / 95 % was 0.502 / 0.805 / 0.944 for the
# engine (smallest p of the 16 tests 0.17 at R = 2000: no grid error in sight), 0.711 / 0.952 / 0.992
# fed a quarter of the data (a posterior ~2× too wide) and 0.377 / 0.647 / 0.848 fed twice the data
# (~√2× too narrow). The exact binomial test at threshold 6.25e-5 catches a 95 % coverage of 0.848 with
# probability 0.88 at R = 200, 0.96 at 250 and 0.986 at 300, and a 50 % coverage of 0.711 with
# probability 0.98, 0.998 and > 0.999. Hence R = 300: each negative control fails with probability
# ≥ 0.98 and a calibrated engine passes with probability ≥ 0.999. Six disjoint blocks of 300 of the
# 2000 data sets gave 6 passes for the engine and 6 failures for each control; the old slice (60 data
# sets, KS p > 0.001 and |z| ≤ 4 at 90 % for μ) passed both controls. Each fit takes 35–50 ms, most of
# it the θ mixture CDFs: 11–15 s per SBC of 300 on an idle core.
def _exact_verdict(sim, scale: float = 1.0):
    """The engine fitted to ``scale`` × (y, n) of every data set (fractional counts), judged by the rule."""
    scaled = dataclasses.replace(sim, successes=scale * sim.successes, trials=scale * sim.trials)
    return calibration_verdict(exact_sbc(scaled, PRIOR).pit)


@pytest.mark.slow
def test_exact_engine_is_calibrated_on_300_data_sets(sim2):
    # measured: smallest p 0.016 of 16 (θ_new 95 %); θ_1 coverage 0.497 / 0.787 / 0.927
    verdict = _exact_verdict(sim2)
    assert verdict.replicates == EXACT_REPLICATES and verdict.threshold == VERDICT_ALPHA / 16
    assert verdict.passed, verdict


@pytest.mark.slow
def test_calibration_rule_rejects_the_engine_fed_a_quarter_of_the_data(sim2):
    # θ_1's posterior ~2× too wide; measured: θ_1 coverage 0.687 / 0.940 / 1.000, smallest p 1.3e-11
    verdict = _exact_verdict(sim2, 0.25)
    assert not verdict.passed, verdict
    assert {"theta_1 50 %", "theta_1 80 %"} <= set(verdict.failures), verdict


@pytest.mark.slow
def test_calibration_rule_rejects_the_engine_fed_twice_the_data(sim2):
    # θ_1's posterior ~√2× too narrow; measured: θ_1 coverage 0.390 / 0.620 / 0.827, smallest p 6.4e-15
    verdict = _exact_verdict(sim2, 2.0)
    assert not verdict.passed, verdict
    assert {"theta_1 80 %", "theta_1 95 %"} <= set(verdict.failures), verdict


# -- NUTS against the exact engine ------------------------------------------------------------
# One test, so the model is compiled once whichever worker runs it.
@pytest.mark.slow
def test_nuts_refits_reproduce_fresh_compiles_and_agree_with_exact_on_10_data_sets(sim2):
    refitter = Refitter(PRIOR, sim2.trials)
    assert data_swap_is_exact(refitter, sim2.successes[3], SamplerSettings(draws=100, tune=100), seed=5)

    settings = SamplerSettings(draws=1000, tune=1000, chains=4)
    rows = [
        compare_engines(f"r{r}", sim2.successes[r], sim2.trials, PRIOR, refitter, settings, seed=100 + r)
        for r in range(10)
    ]
    assert sum(row.divergences for row in rows) == 0
    for row in rows:
        assert abs(row.mean_z) <= 4.0 and abs(row.sd_z) <= 4.0, (row.name, row.mean_z, row.sd_z)
        assert row.rhat < 1.05  # loose: 1000 draws per chain, not the production 4000
