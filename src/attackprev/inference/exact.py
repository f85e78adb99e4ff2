"""Exact posterior of the single-technique model by quadrature on a grid.

Integrating each source's rate out (the beta-binomial marginal, :mod:`attackprev.model.likelihood`)
leaves a two-dimensional posterior over (μ, κ). It is evaluated on a grid over
(logit μ, log κ), as BDA3 §5.3 does for the rat-tumour data and as R's ``bayesmeta``
does for few-study meta-analysis, without any sampling:

1. a coarse pass over the whole support finds where the posterior has mass;
2. a fine ``resolution × resolution`` grid of cells covers that region; each cell's mass
   is the posterior density at its midpoint times its area (midpoint rule, error O(h²)).
   When the coarse pass was too coarse for the data (a posterior, or a ridge of it, narrower
   than its cells: κ's upper tail, where θ_s all near μ pins μ tightly, or the whole posterior
   with tens of sources of thousands of trials each), the fine grid shows it: cells within
   e^-30 of the mode reach an edge of the region short of the support's limit, or fill
   fewer than an eighth of the cells along an axis.
   The region is then redrawn around the fine grid's mass (widened where the mass reached
   an edge) and the fine grid recomputed, until neither happens;
3. μ and κ are summarised from their marginal masses, with the CDF taken as piecewise
   linear within a cell; θ_s and θ_new are mixtures of Betas over the grid, whose means
   and sds are exact sums and whose quantiles come from the mixture CDF.

:func:`fit_exact` returns an :class:`ExactPosterior`; :meth:`ExactPosterior.accuracy`
refits on a grid twice as fine and reports how far each figure moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.special
from scipy.special import expit, logit

from attackprev.config import HDI_PROB
from attackprev.model.likelihood import log_binom_coef, log_marginal
from attackprev.model.priors import Prior, kappa_bounds

LOGIT_MU_RANGE = (-16.0, 16.0)  # μ from 1e-7 to 1 − 1e-7
MASS_CUTOFF = 30.0  # cells more than e^-30 below the mode carry no mass that matters
COARSE_CELLS = 96  # cells per axis of the first pass over the whole support
MAX_REDRAWS = 12  # times the fine grid's region may be redrawn before giving up


@dataclass(frozen=True)
class Summary:
    """Posterior summary of one scalar quantity."""

    mean: float
    sd: float
    median: float
    hdi_94: tuple[float, float]

    def to_dict(self) -> dict:
        """Plain-data form used in ``summary.json``."""
        return {
            "mean": self.mean,
            "sd": self.sd,
            "median": self.median,
            "hdi_94": [self.hdi_94[0], self.hdi_94[1]],
        }


def shortest_interval(quantile, prob: float = HDI_PROB, steps: int = 2001) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of a unimodal distribution, from its quantile function."""
    lower = np.linspace(0.0, 1.0 - prob, steps)
    lo, hi = quantile(lower), quantile(lower + prob)
    i = int(np.argmin(hi - lo))
    return float(lo[i]), float(hi[i])


def monotone_inverse(cdf: np.ndarray, x: np.ndarray):
    """The quantile function of a CDF tabulated at ``x``, as a monotone cubic (PCHIP).

    Linear interpolation would make the density piecewise constant, and the shortest
    interval of such a density has a bound on a cell edge: an O(h) error in the HDI. The
    monotone cubic keeps the density continuous, so HDI bounds converge like the rest.
    Flat stretches of the CDF (cells without mass) are dropped first.
    """
    from scipy.interpolate import PchipInterpolator

    keep = np.concatenate([[True], np.diff(cdf) > 1e-15])
    c, xs = cdf[keep], x[keep]
    if c[-1] < 1.0:
        c, xs = np.append(c, 1.0), np.append(xs, x[-1])
    spline = PchipInterpolator(c, xs)
    return lambda q: spline(np.clip(q, c[0], c[-1]))


def _log_posterior(
    prior: Prior,
    y: np.ndarray,
    n: np.ndarray,
    w: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
) -> np.ndarray:
    """log p(logit μ, log κ | y) up to a constant, on the outer grid u × v."""
    mu = expit(u)[:, None]
    kappa = np.exp(v)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = prior.logp(mu, kappa) + np.log(mu) + np.log1p(-mu) + np.log(kappa)
        for ys, ns, ws in zip(y, n, w, strict=True):
            lp = lp + log_marginal(ys, ns, ws, mu, kappa)
    return np.where(np.isfinite(lp), lp, -np.inf)


