"""Fitting one technique by MCMC: sampling, derived rates and provenance.

:func:`sample_technique` returns an ``xarray.DataTree`` with the groups ``posterior``
(``mu``, ``kappa``, ``log_kappa``, ``theta[source]``, ``theta_new``), ``sample_stats``,
``prior`` (draws of the same quantities under the hyperprior, when it is proper),
``observed_data`` and ``posterior_predictive`` (``y[source]``), and ``constant_data``
(``trials``, ``weight``). Its attributes record the priors, a hash of the data, the seed,
the sampler settings and package versions (:func:`provenance`), so a saved posterior says
what produced it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from attackprev.config import DEFAULT_SEED
from attackprev.inference.diagnostics import package_versions
from attackprev.model.priors import Prior


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings (kept apart from the priors).

    Sampling this two-parameter posterior takes well under a second; compiling the model
    takes most of a run. 4 × 4000 draws give a bulk ESS of μ above 1000 with room to
    spare (the posterior of (logit μ, log κ) is funnel-shaped with two sources, so NUTS
    mixes at ~0.15 effective draws per draw), and ``target_accept = 0.95`` removes the
    occasional divergence at the funnel's neck.
    """

    draws: int = 4000
    tune: int = 1000
    chains: int = 4
    seed: int = DEFAULT_SEED
    target_accept: float = 0.95


def provenance(prior: Prior, data_hash: str, settings: SamplerSettings, weights: dict[str, float]) -> dict:
    """Attributes that say what produced a posterior (all JSON strings or scalars)."""
    return {
        "priors": json.dumps(prior.to_dict(), ensure_ascii=False),
        "data_sha256": data_hash,
        "seed": settings.seed,
        "sampler": json.dumps(asdict(settings)),
        "weights": json.dumps(weights),
        "versions": json.dumps(package_versions()),
    }


def run_nutpie(compiled, settings: SamplerSettings, seed: int | None = None, progress: bool = False) -> xr.DataTree:
    """``nutpie.sample`` with the project's settings (``seed`` overrides ``settings.seed``)."""
    import nutpie

    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.seed if seed is None else seed,
        target_accept=settings.target_accept,
        progress_bar=progress,
    )


def sample_technique(
    successes: np.ndarray,
    trials: np.ndarray,
    sources: list[str],
    prior: Prior,
    settings: SamplerSettings,
    weights: np.ndarray | None = None,
    progress: bool = False,
) -> xr.DataTree:
    """Sample the single-technique model with nutpie and add the derived quantities.

    Parameters
    ----------
    successes, trials, sources
        One technique's data, one entry per source.
    prior
        Hyperprior.
    settings
        Draws, chains, seed.
    weights
        Source weights (1 when omitted).
    progress
        Show nutpie's progress bar.

    Returns
    -------
    xarray.DataTree
    """
    from attackprev.inference.nutpie_cache import compile_pymc_model
    from attackprev.model.betabinomial import build_model

    y = np.asarray(successes, float)
    n = np.asarray(trials, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    model = build_model(y, n, sources, prior, w)
    compiled = compile_pymc_model(model)  # nutpie's, with its compiled code cached on disk
    tree = run_nutpie(compiled, settings, progress=progress)
    return add_derived(tree, y, n, w, sources, prior, settings)


def add_derived(
    tree: xr.DataTree,
    y: np.ndarray,
    n: np.ndarray,
    w: np.ndarray,
    sources: list[str],
    prior: Prior,
    settings: SamplerSettings,
) -> xr.DataTree:
    """Add θ_s, θ_new, the prior, the data and posterior predictive draws to a fit."""
    from attackprev.model.betabinomial import draw_rates

    rng = np.random.default_rng([settings.seed, 1])
    post = tree["posterior"].to_dataset()
    mu, kappa = post["mu"].values, post["kappa"].values
    theta, theta_new = draw_rates(mu, kappa, y, n, w, rng)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "source": list(sources)}
    post["theta"] = xr.DataArray(theta, dims=("chain", "draw", "source"), coords=coords)
    post["theta_new"] = xr.DataArray(theta_new, dims=("chain", "draw"))
    post = post[["mu", "kappa", "log_kappa", "theta", "theta_new"]]
    groups = {
        "posterior": post,
        "sample_stats": tree["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"y": ("source", y.astype(int))}, coords={"source": list(sources)}),
        "constant_data": xr.Dataset(
            {"trials": ("source", n.astype(int)), "weight": ("source", w)}, coords={"source": list(sources)}
        ),
        "posterior_predictive": xr.Dataset(
            {"y": (("chain", "draw", "source"), rng.binomial(n.astype(int), theta))}, coords=coords
        ),
    }
    if prior.proper:
        size = settings.draws
        pmu, pkappa = prior.sample(rng, size)
        ptheta, ptheta_new = draw_rates(pmu, pkappa, y, n, np.zeros_like(w), rng)
        groups["prior"] = xr.Dataset(
            {
                "mu": (("chain", "draw"), pmu[None]),
                "kappa": (("chain", "draw"), pkappa[None]),
                # the C library's log, not NumPy's: NumPy's vector code differs in the last bit between
                # AVX-512 and AVX2 processors, and the saved file should be the same on both
                "log_kappa": (("chain", "draw"), np.array([math.log(k) for k in pkappa])[None]),
                "theta": (("chain", "draw", "source"), ptheta[None]),
                "theta_new": (("chain", "draw"), ptheta_new[None]),
            },
            coords={"chain": [0], "draw": np.arange(size), "source": list(sources)},
        )
    return xr.DataTree.from_dict(groups)
