"""One run, from checked options to written reports: used by the command line, the model scripts and notebooks.

:func:`plan_run` decides which model produces the headline of a technique report and which
sampler settings every fitted model gets, refusing, with one line, an option that would not
reach the number it seems to change. :func:`run_fit` then fits (reusing a saved
multi-technique posterior when one matches, :func:`attackprev.inference.catalogue.cached_fit_catalogue`)
and writes the reports.

The default estimand of a technique is the multi-technique model's μ_t: every technique is
estimated on the same footing, with the between-source heterogeneity learned from every
technique that several sources report. A run whose headline is another model (the
single-technique model, chosen with ``--model single``, ``--engine exact`` or ``--weight``)
says so in its output, in the report's first lines and in ``summary.json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attackprev.analysis.technique import MULTI, SINGLE
from attackprev.errors import InputError
from attackprev.evidence.tables import Evidence
from attackprev.inference.catalogue import CatalogueSettings
from attackprev.inference.mcmc import SamplerSettings
from attackprev.model.priors import DEFAULT_PRIOR, get_prior

ENGINES = ("mcmc", "exact")
MODELS = ("auto", "multi", "single")
#: Older spelling of ``multi`` that the command line still accepts.
MODEL_ALIASES = {"catalogue": "multi"}


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for; ``None`` means "the model's default".

    Attributes
    ----------
    model
        ``"auto"`` (the multi-technique model when the evidence supports it and nothing
        asks for the single-technique one), ``"multi"`` or ``"single"``.
    engine
        ``"mcmc"`` or ``"exact"`` (the exact grid computes the single-technique model only).
    prior
        Name of the single-technique model's hyperprior (``attackprev priors``).
    weights
        Source weights in [0, 1] (a power prior on the single-technique model).
    draws, tune, chains, seed
        Sampler settings; each reaches every model this run fits.
    figures
        Draw the report's figures.
    refit
        Fit the multi-technique model even when a saved posterior matches.
    """

    model: str = "auto"
    engine: str = "mcmc"
    prior: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    seed: int | None = None
    figures: bool = True
    refit: bool = False


@dataclass(frozen=True)
class RunPlan:
    """What :func:`run_fit` will do, decided before anything is fitted."""

    headline: str  # MULTI or SINGLE, for the techniques named
    note: str | None  # why the headline is not the default model
    engine: str
    prior: object  # attackprev.model.priors.Prior
    weights: dict[str, float]
    single: SamplerSettings
    multi: CatalogueSettings
    fit_multi: bool  # the multi-technique model is needed (headline or --all)


@dataclass
class RunResult:
    """What a run wrote and whether every fit passed its diagnostics."""

    targets: list[Path] = field(default_factory=list)
    failed: bool = False
    lines: list[str] = field(default_factory=list)