def _cell_centres(lo: float, hi: float, count: int) -> np.ndarray:
    h = (hi - lo) / count
    return lo + h * (np.arange(count) + 0.5)


def _region_with_mass(
    lp: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    u_limits: tuple[float, float],
    v_limits: tuple[float, float],
    min_cells: int = 0,
) -> tuple[tuple[float, float, float, float], bool]:
    """The (logit μ, log κ) box holding the cells of ``lp`` within MASS_CUTOFF of its maximum.

    The box is those cells' extent plus 1.5 cells each side, clipped to the limits; a side
    where the mass reaches the edge of the grid, more than half a cell short of its limit,
    is pushed out by the grid's whole width. ``settled`` is True when no side was pushed and the mass spans at
    least ``min_cells`` cells along each axis, i.e. when this grid already covers the region.
    """
    rows, cols = np.nonzero(lp > lp.max() - MASS_CUTOFF)
    box, settled = [], True
    for idx, x, (lo_lim, hi_lim) in ((rows, u, u_limits), (cols, v, v_limits)):
        h = x[1] - x[0]
        width = x[-1] - x[0] + h
        lo = x[idx.min()] - 1.5 * h
        hi = x[idx.max()] + 1.5 * h
        if idx.min() == 0 and x[0] - h > lo_lim:
            lo, settled = x[0] - h / 2 - width, False
        if idx.max() == len(x) - 1 and x[-1] + h < hi_lim:
            hi, settled = x[-1] + h / 2 + width, False
        if idx.max() - idx.min() + 1 < min_cells:
            settled = False
        box += [max(lo, lo_lim), min(hi, hi_lim)]
    return (box[0], box[1], box[2], box[3]), settled


