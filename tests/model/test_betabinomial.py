"""Log-densities: the likelihood against scipy, the priors against scipy, PyMC against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from attackprev.model.likelihood import log_binom_coef, log_marginal
from attackprev.model.priors import PRIORS, HalfNormalLogitSpread, kappa_bounds, logit_spread

POINTS = [(0.045, 30.0), (0.3, 2.5), (0.9, 0.4), (0.01, 5000.0)]
DATA = [(9, 227), (47, 951), (0, 12), (12, 12)]


@pytest.mark.parametrize(("mu", "kappa"), POINTS)
@pytest.mark.parametrize(("y", "n"), DATA)
def test_marginal_is_scipy_betabinom(mu, kappa, y, n):
    ours = log_marginal(y, n, 1.0, mu, kappa) + log_binom_coef(n, y)
    ref = scipy.stats.betabinom(n, mu * kappa, (1 - mu) * kappa).logpmf(y)
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-10)


def test_weight_zero_drops_the_source_and_half_weight_is_fractional_counts():
    assert log_marginal(9, 227, 0.0, 0.05, 20.0) == pytest.approx(0.0, abs=1e-12)
    mu, kappa = 0.05, 20.0
    a, b = mu * kappa, (1 - mu) * kappa
    # ∫ Beta(θ; a, b) θ^(w y) (1-θ)^(w (n-y)) dθ
    w, y, n = 0.5, 9, 227
    integral, _ = scipy.integrate.quad(
        lambda t: scipy.stats.beta(a, b).pdf(t) * t ** (w * y) * (1 - t) ** (w * (n - y)), 0, 1, points=[0.04]
    )
    assert log_marginal(y, n, w, mu, kappa) == pytest.approx(np.log(integral), rel=1e-6)


def test_pareto_prior_is_scipy_pareto():
    p = PRIORS["pareto"]
    for mu, kappa in POINTS:
        if kappa >= 1:
            assert p.logp(mu, kappa) == pytest.approx(scipy.stats.pareto(1.5, scale=1.0).logpdf(kappa), rel=1e-12)


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_halfnormal_spread_is_a_halfnormal_on_tau(scale):
    prior = HalfNormalLogitSpread(name="t", label="", reference="", rationale="", scale=scale)
    mu = 0.2
    # density of κ integrates to 1 over (0, ∞) for fixed μ (the truncation is normalised)
    total, _ = scipy.integrate.quad(lambda k: np.exp(prior.logp_kappa(mu, k)), 0, np.inf, limit=200)
    assert total == pytest.approx(1.0, rel=1e-6)
    # and P(κ > k0) equals the half-normal mass below τ(k0), renormalised
    k0 = 10.0
    upper, _ = scipy.integrate.quad(lambda k: np.exp(prior.logp_kappa(mu, k)), k0, np.inf, limit=200)
    hn = scipy.stats.halfnorm(scale=scale)
    expected = hn.cdf(logit_spread(mu, k0)) / hn.cdf(logit_spread(mu, 0.0))
    assert upper == pytest.approx(expected, rel=1e-6)


def test_bda3_prior_is_kappa_to_minus_three_halves():
    p = PRIORS["bda3"]
    assert p.logp(0.3, 4.0) - p.logp(0.3, 1.0) == pytest.approx(-1.5 * np.log(4.0))
    assert not p.proper
    with pytest.raises(ValueError, match="improper"):
        p.sample(np.random.default_rng(0), 5)


@pytest.mark.parametrize("name", ["halfnormal1", "halfnormal05", "pareto", "loguniform"])
def test_prior_samples_follow_the_prior_density(name):
    prior = PRIORS[name]
    _mu, kappa = prior.sample(np.random.default_rng(1), 4000)
    lo, hi = kappa_bounds(prior)
    kappa = kappa[(kappa > lo) & (kappa < hi)]
    grid = np.exp(np.linspace(np.log(lo), np.log(hi), 4001))
    # marginal CDF of κ by integrating the joint density over μ on a grid
    mus = np.linspace(0.0005, 0.9995, 1000)
    dens = np.exp(prior.logp(mus[:, None], grid[None, :])).mean(axis=0)
    cdf = np.concatenate([[0], np.cumsum(np.diff(grid) * 0.5 * (dens[1:] + dens[:-1]))])
    cdf /= cdf[-1]
    result = scipy.stats.kstest(kappa, lambda x: np.interp(x, grid, cdf))
    assert result.pvalue > 0.001


def test_pymc_model_logp_matches_numpy_formula():
    from attackprev.model.betabinomial import build_model

    y, n, w = np.array([9.0, 47.0]), np.array([227.0, 951.0]), np.array([1.0, 0.5])
    for name in ("halfnormal1", "pareto", "bda3"):
        prior = PRIORS[name]
        model = build_model(y, n, ["a", "b"], prior, w)
        logp = model.compile_logp()
        lo, hi = np.log(kappa_bounds(prior))
        values = []
        for mu, kappa in [(0.05, 30.0), (0.2, 3.0)]:
            point = {
                "mu_logodds__": np.log(mu / (1 - mu)),
                "log_kappa_interval__": np.log((np.log(kappa) - lo) / (hi - np.log(kappa))),
            }
            values.append(logp(point))
            # numpy: log p(μ, κ) + likelihood + Jacobians (logit μ, log κ, interval transform) + Uniform density
            lk = np.log(kappa)
            expected = (
                prior.logp(mu, kappa)
                + np.log(kappa)
                + log_marginal(y, n, w, mu, kappa).sum()
                + np.log(mu * (1 - mu))
                + np.log((lk - lo) * (hi - lk) / (hi - lo))
                - np.log(hi - lo)
            )
            assert values[-1] == pytest.approx(expected, rel=1e-9), name


def test_conditional_rates_are_the_closed_form_betas():
    """Given (μ, κ), θ_s ~ Beta(μκ + w y, (1 − μ)κ + w (n − y)) and θ_new ~ Beta(μκ, (1 − μ)κ): scipy's Betas.

    At μ = 0.05, κ = 30 the parameters are written out by hand (μκ = 1.5, (1 − μ)κ = 28.5); swapped ones would put
    a rate of 9 of 227 near 0.96.
    """
    from attackprev.model.betabinomial import draw_rates

    draws = 20_000
    mu, kappa = np.full(draws, 0.05), np.full(draws, 30.0)
    y, n, w = np.array([9.0, 47.0]), np.array([227.0, 951.0]), np.array([1.0, 0.5])
    theta, theta_new = draw_rates(mu, kappa, y, n, w, np.random.default_rng(7))
    assert theta.shape == (draws, 2) and theta_new.shape == (draws,)
    expected = {
        "theta[0]": (theta[:, 0], scipy.stats.beta(1.5 + 9, 28.5 + 218)),
        "theta[1]": (theta[:, 1], scipy.stats.beta(1.5 + 23.5, 28.5 + 452)),  # weight 0.5: half the counts
        "theta_new": (theta_new, scipy.stats.beta(1.5, 28.5)),
    }
    for name, (sample, ref) in expected.items():
        assert scipy.stats.kstest(sample, ref.cdf).pvalue > 1e-3, name
        assert sample.mean() == pytest.approx(ref.mean(), abs=4 * ref.std() / np.sqrt(draws)), name


@pytest.mark.parametrize("weights", [None, [1, 0]])
def test_model_variables_dims_and_data(weights):
    """Exactly these named variables, dims and data; counts and weights stored as float64 even from integers.

    Omitted weights are one per source. The refit path (``pm.set_data``) and the reports read these names.
    """
    from attackprev.model.betabinomial import build_model

    model = build_model([9, 47], [227, 951], ["mtrends2020", "sok2019"], PRIORS["halfnormal1"], weights)
    assert set(model.named_vars) == {
        "successes",
        "trials",
        "weight",
        "mu",
        "log_kappa",
        "kappa",
        "kappa_prior",
        "likelihood",
    }
    assert dict(model.named_vars_to_dims) == {name: ("source",) for name in ("successes", "trials", "weight")}
    assert {k: tuple(v) for k, v in model.coords.items()} == {"source": ("mtrends2020", "sok2019")}
    assert [v.name for v in model.free_RVs] == ["mu", "log_kappa"]
    assert [v.name for v in model.deterministics] == ["kappa"]
    assert [v.name for v in model.potentials] == ["kappa_prior", "likelihood"]
    data = {v.name: v.get_value() for v in model.data_vars}
    assert list(data) == ["successes", "trials", "weight"]
    assert {k: v.dtype for k, v in data.items()} == dict.fromkeys(data, np.dtype("float64"))
    assert [v.tolist() for v in data.values()] == [
        [9.0, 47.0],
        [227.0, 951.0],
        [1.0, 1.0] if weights is None else [1.0, 0.0],
    ]
