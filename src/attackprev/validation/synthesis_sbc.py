"""Simulation-based calibration (Talts et al. 2018) of the multi-source synthesis model.

**Design.** A seeded, stratified subset of the real techniques, with exactly their real rows:
which sources report which technique, each row's n, the families and their complete/partial
pattern. The subset keeps the share of techniques that the reference family (``mtrends``)
reports in none, one or two, and three or more of its years, and at least one technique of
every partial family besides the reference (SoK, Recorded Future, Red Canary), so every
family, and so every family offset and departure scale, is in the design.

**Simulator.** The prior predictive of :func:`attackprev.model.synthesis.build_synthesis_model`
itself, built on the design with placeholder successes and drawn with
``pm.sample_prior_predictive``: truths and counts come from the very graph that is fitted, so
the simulator cannot drift from the model. The placeholder (all zeros) makes every cell
non-centred; the sampled form of a cell (centred or not) changes the parameterisation, not the
prior (:func:`prior_model`; a test compares both forms). The one truth drawn outside PyMC is
the target-scale logit of a technique the target family does not report, a_t + b_T + d with a
fresh d ~ Normal(0, σ_T), as :func:`attackprev.inference.synthesis.cell_logits` draws it.

**Fits.** Each simulated catalogue becomes a :class:`CountTable` with the design's rows and
simulated successes and is fitted by :func:`attackprev.inference.synthesis.fit_synthesis`
(nutpie; the model's parameterisation is chosen from the simulated counts, as for real data).
The truth is ranked among ``keep_per_chain`` evenly thinned draws of each chain
(:func:`attackprev.validation.sbc.thin`), the rank becomes a randomised PIT
(:func:`~attackprev.validation.sbc.rank_pit`) and uniformity is tested per parameter
(:func:`~attackprev.validation.sbc.uniformity`: χ² on 20 bins and KS).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from attackprev.evidence.counts import CountTable, load_counts
from attackprev.inference.synthesis import SynthesisResult, SynthesisSettings, cell_logits, fit_synthesis
from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import DEFAULT_TARGET, SynthesisData, build_synthesis_model
from attackprev.validation.sbc import Uniformity, rank_pit, thin, uniformity

#: The reference family, which is also the target scale of the ranked φ.
REFERENCE = DEFAULT_TARGET
#: Catalogues of the default run.
DEFAULT_CATALOGUES = 100
#: Techniques of the default design. Measured on 2 shared cores: compiling each catalogue's model
#: takes 10–15 s whatever the size, and sampling 20 techniques (about 230 rows, 120 cells) with
#: :data:`SBC_SETTINGS` 10–20 s, so 100 catalogues take about 40 minutes; 40 techniques doubled
#: the sampling time.
DEFAULT_TECHNIQUES = 20
#: Seed of the default run (design, simulation, fits and PIT randomisation all derive from it).
DEFAULT_SBC_SEED = 20240611
#: Sampler settings of the SBC fits: 4 chains × 500 draws after 700 tuning steps; a high target
#: acceptance because prior draws reach the funnels (small σ_f, τ) that real data avoid.
SBC_SETTINGS = SynthesisSettings(draws=500, tune=700, chains=4, seed=DEFAULT_SBC_SEED, target_accept=0.97)
#: Thinned draws kept per chain for the ranks (stride 20: the slowest ranked quantities, τ and σ_f,
#: mix at ~0.05 effective draws per draw); L = chains × this.
KEEP_PER_CHAIN = 25
#: Central-interval levels whose coverage of the truths is reported.
COVERAGE_LEVELS = (0.5, 0.8, 0.94)
#: A parameter fails when its χ² p-value is at most this (the issue's criterion).
ALPHA = 0.01
#: Ranked quantities that are positive: :meth:`SynthesisSBCResult.rescaled` rescales them on the log scale.
POSITIVE = ("level_sd", "sigma[", "tau")
#: Strata of techniques by the number of reference-family rows: none, 1–2, 3 or more.
STRATA = ((0, 0), (1, 2), (3, 10**6))


@dataclass(frozen=True)
class Design:
    """The real rows of a subset of techniques.

    Attributes
    ----------
    table
        The chosen techniques' rows of the real count table (real successes, trials, sources).
    data
        Their arrays (:meth:`SynthesisData.from_counts`); row ``i`` of ``data`` is ``table.counts[i]``.
    tracked
        Role -> technique whose level (and target-scale logit) is ranked: ``"reported"`` (the
        target reports it), ``"unreported"`` (it does not), ``"partial"`` (a partial family besides
        the target reports it).
    seed
        The selection seed.
    """

    table: CountTable
    data: SynthesisData
    tracked: dict[str, str]
    seed: int

    @property
    def techniques(self) -> list[str]:
        """The chosen techniques, sorted."""
        return self.data.techniques

    def describe(self) -> dict[str, int]:
        """Counts of techniques, rows, cells, sources and families, and of techniques the target reports."""
        ref = self.data.families.index(self.data.reference)
        reported = {int(t) for t, f in zip(self.data.technique_idx, self.data.family_idx, strict=True) if f == ref}
        return {
            "techniques": len(self.data.techniques),
            "rows": len(self.data.successes),
            "cells": len(self.data.cells),
            "sources": len(self.data.sources),
            "families": len(self.data.families),
            "reported_by_target": len(reported),
        }


def partial_families(table: CountTable, reference: str = REFERENCE) -> list[str]:
    """Families other than ``reference`` all of whose sources with rows are partial, sorted."""
    coverage: dict[str, set[str]] = {}
    for c in table.counts:
        coverage.setdefault(c.family, set()).add(table.sources[c.source_id].coverage)
    return sorted(f for f, cov in coverage.items() if f != reference and cov == {"partial"})


def _profiles(table: CountTable, reference: str) -> dict[str, tuple[int, frozenset[str]]]:
    """Technique -> (its rows in the reference family, the partial families that report it)."""
    partial = set(partial_families(table, reference))
    rows: dict[str, int] = {}
    fams: dict[str, set[str]] = {}
    for c in table.counts:
        rows[c.technique_id] = rows.get(c.technique_id, 0) + (c.family == reference)
        fams.setdefault(c.technique_id, set())
        if c.family in partial:
            fams[c.technique_id].add(c.family)
    return {t: (rows[t], frozenset(fams[t])) for t in sorted(rows)}


def _stratum(reference_rows: int) -> int:
    return next(i for i, (lo, hi) in enumerate(STRATA) if lo <= reference_rows <= hi)


def _quotas(sizes: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` in proportion to ``sizes`` (largest remainders)."""
    exact = sizes / sizes.sum() * total
    out = np.floor(exact).astype(int)
    out[np.argsort(-(exact - out), kind="stable")[: total - out.sum()]] += 1
    return out


