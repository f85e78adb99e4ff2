"""CI-sized slice of the validation suite (`python -m attackprev.validation` runs the full sizes).

The tests call the suite's own functions with smaller sizes: 60 exact SBC fits for two
sources, a negative control that the same check must reject, and 10 NUTS fits against the
exact engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from attackprev.inference.mcmc import SamplerSettings
from attackprev.model.priors import PRIORS
from attackprev.validation.compare import compare_engines
from attackprev.validation.coverage import central_coverage
from attackprev.validation.mcmc import Refitter, data_swap_is_exact
from attackprev.validation.sbc import EXACT_PARAMETERS, exact_sbc, rank_pit, thin, uniformity
from attackprev.validation.simulate import design_trials, draw_prior, simulate

PRIOR = PRIORS["halfnormal1"]
SEED = 20180406


@pytest.fixture(scope="module")
def sim2():
    """60 prior-predictive data sets with T1102's design (n = 227, 951)."""
    return simulate(PRIOR, design_trials(2, SEED), 60, SEED)


# -- the statistics themselves -----------------------------------------------------------------
def test_uniformity_tests_accept_uniform_and_reject_humped_pits():
    rng = np.random.default_rng(1)
    assert uniformity(rng.uniform(size=200)).chi2_p > 0.01
    humped = uniformity(rng.beta(2.0, 2.0, size=200))  # an over-dispersed posterior's PITs
    assert humped.chi2_p < 0.001 and humped.ks_p < 0.001


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
@pytest.mark.slow
def test_exact_engine_is_calibrated_on_60_data_sets(sim2):
    # KS on the continuous PITs: with 60 values, 20 χ² bins would expect 3 counts each
    result = exact_sbc(sim2, PRIOR)
    for name in EXACT_PARAMETERS:
        assert uniformity(result.pit[name]).ks_p > 0.001, name
    cov = central_coverage(result.mu_cdf, 0.9)
    assert abs(cov.z) <= 4.0, cov


@pytest.mark.slow
def test_sbc_rejects_an_overconfident_posterior(sim2):
    # fitting 16× the counts (same truths) makes θ_1's posterior ~4× too narrow: the check must notice
    inflated = dataclasses.replace(sim2, successes=16 * sim2.successes, trials=16 * sim2.trials)
    result = exact_sbc(inflated, PRIOR)
    assert uniformity(result.pit["theta_1"]).ks_p < 0.001


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
