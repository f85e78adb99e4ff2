"""One estimand, many sources: the bias-adjusted multi-source model.

Sources count different populations — intrusions (M-Trends), adversary groups, software and
campaigns (ATT&CK), CTI reports (CTID's TIE), government advisories (CISA), malware families
(SoK) — so a technique's rate differs between them systematically and technique by technique.
The model keeps those differences apart instead of averaging them away. For observation i,
k_i of n_i, of technique t, source s and family f (the publisher or data set)::

    logit θ_i  = a_t + b_f + d_tf + e_s
    a_t        ~ Normal(m, s_a)                                   the technique's level
    b_ref      = 0;  b_f: Normal(0, 2) (partial families), b̄ + ZeroSumNormal  family f's systematic offset
                 (complete families: b̄ ~ Normal(0, 2) their mean)
    d_tf       ~ Normal(0, σ_f),   σ_f ~ Gamma(2, 2)              the technique's departure in family f
    e_s        : a year's shift, Normal(0, τ) summing to 0        (families with several years)
                 over the family's years
    k_i        ~ BetaBinomial(n_i, θ_i κ_f, (1 − θ_i) κ_f)       families with several sources
    k_i        ~ Binomial(n_i, θ_i)                               families with one source

It is sampled in an equivalent, better-conditioned form (see :func:`build_synthesis_model`):
each (technique, family) cell's logit φ_tf = a_t + b_f + d_tf directly where the data measure it
well, and the technique levels relative to the mean offset of the complete families. Which cells,
levels and year shifts are sampled centred and which non-centred is chosen from the counts
(:mod:`attackprev.model.sampling_form`); the choice changes the sampler's geometry, not the model.

**The estimand.** A technique's probability on the scale of a *target* family T is

    p_t(T) = logit⁻¹(a_t + b_T + d_tT)

the rate at which a report of family T would see technique t in a typical year (the year shifts
average to zero). The default target is ``mtrends``: the share of intrusions investigated by
incident responders in which the technique is seen. Where family T has no row for technique t,
d_tT is drawn from Normal(0, σ_T): the other families inform a_t, and how far a technique's rate
in T strays from what they imply is learned from the techniques that T does report.

**What the data identify.** Only differences of family offsets are identified, so the
reference family's offset is 0 (``mtrends``; any target is then b_T relative to it). The
departures d_tf are identified through σ_f, learned from every technique that family f and
others both report; a family that reports few techniques (Recorded Future: 4, Red Canary: 7)
has a σ_f its prior largely decides. For a family with one source per technique, the
technique-by-source overdispersion and d_tf are the same thing, hence the binomial likelihood
there; for families with several years (M-Trends, CISA) the beta-binomial's κ_f is the year-to-
year variation of one technique beyond the year's common shift e_s.

The priors are in :class:`attackprev.model.priors.SynthesisPriors`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from attackprev.config import DEFAULT_TARGET
from attackprev.evidence.counts import CountTable
from attackprev.model.priors import SynthesisPriors
from attackprev.model.sampling_form import SamplingForm, choose_form


def _rows_digest(rows: frozenset[tuple[str, str]]) -> str:
    """A short digest of held-out (technique, source) rows, for the data digest."""
    text = ";".join(f"{t},{s}" for t, s in sorted(rows))
    return f"{len(rows)} {hashlib.sha256(text.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class SynthesisData:
    """The counts as arrays, with the index maps (named dimensions for PyMC and ArviZ)."""

    techniques: list[str]
    families: list[str]
    sources: list[str]
    source_family: np.ndarray
    cells: list[tuple[str, str]]
    technique_idx: np.ndarray
    family_idx: np.ndarray
    source_idx: np.ndarray
    cell_idx: np.ndarray
    successes: np.ndarray
    trials: np.ndarray
    reference: str
    complete: list[int]
    digest: str = ""

    @classmethod
    def from_counts(
        cls,
        table: CountTable,
        reference: str = DEFAULT_TARGET,
        exclude_sources: tuple[str, ...] = (),
        exclude_rows: frozenset[tuple[str, str]] = frozenset(),
    ) -> SynthesisData:
        """Arrays from a count table; ``exclude_sources`` holds sources out and ``exclude_rows`` single
        (technique_id, source_id) rows (for held-out checks; hold out rows of partial families only,
        as a complete family is assumed to list every technique).

        Techniques are those with at least one count left (zeros of complete sources included).
        """
        rows = [
            c
            for c in table.counts
            if c.source_id not in exclude_sources and (c.technique_id, c.source_id) not in exclude_rows
        ]
        families = sorted({c.family for c in rows})
        if reference not in families:
            raise ValueError(f"reference family {reference!r} has no rows")
        families.remove(reference)
        families = [reference, *families]
        sources = sorted({c.source_id for c in rows})
        techniques = sorted({c.technique_id for c in rows})
        cells = sorted({(c.technique_id, c.family) for c in rows})
        t_pos = {t: i for i, t in enumerate(techniques)}
        f_pos = {f: i for i, f in enumerate(families)}
        s_pos = {s: i for i, s in enumerate(sources)}
        c_pos = {c: i for i, c in enumerate(cells)}
        fam_of = {c.source_id: c.family for c in rows}
        coverage: dict[str, set] = {}
        for c in rows:
            coverage.setdefault(c.family, set()).add(table.sources[c.source_id].coverage)
        return cls(
            techniques=techniques,
            families=families,
            sources=sources,
            source_family=np.array([f_pos[fam_of[s]] for s in sources]),
            cells=cells,
            technique_idx=np.array([t_pos[c.technique_id] for c in rows]),
            family_idx=np.array([f_pos[c.family] for c in rows]),
            source_idx=np.array([s_pos[c.source_id] for c in rows]),
            cell_idx=np.array([c_pos[(c.technique_id, c.family)] for c in rows]),
            successes=np.array([c.successes for c in rows]),
            trials=np.array([c.trials for c in rows]),
            reference=reference,
            complete=[f_pos[f] for f in families if f != reference and coverage[f] == {"complete"}],
            digest=table.digest
            + ("|held out: " + ",".join(sorted(exclude_sources)) if exclude_sources else "")
            + (f"|held-out rows: {_rows_digest(exclude_rows)}" if exclude_rows else ""),
        )

    def cell_family(self) -> np.ndarray:
        """For each cell, the index of its family."""
        f_pos = {f: i for i, f in enumerate(self.families)}
        return np.array([f_pos[f] for _, f in self.cells])

    def cell_technique(self) -> np.ndarray:
        """For each cell, the index of its technique."""
        t_pos = {t: i for i, t in enumerate(self.techniques)}
        return np.array([t_pos[t] for t, _ in self.cells])

    def sampling_form(self) -> SamplingForm:
        """Which quantities are sampled centred (:func:`attackprev.model.sampling_form.choose_form`)."""
        return choose_form(self)

    def weak_cells(self) -> np.ndarray:
        """Which cells are sampled non-centred (see :meth:`sampling_form`)."""
        return self.sampling_form().weak_cells

    def multi_source_families(self) -> list[int]:
        """Indices of families with more than one source (they get year shifts and a κ)."""
        counts = np.bincount(self.source_family, minlength=len(self.families))
        return [int(f) for f in np.flatnonzero(counts > 1)]


def model_coords(data: SynthesisData) -> dict:
    """The named dimensions of the model (and of its alternatives)."""
    multi = data.multi_source_families()
    return {
        "technique": data.techniques,
        "family": data.families,
        "offset_family": data.families[1:],
        "cell": [f"{t}|{f}" for t, f in data.cells],
        "year_source": [data.sources[i] for i, f in enumerate(data.source_family) if int(f) in multi],
        "multi_family": [data.families[f] for f in multi],
        "single_family": [f for i, f in enumerate(data.families) if i not in multi],
        "observation": np.arange(len(data.successes)),
    }


# ---- the parts, each created inside the model's context ------------------------------------------
# Sampled in a rotated but equivalent form: every technique is in every complete family, so the data
# pin c_t = a_t + (mean offset of the complete families) and the complete families' offsets from their
# mean; what ties them to the reference scale is one number, that mean offset (b̄). With a_t and b_f
# sampled directly, a shift of b̄ had to move hundreds of a_t in step and mixed ten times slower.


def family_offsets(data: SynthesisData, priors: SynthesisPriors) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The family offsets b (Deterministic ``b``, the reference's 0) and b̄, the complete families' mean."""
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


