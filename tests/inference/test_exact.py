"""The exact grid engine against independent quadrature and closed forms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats
from scipy.special import expit, logit

from attackprev.inference.exact import ExactPosterior, fit_exact, monotone_inverse, shortest_interval
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


# -- hand-worked and closed-form checks of the pieces (mutation survivors) -----------------------------
def test_shortest_interval_of_a_normal_is_its_central_interval():
    # the 2001 lower levels are multiples of 0.06/2000, so the symmetric optimum 0.03 is one of them
    lo, hi = shortest_interval(scipy.stats.norm.ppf)
    assert (lo, hi) == pytest.approx(scipy.stats.norm.interval(0.94), abs=1e-9)


def test_monotone_inverse_on_hand_worked_cdfs():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    # linear, then a flat tail: the tail point is dropped and the quantile is 2q (PCHIP is exact on lines)
    q = monotone_inverse(np.array([0.0, 0.5, 1.0, 1.0]), x)
    assert q(np.array([0.0, 0.25, 0.5, 0.75, 1.0])) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0], abs=1e-12)
    # levels outside [0, 1] are clamped to the ends
    assert q(np.array([-0.5, 1.5])) == pytest.approx([0.0, 2.0], abs=1e-12)
    # a rise of exactly 1e-15 counts as flat: x = 1 is dropped, so q(1e-15) stays at the start
    q = monotone_inverse(np.array([0.0, 1e-15, 0.5, 1.0]), x)
    assert float(q(1e-15)) == pytest.approx(0.0, abs=1e-9)
    assert float(q(0.5)) == pytest.approx(2.0, abs=1e-12)
    # a CDF ending below 1: the missing third of the mass is put up to the last x, here along the same line
    q = monotone_inverse(np.array([0.0, 1 / 3, 2 / 3, 2 / 3]), x)
    assert q(np.array([0.5, 5 / 6, 1.0])) == pytest.approx([1.5, 2.5, 3.0], abs=1e-12)
    # a CDF starting above 0: the mass below the first point sits at it
    q = monotone_inverse(np.array([0.2, 0.6, 1.0]), x[:3])
    assert q(np.array([0.0, 0.1, 0.4, 0.8])) == pytest.approx([0.0, 0.0, 0.5, 1.5], abs=1e-12)


def test_cdf_of_mu_at_and_beyond_the_ends():
    ex = fit_exact([1, 30], [100, 100], PRIORS["halfnormal1"])
    # exact, not approximate: P(μ ≤ 1) = 1 and P(μ ≤ 0) = 0 (the marginal mass here sums to 1 − 1 ulp)
    assert ex.cdf_mu(1.0) == 1.0 and ex.cdf_mu(0.0) == 0.0
    assert ex.cdf_mu(1.5) == 1.0 and ex.cdf_mu(-0.5) == 0.0
    assert ex.compare(1.5)["prob_greater"] == 0.0


def test_kappa_hdi_reaches_the_prior_bound_it_piles_up_against():
    # over-dispersed sources: p(log κ) decreases from the Pareto minimum κ = 1, so the HDI starts there
    pareto = fit_exact([1, 30], [100, 100], PRIORS["pareto"])
    assert pareto.kappa.hdi_94[0] == pytest.approx(1.0, rel=1e-9)
    # identical proportions: p(log κ) increases up to the log-uniform prior's upper bound 1e5, where the HDI ends
    flat = fit_exact([10, 10, 10], [100, 100, 100], PRIORS["loguniform"])
    assert flat.kappa.hdi_94[1] == pytest.approx(1e5, rel=1e-9)
    reference = grid_summaries(PRIORS["loguniform"], [10, 10, 10], [100, 100, 100], [1.0, 1.0, 1.0])["kappa"]
    assert flat.kappa.median == pytest.approx(reference[2], rel=5e-3)


def _one_cell(mu: float, kappa: float, resolution: int = 32, at: int = 10, h: float = 0.05) -> ExactPosterior:
    """A posterior with all its mass in one grid cell, at (μ, κ): θ_new is then exactly Beta(μκ, (1 − μ)κ)."""
    mass = np.zeros((resolution, resolution))
    mass[at, at] = 1.0
    steps = h * (np.arange(resolution) - at)
    return ExactPosterior(
        prior=PRIORS["halfnormal1"],
        sources=(),
        successes=np.zeros(0),
        trials=np.zeros(0),
        weights=np.zeros(0),
        logit_mu=logit(mu) + steps,
        log_kappa=np.log(kappa) + steps,
        mass=mass,
        resolution=resolution,
        log_evidence=np.nan,
    )


def _beta_hdi(a: float, b: float, prob: float = 0.94) -> tuple[float, float]:
    """HDI of a unimodal Beta: the interval of mass ``prob`` whose ends have equal density."""
    d = scipy.stats.beta(a, b)
    p = scipy.optimize.brentq(lambda p: d.pdf(d.ppf(p + prob)) - d.pdf(d.ppf(p)), 1e-9, 1 - prob - 1e-9, xtol=1e-14)
    return float(d.ppf(p)), float(d.ppf(p + prob))


@pytest.mark.parametrize(
    ("a", "b", "hdi", "tol"),
    [
        (2.0, 30.0, None, 1e-4),  # unimodal: equal-density ends
        (200.0, 30000.0, None, 1e-4),  # narrow, near 0
        (1.0, 0.5, "upper", 1e-4),  # density rising to θ = 1: the HDI ends at 1
        (0.5, 1.0, "lower", 1e-4),  # density falling from θ = 0: the HDI starts at 0
        (0.0195, 1.0, "lower", 1e-4),  # median 2^(-1/0.0195) ≈ 4e-16, in the first cells of the logit grid
        (5.0, 1.0, "upper", 2e-7),  # smooth on the logit scale: tabulated to ~2e-8
    ],
)
def test_theta_of_a_one_cell_posterior_is_that_beta(a, b, hdi, tol):
    s = _one_cell(a / (a + b), a + b).theta_new
    d = scipy.stats.beta(a, b)
    assert s.mean == pytest.approx(d.mean(), rel=1e-12)
    assert s.sd == pytest.approx(d.std(), rel=1e-9)
    assert s.median == pytest.approx(d.median(), rel=tol, abs=0.0)
    if hdi is None:
        ref = _beta_hdi(a, b)
    else:
        ref = (0.0, float(d.ppf(0.94))) if hdi == "lower" else (float(d.ppf(0.06)), 1.0)
    # the bound at 0 or 1 exactly, the other within 2e-5 (the 2001 lower levels of shortest_interval are 3e-5 apart)
    assert s.hdi_94[0] == pytest.approx(ref[0], rel=0.0, abs=1e-300 if hdi == "lower" else min(tol, 2e-5))
    assert s.hdi_94[1] == pytest.approx(ref[1], rel=0.0, abs=1e-9 if hdi == "upper" else min(tol, 2e-5))


def test_compressed_mixture_keeps_every_cell_above_1e_12_of_the_heaviest():
    # 32 cells a side, 32 blocks: one component per cell, at the cell's own (μ, κ)
    ex = _one_cell(0.2, 5.0)
    mass = np.zeros((32, 32))
    heavy = 0.5
    mass[10, 10], mass[3, 20], mass[25, 7] = heavy, 0.3, 0.2 - 2e-12  # kept
    mass[5, 5] = 1e-12 * heavy  # exactly 1e-12 of the heaviest: dropped
    mass[30, 30] = 1.5e-12  # 3e-12 of the heaviest: kept
    ex = dataclasses.replace(ex, mass=mass)
    a, b, w = ex._compressed_mixture(None)
    rows, cols = np.array([3, 10, 25, 30]), np.array([20, 10, 7, 30])  # row-major order of the blocks
    mu, kappa = expit(ex.logit_mu[rows]), np.exp(ex.log_kappa[cols])
    kept = mass[rows, cols]
    assert a == pytest.approx(mu * kappa, rel=1e-12) and b == pytest.approx((1 - mu) * kappa, rel=1e-12)
    assert w == pytest.approx(kept / kept.sum(), rel=1e-14)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    # a source's data are added to each component
    ex = dataclasses.replace(ex, successes=np.array([3.0]), trials=np.array([10.0]), weights=np.array([0.5]))
    a_s, b_s, _ = ex._compressed_mixture(0)
    assert a_s == pytest.approx(mu * kappa + 1.5, rel=1e-12) and b_s == pytest.approx((1 - mu) * kappa + 3.5, rel=1e-12)


def test_compressed_mixture_merges_blocks_at_their_centre_of_mass():
    # 64 cells a side, 32 blocks: 2 × 2 cells per block, each at the mass-weighted mean of its logit μ and log κ
    ex = _one_cell(0.2, 5.0, resolution=64)
    mass = np.zeros((64, 64))
    mass[10, 10], mass[10, 11], mass[11, 11] = 0.5, 0.3, 0.2
    ex = dataclasses.replace(ex, mass=mass)
    a, b, w = ex._compressed_mixture(None)
    u = 0.8 * ex.logit_mu[10] + 0.2 * ex.logit_mu[11]
    v = 0.5 * ex.log_kappa[10] + 0.5 * ex.log_kappa[11]
    assert w == pytest.approx([1.0])
    assert a == pytest.approx([expit(u) * np.exp(v)], rel=1e-12)
    assert b == pytest.approx([(1 - expit(u)) * np.exp(v)], rel=1e-12)


def test_theta_quantiles_match_the_brute_force_beta_mixture():
    # at 32 cells a side every cell is its own component; the mixture's CDF and density summed over all the cells
    # with scipy.stats.beta must put 1/2 below the median, 0.94 in the HDI and equal density at its ends
    ex = fit_exact([3, 40, 12], [50, 400, 90], PRIORS["pareto"], resolution=32)
    mu, kappa = expit(ex.logit_mu)[:, None], np.exp(ex.log_kappa)[None, :]
    for i, s in enumerate(ex.sources):
        a = (mu * kappa + ex.successes[i]).ravel()
        b = ((1 - mu) * kappa + ex.trials[i] - ex.successes[i]).ravel()
        w = ex.mass.ravel()

        def cdf(t, a=a, b=b, w=w):
            return float(scipy.stats.beta.cdf(t, a, b) @ w)

        def pdf(t, a=a, b=b, w=w):
            return float(scipy.stats.beta.pdf(t, a, b) @ w)

        summary = ex.theta[s]
        lo, hi = summary.hdi_94
        assert cdf(summary.median) == pytest.approx(0.5, abs=5e-5), s
        assert cdf(hi) - cdf(lo) == pytest.approx(0.94, abs=2e-5), s
        assert pdf(lo) == pytest.approx(pdf(hi), rel=5e-3), s


def test_a_point_on_an_hdi_bound_is_inside_it():
    ex = fit_exact(*T1102, PRIORS["halfnormal1"])
    lo, hi = ex.mu.hdi_94
    assert ex.compare(lo)["inside_hdi_94"] and ex.compare(hi)["inside_hdi_94"]
    assert ex.compare(lo)["point_estimate"] == lo
    assert not ex.compare(hi * 1.01)["inside_hdi_94"]


def test_figures_and_accuracy_report_the_refit_on_a_grid_twice_as_fine():
    kwargs = {"sources": ["m", "s"], "weights": [0.5, 1.0]}
    ex = fit_exact(*T1102, PRIORS["halfnormal1"], resolution=64, **kwargs)
    figures = ex.figures()
    summaries = {"mu": ex.mu, "theta_new": ex.theta_new, "theta[m]": ex.theta["m"], "theta[s]": ex.theta["s"]}
    for name, s in summaries.items():
        got = [figures[f"{name}.{k}"] for k in ("mean", "sd", "median", "hdi_lo", "hdi_hi")]
        assert got == [s.mean, s.sd, s.median, *s.hdi_94], name
    assert len(figures) == 20
    # the same data, weights and names refitted with 128 cells a side, the changes recomputed here
    finer = fit_exact(*T1102, PRIORS["halfnormal1"], resolution=128, **kwargs).figures()
    moved = {k: abs(figures[k] - finer[k]) for k in figures}
    worst = max(moved.items(), key=lambda kv: kv[1])
    assert ex.accuracy() == {
        "resolution": 64,
        "refined_resolution": 128,
        "max_abs_change": float(f"{worst[1]:.2g}"),
        "max_abs_change_figure": worst[0],
        "mu_mean_change": float(f"{moved['mu.mean']:.2g}"),
    }


def test_mu_density_is_the_marginal_per_unit_of_mu():
    """The density of μ integrates to 1 over μ, has the posterior mean, and matches the finer grid's density."""
    ex = fit_exact(*T1102, PRIORS["halfnormal1"])
    mu, dens = ex.mu_density()
    assert scipy.integrate.trapezoid(dens, mu) == pytest.approx(1.0, abs=2e-3)
    assert scipy.integrate.trapezoid(mu * dens, mu) == pytest.approx(ex.mu.mean, rel=5e-3)
    ref = grid_mu(*T1102, PRIORS["halfnormal1"])
    # density of logit μ / (μ (1 − μ)) is the density of μ
    want = np.interp(scipy.special.logit(mu), ref.u, ref.density) / (mu * (1 - mu))
    peak = dens.argmax()
    assert dens[peak] == pytest.approx(want[peak], rel=2e-2)


