"""Data sets drawn from the prior predictive distribution of the model.

For each replicate r::

    (μ_r, κ_r) ~ p(μ, κ)                      the hyperprior, truncated to the model's κ support
    θ_rs       ~ Beta(μ_r κ_r, (1 − μ_r) κ_r)  s = 1..S
    y_rs       ~ Binomial(n_s, θ_rs)
    θ_new,r    ~ Beta(μ_r κ_r, (1 − μ_r) κ_r)  a further source, never observed

The PyMC model and the grid engine both restrict κ to :func:`attackprev.model.priors.kappa_bounds`
(10⁻³ to 10⁷ for the default prior), so the prior they condition on is the truncated one;
the truth is drawn from that same truncated prior, by rejection. Otherwise a rare draw with
κ outside the support would have posterior rank 0 or 1 by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attackprev.model.priors import Prior, kappa_bounds

#: The T1102 design: M-Trends and the SoK sample, 227 and 951 cases.
T1102_SUCCESSES = np.array([9.0, 47.0])
T1102_TRIALS = np.array([227.0, 951.0])


@dataclass(frozen=True)
class SimulatedData:
    """Replicated data sets with the parameter values that generated them.

    Attributes
    ----------
    trials
        n_s, shape (S,), the same for every replicate.
    successes
        y_rs, shape (R, S).
    mu, kappa, theta_new
        True μ_r, κ_r and θ_new,r, shape (R,).
    theta
        True θ_rs, shape (R, S).
    """

    trials: np.ndarray
    successes: np.ndarray
    mu: np.ndarray
    kappa: np.ndarray
    theta: np.ndarray
    theta_new: np.ndarray

    @property
    def replicates(self) -> int:
        """Number of data sets R."""
        return len(self.mu)

    @property
    def sources(self) -> int:
        """Number of sources S."""
        return len(self.trials)

    def subset(self, count: int) -> SimulatedData:
        """The first ``count`` replicates."""
        return SimulatedData(
            trials=self.trials,
            successes=self.successes[:count],
            mu=self.mu[:count],
            kappa=self.kappa[:count],
            theta=self.theta[:count],
            theta_new=self.theta_new[:count],
        )


def design_trials(sources: int, seed: int, low: int = 50, high: int = 1000) -> np.ndarray:
    """Trial counts n_s for a design with ``sources`` sources.

    Two sources use T1102's (227, 951); otherwise n_s is drawn once, uniformly on the
    integers ``low..high``, from a generator seeded by ``seed`` and ``sources``.
    """
    if sources == 2:
        return T1102_TRIALS.copy()
    rng = np.random.default_rng([seed, sources])
    return rng.integers(low, high + 1, size=sources).astype(float)


def draw_prior(prior: Prior, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw (μ, κ) from ``prior`` truncated to the model's κ support, by rejection."""
    k_lo, k_hi = kappa_bounds(prior)
    mu, kappa = prior.sample(rng, size)
    while np.any(bad := (kappa < k_lo) | (kappa > k_hi)):
        mu[bad], kappa[bad] = prior.sample(rng, int(bad.sum()))
    return mu, kappa


def simulate(prior: Prior, trials: np.ndarray, replicates: int, seed: int) -> SimulatedData:
    """Draw ``replicates`` data sets from the prior predictive distribution.

    Parameters
    ----------
    prior
        The hyperprior p(μ, κ); it must be proper.
    trials
        n_s, one per source.
    replicates
        Number of data sets R.
    seed
        Seed; replicate r has its own generator seeded by (seed, S, r), so the first k
        replicates are the same whatever ``replicates`` is.

    Returns
    -------
    SimulatedData
    """
    trials = np.asarray(trials, float)
    size = len(trials)
    mu, kappa, theta_new = np.empty(replicates), np.empty(replicates), np.empty(replicates)
    theta, successes = np.empty((replicates, size)), np.empty((replicates, size))
    for r in range(replicates):
        rng = np.random.default_rng([seed, size, r])
        (mu[r],), (kappa[r],) = draw_prior(prior, rng, 1)
        a, b = mu[r] * kappa[r], (1.0 - mu[r]) * kappa[r]
        theta[r] = rng.beta(a, b, size=size)
        successes[r] = rng.binomial(trials.astype(np.int64), theta[r])
        theta_new[r] = rng.beta(a, b)
    return SimulatedData(trials, successes, mu, kappa, theta, theta_new)