def quiet_libraries() -> None:
    """Silence the libraries' warnings and log lines (what they warn of is in the reports' diagnostics)."""
    import logging
    import warnings

    for category in (FutureWarning, UserWarning, RuntimeWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in ("pymc", "pytensor", "arviz", "numba"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _sampler_options(options: RunOptions) -> dict[str, int]:
    return {k: v for k in ("draws", "tune", "chains", "seed") if (v := getattr(options, k)) is not None}


def plan_run(options: RunOptions, evidence: Evidence, techniques: list[str], all_techniques: bool) -> RunPlan:
    """Decide the headline model and every model's settings; refuse options that would not apply.

    Raises
    ------
    InputError
        For an unknown engine, model or prior, a weight outside [0, 1] or for an unknown
        source, and for an option that does not reach any number this run reports.
    """
    from attackprev.inference.catalogue import catalogue_applies

    model = MODEL_ALIASES.get(options.model, options.model)
    if model not in MODELS:
        raise InputError(f"--model {options.model!r}: choose one of {', '.join(MODELS)}")
    if options.engine not in ENGINES:
        raise InputError(f"--engine {options.engine!r}: choose one of {', '.join(ENGINES)}")
    try:
        prior = get_prior(options.prior or DEFAULT_PRIOR)
    except ValueError as err:
        raise InputError(f"--prior: {err}") from None
    known = {o.source_id for o in evidence.observations}
    for sid in options.weights:
        if sid not in known:
            raise InputError(f"unknown source {sid!r}; sources in the evidence: {', '.join(sorted(known))}")

    applies = catalogue_applies(evidence)
    reasons = []  # why the single-technique model must be the headline
    if options.engine == "exact":
        reasons.append(
            "--engine exact computes the single-technique model (this technique's sources alone) on a grid; "
            "the default multi-technique model is sampled by MCMC"
        )
    if options.weights:
        reasons.append("--weight tempers a source in the single-technique model only")
    if model == "multi":
        if reasons:
            raise InputError(f"--model multi: {reasons[0]}; drop one of the two options")
        if not applies:
            raise InputError("--model multi needs at least 5 techniques, 3 of them reported by several sources")
    if model == "single":
        headline, note = SINGLE, "--model single: this technique's sources alone, not the default multi-technique model"
    elif model == "multi":
        headline, note = MULTI, None
    elif reasons:
        headline, note = SINGLE, reasons[0]
    elif not applies:
        headline = SINGLE
        note = (
            "the evidence has too few techniques reported by several sources for the multi-technique model "
            "(it needs at least 5 techniques, 3 of them with several sources)"
        )
    else:
        headline, note = MULTI, None
    if options.prior is not None and headline == MULTI:
        raise InputError(
            f"--prior {options.prior} sets the single-technique model's hyperprior, but the headline here is the "
            "multi-technique model (its priors are attackprev.model.priors.CataloguePriors); add --model single "
            "to report the single-technique model under this prior"
        )

    sampler = _sampler_options(options)
    fit_multi = all_techniques or (headline == MULTI and bool(techniques))
    sampled_single = options.engine == "mcmc" and bool(techniques)
    if sampler and not (fit_multi or sampled_single):
        names = ", ".join(f"--{k}" for k in sampler)
        raise InputError(f"{names}: nothing is sampled in this run (--engine exact computes the posterior on a grid)")
    return RunPlan(
        headline=headline,
        note=note,
        engine=options.engine,
        prior=prior,
        weights=dict(options.weights),
        single=SamplerSettings(**sampler),
        multi=CatalogueSettings(**sampler),
        fit_multi=fit_multi,
    )


def run_fit(
    techniques: list[str],
    evidence: Evidence,
    options: RunOptions | None = None,
    *,
    out: Path | str = "reports",
    all_techniques: bool = False,
    command: str = "",
    progress: bool = False,
    workers=None,
    echo: Callable[[str], None] | None = None,
    plan: RunPlan | None = None,
) -> RunResult:
    """Fit and write reports: ``OUT/techniques/`` with ``all_techniques``, ``OUT/<id>/`` per technique.

    Parameters
    ----------
    techniques
        ATT&CK IDs present in ``evidence``.
    evidence
        Loaded evidence (:func:`attackprev.evidence.tables.load_evidence`).
    options
        What to fit (defaults: the default model and settings).
    out
        Reports folder.
    all_techniques
        Also write the multi-technique (catalogue) report.
    command
        The command line to quote in the reports' Reproduce sections.
    progress
        Show progress (sampling bars and what is being done, on stderr).
    workers
        :class:`attackprev.reporting.figure_workers.FigureWorkers` to draw figures in parallel.
    echo
        Where one-line results go (default: stdout).
    plan
        What :func:`plan_run` made of these ``options`` (made here when omitted).

    Returns
    -------
    RunResult
    """
    from attackprev.analysis.technique import analyse_technique
    from attackprev.reporting.technique import settings_text, write_technique_report

    options = options or RunOptions()
    echo = echo or print
    out = Path(out)
    plan = plan or plan_run(options, evidence, techniques, all_techniques)
    command = command or "attackprev fit " + " ".join((["--all"] if all_techniques else []) + techniques)
    result = RunResult()

    def say(line: str) -> None:
        result.lines.append(line)
        echo(line)

    catalogue = None
    if plan.fit_multi:
        from attackprev.inference.catalogue import cached_fit_catalogue

        if progress:
            print("multi-technique model: looking for a saved fit, else fitting every variant ...", file=sys.stderr)
        start = time.perf_counter()
        catalogue, origin = cached_fit_catalogue(
            evidence, settings=plan.multi, beside=out, refit=options.refit, progress=progress
        )
        how = "fitted" if origin == "fitted" else f"reused {origin}"
        status = "diagnostics passed" if catalogue.passed else "DIAGNOSTICS FAILED"
        say(
            f"multi-technique model: {len(catalogue.data.techniques)} techniques, variant {catalogue.variant}, "
            f"{settings_text(asdict(plan.multi))} ({how} in {time.perf_counter() - start:.1f} s; {status})"
        )
        result.failed |= not catalogue.passed
        if all_techniques:
            from attackprev.reporting.catalogue import write_catalogue_report

            target = write_catalogue_report(catalogue, evidence, out, command=command)
            result.targets.append(target)
            say(f"catalogue report -> {target}")
    if plan.note and techniques:
        say(f"note: the headline is the {plan.headline} model, not the default: {plan.note}")
    for t in techniques:
        if progress:
            print(f"fitting {t} ({plan.engine}, prior {plan.prior.name}) ...", file=sys.stderr)
        analysis = analyse_technique(
            t,
            evidence,
            plan.prior,
            plan.single,
            plan.weights,
            plan.engine,
            progress=progress,
            catalogue=catalogue if plan.headline == MULTI else None,
            workers=workers if options.figures and plan.engine == "mcmc" else None,
            estimand_note=plan.note,
        )
        target = write_technique_report(analysis, out, command=command, figures=options.figures)
        s = analysis.summary
        result.targets.append(target)
        lo, hi = s["prevalence"]["hdi_94"]
        d = s["diagnostics"]
        status = "diagnostics passed" if d["passed"] else "DIAGNOSTICS FAILED: " + "; ".join(d["problems"])
        say(
            f"{t}: {s['mal']['expression']}  ({s['model']} model, {s['engine']}; μ mean {s['prevalence']['mean']:.4f}, "
            f"94 % HDI {lo:.4f}–{hi:.4f}; {status}) -> {target}"
        )
        result.failed |= not d["passed"]
    return result


# --------------------------------------------------------------------------------------
# the multi-source synthesis (evidence base v2)
# --------------------------------------------------------------------------------------
def synthesis_summary(result, table, target: str, technique_id: str, command: str) -> tuple[dict, list, list]:
    """The synthesis report's summary, its estimates and its predictive rows."""
    from collections import Counter

    from attackprev.analysis.synthesis import (
        ELANG_T1102,
        family_rows,
        predictive_rows,
        source_pulls,
        technique_estimates,
        technique_headline,
    )
    from attackprev.evidence.attack import attack_table
    from attackprev.inference.summaries import draw_summary
    from attackprev.reporting.synthesis import mal_line

    estimates = technique_estimates(result, table, target)
    predictive = predictive_rows(result, table)
    headline = technique_headline(result, technique_id, target, ELANG_T1102)
    populations = Counter(table.sources[s].population for s in result.data.sources if table.sources[s].family == target)
    multi = [result.data.families[f] for f in result.data.multi_source_families()]
    summary = {
        "target": target,
        "target_description": populations.most_common(1)[0][0],
        "reference": result.data.reference,
        "headline": headline,
        "headline_name": attack_table()[technique_id].display_name,
        "mal": mal_line(headline["mean"]),
        "pulls": source_pulls(result, table, technique_id, target),
        "headline_predictive": {r["family"]: r for r in predictive if r["technique_id"] == technique_id},
        "families": family_rows(result, table),
        "tau": draw_summary(result.stacked("tau")) if multi else None,
        "log_kappa": {f: draw_summary(result.stacked("log_kappa")[:, i]) for i, f in enumerate(multi)},
        "counts": {
            "techniques": len(result.data.techniques),
            "observations": int(result.data.successes.size),
            "sources": len(result.data.sources),
            "families": len(result.data.families),
            "without_target": sum(not r["target_data"] for r in estimates),
        },
        "diagnostics": result.diagnostics.to_dict(),
        "record": result.record(),
        "command": command,
    }
    return summary, estimates, predictive


def run_synthesis(
    table,
    target: str,
    out: Path,
    settings=None,
    command: str = "attackprev synthesis",
    technique_id: str = "T1102",
    progress: bool = False,
    echo: Callable[[str], None] = print,
):
    """Fit the multi-source model on a count table and write ``OUT/sources/``. Returns the result.

    Raises
    ------
    InputError
        For a target family with no rows.
    """
    from attackprev.inference.synthesis import fit_synthesis
    from attackprev.reporting.synthesis import write_synthesis_report

    families = sorted({c.family for c in table.counts})
    if target not in families:
        raise InputError(f"--target {target!r}: not a family of the evidence; families: {', '.join(families)}")
    result = fit_synthesis(table, settings=settings, progress=progress)
    summary, estimates, predictive = synthesis_summary(result, table, target, technique_id, command)
    folder = write_synthesis_report(summary, estimates, predictive, out)
    h = summary["headline"]
    echo(
        f"{technique_id} on the {target} scale: {h['mean']:.4f} (94 % HDI {h['hdi_94'][0]:.4f}-{h['hdi_94'][1]:.4f}); "
        f"P(p > {h['point']:g}) = {h['prob_greater']:.3f}; {summary['mal']}"
    )
    d = result.diagnostics
    status = "passed" if d.passed else "FAILED: " + "; ".join(d.problems)
    echo(f"diagnostics {status}; wrote {folder}")
    return result