def technique_levels(data: SynthesisData, form: SamplingForm, centre, s_a) -> pt.TensorVariable:
    """c_t ~ Normal(centre, s_a) (Deterministic ``c``): centred where a technique's cells pin it,
    non-centred where they do not or s_a is small (nearly equal rates put centred levels in a funnel)."""
    c = pt.zeros(len(data.techniques))
    if form.loose_levels.any():
        idx = np.flatnonzero(form.loose_levels)
        z = pm.Normal("c_loose_z", 0.0, 1.0, shape=len(idx))
        c = pt.set_subtensor(c[idx], centre + s_a * z)
    if (~form.loose_levels).any():
        idx = np.flatnonzero(~form.loose_levels)
        c = pt.set_subtensor(c[idx], pm.Normal("c_pinned", centre, s_a, shape=len(idx)))
    return pm.Deterministic("c", c, dims="technique")


def departures(data: SynthesisData, form: SamplingForm, priors: SynthesisPriors, centre) -> pt.TensorVariable:
    """Cell logits φ_tf = centre + d_tf, d_tf ~ Normal(0, σ_f); creates ``sigma``, ``phi`` and ``d``.

    φ is sampled directly where a cell's counts are large (the data pin φ, so it must not be built
    from a_t: that would tie every a_t to its departures), and as centre + σ_f·u where they are small
    (a rare technique, a family of few reports), where a centred φ would sit in a funnel with σ_f.
    """
    cell_family = data.cell_family()
    sigma = pm.Gamma("sigma", alpha=priors.departure[0], beta=priors.departure[1], dims="family")
    weak = form.weak_cells
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