def select_techniques(table: CountTable, techniques: int, seed: int, reference: str = REFERENCE) -> list[str]:
    """A seeded subset of techniques that keeps the real pattern.

    One technique of each partial family besides the reference (unless an earlier pick covers
    it), then the rest drawn within the strata of :data:`STRATA` so that each stratum's share
    of the subset is its share of all techniques (largest remainders).

    Returns
    -------
    list of str
        Sorted technique IDs.
    """
    rng = np.random.default_rng([seed, 11])
    profiles = _profiles(table, reference)
    chosen: list[str] = []
    for fam in partial_families(table, reference):
        pool = [t for t, (_, fams) in profiles.items() if fam in fams]
        if not any(t in chosen for t in pool):
            chosen.append(str(rng.choice(pool)))
    if techniques < len(chosen) + 2:
        raise ValueError(f"at least {len(chosen) + 2} techniques are needed to keep every family and stratum")
    stratum = {t: _stratum(rows) for t, (rows, _) in profiles.items()}
    sizes = np.bincount(list(stratum.values()), minlength=len(STRATA))
    quota = _quotas(sizes.astype(float), techniques)
    need = np.maximum(quota - np.bincount([stratum[t] for t in chosen], minlength=len(STRATA)), 0)
    while need.sum() > techniques - len(chosen):
        need[np.argmax(need)] -= 1
    while need.sum() < techniques - len(chosen):
        need[np.argmax(sizes - need)] += 1
    for s, k in enumerate(need):
        pool = [t for t in profiles if stratum[t] == s and t not in chosen]
        chosen += [str(t) for t in rng.choice(pool, size=int(k), replace=False)]
    return sorted(chosen)


def subset_table(table: CountTable, techniques: list[str]) -> CountTable:
    """The real rows of ``techniques`` (and the sources they use), in the table's order."""
    keep = set(techniques)
    counts = tuple(c for c in table.counts if c.technique_id in keep)
    used = {c.source_id for c in counts}
    digest = hashlib.sha256(f"{table.digest}|sbc design|{','.join(sorted(keep))}".encode()).hexdigest()
    return CountTable(table.path, counts, {s: v for s, v in table.sources.items() if s in used}, {}, digest)


def _tracked(table: CountTable, data: SynthesisData, seed: int) -> dict[str, str]:
    """The techniques whose level and target-scale logit are ranked (seeded choices)."""
    rng = np.random.default_rng([seed, 12])
    profiles = _profiles(table, data.reference)
    by_partial = [t for t in data.techniques if profiles[t][1]]
    reported = [t for t in data.techniques if profiles[t][0] > 0 and not profiles[t][1]]
    unreported = [t for t in data.techniques if profiles[t][0] == 0]
    if not (by_partial and reported and unreported):
        raise ValueError("the design needs techniques the target reports, leaves out, and a partial family reports")
    return {
        "reported": str(rng.choice(reported)),
        "unreported": str(rng.choice(unreported)),
        "partial": str(rng.choice(by_partial)),
    }