def test_summary_as_plain_data_and_mismatched_data_refused():
    from attackprev.inference.exact import Summary

    assert Summary(0.1, 0.02, 0.09, (0.05, 0.15)).to_dict() == {
        "mean": 0.1,
        "sd": 0.02,
        "median": 0.09,
        "hdi_94": [0.05, 0.15],
    }
    with pytest.raises(ValueError):  # three counts, two denominators
        fit_exact([1, 2, 3], [10, 20], PRIORS["halfnormal1"])


# -- the log evidence, the refusals and the non-finite cells (mutation survivors) ----------------------
def _log_evidence_by_quadrature(log_prior, y, n, log_kappa_range) -> float:
    """log p(y) = log ∫∫ p(μ, κ) Π_s BetaBinomial(y_s | n_s, μκ, (1 − μ)κ) dμ dκ, binomial coefficients included.

    Adaptive 2-D quadrature (scipy's dblquad) over μ in (0, 1) and log κ (Jacobian κ), with scipy's beta-binomial
    pmf: nothing of :mod:`attackprev.model.likelihood` or of the grid engine is used.
    """
    y, n = np.asarray(y), np.asarray(n)

    def log_f(v, mu):
        kappa = np.exp(v)
        return log_prior(mu, kappa) + v + scipy.stats.betabinom.logpmf(y, n, mu * kappa, (1 - mu) * kappa).sum()

    top = max(log_f(v, mu) for mu in np.linspace(0.01, 0.99, 50) for v in np.linspace(*log_kappa_range, 50))
    val, _ = scipy.integrate.dblquad(
        lambda v, mu: np.exp(log_f(v, mu) - top), 0.0, 1.0, *log_kappa_range, epsabs=0, epsrel=1e-8
    )
    return float(np.log(val) + top)


