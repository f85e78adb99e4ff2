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
second look, Kolmogorov–Smirnov. :func:`calibration_verdict` is the pass/fail rule of the
calibration tests: KS and central-interval coverage at several levels, Bonferroni over all;
:func:`spread_test` pools the parameters of each data set, for SBC runs too small to test
each parameter with power.
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
from attackprev.validation.coverage import central_coverage
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


#: Central-interval levels whose coverage :func:`calibration_verdict` tests. A posterior too wide shows
#: soonest at 50 % and 80 % (coverage rises towards 1), one too narrow at 80 % and 95 %.
VERDICT_LEVELS = (0.5, 0.8, 0.95)
#: Family-wise false-alarm probability of :func:`calibration_verdict` (Bonferroni over its tests).
VERDICT_ALPHA = 0.001


@dataclass(frozen=True)
class CalibrationVerdict:
    """The outcome of :func:`calibration_verdict`.

    Attributes
    ----------
    p_values
        Test -> p-value. Tests are named ``"<parameter> KS"`` and ``"<parameter> <level> %"``.
    coverage
        ``"<parameter> <level> %"`` -> observed share of central intervals holding the truth.
    replicates
        Data sets (PIT values per parameter).
    threshold
        Per-test threshold: the family-wise α over the number of tests.
    """

    p_values: dict[str, float]
    coverage: dict[str, float]
    replicates: int
    threshold: float

    @property
    def failures(self) -> list[str]:
        """Tests whose p-value is at most :attr:`threshold`."""
        return [name for name, p in self.p_values.items() if p <= self.threshold]

    @property
    def passed(self) -> bool:
        """Whether no test fails."""
        return not self.failures

    def __str__(self) -> str:
        worst = min(self.p_values, key=self.p_values.get)
        cover = ", ".join(f"{k} {v:.3f}" for k, v in self.coverage.items())
        return (
            f"{'passed' if self.passed else 'FAILED ' + ', '.join(self.failures)} (R = {self.replicates}, "
            f"per-test threshold {self.threshold:.2g}, smallest p {self.p_values[worst]:.2g} for {worst}; "
            f"coverage: {cover})"
        )


def calibration_verdict(
    pit: dict[str, np.ndarray], levels: tuple[float, ...] = VERDICT_LEVELS, alpha: float = VERDICT_ALPHA
) -> CalibrationVerdict:
    """Pass or fail a set of PIT values: one decision rule for every calibration test.

    For each parameter, a Kolmogorov–Smirnov test of U(0, 1) (the overall shape: a shift, a skew)
    and, at each level ℓ, an exact two-sided binomial test of the number of central ℓ intervals
    that hold the truth, Binomial(R, ℓ) under calibration (a posterior too wide or too narrow).
    The PITs fail when any p-value is at most ``alpha`` divided by the number of tests.

    Parameters
    ----------
    pit
        Parameter -> PIT values, one per data set (the same R for every parameter).
    levels
        Central-interval levels ℓ.
    alpha
        Family-wise false-alarm probability.

    Returns
    -------
    CalibrationVerdict

    Notes
    -----
    If each parameter's PITs are independent U(0, 1) draws (a calibrated engine), the
    probability that the rule fails is at most ``alpha`` (Bonferroni, whatever the dependence
    between parameters and between tests; the exact binomial p-values are conservative). The
    power depends on R: with the defaults (4 parameters, 16 tests, per-test threshold 6.25e-5),
    a 95 % coverage of 0.85 is caught with R = 300 with probability 0.986, and a 50 % coverage
    of 0.71 with probability above 0.999 (``tests/validation/test_validation.py``).
    """
    names = list(pit)
    R = len(np.asarray(pit[names[0]]))
    p_values: dict[str, float] = {}
    coverage: dict[str, float] = {}
    for name in names:
        u = np.asarray(pit[name], float)
        if len(u) != R:
            raise ValueError("every parameter needs one PIT per data set")
        p_values[f"{name} KS"] = float(scipy.stats.kstest(u, "uniform").pvalue)
        for level in levels:
            cov = central_coverage(u, level)
            key = f"{name} {100 * level:g} %"
            p_values[key] = float(scipy.stats.binomtest(cov.hits, R, level).pvalue)
            coverage[key] = cov.rate
    return CalibrationVerdict(p_values, coverage, R, alpha / len(p_values))


@dataclass(frozen=True)
class Spread:
    """The outcome of :func:`spread_test`.

    Attributes
    ----------
    scores
        Per data set, the mean over parameters of (2u − 1)².
    score
        Their mean: 1/3 under calibration, less for posteriors too wide, more for too narrow.
    p
        Two-sided p-value of the one-sample t-test of the scores against 1/3.
    """

    scores: np.ndarray
    score: float
    p: float


def spread_test(pit: dict[str, np.ndarray]) -> Spread:
    """Whether posteriors are too wide or too narrow across the board, pooling the parameters.

    With few data sets a test per parameter has no power, but a posterior family too wide or
    too narrow moves every parameter's PITs the same way: towards 1/2 or towards 0 and 1. Data
    set r scores s_r = mean over parameters p of (2 u_rp − 1)², whose expectation is 1/3 when
    each u_rp is U(0, 1), whatever the dependence between the parameters of one data set.
    Different data sets are independent, so a one-sample t-test of the s_r against 1/3 is valid
    (s_r, a mean of bounded terms, is close to normal).

    Parameters
    ----------
    pit
        Parameter -> PIT values, one per data set.

    Returns
    -------
    Spread

    Notes
    -----
    For Normal posteriors twice too wide the PIT is Φ(Z/2) and E (2u − 1)² ≈ 0.13; twice too narrow,
    Φ(2Z) and ≈ 0.59. With 27 parameters the scores of the synthesis' SBC have a standard deviation of
    ~0.08 between catalogues, so about 10 catalogues reject either at p ≤ 0.001
    (``tests/validation/test_synthesis_sbc.py``).
    """
    u = np.column_stack([np.asarray(v, float) for v in pit.values()])
    scores = np.mean((2.0 * u - 1.0) ** 2, axis=1)
    p = float(scipy.stats.ttest_1samp(scores, 1.0 / 3.0).pvalue)
    return Spread(scores, float(scores.mean()), p)


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