@dataclass(frozen=True)
class ExactPosterior:
    """The grid posterior of (μ, κ) for one technique, and everything derived from it.

    Attributes
    ----------
    prior
        The hyperprior used.
    sources
        Source identifiers, in data order.
    successes, trials, weights
        The data and the source weights.
    logit_mu, log_kappa
        Cell centres of the grid.
    mass
        Posterior mass of each cell, shape (len(logit_mu), len(log_kappa)), summing to 1.
    resolution
        Cells per axis.
    log_evidence
        log p(y) (marginal likelihood), for proper priors; ``nan`` otherwise.
    """

    prior: Prior
    sources: tuple[str, ...]
    successes: np.ndarray
    trials: np.ndarray
    weights: np.ndarray
    logit_mu: np.ndarray
    log_kappa: np.ndarray
    mass: np.ndarray
    resolution: int
    log_evidence: float

    # -- μ and κ: one-dimensional marginals ------------------------------------------------
    def _marginal(self, axis: str) -> tuple[np.ndarray, np.ndarray]:
        if axis == "mu":
            return self.logit_mu, self.mass.sum(axis=1)
        return self.log_kappa, self.mass.sum(axis=0)

    def _cdf_edges(self, axis: str) -> tuple[np.ndarray, np.ndarray]:
        centres, p = self._marginal(axis)
        h = centres[1] - centres[0]
        edges = np.concatenate([[centres[0] - h / 2], centres + h / 2])
        cdf = np.concatenate([[0.0], np.cumsum(p)])
        cdf /= cdf[-1]
        return edges, cdf

    def _quantile_fn(self, axis: str, log_scale: bool = False):
        edges, cdf = self._cdf_edges(axis)
        inverse = monotone_inverse(cdf, edges)
        if log_scale:
            return inverse
        back = expit if axis == "mu" else np.exp
        return lambda q: back(inverse(q))

    def _summary_1d(self, axis: str) -> Summary:
        centres, p = self._marginal(axis)
        x = expit(centres) if axis == "mu" else np.exp(centres)
        mean = float(np.sum(p * x))
        sd = float(np.sqrt(max(np.sum(p * x**2) - mean**2, 0.0)))
        q = self._quantile_fn(axis)
        if axis == "kappa":  # heavy-tailed: the HDI of log κ, mapped back
            lo, hi = shortest_interval(self._quantile_fn(axis, log_scale=True))
            return Summary(mean, sd, float(q(0.5)), (float(np.exp(lo)), float(np.exp(hi))))
        return Summary(mean, sd, float(q(0.5)), shortest_interval(q))

    @cached_property
    def mu(self) -> Summary:
        """Posterior of the prevalence μ."""
        return self._summary_1d("mu")

    @cached_property
    def kappa(self) -> Summary:
        """Posterior of the concentration κ (its interval is the 94 % HDI of log κ, mapped back)."""
        return self._summary_1d("kappa")

    def cdf_mu(self, value: float) -> float:
        """P(μ ≤ value | data)."""
        edges, cdf = self._cdf_edges("mu")
        return float(np.interp(logit(np.clip(value, 1e-300, 1 - 1e-16)), edges, cdf))

    def mu_density(self) -> tuple[np.ndarray, np.ndarray]:
        """(μ, posterior density of μ) at the cell centres, for plots."""
        centres, p = self._marginal("mu")
        h = centres[1] - centres[0]
        mu = expit(centres)
        return mu, p / h / (mu * (1.0 - mu))

    # -- θ: mixtures of Betas over the grid ------------------------------------------------
    def _beta_params(self, source: int | None) -> tuple[np.ndarray, np.ndarray]:
        mu = expit(self.logit_mu)[:, None]
        kappa = np.exp(self.log_kappa)[None, :]
        a, b = mu * kappa, (1.0 - mu) * kappa
        if source is not None:
            w, y, n = self.weights[source], self.successes[source], self.trials[source]
            a, b = a + w * y, b + w * (n - y)
        return np.broadcast_to(a, self.mass.shape), np.broadcast_to(b, self.mass.shape)

    def _compressed_mixture(self, source: int | None, blocks: int = 32):
        """Merge the grid into ``blocks × blocks`` components for the mixture CDF."""
        f = max(self.resolution // blocks, 1)
        k = self.resolution // f
        m = self.mass[: k * f, : k * f].reshape(k, f, k, f)
        wm = m.sum(axis=(1, 3))
        uu = np.broadcast_to(self.logit_mu[: k * f, None], (k * f, k * f)).reshape(k, f, k, f)
        vv = np.broadcast_to(self.log_kappa[None, : k * f], (k * f, k * f)).reshape(k, f, k, f)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = (m * uu).sum(axis=(1, 3)) / wm
            v = (m * vv).sum(axis=(1, 3)) / wm
        keep = wm > 1e-12 * wm.max()
        mu, kappa, wm = expit(u[keep]), np.exp(v[keep]), wm[keep]
        a, b = mu * kappa, (1.0 - mu) * kappa
        if source is not None:
            w, y, n = self.weights[source], self.successes[source], self.trials[source]
            a, b = a + w * y, b + w * (n - y)
        return a, b, wm / wm.sum()

    def _theta_summary(self, source: int | None) -> Summary:
        a, b = self._beta_params(source)
        mean = float(np.sum(self.mass * a / (a + b)))
        second = float(np.sum(self.mass * a * (a + 1) / ((a + b) * (a + b + 1))))
        sd = float(np.sqrt(max(second - mean**2, 0.0)))
        ca, cb, cw = self._compressed_mixture(source)

        def cdf(z: np.ndarray) -> np.ndarray:
            return scipy.special.betainc(ca[:, None], cb[:, None], expit(z)[None, :]).T @ cw

        coarse = np.linspace(-36.0, 12.0, 49)
        c = cdf(coarse)
        lo_i = max(int(np.searchsorted(c, 1e-5)) - 1, 0)
        hi_i = min(int(np.searchsorted(c, 1 - 1e-5)) + 1, len(coarse) - 1)
        z = np.linspace(coarse[lo_i], coarse[hi_i], 160)
        cz = np.maximum.accumulate(cdf(z))
        # mass below the first point is treated as sitting at θ ≈ 0
        z = np.concatenate([[-745.0], z, [40.0]])
        cz = np.concatenate([[0.0], cz, [1.0]])

        inverse = monotone_inverse(cz, z)

        def quantile(q):
            return expit(inverse(q))

        return Summary(mean, sd, float(quantile(0.5)), shortest_interval(quantile))

    @cached_property
    def theta_new(self) -> Summary:
        """Posterior predictive rate of a new source, θ_new ~ Beta(μκ, (1 − μ)κ)."""
        return self._theta_summary(None)

    @cached_property
    def theta(self) -> dict[str, Summary]:
        """Posterior of each source's rate θ_s."""
        return {s: self._theta_summary(i) for i, s in enumerate(self.sources)}

    # -- comparison and accuracy ----------------------------------------------------------
    def compare(self, point_estimate: float) -> dict:
        """Where a point estimate of μ falls in the posterior."""
        below = self.cdf_mu(point_estimate)
        lo, hi = self.mu.hdi_94
        return {
            "point_estimate": point_estimate,
            "percentile": 100.0 * below,
            "prob_greater": 1.0 - below,
            "inside_hdi_94": bool(lo <= point_estimate <= hi),
        }

    def figures(self) -> dict[str, float]:
        """Every reported number, flat, for accuracy checks."""
        out: dict[str, float] = {}
        items = {"mu": self.mu, "theta_new": self.theta_new} | {f"theta[{s}]": v for s, v in self.theta.items()}
        for name, s in items.items():
            out |= {
                f"{name}.mean": s.mean,
                f"{name}.sd": s.sd,
                f"{name}.median": s.median,
                f"{name}.hdi_lo": s.hdi_94[0],
                f"{name}.hdi_hi": s.hdi_94[1],
            }
        return out

    def accuracy(self) -> dict:
        """Refit on a grid twice as fine; the largest change of any figure bounds the error.

        The changes are differences of nearly equal numbers, so only their first digits mean
        anything (the last ones move with the processor's vector maths): they are rounded to
        two significant figures.
        """
        finer = fit_exact(
            self.successes,
            self.trials,
            self.prior,
            sources=self.sources,
            weights=self.weights,
            resolution=2 * self.resolution,
        )
        a, b = self.figures(), finer.figures()
        moved = {k: abs(a[k] - b[k]) for k in a}
        worst = max(moved, key=moved.get)
        return {
            "resolution": self.resolution,
            "refined_resolution": finer.resolution,
            "max_abs_change": float(f"{moved[worst]:.2g}"),
            "max_abs_change_figure": worst,
            "mu_mean_change": float(f"{moved['mu.mean']:.2g}"),
        }


def fit_exact(
    successes,
    trials,
    prior: Prior,
    sources: tuple[str, ...] | list[str] | None = None,
    weights=None,
    resolution: int = 256,
) -> ExactPosterior:
    """Exact posterior of (μ, κ) for one technique's sources.

    Parameters
    ----------
    successes, trials
        Counts y_s out of n_s, one per source.
    prior
        A hyperprior from :mod:`attackprev.model.priors`.
    sources
        Names of the sources (default ``s0, s1, ...``).
    weights
        Power-prior weights w_s in [0, 1] (default 1).
    resolution
        Cells per axis of the fine grid.

    Returns
    -------
    ExactPosterior
    """
    y = np.asarray(successes, float)
    n = np.asarray(trials, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    names = tuple(sources) if sources is not None else tuple(f"s{i}" for i in range(len(y)))
    k_lo, k_hi = kappa_bounds(prior)
    v_range = (np.log(k_lo), np.log(k_hi))

    # pass 1: find the region with mass
    cu = _cell_centres(*LOGIT_MU_RANGE, COARSE_CELLS)
    cv = _cell_centres(*v_range, COARSE_CELLS)
    lp = _log_posterior(prior, y, n, w, cu, cv)
    if not np.isfinite(lp.max()):
        raise ValueError("the posterior has no mass on the grid (check the data)")
    box, _ = _region_with_mass(lp, cu, cv, LOGIT_MU_RANGE, v_range)

    # pass 2: the fine grid, its region redrawn while the coarse pass proves too coarse
    for _ in range(MAX_REDRAWS + 1):
        u = _cell_centres(box[0], box[1], resolution)
        v = _cell_centres(box[2], box[3], resolution)
        lp = _log_posterior(prior, y, n, w, u, v)
        box, settled = _region_with_mass(lp, u, v, LOGIT_MU_RANGE, v_range, resolution // 8)
        if settled:
            break
    else:
        raise ValueError(f"the posterior's region did not settle after {MAX_REDRAWS} refinements of the grid")
    top = lp.max()
    dens = np.exp(lp - top)
    cell = (u[1] - u[0]) * (v[1] - v[0])
    total = dens.sum() * cell
    log_evidence = np.nan
    if prior.proper:
        log_evidence = float(top + np.log(total) + np.sum(w * log_binom_coef(n, y)) + prior.log_kappa_normaliser)
    return ExactPosterior(
        prior=prior,
        sources=names,
        successes=y,
        trials=n,
        weights=w,
        logit_mu=u,
        log_kappa=v,
        mass=dens / dens.sum(),
        resolution=resolution,
        log_evidence=log_evidence,
    )