def make_design(
    table: CountTable | None = None, techniques: int = DEFAULT_TECHNIQUES, seed: int = DEFAULT_SBC_SEED
) -> Design:
    """The design: :func:`select_techniques` on the real table, their rows, and the tracked techniques."""
    table = table or load_counts()
    sub = subset_table(table, select_techniques(table, techniques, seed))
    data = SynthesisData.from_counts(sub, REFERENCE)
    return Design(sub, data, _tracked(sub, data, seed), seed)


def parameter_names(design: Design) -> list[str]:
    """Every ranked quantity, in report order."""
    data = design.data
    names = ["level_mean", "level_sd"]
    names += [f"b[{f}]" for f in data.families[1:]]
    names += [f"sigma[{f}]" for f in data.families]
    if data.multi_source_families():
        names.append("tau")
        names += [f"log_kappa[{data.families[f]}]" for f in data.multi_source_families()]
    tracked = design.tracked
    names += [f"a[{tracked[role]}]" for role in ("reported", "unreported", "partial")]
    names += [f"phi_{data.reference}[{tracked[role]}]" for role in ("reported", "unreported")]
    return names


def prior_model(data: SynthesisData, priors: SynthesisPriors, successes: np.ndarray | None = None):
    """The PyMC model on the design with placeholder successes (zeros unless given).

    Only the sampled form of the cells depends on the successes (zeros: every cell
    non-centred); the prior and the prior predictive do not.
    """
    placeholder = np.zeros_like(data.successes) if successes is None else np.asarray(successes)
    return build_synthesis_model(replace(data, successes=placeholder), priors)


@dataclass
class Simulated:
    """Prior-predictive catalogues on a design.

    Attributes
    ----------
    truths
        Ranked quantity -> its true value in each catalogue.
    successes
        Simulated k, catalogues × rows (row order of ``design.data``).
    draws
        The model's variables as drawn (catalogues first), for checks.
    """

    truths: dict[str, np.ndarray]
    successes: np.ndarray
    draws: dict[str, np.ndarray]


def multi_rows(data: SynthesisData) -> np.ndarray:
    """Which rows are beta-binomial (``k_multi``); the rest are binomial (``k_single``)."""
    return np.isin(data.family_idx, data.multi_source_families())


def simulate(design: Design, catalogues: int, seed: int, priors: SynthesisPriors | None = None) -> Simulated:
    """Draw truths and counts jointly from the model's prior predictive.

    The target-scale logit of the unreported tracked technique takes a fresh departure
    d ~ Normal(0, σ_T), drawn here with a generator seeded from ``seed``.
    """
    import pymc as pm

    data = design.data
    model = prior_model(data, priors or SynthesisPriors())
    names = ["level_mean", "level_sd", "b", "sigma", "a", "phi", "d", "e", "k_multi", "k_single", "tau", "log_kappa"]
    present = [n for n in names if n in model.named_vars]
    draws = pm.sample_prior_predictive(
        draws=catalogues, model=model, var_names=present, random_seed=seed, return_inferencedata=False
    )
    draws = {k: np.asarray(v) for k, v in draws.items()}
    multi = multi_rows(data)
    successes = np.zeros((catalogues, len(data.successes)), dtype=np.int64)
    if multi.any():
        successes[:, multi] = draws["k_multi"]
    if (~multi).any():
        successes[:, ~multi] = draws["k_single"]
    z = np.random.default_rng([seed, 13]).standard_normal(catalogues)
    return Simulated(_truths(design, draws, z), successes, draws)


def _truths(design: Design, draws: dict[str, np.ndarray], z: np.ndarray) -> dict[str, np.ndarray]:
    data = design.data
    fam = {f: i for i, f in enumerate(data.families)}
    tech = {t: i for i, t in enumerate(data.techniques)}
    out = {"level_mean": draws["level_mean"], "level_sd": draws["level_sd"]}
    for f in data.families[1:]:
        out[f"b[{f}]"] = draws["b"][:, fam[f]]
    for f in data.families:
        out[f"sigma[{f}]"] = draws["sigma"][:, fam[f]]
    multi = data.multi_source_families()
    if multi:
        out["tau"] = draws["tau"]
        for i, f in enumerate(multi):
            out[f"log_kappa[{data.families[f]}]"] = draws["log_kappa"][:, i]
    for role in ("reported", "unreported", "partial"):
        t = design.tracked[role]
        out[f"a[{t}]"] = draws["a"][:, tech[t]]
    ref, target = data.reference, fam[data.reference]
    reported = design.tracked["reported"]
    out[f"phi_{ref}[{reported}]"] = draws["phi"][:, data.cells.index((reported, ref))]
    t = tech[design.tracked["unreported"]]
    out[f"phi_{ref}[{design.tracked['unreported']}]"] = (
        draws["a"][:, t] + draws["b"][:, target] + draws["sigma"][:, target] * z
    )
    return {k: np.asarray(v, float) for k, v in out.items()}


