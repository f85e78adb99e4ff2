"""The whole validation run: sizes, seeds, and the order of the checks.

:func:`run_suite` returns a :class:`SuiteResults` that :mod:`attackprev.validation.report` turns into
Markdown. Every random number comes from a generator seeded by :class:`SuiteConfig`, and
nutpie is deterministic given its seed, so rerunning gives the same numbers (only the
timings change).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from attackprev.inference.mcmc import SamplerSettings
from attackprev.model.priors import DEFAULT_PRIOR, PRIORS, Prior
from attackprev.validation.accuracy import GridConvergence, grid_convergence
from attackprev.validation.compare import EngineComparison, compare_engines, synthetic_technique
from attackprev.validation.coverage import Coverage, coverage_table
from attackprev.validation.mcmc import SBC_SETTINGS, Refitter, data_swap_is_exact, divergences
from attackprev.validation.sbc import SBCResult, exact_sbc, mcmc_sbc
from attackprev.validation.simulate import T1102_SUCCESSES, T1102_TRIALS, design_trials, simulate

#: Seeds with which a data set whose SBC fit diverged is refitted with production settings.
FOLLOWUP_SEEDS = 5


@dataclass(frozen=True)
class SuiteConfig:
    """Sizes and seeds of a validation run.

    Attributes
    ----------
    prior_name
        The hyperprior under test (the package default).
    seed
        Seed of the simulated data sets and designs.
    sources
        Numbers of sources of the SBC designs.
    exact_replicates, mcmc_replicates
        SBC data sets per design for each engine (NUTS uses the first ``mcmc_replicates``
        of the exact engine's data sets).
    sbc_settings
        NUTS settings of the SBC fits.
    grid_replicates
        SBC data sets per design refitted on a 4× finer grid to measure the exact engine's
        grid error.
    compare_sources
        Numbers of sources of the synthetic techniques compared with the exact engine
        (T1102 is always compared too).
    compare_settings
        NUTS settings for the comparison: the package's production settings and a long run.
    """

    prior_name: str = DEFAULT_PRIOR
    seed: int = 20180406
    sources: tuple[int, ...] = (2, 20)
    exact_replicates: int = 1000
    mcmc_replicates: int = 200
    sbc_settings: SamplerSettings = SBC_SETTINGS
    grid_replicates: int = 15
    compare_sources: tuple[int, ...] = (2, 5, 50)
    compare_settings: tuple[tuple[str, SamplerSettings], ...] = (
        ("production", SamplerSettings()),
        ("long", SamplerSettings(draws=40000)),
    )

    @property
    def prior(self) -> Prior:
        """The hyperprior object."""
        return PRIORS[self.prior_name]


QUICK = SuiteConfig(
    exact_replicates=60,
    mcmc_replicates=10,
    grid_replicates=3,
    compare_settings=(("production", SamplerSettings()),),
)


@dataclass
class SuiteResults:
    """Everything the report shows."""

    config: SuiteConfig
    sbc: dict[tuple[str, int], SBCResult] = field(default_factory=dict)
    coverage: dict[tuple[str, int], list[Coverage]] = field(default_factory=dict)
    grid: list[GridConvergence] = field(default_factory=list)
    comparisons: list[tuple[str, EngineComparison]] = field(default_factory=list)
    #: (sources, data set) -> divergences of production-settings refits of a data set whose SBC fit diverged
    divergence_followup: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    compile_seconds: dict[int, float] = field(default_factory=dict)
    data_swap_exact: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def comparison_sets(config: SuiteConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, successes, trials) of the data sets where NUTS is checked against the exact engine."""
    sets = [("T1102", T1102_SUCCESSES, T1102_TRIALS)]
    for s in config.compare_sources:
        y, n = synthetic_technique(s, config.seed)
        sets.append((f"synthetic, {s} sources", y, n))
    return sets


def run_suite(config: SuiteConfig, log: Callable[[str], None] = print) -> SuiteResults:
    """Run SBC, coverage and the engine comparison.

    Parameters
    ----------
    config
        Sizes and seeds.
    log
        Progress messages go here (``print`` by default).

    Returns
    -------
    SuiteResults
    """
    res = SuiteResults(config)
    prior = config.prior
    refitters: dict[int, Refitter] = {}

    def refitter(sources: int, trials: np.ndarray) -> Refitter:
        if sources not in refitters:
            refitters[sources] = Refitter(prior, trials)
            res.compile_seconds[sources] = refitters[sources].compile_seconds
            log(f"compiled the {sources}-source model in {res.compile_seconds[sources]:.1f} s")
        return refitters[sources]

    for s in config.sources:
        trials = design_trials(s, config.seed)
        sim = simulate(prior, trials, config.exact_replicates, config.seed)
        start = time.perf_counter()
        res.sbc["exact", s] = exact_sbc(sim, prior)
        res.seconds[f"exact SBC, {s} sources"] = time.perf_counter() - start
        log(f"exact SBC, {s} sources: {sim.replicates} fits in {res.seconds[f'exact SBC, {s} sources']:.1f} s")

        start = time.perf_counter()
        first = sim.subset(config.grid_replicates)
        res.grid.append(grid_convergence(f"{s} sources", first.successes, trials, prior))
        res.seconds[f"grid refinement, {s} sources"] = time.perf_counter() - start
        log(f"grid refinement, {s} sources: {first.replicates} data sets in {time.perf_counter() - start:.1f} s")

        fitter = refitter(s, trials)
        if s == config.sources[0]:
            res.data_swap_exact = data_swap_is_exact(
                fitter, sim.successes[0], SamplerSettings(draws=200, tune=200), seed=1
            )
            log(f"data swap reproduces a fresh compile: {res.data_swap_exact}")
        start = time.perf_counter()
        res.sbc["mcmc", s] = mcmc_sbc(sim.subset(config.mcmc_replicates), fitter, config.sbc_settings)
        res.seconds[f"NUTS SBC, {s} sources"] = time.perf_counter() - start
        log(f"NUTS SBC, {s} sources: {config.mcmc_replicates} fits in {res.seconds[f'NUTS SBC, {s} sources']:.1f} s")
        for i in np.nonzero(res.sbc["mcmc", s].divergences)[0]:
            production = config.compare_settings[0][1]
            res.divergence_followup[s, int(i)] = [
                divergences(fitter.fit(sim.successes[i], production, seed=production.seed + k))
                for k in range(FOLLOWUP_SEEDS)
            ]

    for key, result in res.sbc.items():
        res.coverage[key] = coverage_table(result.mu_cdf, result.mu_in_hdi94)

    start = time.perf_counter()
    for k, (name, y, n) in enumerate(comparison_sets(config)):
        fitter = refitter(len(n), n)
        for label, settings in config.compare_settings:
            row = compare_engines(name, y, n, prior, fitter, settings, seed=settings.seed + k)
            res.comparisons.append((label, row))
            log(f"NUTS vs exact, {name} ({label}): mean diff {row.mean_z:+.2f} MCSE")
    res.seconds["NUTS vs exact"] = time.perf_counter() - start
    return res
