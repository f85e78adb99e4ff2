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
from attackprev.model.synthesis import SynthesisData, build_synthesis_model


def _coords(data: SynthesisData) -> dict:
    """The headline's named dimensions, and the one-source families."""
    multi = data.multi_source_families()
    return {
        "technique": data.techniques,
        "family": data.families,
        "cell": [f"{t}|{f}" for t, f in data.cells],
        "year_source": [data.sources[i] for i, f in enumerate(data.source_family) if int(f) in multi],
        "multi_family": [data.families[f] for f in multi],
        "single_family": [f for i, f in enumerate(data.families) if i not in multi],
        "observation": np.arange(len(data.successes)),
    }


def _year_shifts(data: SynthesisData, priors: SynthesisPriors) -> pt.TensorVariable | float:
    """Each observation's year shift e_s (0 in one-source families), as in the headline.

    Creates ``tau``, one ``year_shift_<family>`` (summing to 0) per family with several sources
    and the Deterministic ``e`` over their sources; must be called inside the model's context.
    """
    multi = data.multi_source_families()
    year_sources = [i for i, f in enumerate(data.source_family) if int(f) in multi]
    if not year_sources:
        return 0.0
    tau = pm.HalfNormal("tau", priors.year_sd)
    e_year = pt.zeros(len(year_sources))
    for f in multi:
        members = [i for i, s in enumerate(year_sources) if int(data.source_family[s]) == f]
        shift = pm.ZeroSumNormal(f"year_shift_{data.families[f]}", sigma=tau, shape=len(members))
        e_year = pt.set_subtensor(e_year[members], shift)
    e_year = pm.Deterministic("e", e_year, dims="year_source")
    year_pos = {s: i for i, s in enumerate(year_sources)}
    obs_year = np.array([year_pos.get(int(s), -1) for s in data.source_idx])
    return pt.concatenate([pt.zeros(1), e_year])[obs_year + 1]


def _family_offsets(data: SynthesisData, priors: SynthesisPriors) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The headline's family offsets b (Deterministic ``b``, reference 0) and b̄, the mean offset
    of the complete families, in the headline's rotated form (see its comments)."""
    complete = data.complete
    b = pt.zeros(len(data.families))
    b_bar = pt.as_tensor(0.0)
    if complete:
        b_bar = pm.Normal("b_complete_mean", 0.0, priors.family_offset_sd)
        dev = pm.ZeroSumNormal("b_complete_dev", sigma=priors.family_offset_sd, shape=len(complete))
        b = pt.set_subtensor(b[complete], b_bar + dev)
    others = [f for f in range(1, len(data.families)) if f not in complete]
    if others:
        b_other = pm.Normal("b_partial", 0.0, priors.family_offset_sd, shape=len(others))
        b = pt.set_subtensor(b[others], b_other)
    return pm.Deterministic("b", b, dims="family"), b_bar


def _departures(data: SynthesisData, priors: SynthesisPriors, centre: pt.TensorVariable) -> pt.TensorVariable:
    """Cell logits φ_tf = centre + d_tf, d_tf ~ Normal(0, σ_f), sampled as the headline does
    (non-centred in weak cells, centred in strong ones); creates ``sigma``, ``phi`` and ``d``."""
    cell_family = data.cell_family()
    sigma = pm.Gamma("sigma", alpha=priors.departure[0], beta=priors.departure[1], dims="family")
    weak = data.weak_cells()
    phi = pt.zeros(len(data.cells))
    if weak.any():
        idx = np.flatnonzero(weak)
        u = pm.Normal("u_weak", 0.0, 1.0, shape=len(idx))
        phi = pt.set_subtensor(phi[idx], centre[idx] + sigma[cell_family[idx]] * u)
    if (~weak).any():
        idx = np.flatnonzero(~weak)
        phi_strong = pm.Normal("phi_strong", centre[idx], sigma[cell_family[idx]], shape=len(idx))
        phi = pt.set_subtensor(phi[idx], phi_strong)
    phi = pm.Deterministic("phi", phi, dims="cell")
    pm.Deterministic("d", phi - centre, dims="cell")
    return phi


def _beta_binomial(name: str, data: SynthesisData, eta: pt.TensorVariable, kappa: pt.TensorVariable, rows) -> None:
    """Observed counts ``rows`` as BetaBinomial(n, θκ, (1 − θ)κ) with θ = logit⁻¹(η)."""
    theta = pm.math.invlogit(eta[rows])
    pm.BetaBinomial(
        name,
        n=data.trials[rows],
        alpha=theta * kappa,
        beta=(1.0 - theta) * kappa,
        observed=data.successes[rows],
    )


def build_exchangeable(data: SynthesisData, priors: SynthesisPriors) -> pm.Model:
    """The headline without family offsets: b_f = 0 for every family.

    logit θ_i = a_t + d_tf + e_s with a_t ~ Normal(m, s_a) sampled directly (``a``), departures,
    year shifts and likelihood as in the headline (beta-binomial with κ_f in families with
    several sources, binomial elsewhere). ``b`` is a Deterministic of zeros.
    """
    multi = data.multi_source_families()
    multi_pos = {f: i for i, f in enumerate(multi)}
    obs_multi = np.array([multi_pos.get(int(f), -1) for f in data.family_idx])
    bb = obs_multi >= 0
    with pm.Model(coords=_coords(data)) as model:
        m = pm.Normal("level_mean", *priors.level_mean)
        s_a = pm.HalfNormal("level_sd", priors.level_sd)
        a = pm.Normal("a", m, s_a, dims="technique")
        pm.Deterministic("b", pt.zeros(len(data.families)), dims="family")
        phi = _departures(data, priors, a[data.cell_technique()])
        eta = phi[data.cell_idx] + _year_shifts(data, priors)
        if multi:
            log_kappa = pm.Normal("log_kappa", *priors.log_kappa, dims="multi_family")
            _beta_binomial("k_multi", data, eta, pt.exp(log_kappa)[obs_multi[bb]], np.flatnonzero(bb))
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
    multi = data.multi_source_families()
    single = [f for f in range(len(data.families)) if f not in multi]
    kappa_pos = {f: i for i, f in enumerate(multi)} | {f: len(multi) + i for i, f in enumerate(single)}
    obs_kappa = np.array([kappa_pos[int(f)] for f in data.family_idx])
    with pm.Model(coords=_coords(data)) as model:
        m = pm.Normal("level_mean", *priors.level_mean)
        s_a = pm.HalfNormal("level_sd", priors.level_sd)
        b, b_bar = _family_offsets(data, priors)
        c = pm.Normal("c", m + b_bar, s_a, dims="technique")
        pm.Deterministic("a", c - b_bar, dims="technique")
        pm.Deterministic("sigma", pt.zeros(len(data.families)), dims="family")
        phi = pm.Deterministic("phi", c[data.cell_technique()] + (b - b_bar)[data.cell_family()], dims="cell")
        pm.Deterministic("d", pt.zeros(len(data.cells)), dims="cell")
        eta = phi[data.cell_idx] + _year_shifts(data, priors)
        log_kappa = [pm.Normal("log_kappa", *priors.log_kappa, dims="multi_family")] if multi else []
        if single:
            log_kappa.append(pm.Normal("log_kappa_single", *priors.log_kappa, dims="single_family"))
        kappa = pt.exp(pt.concatenate(log_kappa))[obs_kappa]
        _beta_binomial("k", data, eta, kappa, np.arange(len(data.successes)))
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
