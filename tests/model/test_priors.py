"""The hyperpriors' labels say what they put a prior on."""

from __future__ import annotations

import numpy as np
import scipy.stats


def test_single_technique_prior_label_states_the_delta_method():
    """τ = 1/√(μ(1−μ)(κ+1)) understates the logit spread of a rare technique: 1.30, not 1, at μ = 0.05."""
    from attackprev.model.priors import PRIORS, logit_spread

    mu = 0.05
    kappa = 1.0 / (mu * (1 - mu)) - 1.0  # τ = 1
    assert np.isclose(logit_spread(mu, kappa), 1.0)
    draws = scipy.stats.beta(mu * kappa, (1 - mu) * kappa).rvs(400_000, random_state=1)
    exact = np.std(np.log(draws / (1 - draws)))
    assert abs(exact - 1.30) < 0.01
    assert "delta-method" in PRIORS["halfnormal1"].label and "1.30" in PRIORS["halfnormal1"].rationale