def year_shifts(data: SynthesisData, form: SamplingForm, priors: SynthesisPriors) -> pt.TensorVariable | float:
    """Each observation's year shift e_s (0 in one-source families); creates ``tau``, one
    ``year_shift_<family>`` (or ``…_z``, non-centred) per family with several sources, and ``e``.

    A year's shift sums to zero within its family, so b_f stays the family's average offset.
    """
    multi = data.multi_source_families()
    year_sources = [i for i, f in enumerate(data.source_family) if int(f) in multi]
    if not year_sources:
        return 0.0
    tau = pm.HalfNormal("tau", priors.year_sd)
    e_year = pt.zeros(len(year_sources))
    for f in multi:
        members = [i for i, s in enumerate(year_sources) if int(data.source_family[s]) == f]
        name = f"year_shift_{data.families[f]}"
        if f in form.noncentred_years:  # shifts the data pin no better than τ: τ·z
            shift = tau * pm.ZeroSumNormal(f"{name}_z", sigma=1.0, shape=len(members))
        else:
            shift = pm.ZeroSumNormal(name, sigma=tau, shape=len(members))
        e_year = pt.set_subtensor(e_year[members], shift)
    e_year = pm.Deterministic("e", e_year, dims="year_source")
    year_pos = {s: i for i, s in enumerate(year_sources)}
    obs_year = np.array([year_pos.get(int(s), -1) for s in data.source_idx])
    return pt.concatenate([pt.zeros(1), e_year])[obs_year + 1]


def beta_binomial(name: str, data: SynthesisData, eta, kappa, rows: np.ndarray) -> None:
    """Observed counts ``rows`` as BetaBinomial(n, θκ, (1 − θ)κ) with θ = logit⁻¹(η)."""
    theta = pm.math.invlogit(eta[rows])
    pm.BetaBinomial(
        name, n=data.trials[rows], alpha=theta * kappa, beta=(1.0 - theta) * kappa, observed=data.successes[rows]
    )


def build_synthesis_model(data: SynthesisData, priors: SynthesisPriors) -> pm.Model:
    """The PyMC model of the module docstring, in its sampled form, with named dimensions.

    Deterministics ``a`` (technique levels), ``b`` (family offsets), ``phi`` (cell logits),
    ``d`` (departures) and ``e`` (year shifts) carry the quantities of the docstring.
    """
    form = data.sampling_form()
    multi = data.multi_source_families()
    multi_pos = {f: i for i, f in enumerate(multi)}
    obs_multi = np.array([multi_pos.get(int(f), -1) for f in data.family_idx])
    bb = obs_multi >= 0
    with pm.Model(coords=model_coords(data)) as model:
        m = pm.Normal("level_mean", *priors.level_mean)
        s_a = pm.HalfNormal("level_sd", priors.level_sd)
        b, b_bar = family_offsets(data, priors)
        c = technique_levels(data, form, m + b_bar, s_a)
        pm.Deterministic("a", c - b_bar, dims="technique")
        phi = departures(data, form, priors, c[data.cell_technique()] + (b - b_bar)[data.cell_family()])
        eta = phi[data.cell_idx] + year_shifts(data, form, priors)
        if multi:
            log_kappa = pm.Normal("log_kappa", *priors.log_kappa, dims="multi_family")
            beta_binomial("k_multi", data, eta, pt.exp(log_kappa)[obs_multi[bb]], np.flatnonzero(bb))
        if (~bb).any():
            pm.Binomial("k_single", n=data.trials[~bb], logit_p=eta[~bb], observed=data.successes[~bb])
    return model
