"""The exact grid engine against independent quadrature and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from scipy.special import expit

from attackprev.inference.exact import fit_exact
from attackprev.model.likelihood import log_marginal
from attackprev.model.priors import PRIORS, kappa_bounds
from tests.grid_reference import grid_mu, grid_summaries

T1102 = ([9, 47], [227, 951])


def _quad_moments(prior, y, n, f):
    """E[f(μ, κ) | y] by adaptive 2-D quadrature over (logit μ, log κ)."""
    y, n = np.asarray(y, float), np.asarray(n, float)

    def dens(v, u):
        mu, kappa = expit(u), np.exp(v)
        lp = prior.logp(mu, kappa) + np.log(mu * (1 - mu)) + v + log_marginal(y, n, 1.0, mu, kappa).sum()
        return np.exp(lp + 60.0)

    opts = {"limit": 200, "epsabs": 0, "epsrel": 1e-8}
    ranges = [tuple(np.log(kappa_bounds(prior))), (-12, 4)]
    z, _ = scipy.integrate.nquad(dens, ranges, opts=[opts, opts])
    m, _ = scipy.integrate.nquad(lambda v, u: f(expit(u), np.exp(v)) * dens(v, u), ranges, opts=[opts, opts])
    return m / z


@pytest.mark.slow
@pytest.mark.parametrize("name", ["halfnormal1", "pareto"])
def test_mean_of_mu_matches_adaptive_quadrature(name):
    prior = PRIORS[name]
    ex = fit_exact(*T1102, prior)
    ref = _quad_moments(prior, *T1102, lambda mu, kappa: mu)
    assert ex.mu.mean == pytest.approx(ref, rel=2e-4)


def test_grid_refinement_moves_figures_less_than_1e3():
    for name in ("halfnormal1", "bda3"):
        acc = fit_exact(*T1102, PRIORS[name]).accuracy()
        assert acc["max_abs_change"] < 1e-3, (name, acc)


def test_theta_means_are_exact_mixture_means():
    ex = fit_exact(*T1102, PRIORS["halfnormal1"], sources=["m", "s"])
    # E[θ_s] = E[(α + y)/(κ + n)] over the grid, recomputed independently
    mu = expit(ex.logit_mu)[:, None]
    kappa = np.exp(ex.log_kappa)[None, :]
    for i, s in enumerate(("m", "s")):
        y, n = T1102[0][i], T1102[1][i]
        expected = np.sum(ex.mass * (mu * kappa + y) / (kappa + n))
        assert ex.theta[s].mean == pytest.approx(expected, rel=1e-12)
    assert ex.theta_new.mean == pytest.approx(ex.mu.mean, rel=1e-9)


def test_theta_quantiles_follow_the_beta_when_kappa_is_pinned():
    # with a single huge source the posterior of θ is almost Beta(y+..., n-y+...) and HDI near the Jeffreys one
    ex = fit_exact([500], [1000], PRIORS["halfnormal1"], sources=["a"])
    lo, hi = ex.theta["a"].hdi_94
    ref = scipy.stats.beta(501, 501).interval(0.94)
    assert lo == pytest.approx(ref[0], abs=2e-3) and hi == pytest.approx(ref[1], abs=2e-3)


def test_weight_zero_equals_dropping_the_source():
    prior = PRIORS["halfnormal1"]
    both = fit_exact(*T1102, prior, weights=[0.0, 1.0])
    alone = fit_exact([47], [951], prior)
    assert both.mu.mean == pytest.approx(alone.mu.mean, rel=1e-6)
    assert both.mu.hdi_94 == pytest.approx(alone.mu.hdi_94, abs=1e-4)


def test_comparison_is_consistent():
    ex = fit_exact(*T1102, PRIORS["halfnormal1"])
    c = ex.compare(0.0445)
    reference = grid_mu(*T1102, PRIORS["halfnormal1"])  # brute-force quadrature on a fixed fine grid
    assert c["prob_greater"] == pytest.approx(reference.prob_above(0.0445), abs=2e-3)
    assert c["percentile"] == pytest.approx(100 * (1 - reference.prob_above(0.0445)), abs=0.2)
    assert 0.0 < c["percentile"] < 100.0
    assert c["inside_hdi_94"] == (ex.mu.hdi_94[0] <= 0.0445 <= ex.mu.hdi_94[1])
    assert ex.cdf_mu(ex.mu.median) == pytest.approx(0.5, abs=1e-3)


def test_reference_figures_for_t1102():
    """Figures the shared reference measured with an independent grid (BDA3 prior, flat log κ)."""
    bda3 = fit_exact(*T1102, PRIORS["bda3"])
    assert bda3.mu.mean == pytest.approx(0.18, abs=0.01)
    log_flat = fit_exact(*T1102, PRIORS["loguniform"])
    assert log_flat.mu.mean == pytest.approx(0.06, abs=0.005)


def test_hdi_bounds_converge_with_the_grid():
    """HDI bounds move by far less than 0.002 from 256 to 1024 cells (no O(h) cell-edge error)."""
    prior = PRIORS["halfnormal1"]
    rng = np.random.default_rng(5)
    n = np.array([227, 951])
    for _ in range(6):
        mu, kappa = prior.sample(rng, 1)
        y = rng.binomial(n, rng.beta(mu * kappa, (1 - mu) * kappa, 2))
        coarse, fine = fit_exact(y, n, prior), fit_exact(y, n, prior, resolution=1024)
        assert coarse.mu.hdi_94 == pytest.approx(fine.mu.hdi_94, abs=5e-4)
        assert coarse.theta_new.hdi_94 == pytest.approx(fine.theta_new.hdi_94, abs=5e-4)


# -- every figure of the exact engine against a finer grid (tests/grid_reference.py) ------------------
@pytest.mark.parametrize(
    ("name", "y", "n", "w"),
    [("halfnormal1", [9, 47], [227, 951], [1.0, 1.0]), ("pareto", [3, 40, 12], [50, 400, 90], [1.0, 0.5, 1.0])],
)
def test_every_summary_matches_a_finer_independent_grid(name, y, n, w):
    prior = PRIORS[name]
    ex = fit_exact(y, n, prior, sources=[f"s{i}" for i in range(len(y))], weights=np.array(w))
    ref = grid_summaries(prior, y, n, w)
    for key, got in (("mu", ex.mu), ("kappa", ex.kappa)):
        mean, sd, median, (lo, hi) = ref[key]
        assert got.mean == pytest.approx(mean, rel=3e-3 if key == "mu" else 1e-2), key  # κ: a heavy tail
        assert got.sd == pytest.approx(sd, rel=1e-2), key
        assert got.median == pytest.approx(median, rel=1e-2), key
        assert got.hdi_94[0] == pytest.approx(lo, rel=2e-2), key
        assert got.hdi_94[1] == pytest.approx(hi, rel=2e-2), key
    for i in range(len(y)):
        m, sd = ref[f"theta_{i}"]
        assert ex.theta[f"s{i}"].mean == pytest.approx(m, rel=3e-3) and ex.theta[f"s{i}"].sd == pytest.approx(
            sd, rel=1e-2
        )
        assert ex.theta[f"s{i}"].hdi_94[0] < m < ex.theta[f"s{i}"].hdi_94[1]
    m, sd = ref["theta_new"]
    assert ex.theta_new.mean == pytest.approx(m, rel=3e-3) and ex.theta_new.sd == pytest.approx(sd, rel=1e-2)
    # P(μ ≤ x) at the reference's median and HDI bounds
    mean, sd, median, (lo, hi) = ref["mu"]
    assert ex.cdf_mu(median) == pytest.approx(0.5, abs=5e-3)
    assert ex.cdf_mu(hi) - ex.cdf_mu(lo) == pytest.approx(0.94, abs=5e-3)
    assert ex.cdf_mu(0.0) == 0.0 and ex.cdf_mu(1.0) == pytest.approx(1.0)
