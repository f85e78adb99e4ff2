"""Summaries of draws and of single counts: the shortest interval, mean/sd/median, Jeffreys intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attackprev.config import HDI_PROB


def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """Shortest interval holding ``prob`` of the draws."""
    x = np.sort(np.asarray(draws).ravel())
    k = math.ceil(prob * x.size)
    widths = x[k - 1 :] - x[: x.size - k + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k - 1])


def draw_summary(x: np.ndarray, prob: float = HDI_PROB) -> dict:
    """Mean, sd, median and the ``prob`` HDI of a set of draws."""
    x = np.asarray(x).ravel()
    return {
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)),
        "median": float(np.median(x)),
        "hdi_94": list(hdi(x, prob)),
    }


def jeffreys_interval(successes, trials, prob: float = HDI_PROB):
    """Equal-tailed Jeffreys interval for a binomial rate (Brown, Cai & DasGupta 2001).

    Scalars give a ``(lo, hi)`` pair of floats; arrays give a pair of arrays. The bound at
    0 successes is 0 and at ``trials`` successes is 1.
    """
    import scipy.stats

    y = np.asarray(successes, float)
    n = np.asarray(trials, float)
    tail = (1.0 - prob) / 2.0
    lo = np.where(y == 0, 0.0, scipy.stats.beta.ppf(tail, y + 0.5, n - y + 0.5))
    hi = np.where(y == n, 1.0, scipy.stats.beta.ppf(1.0 - tail, y + 0.5, n - y + 0.5))
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


@dataclass(frozen=True)
class Headline:
    """The multi-technique posterior of one technique, when it is the report's headline.

    Attributes
    ----------
    mu, theta_new
        Draws of the technique's μ_t and θ_new,t, shape ``(chain, draw)``.
    label
        Words naming the model in legends and row labels, e.g. ``"multi-technique"``.
    """

    mu: np.ndarray
    theta_new: np.ndarray
    label: str = "multi-technique"