@pytest.mark.parametrize(
    ("name", "log_prior", "log_kappa_range"),
    [
        # κ ~ Pareto(1, 1.5) written with scipy, μ uniform; the prior mass above κ = 1e7 (3e-11) is left out, as
        # the engine's support does
        ("pareto", lambda mu, kappa: scipy.stats.pareto(1.5).logpdf(kappa), (0.0, np.log(1e7))),
        # the half-normal spread prior is the model's definition, taken as it is (as tests/grid_reference.py does)
        ("halfnormal1", lambda mu, kappa: PRIORS["halfnormal1"].logp(mu, kappa), (np.log(1e-3), np.log(1e7))),
        # log κ uniform on [log 0.1, log 1e5], written with scipy's normalised loguniform: the engine left out
        # its normalising constant, -log(log(1e6)) = -2.63, until this test
        ("loguniform", lambda mu, kappa: scipy.stats.loguniform(0.1, 1e5).logpdf(kappa), (np.log(0.1), np.log(1e5))),
    ],
)
def test_log_evidence_is_the_marginal_likelihood_by_quadrature(name, log_prior, log_kappa_range):
    y, n = [3, 7, 12], [20, 25, 40]
    ex = fit_exact(y, n, PRIORS[name])
    # the midpoint rule on 256 x 256 cells is within 2e-5 of it here (1e-7 for the half-normal prior)
    assert ex.log_evidence == pytest.approx(_log_evidence_by_quadrature(log_prior, y, n, log_kappa_range), abs=1e-4)


