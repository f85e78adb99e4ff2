"""An independent reference for the single-technique posterior of μ: brute-force quadrature on a fixed fine grid.

The exact engine (:mod:`attackprev.inference.exact`) finds where the posterior has mass, puts an adaptive grid of
cells there and reads summaries off a piecewise-linear CDF and a monotone-cubic quantile function. This helper does
none of that: it evaluates the posterior density on one fixed, much finer grid over (logit μ, log κ) with scipy's
``betaln`` (not :mod:`attackprev.model.likelihood`), integrates it with the trapezoid rule and reads the mean and
tail probabilities of μ straight from the marginal. Only the prior density is shared with the package: it is the
model's definition, not a computation under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.stats
from scipy.integrate import cumulative_trapezoid, trapezoid
from scipy.special import betaln, expit, logit

from attackprev.model.priors import Prior, kappa_bounds


@dataclass(frozen=True)
class GridMu:
    """The posterior marginal of μ on a grid of logit μ.

    Attributes
    ----------
    u
        Grid of logit μ.
    density
        Posterior density of logit μ at ``u``, integrating to 1.
    """

    u: np.ndarray
    density: np.ndarray

    @property
    def mean(self) -> float:
        """E[μ | data]."""
        return float(trapezoid(expit(self.u) * self.density, self.u))

    def prob_above(self, point: float) -> float:
        """P(μ > point | data), the CDF interpolated linearly between grid nodes."""
        cdf = cumulative_trapezoid(self.density, self.u, initial=0.0)
        return float(1.0 - np.interp(logit(point), self.u, cdf))


def grid_mu(
    successes: Sequence[float],
    trials: Sequence[float],
    prior: Prior,
    weights: Sequence[float] | None = None,
    points: tuple[int, int] = (4001, 801),
    logit_range: tuple[float, float] = (-16.0, 16.0),
) -> GridMu:
    """The posterior of μ for one technique's sources, by brute force.

    Parameters
    ----------
    successes, trials
        Counts y_s of n_s, one per source.
    prior
        The hyperprior p(μ, κ) (a density in dμ dκ).
    weights
        Power-prior weights w_s (default 1): the binomial likelihood of source s given its rate θ_s is raised to
        w_s, so with θ_s integrated out it counts w_s y_s successes of w_s n_s trials.
    points
        Grid nodes along logit μ and along log κ.
    logit_range
        The range of logit μ covered.

    Returns
    -------
    GridMu
        The normalised marginal density of logit μ.
    """
    u = np.linspace(*logit_range, points[0])
    v = np.linspace(*np.log(kappa_bounds(prior)), points[1])
    joint = _joint(prior, successes, trials, weights, u, v)
    marginal = trapezoid(joint, v, axis=1)
    return GridMu(u, marginal / trapezoid(marginal, u))


def _joint(prior: Prior, successes, trials, weights, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The unnormalised posterior density of (logit μ, log κ) on the grid u × v (maximum 1)."""
    y = np.asarray(successes, float)
    n = np.asarray(trials, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    mu, kappa = expit(u)[:, None], np.exp(v)[None, :]
    a, b = mu * kappa, (1.0 - mu) * kappa
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lp = prior.logp(mu, kappa) + np.log(mu) + np.log1p(-mu) + v[None, :]  # Jacobian of (logit μ, log κ)
        for ys, ns, ws in zip(y, n, w, strict=True):
            lp = lp + betaln(a + ws * ys, b + ws * (ns - ys)) - betaln(a, b)
    lp = np.where(np.isfinite(lp), lp, -np.inf)
    return np.exp(lp - lp.max())


def grid_summaries(prior: Prior, successes, trials, weights, cells: int = 1500) -> dict:
    """Every summary the exact engine reports, from cell masses on a finer, wider grid than the engine's.

    Returns
    -------
    dict
        ``"mu"`` and ``"kappa"``: (mean, sd, median, 94 % HDI), the HDI of κ found on log κ as reported;
        ``"theta_new"`` and ``"theta_<i>"`` per source: (mean, sd) of the Beta mixture.
    """
    y, n = np.asarray(successes, float), np.asarray(trials, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    u = np.linspace(-14.0, 6.0, cells)
    v = np.linspace(*np.log(kappa_bounds(prior)), cells)
    p = _joint(prior, y, n, w, u, v)
    p /= p.sum()
    mu, kappa = expit(u)[:, None], np.exp(v)[None, :]
    a, b = mu * kappa, (1 - mu) * kappa

    def summary(x, mass, log_hdi=False):
        order = np.argsort(x)
        x, mass = x[order], mass[order]
        mean = float(np.sum(mass * x))
        sd = float(np.sqrt(np.sum(mass * (x - mean) ** 2)))
        mid = np.cumsum(mass) - mass / 2
        median = float(np.interp(0.5, mid, x))
        t = np.log(x) if log_hdi else x
        q = np.linspace(0, 0.06, 601)
        lo, hi = np.interp(q, mid, t), np.interp(q + 0.94, mid, t)
        i = int(np.argmin(hi - lo))
        bounds = (np.exp(lo[i]), np.exp(hi[i])) if log_hdi else (lo[i], hi[i])
        return mean, sd, median, bounds

    out = {"mu": summary(expit(u), p.sum(axis=1)), "kappa": summary(np.exp(v), p.sum(axis=0), log_hdi=True)}
    for i, (ys, ns, ws) in enumerate([(0, 0, 0), *zip(y, n, w, strict=True)]):
        aa, bb = a + ws * ys, b + ws * (ns - ys)
        m1 = np.sum(p * aa / (aa + bb))
        m2 = np.sum(p * aa * (aa + 1) / ((aa + bb) * (aa + bb + 1)))
        out["theta_new" if i == 0 else f"theta_{i - 1}"] = (m1, np.sqrt(m2 - m1**2))
    return out


def beta_hdi(a: float, b: float, prob: float = 0.94) -> tuple[float, float]:
    """The shortest interval holding ``prob`` of Beta(a, b), by minimising its width over the lower tail's mass."""
    dist = scipy.stats.beta(a, b)
    res = scipy.optimize.minimize_scalar(
        lambda q: dist.ppf(q + prob) - dist.ppf(q), bounds=(0.0, 1.0 - prob), method="bounded", options={"xatol": 1e-10}
    )
    return float(dist.ppf(res.x)), float(dist.ppf(res.x + prob))
