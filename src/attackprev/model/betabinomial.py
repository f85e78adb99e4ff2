"""The hierarchical Beta-Binomial model of one technique, in PyMC.

For a technique reported by sources s = 1..S, with y_s cases out of n_s trials::

    μ      ~ Beta(a, b)                       prevalence: the mean rate over sources
    κ      ~ p(κ | μ)                         concentration: how closely sources agree
    θ_s    ~ Beta(μκ, (1 − μ)κ)               source s's own rate
    y_s    ~ Binomial(n_s, θ_s)^w_s           w_s ∈ [0, 1]: the source's weight
    θ_new  ~ Beta(μκ, (1 − μ)κ)               the rate a new source would see

The hyperprior p(μ, κ) comes from :mod:`attackprev.model.priors`. NUTS samples (logit μ, log κ) with
each θ_s integrated out (the beta-binomial marginal of :mod:`attackprev.model.likelihood`), which has
no funnel; θ_s and θ_new are then drawn from their closed-form conditionals, one per
posterior draw (:func:`draw_rates`). The same likelihood and prior code is used by the exact
grid engine (:mod:`attackprev.inference.exact`), which is how the sampler is checked.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from attackprev.model.likelihood import log_marginal, theta_conditional
from attackprev.model.priors import Prior, kappa_bounds

PYTENSOR_MATH = SimpleNamespace(
    log=pt.log, log1p=pt.log1p, sqrt=pt.sqrt, erf=pt.erf, gammaln=pt.gammaln, where=pt.switch
)


def build_model(
    successes: np.ndarray,
    trials: np.ndarray,
    sources: list[str],
    prior: Prior,
    weights: np.ndarray | None = None,
) -> pm.Model:
    """The single-technique model with θ integrated out.

    Parameters
    ----------
    successes, trials
        y_s and n_s, one per source.
    sources
        Source identifiers (the ``source`` coordinate).
    prior
        Hyperprior p(μ, κ).
    weights
        Power-prior weights w_s in [0, 1]; 1 when omitted.

    Returns
    -------
    pm.Model
        Free variables ``mu`` and ``log_kappa``; ``kappa`` is deterministic. The data are
        ``pm.Data`` (``successes``, ``trials``, ``weight``) so one compiled model can be
        refitted to other data of the same shape.
    """
    weights = np.ones(len(sources)) if weights is None else np.asarray(weights, float)
    k_lo, k_hi = kappa_bounds(prior)
    with pm.Model(coords={"source": list(sources)}) as model:
        y = pm.Data("successes", np.asarray(successes, "float64"), dims="source")
        n = pm.Data("trials", np.asarray(trials, "float64"), dims="source")
        w = pm.Data("weight", weights, dims="source")
        mu = pm.Beta("mu", prior.mu_alpha, prior.mu_beta)
        log_kappa = pm.Uniform("log_kappa", np.log(k_lo), np.log(k_hi))
        kappa = pm.Deterministic("kappa", pt.exp(log_kappa))
        # p(κ | μ) from the prior, with the Jacobian of κ = exp(log κ); the Uniform above
        # only sets the support. p(μ) is the Beta.
        pm.Potential("kappa_prior", prior.logp_kappa(mu, kappa, PYTENSOR_MATH) + log_kappa)
        pm.Potential("likelihood", pt.sum(log_marginal(y, n, w, mu, kappa, PYTENSOR_MATH)))
    return model


def draw_rates(
    mu: np.ndarray,
    kappa: np.ndarray,
    successes: np.ndarray,
    trials: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw θ_s and θ_new given posterior draws of (μ, κ).

    Parameters
    ----------
    mu, kappa
        Posterior draws, any shape ``D``.
    successes, trials, weights
        Per-source data, shape ``(S,)``.
    rng
        Random generator (seeded by the caller).

    Returns
    -------
    theta
        Shape ``D + (S,)``: θ_s ~ Beta(μκ + w y, (1 − μ)κ + w (n − y)).
    theta_new
        Shape ``D``: θ_new ~ Beta(μκ, (1 − μ)κ).
    """
    theta = rng.beta(*theta_conditional(successes, trials, weights, mu[..., None], kappa[..., None]))
    theta_new = rng.beta(*theta_conditional(0.0, 0.0, 0.0, mu, kappa))  # no data: the population's Beta
    return theta, theta_new