def test_log_evidence_is_nan_for_an_improper_prior():
    assert np.isnan(fit_exact(*T1102, PRIORS["bda3"]).log_evidence)


def test_counts_and_trials_of_different_lengths_are_refused_even_without_evidence():
    # the improper prior computes no log evidence: the refusal must come from pairing the counts themselves
    with pytest.raises(ValueError) as err:
        fit_exact([1, 2, 3], [10, 20], PRIORS["bda3"])
    assert str(err.value) == "zip() argument 2 is shorter than argument 1"
    with pytest.raises(ValueError) as err:
        fit_exact([1, 2], [10, 20, 30], PRIORS["bda3"])
    assert str(err.value) == "zip() argument 2 is longer than argument 1"


def test_a_posterior_without_mass_is_refused_with_its_reason():
    with pytest.raises(ValueError) as err:
        fit_exact([np.nan, 3], [10, 20], PRIORS["halfnormal1"])
    assert str(err.value) == "the posterior has no mass on the grid (check the data)"


def test_non_finite_cells_of_the_log_posterior_are_minus_infinity():
    """At logit μ = 40, μ rounds to 1 and log(1 − μ), the prior and the beta-binomial are infinite or NaN: -inf, no
    mass. At μ = 1/2, κ = 1 the value is the closed form, log p(μ, κ) + log μ(1 − μ) + log κ + Σ log B(α + y, β + n − y)
    − log B(α, β) with α = β = 1/2 (scipy's betaln)."""
    from attackprev.inference.exact import _log_posterior

    prior = PRIORS["halfnormal1"]
    y, n = np.array([3.0, 7.0]), np.array([20.0, 25.0])
    lp = _log_posterior(prior, y, n, np.ones(2), np.array([0.0, 40.0]), np.array([0.0]))
    assert lp[1, 0] == -np.inf
    beta = scipy.special.betaln(0.5 + y, 0.5 + n - y) - scipy.special.betaln(0.5, 0.5)
    assert lp[0, 0] == pytest.approx(prior.logp(0.5, 1.0) + np.log(0.25) + beta.sum(), rel=1e-12)