def simulated_table(design: Design, successes: np.ndarray, index: int) -> CountTable:
    """The design's table with simulated successes (row for row)."""
    table = design.table
    counts = tuple(replace(c, successes=int(k)) for c, k in zip(table.counts, successes, strict=True))
    return CountTable(table.path, counts, table.sources, {}, f"{table.digest}|sbc catalogue {index}")


def posterior_draws(result: SynthesisResult, design: Design) -> dict[str, np.ndarray]:
    """Every ranked quantity's posterior draws, chains × draws.

    The target-scale logits come from :func:`cell_logits` (a fresh departure per draw where
    the target has no row), as the package reports them.
    """
    post = result.tree["posterior"]
    data = result.data
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    out = {"level_mean": post["level_mean"].values, "level_sd": post["level_sd"].values}
    for f in data.families[1:]:
        out[f"b[{f}]"] = post["b"].sel(family=f).values
    for f in data.families:
        out[f"sigma[{f}]"] = post["sigma"].sel(family=f).values
    if "tau" in post:
        out["tau"] = post["tau"].values
        for f in post["log_kappa"].coords["multi_family"].values:
            out[f"log_kappa[{f}]"] = post["log_kappa"].sel(multi_family=f).values
    for role in ("reported", "unreported", "partial"):
        t = design.tracked[role]
        out[f"a[{t}]"] = post["a"].sel(technique=t).values
    phi = cell_logits(result, data.reference).reshape(chains, draws, -1)
    for role in ("reported", "unreported"):
        t = design.tracked[role]
        out[f"phi_{data.reference}[{t}]"] = phi[:, :, data.techniques.index(t)]
    return {k: np.asarray(v, float) for k, v in out.items()}


