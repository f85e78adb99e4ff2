"""Hyperpriors for the Beta-Binomial model, all in one place.

Every model in ``attackprev`` describes a technique's sources with

    θ_s ~ Beta(μ κ, (1 − μ) κ),    y_s ~ Binomial(n_s, θ_s),

where μ is the technique's prevalence (the mean rate over sources) and κ the concentration
(how closely sources agree; the between-source variance of θ is μ(1 − μ)/(κ + 1)). A prior
here is a joint density p(μ, κ) = p(μ) p(κ | μ). Its log-density is written once, against a
small math namespace, so that the exact grid engine (numpy) and the PyMC model (PyTensor)
use the same formula — they cannot drift apart.

With two sources κ is barely identified by the data and the prior on it decides much of
the answer (BDA3 §5.3; Friede et al. 2017). The default therefore is a *weakly informative*
prior on the between-source spread on the logit scale, the scale on which heterogeneity
priors for few-study meta-analysis are calibrated (Röver 2020; Röver et al. 2021). The
others are kept to show how much the answer moves (``attackprev`` reports all of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.special

#: numpy versions of the functions the log-densities use; ``attackprev.model.betabinomial`` passes
#: the PyTensor ones.
NUMPY_MATH = SimpleNamespace(log=np.log, log1p=np.log1p, sqrt=np.sqrt, erf=scipy.special.erf, where=np.where)

LOG_SQRT_2_OVER_PI = 0.5 * math.log(2.0 / math.pi)


def logit_spread(mu: Any, kappa: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
    """Between-source standard deviation on the logit scale, τ(μ, κ).

    By the delta method, sd(logit θ) ≈ sd(θ) / (μ(1 − μ)) = 1 / sqrt(μ(1 − μ)(κ + 1)).
    """
    return 1.0 / m.sqrt(mu * (1.0 - mu) * (kappa + 1.0))


@dataclass(frozen=True)
class Prior:
    """A joint hyperprior p(μ, κ) with μ ~ Beta(mu_alpha, mu_beta).

    Subclasses define :meth:`logp_kappa`, the log-density of κ given μ.

    Attributes
    ----------
    name
        Short key used on the command line and in reports.
    label
        How the prior is written in a report.
    reference
        Where it comes from.
    rationale
        Why it is offered, in one sentence.
    """

    name: str
    label: str
    reference: str
    rationale: str
    mu_alpha: float = 1.0
    mu_beta: float = 1.0
    proper: bool = field(default=True)

    def logp_mu(self, mu: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
        """Log-density of μ (a Beta, normalised)."""
        a, b = self.mu_alpha, self.mu_beta
        const = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        return (a - 1.0) * m.log(mu) + (b - 1.0) * m.log1p(-mu) + const

    def logp_kappa(self, mu: Any, kappa: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
        """Log-density of κ given μ, up to :attr:`log_kappa_normaliser`."""
        raise NotImplementedError

    @property
    def log_kappa_normaliser(self) -> float:
        """What :meth:`logp_kappa` lacks to integrate to 1 (0 when it already does).

        Only the marginal likelihood needs it; the samplers and the grid's posterior, which
        are indifferent to a constant, leave it out.
        """
        return 0.0

    def logp(self, mu: Any, kappa: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
        """Joint log-density log p(μ, κ) with respect to dμ dκ."""
        return self.logp_mu(mu, m) + self.logp_kappa(mu, kappa, m)

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw (μ, κ) from the prior; only proper priors can."""
        raise ValueError(f"prior {self.name!r} is improper and cannot be sampled")

    def to_dict(self) -> dict[str, Any]:
        """The prior as plain data, for reports and saved posteriors."""
        return {
            "name": self.name,
            "label": self.label,
            "reference": self.reference,
            "rationale": self.rationale,
            "mu": f"Beta({self.mu_alpha:g}, {self.mu_beta:g})",
            "proper": self.proper,
        } | {k: v for k, v in self._params().items()}

    def _params(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class HalfNormalLogitSpread(Prior):
    """τ ≈ sd(logit θ) ~ HalfNormal(scale), truncated to κ > 0.

    τ is the delta-method approximation of the logit-scale spread of θ ~ Beta(μκ, (1 − μ)κ),
    not the spread itself: the exact sd of logit θ is sqrt(ψ′(μκ) + ψ′((1 − μ)κ)), which is
    larger for rare techniques (at μ = 0.05, τ = 1 is an exact spread of 1.30). The labels say
    so; the meta-analysis recommendations below are stated for the exact spread.

    τ(μ, κ) = 1/sqrt(μ(1 − μ)(κ + 1)) maps κ ∈ (0, ∞) onto τ ∈ (0, τ_max(μ)) with
    τ_max = 1/sqrt(μ(1 − μ)), so p(κ | μ) = HN(τ; s) |dτ/dκ| / P(τ < τ_max). Half-normal
    priors on the logit-scale heterogeneity with scale 0.5 ("typical") or 1 ("conservative")
    are the recommendation for meta-analyses of two studies (Friede et al. 2017, Biometrical
    Journal 59(4):658–671; Röver 2020, JSS 93(6); Röver et al. 2021, Research Synthesis
    Methods 12(4):448–474). Scale 1 puts 95 % of its mass on τ < 2, i.e. it allows sources to
    differ by a factor of ~50 in odds, which the multi-source techniques show can happen
    (T1083: 3.1 % in M-Trends 2020, 69 % in the SoK sample), while ruling out the near-zero κ
    (sources that are each 0 % or 100 %) that flat priors leave open with two sources.
    """

    scale: float = 1.0

    def logp_kappa(self, mu: Any, kappa: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
        s = self.scale
        v = mu * (1.0 - mu)
        tau = logit_spread(mu, kappa, m)
        log_halfnormal = LOG_SQRT_2_OVER_PI - m.log(s) - 0.5 * (tau / s) ** 2
        # |dτ/dκ| = ½ v^(-1/2) (κ + 1)^(-3/2)
        log_jacobian = -math.log(2.0) - 0.5 * m.log(v) - 1.5 * m.log(kappa + 1.0)
        log_truncation = m.log(m.erf(1.0 / (m.sqrt(v) * s * math.sqrt(2.0))))
        return log_halfnormal + log_jacobian - log_truncation

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        mu = rng.beta(self.mu_alpha, self.mu_beta, size)
        tau = np.abs(rng.normal(0.0, self.scale, size))
        tau_max = 1.0 / np.sqrt(mu * (1.0 - mu))
        while np.any(bad := tau >= tau_max):  # rejection: truncate to κ > 0
            tau[bad] = np.abs(rng.normal(0.0, self.scale, bad.sum()))
        kappa = 1.0 / (tau**2 * mu * (1.0 - mu)) - 1.0
        return mu, kappa

    def _params(self) -> dict[str, Any]:
        return {"kappa": f"tau = 1/sqrt(mu(1-mu)(kappa+1)) ~ HalfNormal({self.scale:g})"}


@dataclass(frozen=True)
class ParetoConcentration(Prior):
    """κ ~ Pareto(minimum, shape), independent of μ.

    The Stan case study "Hierarchical Partial Pooling for Repeated Binary Trials" (Carpenter
    2016) uses κ ~ Pareto(1, 1.5) with μ uniform. Its heavy right tail lets κ be large when
    sources agree, but it forbids κ < 1.
    """

    minimum: float = 1.0
    shape: float = 1.5

    def logp_kappa(self, mu: Any, kappa: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
        a, k0 = self.shape, self.minimum
        return m.where(kappa >= k0, math.log(a) + a * math.log(k0) - (a + 1.0) * m.log(kappa), -np.inf)

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        mu = rng.beta(self.mu_alpha, self.mu_beta, size)
        kappa = self.minimum * (1.0 - rng.uniform(size=size)) ** (-1.0 / self.shape)
        return mu, kappa

    def _params(self) -> dict[str, Any]:
        return {"kappa": f"Pareto({self.minimum:g}, {self.shape:g})"}


@dataclass(frozen=True)
class PowerConcentration(Prior):
    """p(κ) ∝ κ^(−power) on [lower, upper] (improper when unbounded).

    ``power = 1.5`` with no bounds is BDA3's p(α, β) ∝ (α + β)^(−5/2) for the rat-tumour
    example (Gelman et al. 2013, §5.3), which in (μ, κ) is μ uniform and p(κ) ∝ κ^(−3/2).
    ``power = 1`` on bounds is a prior flat in log κ, which must be bounded because the
    likelihood does not vanish as κ → ∞.
    """

    power: float = 1.5
    lower: float = 0.0
    upper: float = math.inf

    def logp_kappa(self, mu: Any, kappa: Any, m: SimpleNamespace = NUMPY_MATH) -> Any:
        inside = (kappa >= self.lower) & (kappa <= self.upper)
        return m.where(inside, -self.power * m.log(kappa), -np.inf)

    @property
    def log_kappa_normaliser(self) -> float:
        """−log ∫ κ^(−power) dκ over [lower, upper]; ``nan`` when that integral diverges.

        It converges when the lower end is above 0 or power < 1, and the upper end is finite
        or power > 1.
        """
        e = 1.0 - self.power
        if not (self.lower > 0 or e > 0) or not (self.upper < math.inf or e < 0):
            return math.nan
        if e == 0.0:
            return -math.log(math.log(self.upper / self.lower))
        return -math.log((self.upper**e - self.lower**e) / e)

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        if not (self.power == 1.0 and 0 < self.lower < self.upper < math.inf):
            return super().sample(rng, size)
        mu = rng.beta(self.mu_alpha, self.mu_beta, size)
        kappa = np.exp(rng.uniform(math.log(self.lower), math.log(self.upper), size))
        return mu, kappa

    def _params(self) -> dict[str, Any]:
        bounds = "" if math.isinf(self.upper) else f" on [{self.lower:g}, {self.upper:g}]"
        return {"kappa": f"p(kappa) ∝ kappa^(-{self.power:g}){bounds}"}


PRIORS: dict[str, Prior] = {
    p.name: p
    for p in (
        HalfNormalLogitSpread(
            name="halfnormal1",
            label="μ ~ U(0,1), τ ~ HalfNormal(1), τ the delta-method logit spread",
            reference="Friede et al. 2017; Röver 2020 (bayesmeta); Röver et al. 2021",
            rationale="weakly informative logit-scale heterogeneity prior recommended for two studies; on "
            "τ = 1/√(μ(1−μ)(κ+1)), which understates the exact logit spread of rare techniques (1.30 for τ = 1 at "
            "μ = 0.05)",
            scale=1.0,
        ),
        HalfNormalLogitSpread(
            name="halfnormal05",
            label="μ ~ U(0,1), τ ~ HalfNormal(0.5), τ the delta-method logit spread",
            reference="Röver et al. 2021 ('typical' heterogeneity scale)",
            rationale="tighter: sources expected to agree within a factor of ~7 in odds",
            scale=0.5,
        ),
        ParetoConcentration(
            name="pareto",
            label="μ ~ U(0,1), κ ~ Pareto(1, 1.5)",
            reference="Carpenter 2016, Stan case study 'Hierarchical Partial Pooling'",
            rationale="the Stan case study's default",
        ),
        PowerConcentration(
            name="bda3",
            label="p(α, β) ∝ (α+β)^(−5/2)",
            reference="Gelman et al. 2013, BDA3 §5.3",
            rationale="BDA3's rat-tumour hyperprior; improper, diffuse on κ",
            proper=False,
            power=1.5,
        ),
        PowerConcentration(
            name="loguniform",
            label="μ ~ U(0,1), log κ ~ U(log 0.1, log 10⁵)",
            reference="reference prior flat in log κ, bounded (BDA3 §5.3 discussion)",
            rationale="stress test: flat in log κ, bounds stated",
            power=1.0,
            lower=0.1,
            upper=1e5,
        ),
    )
}

DEFAULT_PRIOR = "halfnormal1"


def get_prior(name: str) -> Prior:
    """Look up a prior by name, with a one-line error naming the choices."""
    try:
        return PRIORS[name]
    except KeyError:
        raise ValueError(f"unknown prior {name!r}; choose one of {', '.join(PRIORS)}") from None


#: Numerical support of κ for every prior. Below 10⁻³ each source's rate is 0 or 1 and
#: any count strictly between 0 and n has likelihood ~0; above 10⁷ the beta-binomial
#: cannot be told from the binomial for any published count (variance inflation
#: 1 + (n − 1)/(κ + 1) < 1.0001 for n < 1000), and log-gamma differences start to lose
#: precision in float64. The truncation is a numerical device, reported with the priors.
KAPPA_SUPPORT = (1e-3, 1e7)


def kappa_bounds(prior: Prior) -> tuple[float, float]:
    """The support of κ used for ``prior``: its own bounds within :data:`KAPPA_SUPPORT`."""
    lower = getattr(prior, "lower", 0.0)
    if isinstance(prior, ParetoConcentration):
        lower = prior.minimum
    upper = getattr(prior, "upper", math.inf)
    return max(lower, KAPPA_SUPPORT[0]), min(upper, KAPPA_SUPPORT[1])


@dataclass(frozen=True)
class CataloguePriors:
    """Hyperpriors of the multi-technique model (:mod:`attackprev.model.catalogue`), as (mean, sd) or scale.

    Attributes
    ----------
    mu_logit_mean
        m ~ Normal(−2, 1.5): the typical technique's prevalence on the logit scale; its
        95 % range, 0.6 % to 41 %, covers every rate the evidence tables hold for a
        typical technique without favouring any.
    mu_logit_sd
        σ ~ HalfNormal(1.5): how much techniques differ. Rates in the catalogue span
        ~0.4 % to ~85 % (logits −5.4 to 1.7), i.e. σ of order 1.5–2; the half-normal keeps
        σ = 0 possible and is the usual weakly informative choice for a group-level scale
        (Gelman 2006, Bayesian Analysis 1(3)).
    log_kappa_mean
        ℓ ~ Normal(3, 1.5): log concentration, κ from 1 to 380 in its 95 % range, i.e.
        sources whose rates differ by anything from a factor of ~1.2 to ~50 in odds for a
        5 % technique; κ → ∞ (complete agreement) and κ < 1 (rates near 0 or 1) are
        both held improbable, not impossible.
    log_kappa_sd
        ς ~ HalfNormal(1): spread of log κ_t between techniques when κ_t is pooled.
    source_offset_sd
        δ_s ~ Normal(0, 1.5) for each non-reference source: a systematic difference of up
        to a factor of ~20 in odds (2 sd) between what two publications count.
    """

    mu_logit_mean: tuple[float, float] = (-2.0, 1.5)
    mu_logit_sd: float = 1.5
    log_kappa_mean: tuple[float, float] = (3.0, 1.5)
    log_kappa_sd: float = 1.0
    source_offset_sd: float = 1.5

    def to_dict(self) -> dict[str, str]:
        """The priors as text, for reports and saved posteriors."""
        return {
            "mu_logit_mean": f"Normal({self.mu_logit_mean[0]:g}, {self.mu_logit_mean[1]:g})",
            "mu_logit_sd": f"HalfNormal({self.mu_logit_sd:g})",
            "log_kappa_mean": f"Normal({self.log_kappa_mean[0]:g}, {self.log_kappa_mean[1]:g})",
            "log_kappa_sd": f"HalfNormal({self.log_kappa_sd:g})",
            "source_offset": f"Normal(0, {self.source_offset_sd:g}) per non-reference source",
        }


@dataclass(frozen=True)
class SynthesisPriors:
    """Priors of the bias-adjusted multi-source model (:mod:`attackprev.model.synthesis`).

    Attributes
    ----------
    level_mean
        m ~ Normal(−3.5, 1.5): the typical technique's logit rate on the reference family's
        scale (M-Trends, share of intrusions). M-Trends' figures run from 0.2 % to ~40 %, most
        between 0.5 % and 5 % (logits −5.3 to −2.9); the 95 % range of m, 0.2 % to 38 %, covers
        them without favouring any.
    level_sd
        s_a ~ HalfNormal(2): how much techniques' levels differ; the observed rates span about
        five logits.
    family_offset_sd
        The scale of the family offsets b_f (the reference's is 0): a systematic difference of up
        to a factor of ~50 in odds (2 sd), as between a share of adversary groups (19 % for T1102)
        and of intrusions (1 %). A partial family's b_f ~ Normal(0, 2). The complete families'
        offsets are sampled as their mean b̄ ~ Normal(0, 2) plus deviations ZeroSumNormal(2), so
        each is marginally Normal(0, 2·√(2 − 1/C)) for C complete families (2.68 for C = 5; the
        simulation-based calibration checks exactly this prior) and correlated (C − 1)/(2C − 1)
        (0.44) through the shared b̄: wider than Normal(0, 2); the data pin these offsets well.
    departure
        σ_f ~ Gamma(2, 2) per family (mean 1, mode 0.5, 95 % range 0.12 to 2.8): how far a
        technique's rate in family f strays from its level once the family's offset is removed.
        Informative on purpose, and kept away from 0: families count different populations, so
        no family tracks the others exactly (σ_f = 0 would make every technique's rate in f a
        fixed shift of its level), and a family that reports few techniques (Recorded Future: 4,
        Red Canary: 7) cannot learn σ_f from its own rows; near 0 it would also make the sampler
        diverge. Above ~3 logits (a factor of 20 in odds, technique by technique) the family
        would say nothing about a technique's level.
    year_sd
        τ ~ HalfNormal(0.5): a year's shift of every technique in a family with several years
        (a report's changing case mix), up to ~1 logit.
    log_kappa
        log κ_f ~ Normal(4, 1.5) for families with several sources: how closely one technique's
        yearly rates agree beyond the year's shift; κ = e⁴ ≈ 55 lets a 5 % rate vary by ~±3
        points between years.
    """

    level_mean: tuple[float, float] = (-3.5, 1.5)
    level_sd: float = 2.0
    family_offset_sd: float = 2.0
    departure: tuple[float, float] = (2.0, 2.0)
    year_sd: float = 0.5
    log_kappa: tuple[float, float] = (4.0, 1.5)

    def to_dict(self) -> dict[str, str]:
        """The priors as text, for reports and saved posteriors."""
        return {
            "level_mean": f"Normal({self.level_mean[0]:g}, {self.level_mean[1]:g})",
            "level_sd": f"HalfNormal({self.level_sd:g})",
            "family_offset": f"Normal(0, {self.family_offset_sd:g}) per partial family; complete families: "
            f"their mean Normal(0, {self.family_offset_sd:g}) plus ZeroSumNormal({self.family_offset_sd:g}) deviations",
            "departure_sd": f"Gamma({self.departure[0]:g}, {self.departure[1]:g}) per family",
            "year_sd": f"HalfNormal({self.year_sd:g})",
            "log_kappa": f"Normal({self.log_kappa[0]:g}, {self.log_kappa[1]:g}) per family with several sources",
        }