def test_a_posterior_narrower_than_the_coarse_cells_is_found():
    """Forty sources of 2000 trials, binomial at 0.27: μ's posterior sd (0.008 in logit) is a fortieth of a
    coarse cell (0.33) and κ runs to the grid's upper bound. The coarse pass alone placed the fine grid at
    the κ that best excused its cell's μ, 30 times too small; the redrawn region must find the real one.

    The reference is a brute-force midpoint rule over the whole κ support on a μ strip that holds all the
    mass, 2000 x 1500 cells, sharing nothing with the engine but the log-posterior's formula.
    """
    from attackprev.inference.exact import _cell_centres, _log_posterior
    from attackprev.model.priors import kappa_bounds

    y = np.random.default_rng(1).binomial(2000, 0.27, 40)
    n = np.full(40, 2000.0)
    prior = PRIORS["pareto"]
    ex = fit_exact(y, n, prior)
    k_lo, k_hi = kappa_bounds(prior)
    u = _cell_centres(-1.2, -0.8, 2000)
    v = _cell_centres(np.log(k_lo), np.log(k_hi), 1500)
    lp = _log_posterior(prior, y.astype(float), n, np.ones(40), u, v)
    mass = np.exp(lp - lp.max())
    assert mass[[0, -1], :].max() < 1e-12  # the strip holds μ's mass
    cdf_v = np.cumsum(mass.sum(0)) / mass.sum()
    cdf_u = np.cumsum(mass.sum(1)) / mass.sum()
    # each CDF value is reached at its cell's upper edge
    assert np.log(ex.kappa.median) == pytest.approx(np.interp(0.5, cdf_v, v + (v[1] - v[0]) / 2), abs=0.02)
    assert logit(ex.mu.median) == pytest.approx(np.interp(0.5, cdf_u, u + (u[1] - u[0]) / 2), abs=1e-4)
    assert ex.kappa.median > 5000  # the coarse pass alone said 1060


