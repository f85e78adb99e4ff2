"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788) of both engines.

If data are drawn from the prior predictive and the posterior is computed correctly, the
posterior CDF evaluated at the true parameter value (the probability integral transform,
PIT) is uniform on (0, 1) for every parameter. Any error in the likelihood, the prior, the
grid or the sampler shows up as a departure from uniformity.

* Exact engine: the PIT is the posterior CDF itself — of μ (:meth:`ExactPosterior.cdf_mu`),
  of log κ (its marginal CDF on the grid), and of θ_1 (the first source's rate) and θ_new,
  whose posteriors are mixtures of Betas over the grid. No draws, so no rank ties and no
  autocorrelation.
* NUTS: the rank of the truth among L thinned draws (50 per chain at a stride of 20, L =
  200 for 4 chains × 1000 draws; the chains mix at ~0.15 effective draws per draw, so the
  kept draws are close to independent). A rank r ∈ {0..L} becomes a continuous PIT
  (r + V)/(L + 1) with V ~ U(0, 1) from a seeded generator, exactly U(0, 1) under the null,
  so both engines go through the same tests.

Uniformity is tested with Pearson's χ² on 20 equal bins (the SBC histogram) and, as a
second look, Kolmogorov–Smirnov.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.special
import scipy.stats

from attackprev.inference.exact import ExactPosterior, fit_exact
from attackprev.inference.mcmc import SamplerSettings
from attackprev.model.priors import Prior
from attackprev.validation.mcmc import SBC_SETTINGS, Refitter, divergences
from attackprev.validation.simulate import SimulatedData

EXACT_PARAMETERS = ("mu", "log_kappa", "theta_1", "theta_new")
MCMC_PARAMETERS = ("mu", "log_kappa")
LABELS = {"mu": "μ", "log_kappa": "log κ", "theta_1": "θ₁", "theta_new": "θ_new"}
BINS = 20


@dataclass
class SBCResult:
    """Calibration output of one engine on one design.

    Attributes
    ----------
    engine
        ``"exact"`` or ``"mcmc"``.
    sim
        The simulated data sets and their true parameters.
    pit
        PIT value of each parameter's truth, one per data set.
    mu_cdf
        P(μ ≤ μ_true | y) from the whole posterior (the exact CDF, or the fraction of all
        MCMC draws below the truth); the central interval at level ℓ covers μ_true exactly
        when this lies in [(1 − ℓ)/2, (1 + ℓ)/2].
    mu_in_hdi94
        Whether the engine's 94 % HDI of μ (as the package reports it) contains μ_true.
    seconds
        Wall time of each fit (for NUTS: sampling only, the model being compiled once).
    divergences, ess_bulk, rhat
        Per-fit NUTS diagnostics for μ (empty for the exact engine).
    ranks_out_of
        L, the number of thinned draws the NUTS ranks are taken among (0 for exact).
    """

    engine: str
    sim: SimulatedData
    pit: dict[str, np.ndarray]
    mu_cdf: np.ndarray
    mu_in_hdi94: np.ndarray
    seconds: np.ndarray
    divergences: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    ess_bulk: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rhat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ranks_out_of: int = 0


@dataclass(frozen=True)
class Uniformity:
    """Tests of uniformity of PIT values.

    Attributes
    ----------
    counts
        Values per bin (``BINS`` equal bins of (0, 1)).
    chi2, chi2_p
        Pearson's statistic and its p-value (``BINS`` − 1 degrees of freedom).
    ks, ks_p
        Kolmogorov–Smirnov statistic against U(0, 1) and its p-value.
    """

    counts: np.ndarray
    chi2: float
    chi2_p: float
    ks: float
    ks_p: float


def uniformity(pit: np.ndarray, bins: int = BINS) -> Uniformity:
    """χ² (equal bins) and KS tests of U(0, 1) for PIT values."""
    pit = np.asarray(pit, float)
    counts = np.histogram(pit, bins=bins, range=(0.0, 1.0))[0]
    chi2, chi2_p = scipy.stats.chisquare(counts)
    ks = scipy.stats.kstest(pit, "uniform")
    return Uniformity(counts, float(chi2), float(chi2_p), float(ks.statistic), float(ks.pvalue))


def theta_cdf(post: ExactPosterior, source: int | None, value: float) -> float:
    """Posterior CDF of θ_source (θ_new when ``source`` is None) at ``value``.

    Given (μ, κ) the rate is Beta-distributed (:meth:`ExactPosterior._beta_params`), so its
    posterior CDF is the grid mixture Σ mass · I_value(a, b).
    """
    a, b = post._beta_params(source)
    return float(np.sum(post.mass * scipy.special.betainc(a, b, value)))


def log_kappa_cdf(post: ExactPosterior, value: float) -> float:
    """Posterior CDF of log κ at ``value`` (piecewise linear within grid cells)."""
    edges, cdf = post._cdf_edges("kappa")
    return float(np.interp(value, edges, cdf))


def exact_sbc(sim: SimulatedData, prior: Prior, resolution: int = 256) -> SBCResult:
    """Fit every simulated data set with the exact engine and take the PIT of each truth.

    Parameters
    ----------
    sim
        Prior-predictive data sets.
    prior
        The hyperprior they were drawn from.
    resolution
        Grid cells per axis.

    Returns
    -------
    SBCResult
    """
    pit = {p: np.empty(sim.replicates) for p in EXACT_PARAMETERS}
    in_hdi = np.empty(sim.replicates, bool)
    seconds = np.empty(sim.replicates)
    for r in range(sim.replicates):
        start = time.perf_counter()
        post = fit_exact(sim.successes[r], sim.trials, prior, resolution=resolution)
        pit["mu"][r] = post.cdf_mu(sim.mu[r])
        pit["log_kappa"][r] = log_kappa_cdf(post, float(np.log(sim.kappa[r])))
        pit["theta_1"][r] = theta_cdf(post, 0, sim.theta[r, 0])
        pit["theta_new"][r] = theta_cdf(post, None, sim.theta_new[r])
        lo, hi = post.mu.hdi_94
        in_hdi[r] = lo <= sim.mu[r] <= hi
        seconds[r] = time.perf_counter() - start
    return SBCResult("exact", sim, pit, pit["mu"].copy(), in_hdi, seconds)


def thin(draws: np.ndarray, keep_per_chain: int) -> np.ndarray:
    """Keep ``keep_per_chain`` evenly spaced draws of each chain (the last of each stride)."""
    stride = draws.shape[1] // keep_per_chain
    return draws[:, stride - 1 :: stride][:, :keep_per_chain]


def rank_pit(rank: np.ndarray, out_of: int, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT (r + V)/(L + 1) of ranks r ∈ {0..L}: U(0, 1) when r is uniform."""
    rank = np.asarray(rank, float)
    return (rank + rng.uniform(size=rank.shape)) / (out_of + 1)


def mcmc_sbc(
    sim: SimulatedData,
    refitter: Refitter,
    settings: SamplerSettings = SBC_SETTINGS,
    keep_per_chain: int = 50,
) -> SBCResult:
    """Fit every simulated data set with NUTS and rank each truth among thinned draws.

    Parameters
    ----------
    sim
        Prior-predictive data sets (the same trials the refitter was compiled for).
    refitter
        The compiled model.
    settings
        Sampler settings; fit r uses seed ``settings.seed + r``.
    keep_per_chain
        Thinned draws kept per chain for the ranks.

    Returns
    -------
    SBCResult
    """
    import arviz as az

    R = sim.replicates
    out_of = settings.chains * keep_per_chain
    ranks = {p: np.empty(R, int) for p in MCMC_PARAMETERS}
    mu_cdf = np.empty(R)
    in_hdi = np.empty(R, bool)
    seconds = np.empty(R)
    div = np.empty(R, int)
    ess = np.empty(R)
    rhat = np.empty(R)
    for r in range(R):
        start = time.perf_counter()
        tree = refitter.fit(sim.successes[r], settings, seed=settings.seed + r, trials=sim.trials)
        seconds[r] = time.perf_counter() - start
        post = tree["posterior"]
        mu = post["mu"].values
        truth = {"mu": sim.mu[r], "log_kappa": np.log(sim.kappa[r])}
        for p in MCMC_PARAMETERS:
            ranks[p][r] = int(np.sum(thin(post[p].values, keep_per_chain) < truth[p]))
        mu_cdf[r] = float(np.mean(mu < sim.mu[r]))
        lo, hi = az.hdi(mu.ravel(), prob=0.94)
        in_hdi[r] = lo <= sim.mu[r] <= hi
        div[r] = divergences(tree)
        ess[r] = float(az.ess(mu))
        rhat[r] = float(az.rhat(mu))
    rng = np.random.default_rng([settings.seed, sim.sources])
    pit = {p: rank_pit(ranks[p], out_of, rng) for p in MCMC_PARAMETERS}
    return SBCResult("mcmc", sim, pit, mu_cdf, in_hdi, seconds, div, ess, rhat, out_of)
