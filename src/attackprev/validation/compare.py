"""NUTS against the exact posterior of μ on fixed data sets.

The exact engine gives the posterior of μ to grid accuracy (checked by refining the grid),
so any difference from NUTS beyond Monte Carlo error is a sampler problem. Monte Carlo
standard errors come from ``az.mcse``: of the mean, of the sd, and, for each 94 % HDI
bound, of the quantile at the bound's exact posterior probability (an approximation: the
HDI estimator from draws is noisier than a fixed quantile only by a little).

Criteria: |mean difference| ≤ 3 MCSE, |sd difference| ≤ 3 MCSE, and each HDI bound within
0.002 of the exact one; where the HDI criterion fails because the posterior is wide, the
report also shows the bound's difference in MCSE units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from attackprev.inference.exact import fit_exact
from attackprev.inference.mcmc import SamplerSettings
from attackprev.model.priors import Prior
from attackprev.validation.accuracy import mu_figures
from attackprev.validation.mcmc import Refitter, divergences
from attackprev.validation.simulate import design_trials

HDI_TOLERANCE = 0.002
#: Grid of the exact reference; its HDI bounds are good to about a cell (see attackprev.validation.accuracy).
REFERENCE_RESOLUTION = 1024
MCSE_LIMIT = 3.0


@dataclass(frozen=True)
class EngineComparison:
    """One data set's posterior of μ from both engines.

    Attributes
    ----------
    name
        Label of the data set.
    successes, trials
        The data.
    draws
        Total NUTS draws (chains × draws per chain).
    exact_mean, exact_sd, exact_hdi
        Exact posterior mean, sd and 94 % HDI of μ (grid of ``REFERENCE_RESOLUTION`` cells per axis).
    grid_change
        Largest change of μ's mean, sd, median and HDI bounds between half that grid and it.
    mcmc_mean, mcmc_sd, mcmc_hdi
        The same from the NUTS draws (HDI by ``az.hdi``).
    mcse_mean, mcse_sd, mcse_hdi
        Monte Carlo standard errors (``az.mcse``).
    divergences, ess_bulk, rhat, seconds
        NUTS diagnostics and sampling time.
    """

    name: str
    successes: np.ndarray
    trials: np.ndarray
    draws: int
    exact_mean: float
    exact_sd: float
    exact_hdi: tuple[float, float]
    grid_change: float
    mcmc_mean: float
    mcmc_sd: float
    mcmc_hdi: tuple[float, float]
    mcse_mean: float
    mcse_sd: float
    mcse_hdi: tuple[float, float]
    divergences: int
    ess_bulk: float
    rhat: float
    seconds: float

    @property
    def mean_z(self) -> float:
        """(NUTS − exact) mean in MCSE units."""
        return (self.mcmc_mean - self.exact_mean) / self.mcse_mean

    @property
    def sd_z(self) -> float:
        """(NUTS − exact) sd in MCSE units."""
        return (self.mcmc_sd - self.exact_sd) / self.mcse_sd

    @property
    def hdi_diff(self) -> tuple[float, float]:
        """NUTS − exact, for the lower and upper HDI bound."""
        return self.mcmc_hdi[0] - self.exact_hdi[0], self.mcmc_hdi[1] - self.exact_hdi[1]

    @property
    def hdi_z(self) -> tuple[float, float]:
        """HDI bound differences in MCSE units."""
        d = self.hdi_diff
        return d[0] / self.mcse_hdi[0], d[1] / self.mcse_hdi[1]

    @property
    def mean_ok(self) -> bool:
        """|mean difference| ≤ 3 MCSE."""
        return abs(self.mean_z) <= MCSE_LIMIT

    @property
    def sd_ok(self) -> bool:
        """|sd difference| ≤ 3 MCSE."""
        return abs(self.sd_z) <= MCSE_LIMIT

    @property
    def hdi_ok(self) -> bool:
        """Both HDI bounds within 0.002 of the exact ones."""
        return max(abs(d) for d in self.hdi_diff) <= HDI_TOLERANCE

    @property
    def hdi_mcse_ok(self) -> bool:
        """Both HDI bounds within 3 MCSE of the exact ones."""
        return max(abs(z) for z in self.hdi_z) <= MCSE_LIMIT


def synthetic_technique(
    sources: int, seed: int, mu: float = 0.08, kappa: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed synthetic technique: n_s from :func:`design_trials`, θ_s ~ Beta(μκ, (1 − μ)κ).

    The defaults resemble T1102 (a rate of a few per cent, sources differing by a factor of
    ~2 in odds: τ ≈ 0.67 on the logit scale).
    """
    trials = design_trials(sources, seed)
    rng = np.random.default_rng([seed, sources, 1])
    theta = rng.beta(mu * kappa, (1.0 - mu) * kappa, size=sources)
    return rng.binomial(trials.astype(np.int64), theta).astype(float), trials


def compare_engines(
    name: str,
    successes: np.ndarray,
    trials: np.ndarray,
    prior: Prior,
    refitter: Refitter,
    settings: SamplerSettings,
    seed: int,
) -> EngineComparison:
    """Posterior of μ from the exact engine and from NUTS on one data set.

    Parameters
    ----------
    name
        Label for the report.
    successes, trials
        The data.
    prior
        Hyperprior.
    refitter
        Compiled model with the right number of sources.
    settings
        NUTS draws, tuning, chains.
    seed
        Seed of the NUTS run.

    Returns
    -------
    EngineComparison
    """
    import arviz as az

    y, n = np.asarray(successes, float), np.asarray(trials, float)
    exact = fit_exact(y, n, prior, resolution=REFERENCE_RESOLUTION)
    coarse = fit_exact(y, n, prior, resolution=REFERENCE_RESOLUTION // 2)
    grid_change = float(np.max(np.abs(mu_figures(exact) - mu_figures(coarse))))

    start = time.perf_counter()
    tree = refitter.fit(y, settings, seed=seed, trials=n)
    seconds = time.perf_counter() - start
    mu = tree["posterior"]["mu"].values
    lo, hi = (float(x) for x in az.hdi(mu.ravel(), prob=0.94))
    p_lo, p_hi = (exact.cdf_mu(b) for b in exact.mu.hdi_94)
    return EngineComparison(
        name=name,
        successes=y,
        trials=n,
        draws=mu.size,
        exact_mean=exact.mu.mean,
        exact_sd=exact.mu.sd,
        exact_hdi=exact.mu.hdi_94,
        grid_change=grid_change,
        mcmc_mean=float(mu.mean()),
        mcmc_sd=float(mu.std(ddof=1)),
        mcmc_hdi=(lo, hi),
        mcse_mean=float(az.mcse(mu, method="mean")),
        mcse_sd=float(az.mcse(mu, method="sd")),
        mcse_hdi=(float(az.mcse(mu, method="quantile", prob=p_lo)), float(az.mcse(mu, method="quantile", prob=p_hi))),
        divergences=divergences(tree),
        ess_bulk=float(az.ess(mu)),
        rhat=float(az.rhat(mu)),
        seconds=seconds,
    )