# -- the region of the fine grid (_region_with_mass), on hand-made log densities ------------------------------------
def _grid_with_mass(rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ten cells of width 1 per axis, centres 0.5 .. 9.5; log density 0 on ``rows`` × ``cols``, -100 elsewhere."""
    from attackprev.inference.exact import _cell_centres

    u = v = _cell_centres(0.0, 10.0, 10)
    lp = np.full((10, 10), -100.0)
    lp[rows, cols] = 0.0
    return lp, u, v


def test_region_is_the_mass_and_a_cell_and_a_half_each_side():
    from attackprev.inference.exact import MASS_CUTOFF, _region_with_mass

    lp, u, v = _grid_with_mass(slice(3, 6), slice(2, 7))  # rows 3..5, columns 2..6
    lp[8, 4] = -MASS_CUTOFF  # exactly 30 below the maximum: no mass that matters
    box, settled = _region_with_mass(lp, u, v, (-100.0, 100.0), (-100.0, 100.0))
    assert box == (3.5 - 1.5, 5.5 + 1.5, 2.5 - 1.5, 6.5 + 1.5) and settled is True
    # clipped to the limits
    box, settled = _region_with_mass(lp, u, v, (2.5, 6.0), (1.2, 7.5))
    assert box == (2.5, 6.0, 1.2, 7.5) and settled is True


def test_region_is_not_settled_while_the_mass_spans_too_few_cells():
    from attackprev.inference.exact import _region_with_mass

    lp, u, v = _grid_with_mass(slice(3, 6), slice(2, 7))  # 3 rows, 5 columns
    limits = (-100.0, 100.0)
    assert _region_with_mass(lp, u, v, limits, limits, min_cells=3)[1] is True  # 3 rows are enough for 3
    box, settled = _region_with_mass(lp, u, v, limits, limits, min_cells=4)
    assert settled is False and box == (2.0, 7.0, 1.0, 8.0)  # the same box: redrawn at the finer spacing it implies
    assert _region_with_mass(lp, u, v, limits, limits, min_cells=6)[1] is False  # the columns too few as well


def test_region_is_pushed_out_a_whole_grid_where_the_mass_reaches_an_edge():
    from attackprev.inference.exact import _region_with_mass

    lp, u, v = _grid_with_mass(slice(0, 4), slice(5, 10))  # rows 0..3 (first edge), columns 5..9 (last edge)
    box, settled = _region_with_mass(lp, u, v, (-100.0, 100.0), (-100.0, 100.0))
    # the first row's lower edge 0, minus the grid's width 10; the last column's upper edge 10, plus 10
    assert box == (-10.0, 3.5 + 1.5, 5.5 - 1.5, 20.0) and settled is False
    # an edge within half a cell of its limit is the limit: nothing beyond it to push into
    box, settled = _region_with_mass(lp, u, v, (-0.5, 100.0), (-100.0, 10.5))
    assert box == (-0.5, 5.0, 4.0, 10.5) and settled is True
    box, settled = _region_with_mass(lp, u, v, (-0.51, 100.0), (-100.0, 10.5))
    assert box == (-0.51, 5.0, 4.0, 10.5) and settled is False  # pushed, then clipped to the limit


def test_fit_redraws_the_region_until_settled_and_gives_up_after_max_redraws(monkeypatch):
    from attackprev.inference import exact

    calls = []
    real = exact._region_with_mass

    def record(lp, u, v, u_limits, v_limits, min_cells=0):
        calls.append(min_cells)
        box, _ = real(lp, u, v, u_limits, v_limits, min_cells)
        return box, len(calls) == 3  # the coarse pass, one redraw, then settled

    monkeypatch.setattr(exact, "_region_with_mass", record)
    exact.fit_exact(*T1102, PRIORS["halfnormal1"], resolution=64)
    assert calls == [0, 64 // 8, 64 // 8] and all(isinstance(c, int) for c in calls)

    calls.clear()
    monkeypatch.setattr(exact, "_region_with_mass", lambda *a: (calls.append(1) or (-3.0, -2.0, 1.0, 5.0), False))
    with pytest.raises(ValueError) as err:
        exact.fit_exact(*T1102, PRIORS["halfnormal1"], resolution=16)
    assert str(err.value) == f"the posterior's region did not settle after {exact.MAX_REDRAWS} refinements of the grid"
    assert len(calls) == 1 + exact.MAX_REDRAWS + 1  # the coarse pass, the first fine grid and its redraws
