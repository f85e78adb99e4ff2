"""The beta-binomial likelihood, written once for numpy and PyTensor.

For one technique with sources s = 1..S, θ_s ~ Beta(α, β) with α = μκ, β = (1 − μ)κ and
y_s ~ Binomial(n_s, θ_s). Integrating θ_s out gives the beta-binomial marginal

    log p(y_s | μ, κ) = log C(n_s, y_s) + log B(α + y_s, β + n_s − y_s) − log B(α, β).

A source weight w_s ∈ [0, 1] tempers that source's binomial likelihood (a power prior,
Ibrahim & Chen 2000): Binomial(y_s | n_s, θ_s)^w_s. Its marginal keeps the same closed form
with fractional counts, w_s y_s successes out of w_s n_s trials, so w_s = 0 drops the source
and w_s = 1 counts it fully. Given (μ, κ) each θ_s is then Beta(α + w_s y_s, β + w_s (n_s − y_s))
and a new source's rate θ_new is Beta(α, β).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.special

NUMPY_SPECIAL = SimpleNamespace(gammaln=scipy.special.gammaln)


def log_binom_coef(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log C(n, k) in numpy (data only, so never needed symbolically)."""
    n, k = np.asarray(n, float), np.asarray(k, float)
    return scipy.special.gammaln(n + 1) - scipy.special.gammaln(k + 1) - scipy.special.gammaln(n - k + 1)


def log_beta(a: Any, b: Any, m: SimpleNamespace = NUMPY_SPECIAL) -> Any:
    """log B(a, b)."""
    return m.gammaln(a) + m.gammaln(b) - m.gammaln(a + b)


def log_marginal(
    successes: Any,
    trials: Any,
    weight: Any,
    mu: Any,
    kappa: Any,
    m: SimpleNamespace = NUMPY_SPECIAL,
) -> Any:
    """Tempered beta-binomial log-likelihood of each source, θ integrated out.

    Parameters
    ----------
    successes, trials, weight
        y_s, n_s and w_s, broadcastable against ``mu`` and ``kappa``.
    mu, kappa
        Prevalence and concentration.
    m
        Namespace with ``gammaln`` (scipy's by default, PyTensor's in the PyMC model).

    Returns
    -------
    The log-likelihood per source, without the constant w_s log C(n_s, y_s).
    """
    alpha = mu * kappa
    beta = (1.0 - mu) * kappa
    return log_beta(alpha + weight * successes, beta + weight * (trials - successes), m) - log_beta(alpha, beta, m)


def theta_conditional(successes: Any, trials: Any, weight: Any, mu: Any, kappa: Any) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters of θ_s given (μ, κ) and the data: (α + w y, β + w (n − y))."""
    alpha = np.asarray(mu) * np.asarray(kappa)
    beta = (1.0 - np.asarray(mu)) * np.asarray(kappa)
    return alpha + weight * successes, beta + weight * (trials - successes)