@dataclass
class SynthesisSBCResult:
    """What :func:`run_synthesis_sbc` measured.

    Attributes
    ----------
    design, settings, keep_per_chain, seed
        What was run (fit ``r`` uses seed ``settings.seed + r``).
    parameters
        Ranked quantities, in report order.
    truths
        Parameter -> true values, one per fitted catalogue.
    thinned
        Parameter -> thinned posterior draws, catalogues × L (L = chains × keep_per_chain).
    cdf
        Parameter -> fraction of all posterior draws below the truth (for interval coverage).
    divergences, max_rhat, min_ess_bulk
        Per fit, over every sampled quantity (:func:`attackprev.inference.diagnostics.diagnose`).
    compile_seconds, sample_seconds
        Per fit.
    failed
        Catalogues whose fit raised, with the error.
    seconds
        Wall time of the whole run.
    """

    design: Design
    settings: SynthesisSettings
    keep_per_chain: int
    seed: int
    parameters: list[str]
    truths: dict[str, np.ndarray]
    thinned: dict[str, np.ndarray]
    cdf: dict[str, np.ndarray]
    divergences: np.ndarray
    max_rhat: np.ndarray
    min_ess_bulk: np.ndarray
    compile_seconds: np.ndarray
    sample_seconds: np.ndarray
    failed: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def catalogues(self) -> int:
        """Catalogues fitted."""
        return len(self.divergences)

    @property
    def ranks_out_of(self) -> int:
        """L, the number of thinned draws each truth is ranked among."""
        return self.settings.chains * self.keep_per_chain

    def pit(self, truths: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Randomised PITs of the truths (or of other ``truths``, e.g. a deliberately wrong one)."""
        truths = self.truths if truths is None else truths
        rng = np.random.default_rng([self.seed, 14])
        out = {}
        for p in self.parameters:
            rank = np.sum(self.thinned[p] < truths[p][:, None], axis=1)
            out[p] = rank_pit(rank, self.ranks_out_of, rng)
        return out

    def uniformity(self, truths: dict[str, np.ndarray] | None = None) -> dict[str, Uniformity]:
        """χ² and KS tests of each parameter's PITs."""
        return {p: uniformity(v) for p, v in self.pit(truths).items()}

    def coverage(self, level: float) -> dict[str, float]:
        """Share of catalogues whose central ``level`` posterior interval holds the truth."""
        lo, hi = (1.0 - level) / 2.0, (1.0 + level) / 2.0
        return {p: float(np.mean((self.cdf[p] >= lo) & (self.cdf[p] <= hi))) for p in self.parameters}

    def failing(self, alpha: float = ALPHA) -> list[str]:
        """Parameters whose χ² p-value is at most ``alpha``."""
        return [p for p, u in self.uniformity().items() if u.chi2_p <= alpha]

    def rescaled(self, factor: float) -> SynthesisSBCResult:
        """The same run with every posterior widened (``factor`` > 1) or narrowed about its mean.

        A negative control of the SBC's power: each catalogue's thinned draws of each quantity
        become mean + ``factor`` × (draw − mean), on the log scale for the positive ones (s_a, σ_f,
        τ) and as they are for the others (logits, log κ). ``cdf`` is recomputed from the
        rescaled thinned draws (the full draws are not kept).

        Parameters
        ----------
        factor
            Ratio of the new spread to the old.

        Returns
        -------
        SynthesisSBCResult
        """
        thinned, cdf = {}, {}
        for p in self.parameters:
            log = p.startswith(POSITIVE)
            x = np.log(self.thinned[p]) if log else self.thinned[p]
            centre = x.mean(axis=1, keepdims=True)
            x = centre + factor * (x - centre)
            thinned[p] = np.exp(x) if log else x
            cdf[p] = np.mean(thinned[p] < self.truths[p][:, None], axis=1)
        return replace(self, thinned=thinned, cdf=cdf)


def _fit(design: Design, successes: np.ndarray, index: int, priors: SynthesisPriors, settings: SynthesisSettings):
    table = simulated_table(design, successes, index)
    result = fit_synthesis(table, priors, replace(settings, seed=settings.seed + index), reference=REFERENCE)
    if not np.array_equal(result.data.successes, successes):
        raise AssertionError("the fitted rows are not the simulated rows")
    return result


def run_synthesis_sbc(
    catalogues: int = DEFAULT_CATALOGUES,
    techniques: int = DEFAULT_TECHNIQUES,
    seed: int = DEFAULT_SBC_SEED,
    settings: SynthesisSettings = SBC_SETTINGS,
    keep_per_chain: int = KEEP_PER_CHAIN,
    priors: SynthesisPriors | None = None,
    table: CountTable | None = None,
    log: Callable[[str], None] = print,
) -> SynthesisSBCResult:
    """Design, simulate, fit every catalogue and rank the truths.

    Parameters
    ----------
    catalogues
        Prior-predictive catalogues to fit.
    techniques
        Techniques of the design (:func:`select_techniques`).
    seed
        Seed of the design, the simulation and the PIT randomisation.
    settings
        Sampler settings; fit ``r`` uses ``settings.seed + r``.
    keep_per_chain
        Thinned draws per chain for the ranks (at most ``settings.draws``).
    priors
        Default :class:`SynthesisPriors`.
    table
        The real count table (default: :func:`load_counts`).
    log
        Receives one line per step.

    Returns
    -------
    SynthesisSBCResult
    """
    if keep_per_chain > settings.draws:
        raise ValueError("keep_per_chain exceeds the draws per chain")
    start = time.perf_counter()
    priors = priors or SynthesisPriors()
    design = make_design(table, techniques, seed)
    size = design.describe()
    log(
        f"design: {size['techniques']} techniques, {size['rows']} rows, {size['cells']} cells; tracked {design.tracked}"
    )
    sim = simulate(design, catalogues, seed, priors)
    names = parameter_names(design)
    L = settings.chains * keep_per_chain
    thinned = {p: np.empty((0, L)) for p in names}
    cdf: dict[str, list[float]] = {p: [] for p in names}
    kept: list[int] = []
    diag: dict[str, list[float]] = {k: [] for k in ("div", "rhat", "ess", "compile", "sample")}
    failed: list[tuple[int, str]] = []
    for r in range(catalogues):
        try:
            result = _fit(design, sim.successes[r], r, priors, settings)
        except Exception as err:  # a failed fit is reported, not hidden
            failed.append((r, f"{type(err).__name__}: {err}"))
            log(f"catalogue {r + 1}/{catalogues}: fit failed ({err})")
            continue
        draws = posterior_draws(result, design)
        for p in names:
            thinned[p] = np.vstack([thinned[p], thin(draws[p], keep_per_chain).reshape(1, -1)])
            cdf[p].append(float(np.mean(draws[p] < sim.truths[p][r])))
        d = result.diagnostics
        values = (d.divergences, d.max_rhat, d.min_ess_bulk, result.seconds["compile"], result.seconds["sample"])
        for key, value in zip(diag, values, strict=True):
            diag[key].append(value)
        kept.append(r)
        log(
            f"catalogue {r + 1}/{catalogues}: compile {result.seconds['compile']:.1f} s, sample "
            f"{result.seconds['sample']:.1f} s, {d.divergences} divergences, max R-hat {d.max_rhat:.3f}, "
            f"min bulk ESS {d.min_ess_bulk:.0f}"
        )
    return SynthesisSBCResult(
        design=design,
        settings=settings,
        keep_per_chain=keep_per_chain,
        seed=seed,
        parameters=names,
        truths={p: v[kept] for p, v in sim.truths.items()},
        thinned=thinned,
        cdf={p: np.array(v) for p, v in cdf.items()},
        divergences=np.array(diag["div"], int),
        max_rhat=np.array(diag["rhat"]),
        min_ess_bulk=np.array(diag["ess"]),
        compile_seconds=np.array(diag["compile"]),
        sample_seconds=np.array(diag["sample"]),
        failed=failed,
        seconds=time.perf_counter() - start,
    )


def _label(name: str) -> str:
    """A parameter's name as the report writes it."""
    base, _, arg = name.partition("[")
    symbols = {"level_mean": "m", "level_sd": "s_a", "b": "b", "sigma": "σ", "tau": "τ", "log_kappa": "log κ"}
    symbols |= {"a": "a", f"phi_{REFERENCE}": "φ"}
    if not arg:
        return f"{symbols.get(base, base)} (`{name}`)"
    arg = arg.rstrip("]")
    if base.startswith("phi_"):
        return f"φ of {arg} on the {base[4:]} scale"
    return f"{symbols.get(base, base)} of {arg}"


def _fmt_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _diagnostic_lines(result: SynthesisSBCResult) -> list[str]:
    K, L = result.catalogues, result.ranks_out_of
    div = result.divergences
    lines = [
        f"* Fits with divergent transitions: {int(np.sum(div > 0))} of {K} "
        f"(median {np.median(div) if K else 0:.0f}, most {int(div.max()) if K else 0} of "
        f"{result.settings.chains * result.settings.draws} draws).",
        f"* Fits with max R-hat > 1.01: {int(np.sum(result.max_rhat > 1.01))}; > 1.05: "
        f"{int(np.sum(result.max_rhat > 1.05))} (worst {result.max_rhat.max() if K else float('nan'):.3f}).",
        f"* Fits with min bulk ESS < 400 (the package's limit): {int(np.sum(result.min_ess_bulk < 400))}; "
        f"< L = {L} (the thinned draws ranked): {int(np.sum(result.min_ess_bulk < L))} "
        f"(median {np.median(result.min_ess_bulk) if K else float('nan'):.0f}).",
        "  These are over every sampled quantity of the fit (u, φ, c and the year shifts included), "
        "not only the ranked ones.",
    ]
    if result.failed:
        lines.append(f"* Fits that raised: {len(result.failed)} ({'; '.join(e for _, e in result.failed[:3])}).")
    else:
        lines.append("* Fits that raised: 0.")
    return lines


def sbc_section(result: SynthesisSBCResult) -> list[str]:
    """The report section: design, per-parameter tests and coverage, diagnostics and a verdict (Markdown lines)."""
    size = result.design.describe()
    s, K, L = result.settings, result.catalogues, result.ranks_out_of
    fams = result.design.data.families
    tracked = result.design.tracked
    unif = result.uniformity()
    cover = {level: result.coverage(level) for level in COVERAGE_LEVELS}
    per_fit = result.compile_seconds + result.sample_seconds
    lines = [
        "## Simulation-based calibration of the synthesis",
        "",
        f"The multi-source model (`attackprev.model.synthesis`) fitted to {K} catalogues drawn from its own prior "
        "predictive (Talts et al. 2018): if the model, the prior and the sampler are right, the rank of each true "
        "value among the posterior draws is uniform.",
        "",
        "**Design.** The real rows of a seeded, stratified subset of the real techniques: "
        f"{size['techniques']} techniques ({size['reported_by_target']} reported by the reference family "
        f"`{result.design.data.reference}`, the others not), {size['rows']} rows in {size['cells']} "
        f"(technique, family) cells from {size['sources']} sources of {size['families']} families "
        f"({', '.join(f'`{f}`' for f in fams)}); each row keeps its real n, source, family and coverage "
        "(complete or partial); at least one technique of each partial family is included, and the share of "
        "techniques the reference family reports in 0, 1–2 and 3+ years is the real one. "
        f"Seed {result.seed}. Tracked techniques: {tracked['reported']} (reported by the target), "
        f"{tracked['unreported']} (not reported by it), {tracked['partial']} (reported by a partial family).",
        "",
        "**Simulator.** `pm.sample_prior_predictive` on the model itself, built on the design with placeholder "
        "counts, so truths and counts come from the graph that is fitted; the target-scale logit of a technique "
        "the target does not report takes a fresh departure d ~ Normal(0, σ_T), as `cell_logits` does. Each "
        "catalogue is fitted with `fit_synthesis`; which of its cells, technique levels and year shifts are "
        "sampled centred is chosen from the simulated counts by moment estimates of σ_f, s_a and τ "
        "(`attackprev.model.sampling_form`), as for the real evidence. With the cells' form alone chosen that way, "
        "prior draws of σ_f, s_a or τ near 0 put most fits in funnels, with hundreds of divergences in some. "
        "Simulated counts of partial sources may be 0, which the real evidence never holds.",
        "",
        f"**Fits.** nutpie, {s.chains} chains × {s.draws} draws after {s.tune} tuning steps, target acceptance "
        f"{s.target_accept:g}, seed {s.seed} + catalogue. Each truth is ranked among {result.keep_per_chain} evenly "
        f"thinned draws per chain (L = {L}, stride {s.draws // result.keep_per_chain}); ranks become randomised "
        f"PITs (r + V)/(L + 1). Uniformity: Pearson's χ² on 20 bins and Kolmogorov–Smirnov. Time per fit: "
        f"median {np.median(per_fit) if K else float('nan'):.1f} s (compile "
        f"{np.median(result.compile_seconds) if K else float('nan'):.1f} s, sample "
        f"{np.median(result.sample_seconds) if K else float('nan'):.1f} s); all fits "
        f"{(np.sum(result.compile_seconds) + np.sum(result.sample_seconds)) / 60:.1f} min, on two cores shared "
        "with other jobs.",
        "",
        "| quantity | χ² p | KS p | 50 % | 80 % | 94 % |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in result.parameters:
        u = unif[p]
        flag = " **(fails)**" if u.chi2_p <= ALPHA else ""
        cells = " | ".join(f"{cover[level][p]:.2f}" for level in COVERAGE_LEVELS)
        lines.append(f"| {_label(p)}{flag} | {_fmt_p(u.chi2_p)} | {_fmt_p(u.ks_p)} | {cells} |")
    failing = [p for p in result.parameters if unif[p].chi2_p <= ALPHA]
    expected = len(result.parameters) * ALPHA
    se = {level: np.sqrt(level * (1 - level) / max(K, 1)) for level in COVERAGE_LEVELS}
    lines += [
        "",
        "Coverage columns: share of catalogues whose central posterior interval (from all draws) holds the truth; "
        "its binomial standard error at K = "
        f"{K} is {', '.join(f'{se[level]:.3f}' for level in COVERAGE_LEVELS)} for the three levels.",
        "",
        *_diagnostic_lines(result),
        "",
    ]
    if failing:
        verdict = (
            f"**Verdict:** {len(failing)} of {len(result.parameters)} quantities depart from uniformity at "
            f"p ≤ {ALPHA:g}: {', '.join(f'`{p}`' for p in failing)}."
        )
    else:
        verdict = f"**Verdict:** no parameter departs from uniformity at p ≤ {ALPHA:g}."
    lines += [
        verdict,
        f"({len(result.parameters)} tests at {ALPHA:g} each: {expected:.2f} failures are expected by chance alone.)",
        "",
    ]
    return lines


def render(result: SynthesisSBCResult, argv: str) -> str:
    """The standalone report: a title, how it was made, and :func:`sbc_section`."""
    from attackprev.config import DIAGNOSTIC_LIMITS

    failing = result.failing()
    troubled = int(
        np.sum(
            (result.divergences > DIAGNOSTIC_LIMITS["divergences"])
            | (result.max_rhat > DIAGNOSTIC_LIMITS["max_rhat"])
            | (result.min_ess_bulk < DIAGNOSTIC_LIMITS["min_ess_bulk"])
        )
    )
    status = []
    if failing or troubled:
        status = [
            f"> **Not a clean pass.** {len(failing)} of {len(result.parameters)} quantities depart from uniformity "
            f"at p ≤ {ALPHA}{': ' + ', '.join(f'`{p}`' for p in failing) if failing else ''}; {troubled} of "
            f"{result.catalogues} fits fail the sampler diagnostics (divergences, R-hat or bulk ESS outside the "
            "package's limits; the list below says which).",
            "",
        ]
    head = [
        *status,
        "# Validation: simulation-based calibration of the multi-source synthesis",
        "",
        f"Generated by `python -m attackprev.validation.synthesis_sbc{argv}`; every number below comes from that run.",
        "",
    ]
    return "\n".join(head + sbc_section(result))


def save(result: SynthesisSBCResult, path: Path) -> None:
    """The truths, thinned draws, CDFs and diagnostics as an ``.npz`` (for a later look)."""
    arrays = {f"truth:{p}": v for p, v in result.truths.items()}
    arrays |= {f"thinned:{p}": v for p, v in result.thinned.items()}
    arrays |= {f"cdf:{p}": v for p, v in result.cdf.items()}
    arrays |= {
        "divergences": result.divergences,
        "max_rhat": result.max_rhat,
        "min_ess_bulk": result.min_ess_bulk,
        "compile_seconds": result.compile_seconds,
        "sample_seconds": result.sample_seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_saved(
    path: Path, table: CountTable | None = None, techniques: int = DEFAULT_TECHNIQUES, seed: int = DEFAULT_SBC_SEED
) -> SynthesisSBCResult:
    """A result back from :func:`save`'s ``.npz`` (the design is rebuilt from the same table and seed;
    the run's total time is not saved)."""
    design = make_design(table, techniques, seed)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    names = [k.removeprefix("truth:") for k in arrays if k.startswith("truth:")]
    keep = arrays[f"thinned:{names[0]}"].shape[1] // SBC_SETTINGS.chains
    return SynthesisSBCResult(
        design=design,
        settings=SBC_SETTINGS,
        keep_per_chain=keep,
        seed=seed,
        parameters=names,
        truths={p: arrays[f"truth:{p}"] for p in names},
        thinned={p: arrays[f"thinned:{p}"] for p in names},
        cdf={p: arrays[f"cdf:{p}"] for p in names},
        divergences=arrays["divergences"],
        max_rhat=arrays["max_rhat"],
        min_ess_bulk=arrays["min_ess_bulk"],
        compile_seconds=arrays["compile_seconds"],
        sample_seconds=arrays["sample_seconds"],
        seconds=float(np.sum(arrays["compile_seconds"]) + np.sum(arrays["sample_seconds"])),
    )


def sbc_record(result, table) -> dict:
    """The simulation-based calibration's figures (:mod:`attackprev.validation.synthesis_sbc`)."""
    from attackprev.config import DIAGNOSTIC_LIMITS

    tests = result.uniformity()
    bad = (
        (result.divergences > DIAGNOSTIC_LIMITS["divergences"])
        | (result.max_rhat > DIAGNOSTIC_LIMITS["max_rhat"])
        | (result.min_ess_bulk < DIAGNOSTIC_LIMITS["min_ess_bulk"])
    )
    return {
        "data_sha256": table.digest,
        "catalogues": result.catalogues,
        "techniques": len(result.design.data.techniques),
        "chi2_p": {p: u.chi2_p for p, u in tests.items()},
        "ks_p": {p: u.ks_p for p, u in tests.items()},
        "coverage_94": result.coverage(0.94),
        "fits_with_problems": int(bad.sum()),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m attackprev.validation.synthesis_sbc``: run the SBC and write its report."""
    from attackprev.atomic import write_text_atomic

    parser = argparse.ArgumentParser(prog="python -m attackprev.validation.synthesis_sbc", description=__doc__)
    parser.add_argument("--catalogues", type=int, default=DEFAULT_CATALOGUES, help="catalogues to simulate and fit")
    parser.add_argument("--techniques", type=int, default=DEFAULT_TECHNIQUES, help="techniques of the design")
    parser.add_argument("--seed", type=int, default=DEFAULT_SBC_SEED, help="seed of design, simulation and PITs")
    parser.add_argument("--out", type=Path, default=Path("reports/validation-synthesis-sbc.md"), help="report file")
    parser.add_argument(
        "--save", type=Path, default=Path("reports/validation/synthesis_sbc.npz"), help="truths and thinned draws"
    )
    parser.add_argument("--from-saved", type=Path, help="render the report from a saved run instead of running")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("pymc").setLevel(logging.WARNING)
    start = time.perf_counter()
    if args.from_saved:
        result = load_saved(args.from_saved, techniques=args.techniques, seed=args.seed)
    else:
        result = run_synthesis_sbc(
            args.catalogues,
            args.techniques,
            args.seed,
            log=lambda msg: print(f"[{time.perf_counter() - start:7.1f} s] {msg}", flush=True),
        )
        save(result, args.save)
    flags = []
    if args.catalogues != DEFAULT_CATALOGUES:
        flags.append(f" --catalogues {args.catalogues}")
    if args.techniques != DEFAULT_TECHNIQUES:
        flags.append(f" --techniques {args.techniques}")
    if args.seed != DEFAULT_SBC_SEED:
        flags.append(f" --seed {args.seed}")
    write_text_atomic(args.out, render(result, "".join(flags)))
    from attackprev.validation.summary import write_record

    write_record(args.out.parent, "synthesis_sbc", sbc_record(result, load_counts()))  # the design's real evidence
    print(f"wrote {args.out} in {result.seconds:.0f} s; failing: {result.failing() or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
