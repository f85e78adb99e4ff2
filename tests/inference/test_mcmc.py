"""A small real MCMC fit of the single-technique model (not marked slow: `make test-fast` samples too)."""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.inference.diagnostics import diagnose
from attackprev.inference.exact import fit_exact
from attackprev.inference.mcmc import SamplerSettings, sample_technique
from attackprev.model.priors import PRIORS

PRIOR = PRIORS["halfnormal1"]
Y, N, SOURCES = np.array([9.0, 47.0]), np.array([227.0, 951.0]), ["mtrends2020", "sok2019"]


def fit(seed: int):
    settings = SamplerSettings(draws=500, tune=500, chains=2, seed=seed)
    return sample_technique(Y, N, SOURCES, PRIOR, settings)


@pytest.fixture(scope="module")
def tree():
    return fit(3)


def test_the_seed_decides_the_draws(tree):
    again, other = fit(3), fit(4)
    mu = tree["posterior"]["mu"].values
    assert np.array_equal(mu, again["posterior"]["mu"].values)
    assert not np.array_equal(mu, other["posterior"]["mu"].values)


def test_draws_have_named_dimensions_and_every_group(tree):
    post = tree["posterior"]
    assert post["theta"].dims == ("chain", "draw", "source") and list(post["source"].values) == SOURCES
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 500
    assert {"posterior", "sample_stats", "prior", "observed_data", "constant_data", "posterior_predictive"} <= set(
        tree.children
    )
    assert diagnose(tree).divergences == 0


def test_rates_agree_with_the_exact_engine(tree):
    """θ_s is drawn from its conditional Beta(μκ + y, (1 − μ)κ + n − y): its mean must match the exact one."""
    exact = fit_exact(Y, N, PRIOR, sources=SOURCES)
    post = tree["posterior"]
    for s in SOURCES:
        draws = post["theta"].sel(source=s).values.ravel()
        se = draws.std() / np.sqrt(draws.size / 4)  # generous: a quarter of the draws counted as effective
        assert abs(draws.mean() - exact.theta[s].mean) < 4 * se + 1e-4, s
    mu = post["mu"].values.ravel()
    assert abs(np.median(mu) - exact.mu.median) < 0.2 * exact.mu.median
