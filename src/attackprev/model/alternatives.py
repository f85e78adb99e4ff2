"""Alternatives to the headline multi-source model, for the predictive model comparison.

The headline, :func:`attackprev.model.synthesis.build_synthesis_model`, gives each family a
systematic offset b_f *and* each technique a departure d_tf ~ Normal(0, σ_f) in each family. The
alternatives here drop one of the two, so that a held-out comparison
(:mod:`attackprev.validation.comparison`) can tell whether each earns its place:

``exchangeable``
    No family offsets (b_f = 0 for every family): the sources are read as if they measured the
    same thing, which an expert review criticised as the naive approach. The departures d_tf,
    the year shifts and the beta-binomial of the families with several sources are kept, so
    every systematic difference between families has to be absorbed by the departures::

        logit θ_i = a_t + d_tf + e_s,    d_tf ~ Normal(0, σ_f)

``offsets_only``
    The simplest bias-adjusted model: a logit offset per family for every technique and one
    concentration κ_f per family, with a beta-binomial for every family and no separate
    departures::

        logit θ_i = a_t + b_f + e_s,
        k_i ~ BetaBinomial(n_i, θ_i κ_f, (1 − θ_i) κ_f)    every family

    A technique's scatter around its family's offset is then the beta-binomial's, drawn anew
    for every source rather than shared by the years of one family.

Both produce the Deterministics the helpers of :mod:`attackprev.inference.synthesis` read
(``a``, ``b``, ``sigma``, ``phi``, and ``tau``, ``e``, ``log_kappa`` over the families with several
sources), so :func:`~attackprev.inference.synthesis.cell_logits`,
:func:`~attackprev.inference.synthesis.target_draws` and
:func:`~attackprev.inference.synthesis.predictive_draws` work on them unchanged. The documented
equivalents in ``offsets_only``: ``sigma`` is 0 for every family (no departures, so a technique's
typical rate on family T's scale is logit⁻¹(a_t + b_T), ``phi`` = a_t + b_f) and the concentrations
of the one-source families are a separate variable ``log_kappa_single`` (``log_kappa`` keeps the
headline's meaning, the year-to-year variation of a technique in a family with several sources).
For a one-source family :func:`~attackprev.inference.synthesis.predictive_draws` therefore gives
θ, the mean of its beta-binomial, not a new source's rate.

The priors are the headline's (:class:`attackprev.model.priors.SynthesisPriors`); κ_f of every
family of ``offsets_only`` gets the prior of ``log_kappa``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import (
    SynthesisData,
    beta_binomial,
    build_synthesis_model,
    departures,
    family_offsets,
    model_coords,
    technique_levels,
    year_shifts,
)


def build_exchangeable(data: SynthesisData, priors: SynthesisPriors) -> pm.Model:
    """The headline without family offsets: b_f = 0 for every family.

    logit θ_i = a_t + d_tf + e_s with a_t ~ Normal(m, s_a) (``a`` = ``c``), departures, year shifts
    and likelihood as in the headline (beta-binomial with κ_f in families with several sources,
    binomial elsewhere), in the headline's sampled form. ``b`` is a Deterministic of zeros.
    """
    form = data.sampling_form()
    multi = data.multi_source_families()
    multi_pos = {f: i for i, f in enumerate(multi)}
    obs_multi = np.array([multi_pos.get(int(f), -1) for f in data.family_idx])
    bb = obs_multi >= 0
    with pm.Model(coords=model_coords(data)) as model:
        m = pm.Normal("level_mean", *priors.level_mean)
        s_a = pm.HalfNormal("level_sd", priors.level_sd)
        a = technique_levels(data, form, m, s_a)
        pm.Deterministic("a", a, dims="technique")
        pm.Deterministic("b", pt.zeros(len(data.families)), dims="family")
        phi = departures(data, form, priors, a[data.cell_technique()])
        eta = phi[data.cell_idx] + year_shifts(data, form, priors)
        if multi:
            log_kappa = pm.Normal("log_kappa", *priors.log_kappa, dims="multi_family")
            beta_binomial("k_multi", data, eta, pt.exp(log_kappa)[obs_multi[bb]], np.flatnonzero(bb))
        if (~bb).any():
            pm.Binomial("k_single", n=data.trials[~bb], logit_p=eta[~bb], observed=data.successes[~bb])
    return model


def build_offsets_only(data: SynthesisData, priors: SynthesisPriors) -> pm.Model:
    """Family offsets and a beta-binomial κ_f for every family, no departures.

    logit θ_i = a_t + b_f + e_s; k_i ~ BetaBinomial(n_i, θ_i κ_f, (1 − θ_i) κ_f). The levels and
    offsets are sampled in the headline's rotated form (c_t = a_t + b̄). ``sigma`` and ``d`` are
    Deterministics of zeros and ``phi`` = a_t + b_f; ``log_kappa`` covers the families with several
    sources and ``log_kappa_single`` the others.
    """
    form = data.sampling_form()
    multi = data.multi_source_families()
    single = [f for f in range(len(data.families)) if f not in multi]
    kappa_pos = {f: i for i, f in enumerate(multi)} | {f: len(multi) + i for i, f in enumerate(single)}
    obs_kappa = np.array([kappa_pos[int(f)] for f in data.family_idx])
    with pm.Model(coords=model_coords(data)) as model:
        m = pm.Normal("level_mean", *priors.level_mean)
        s_a = pm.HalfNormal("level_sd", priors.level_sd)
        b, b_bar = family_offsets(data, priors)
        c = technique_levels(data, form, m + b_bar, s_a)
        pm.Deterministic("a", c - b_bar, dims="technique")
        pm.Deterministic("sigma", pt.zeros(len(data.families)), dims="family")
        phi = pm.Deterministic("phi", c[data.cell_technique()] + (b - b_bar)[data.cell_family()], dims="cell")
        pm.Deterministic("d", pt.zeros(len(data.cells)), dims="cell")
        eta = phi[data.cell_idx] + year_shifts(data, form, priors)
        log_kappa = [pm.Normal("log_kappa", *priors.log_kappa, dims="multi_family")] if multi else []
        if single:
            log_kappa.append(pm.Normal("log_kappa_single", *priors.log_kappa, dims="single_family"))
        kappa = pt.exp(pt.concatenate(log_kappa))[obs_kappa]
        beta_binomial("k", data, eta, kappa, np.arange(len(data.successes)))
    return model


Builder = Callable[[SynthesisData, SynthesisPriors], pm.Model]

#: Every model of the comparison by name; ``synthesis`` is the headline.
MODELS: dict[str, Builder] = {
    "synthesis": build_synthesis_model,
    "exchangeable": build_exchangeable,
    "offsets_only": build_offsets_only,
}
#: The headline's name in :data:`MODELS`.
HEADLINE = "synthesis"
#: One line per model, for reports.
DESCRIPTIONS = {
    "synthesis": "headline: technique level, family offsets b_f, departures d_tf ~ N(0, σ_f), year shifts, "
    "beta-binomial κ_f for families with several sources",
    "exchangeable": "no family offsets (b_f = 0): departures, year shifts and κ_f kept",
    "offsets_only": "family offsets b_f and a beta-binomial κ_f for every family; no departures d_tf",
}
