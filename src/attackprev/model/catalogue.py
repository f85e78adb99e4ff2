"""Every technique at once: sources within techniques, techniques within the catalogue.

With two sources, how far sources disagree (κ) cannot be learned from one technique.
The same publications report many techniques, so a model over the whole catalogue learns
the heterogeneity from every technique that has more than one source and lends it to the
others. For observation i (technique t = t[i], source s = s[i]) with y_i of n_i::

    logit μ_t  = m + σ z_t,          z_t ~ Normal(0, 1)          prevalence of technique t
    log κ_t    = ℓ (+ ς w_t),        w_t ~ Normal(0, 1)          concentration (shared or pooled)
    logit p_i  = logit μ_t (+ δ_s)                                 source s's expected rate
    y_i        ~ BetaBinomial(n_i, p_i κ_t, (1 − p_i) κ_t)        θ_i integrated out

``δ_s`` is a systematic offset of source s relative to the *reference* source (δ_ref = 0;
M-Trends 2020's attack lifecycles by default, the population closest to "an intrusion uses
the technique"), so μ_t is the prevalence on the reference source's scale. Whether the
offsets and the pooled κ_t earn their place is decided by PSIS-LOO (:func:`compare_variants`).
The hyperpriors are in :class:`attackprev.model.priors.CataloguePriors`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from attackprev.evidence.tables import Observation
from attackprev.model.betabinomial import PYTENSOR_MATH
from attackprev.model.likelihood import log_binom_coef, log_marginal
from attackprev.model.priors import CataloguePriors


@dataclass(frozen=True)
class Variant:
    """One model structure in the comparison."""

    name: str
    source_offsets: bool
    pooled_kappa: bool
    description: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("shared", False, False, "one κ for all techniques, no source offsets"),
        Variant("offsets", True, False, "one κ, a systematic offset per source"),
        Variant("pooled", False, True, "κ_t partially pooled on the log scale, no offsets"),
        Variant("offsets_pooled", True, True, "κ_t partially pooled and a systematic offset per source"),
    )
}


@dataclass(frozen=True)
class CatalogueData:
    """The observations in array form, with the index maps."""

    techniques: list[str]
    sources: list[str]
    technique_idx: np.ndarray
    source_idx: np.ndarray
    successes: np.ndarray
    trials: np.ndarray
    labels: list[str]
    reference: str

    @classmethod
    def from_observations(cls, observations: list[Observation], reference: str = "mtrends2020") -> CatalogueData:
        """Arrays from resolved observations; the reference source goes first."""
        techniques = sorted({o.technique_id for o in observations})
        others = sorted({o.source_id for o in observations} - {reference})
        sources = ([reference] if any(o.source_id == reference for o in observations) else []) + others
        t_pos = {t: i for i, t in enumerate(techniques)}
        s_pos = {s: i for i, s in enumerate(sources)}
        return cls(
            techniques=techniques,
            sources=sources,
            technique_idx=np.array([t_pos[o.technique_id] for o in observations]),
            source_idx=np.array([s_pos[o.source_id] for o in observations]),
            successes=np.array([o.successes for o in observations], float),
            trials=np.array([o.trials for o in observations], float),
            labels=[f"{o.technique_id}|{o.source_id}" for o in observations],
            reference=sources[0],
        )

    def sources_per_technique(self) -> np.ndarray:
        """How many sources report each technique."""
        return np.bincount(self.technique_idx, minlength=len(self.techniques))


def build_catalogue_model(data: CatalogueData, priors: CataloguePriors, variant: Variant) -> pm.Model:
    """The multi-technique model (see the module docstring)."""
    coords = {
        "technique": data.techniques,
        "source": data.sources,
        "offset_source": data.sources[1:],
        "observation": data.labels,
    }
    with pm.Model(coords=coords) as model:
        t_idx = pm.Data("technique_idx", data.technique_idx, dims="observation")
        s_idx = pm.Data("source_idx", data.source_idx, dims="observation")
        y = pm.Data("successes", data.successes, dims="observation")
        n = pm.Data("trials", data.trials, dims="observation")

        m = pm.Normal("mu_logit_mean", priors.mu_logit_mean[0], priors.mu_logit_mean[1])
        sigma = pm.HalfNormal("mu_logit_sd", priors.mu_logit_sd)
        z = pm.Normal("mu_z", 0.0, 1.0, dims="technique")
        logit_mu = m + sigma * z
        pm.Deterministic("mu", pm.math.invlogit(logit_mu), dims="technique")

        ell = pm.Normal("log_kappa_mean", priors.log_kappa_mean[0], priors.log_kappa_mean[1])
        if variant.pooled_kappa:
            spread = pm.HalfNormal("log_kappa_sd", priors.log_kappa_sd)
            w = pm.Normal("kappa_z", 0.0, 1.0, dims="technique")
            log_kappa = ell + spread * w
        else:
            log_kappa = ell * pt.ones(len(data.techniques))
        kappa = pm.Deterministic("kappa", pt.exp(log_kappa), dims="technique")

        eta = logit_mu[t_idx]
        if variant.source_offsets and len(data.sources) > 1:
            free = pm.Normal("source_offset_free", 0.0, priors.source_offset_sd, dims="offset_source")
            delta = pm.Deterministic("source_offset", pt.concatenate([pt.zeros(1), free]), dims="source")
            eta = eta + delta[s_idx]
        p = pm.math.invlogit(eta)
        k = kappa[t_idx]
        pm.Potential("likelihood", pt.sum(log_marginal(y, n, 1.0, p, k, PYTENSOR_MATH)))
    return model


def _observation_rates(post: xr.Dataset, data: CatalogueData) -> np.ndarray:
    """p_i per draw, shape (chain, draw, observation)."""
    mu = post["mu"].values[..., data.technique_idx]
    eta = np.log(mu) - np.log1p(-mu)
    if "source_offset" in post:
        eta = eta + post["source_offset"].values[..., data.source_idx]
    return 1.0 / (1.0 + np.exp(-eta))


def add_catalogue_derived(tree: xr.DataTree, data: CatalogueData, seed: int) -> xr.DataTree:
    """Add θ_new per technique, θ per observation, the pointwise log-likelihood and data."""
    rng = np.random.default_rng([seed, 2])
    post = tree["posterior"].to_dataset()
    keep = [v for v in post.data_vars if not v.endswith("_z") and v not in ("source_offset_free", "mu_logit")]
    post = post[keep]
    p = _observation_rates(post, data)
    kappa_obs = post["kappa"].values[..., data.technique_idx]
    y, n = data.successes, data.trials
    loglik = log_marginal(y, n, 1.0, p, kappa_obs) + log_binom_coef(n, y)
    mu, kappa = post["mu"].values, post["kappa"].values
    post["theta_new"] = (("chain", "draw", "technique"), rng.beta(mu * kappa, (1.0 - mu) * kappa))
    theta = rng.beta(p * kappa_obs + y, (1.0 - p) * kappa_obs + n - y)
    post["theta"] = (("chain", "draw", "observation"), theta)
    obs_coords = {"observation": data.labels}
    groups = {
        "posterior": post,
        "sample_stats": tree["sample_stats"].to_dataset(),
        "log_likelihood": xr.Dataset(
            {"y": (("chain", "draw", "observation"), loglik)}, coords=post.coords
        ).assign_coords(obs_coords),
        "observed_data": xr.Dataset({"y": ("observation", y.astype(int))}, coords=obs_coords),
        "constant_data": xr.Dataset(
            {
                "trials": ("observation", n.astype(int)),
                "technique": ("observation", np.array(data.techniques)[data.technique_idx]),
                "source": ("observation", np.array(data.sources)[data.source_idx]),
            },
            coords=obs_coords,
        ),
        "posterior_predictive": xr.Dataset(
            {"y": (("chain", "draw", "observation"), rng.binomial(n.astype(int), theta))}, coords=post.coords
        ).assign_coords(obs_coords),
    }
    return xr.DataTree.from_dict(groups)


def compare_variants(trees: dict[str, xr.DataTree], eligible: set[str] | None = None) -> tuple[str, list[dict]]:
    """PSIS-LOO comparison (Vehtari, Gelman & Gabry 2017); the simplest adequate variant wins.

    The variant with the highest expected log predictive density (elpd) is the best; a
    simpler variant whose elpd is within two standard errors of the difference is chosen
    instead (extra structure must earn its place). Variants not in ``eligible`` (e.g. ones
    that failed their sampler diagnostics) are compared but cannot be chosen.

    Returns
    -------
    chosen
        Name of the chosen variant.
    table
        One row per variant, best first: elpd_loo and its SE, the difference to the best
        and its SE (from the pointwise differences), p_loo, and the number of observations
        whose Pareto k exceeds the reliability threshold.
    """
    import arviz as az

    loos = {name: az.loo(tree, pointwise=True) for name, tree in trees.items()}
    order = sorted(loos, key=lambda k: -float(loos[k].elpd))
    best = order[0]
    best_i = np.asarray(loos[best].elpd_i).ravel()
    rows = []
    for name in order:
        loo = loos[name]
        diff_i = best_i - np.asarray(loo.elpd_i).ravel()
        k = np.asarray(loo.pareto_k).ravel()
        rows.append(
            {
                "variant": name,
                "description": VARIANTS[name].description,
                "elpd_loo": float(loo.elpd),
                "se": float(loo.se),
                "elpd_diff": float(diff_i.sum()),
                "dse": float(np.sqrt(diff_i.size * diff_i.var())),
                "p_loo": float(loo.p),
                "pareto_k_threshold": float(loo.good_k),
                "pareto_k_bad": int(np.sum(k > loo.good_k)),
                "eligible": eligible is None or name in eligible,
            }
        )
    complexity = {name: i for i, name in enumerate(VARIANTS)}
    candidates = [r for r in rows if r["eligible"]] or rows
    top = candidates[0]
    adequate = [r for r in candidates if r["elpd_diff"] - top["elpd_diff"] <= 2.0 * max(r["dse"], 1e-12) or r is top]
    chosen = min(adequate, key=lambda r: complexity[r["variant"]])["variant"]
    return chosen, rows
