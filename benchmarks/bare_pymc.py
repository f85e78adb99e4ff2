"""The baseline: T1102's two-source model as a user would write it in twenty lines of PyMC.

Same model as ``attackprev``'s single-technique fit: μ ~ Beta(1, 1); the between-source
spread on the logit scale τ = 1/sqrt(μ(1 − μ)(κ + 1)) ~ HalfNormal(1), truncated to κ > 0
(``attackprev.model.priors`` default ``halfnormal1``); θ integrated out (beta-binomial marginal).
4 chains × 1000 draws after 1000 tuning steps; ``pm.sample`` picks nutpie by itself.
"""

import arviz as az
import numpy as np
import pymc as pm

y = np.array([9, 47])  # M-Trends 2020 attack lifecycles, SoK Windows malware families
n = np.array([227, 951])

with pm.Model(coords={"source": ["mtrends2020", "sok2019_windows_malware"]}):
    mu = pm.Beta("mu", 1.0, 1.0)
    tau = pm.Truncated("tau", pm.HalfNormal.dist(1.0), lower=0.0, upper=1.0 / pm.math.sqrt(mu * (1.0 - mu)))
    kappa = pm.Deterministic("kappa", 1.0 / (tau**2 * mu * (1.0 - mu)) - 1.0)
    pm.BetaBinomial("y", alpha=mu * kappa, beta=(1.0 - mu) * kappa, n=n, observed=y, dims="source")
    idata = pm.sample(draws=1000, tune=1000, chains=4, random_seed=20201102, progressbar=False)

print(az.summary(idata, var_names=["mu", "kappa", "tau"]).to_string())
