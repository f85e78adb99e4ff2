"""One run, from checked options to written reports: used by the command line, the model scripts and notebooks.

:func:`plan_run` decides which model produces the headline of a technique report and which
sampler settings every fitted model gets, refusing, with one line, an option that would not
reach the number it seems to change. :func:`run_fit` then fits (reusing a saved posterior when
one matches: :func:`attackprev.inference.synthesis_cache.cached_fit_synthesis`,
:func:`attackprev.inference.catalogue.cached_fit_catalogue`) and writes the reports.

The default estimand of a technique is its probability on one named scale in the multi-source
synthesis (every source of the evidence base v2, each through its family's systematic offset;
by default the share of intrusions investigated by incident responders, ``--target mtrends``).
A run whose headline is another model — the multi-technique model on the four sources of
enterpriseLang's notes (``--model multi``, or ``--data``), or the single-technique model
(``--model single``, ``--engine exact``, ``--weight``) — says so in its output, in the report's
first lines and in ``summary.json``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attackprev.analysis.technique import MULTI, SINGLE, SYNTHESIS
from attackprev.config import DEFAULT_TARGET
from attackprev.errors import InputError
from attackprev.evidence.tables import Evidence
from attackprev.inference.catalogue import CatalogueSettings
from attackprev.inference.mcmc import SamplerSettings
from attackprev.inference.synthesis import SynthesisSettings
from attackprev.model.priors import DEFAULT_PRIOR, get_prior

ENGINES = ("mcmc", "exact")
MODELS = ("auto", "synthesis", "multi", "single")
#: Other spellings the command line accepts.
MODEL_ALIASES = {"catalogue": "multi", "multi-source": "synthesis", "sources": "synthesis"}


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for; ``None`` means "the model's default".

    Attributes
    ----------
    model
        ``"auto"`` (the multi-source synthesis on the evidence base v2 when no ``--data`` is
        given and nothing asks for the single-technique model; else the multi-technique model
        when the evidence supports it), ``"synthesis"``, ``"multi"`` or ``"single"``.
    target
        The family on whose scale the multi-source synthesis states every probability.
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
    target: str = DEFAULT_TARGET
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

    headline: str  # SYNTHESIS, MULTI or SINGLE, for the techniques named
    note: str | None  # why the headline is not the default model
    engine: str
    prior: object  # attackprev.model.priors.Prior
    weights: dict[str, float]
    single: SamplerSettings
    multi: CatalogueSettings
    fit_multi: bool  # the multi-technique model (notes' sources) is needed (headline, or --all with it)
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)
    fit_synthesis: bool = False  # the multi-source model is needed (headline, or --all with it)
    target: str = DEFAULT_TARGET


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


def plan_run(
    options: RunOptions, evidence: Evidence, techniques: list[str], all_techniques: bool, table=None
) -> RunPlan:
    """Decide the headline model and every model's settings; refuse options that would not apply.

    Parameters
    ----------
    options, evidence, techniques, all_techniques
        As for :func:`run_fit`.
    table
        The evidence base v2 (:class:`attackprev.evidence.counts.CountTable`) for the multi-source
        synthesis; ``None`` when the run reads a user's ``--data`` file.

    Raises
    ------
    InputError
        For an unknown engine, model, prior or target, a weight outside [0, 1] or for an unknown
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
            "the default multi-source model is sampled by MCMC"
        )
    if options.weights:
        reasons.append("--weight tempers a source in the single-technique model only")
    if model in ("multi", "synthesis") and reasons:
        raise InputError(f"--model {model}: {reasons[0]}; drop one of the two options")
    if model == "multi" and not applies:
        raise InputError("--model multi needs at least 5 techniques, 3 of them reported by several sources")
    if model == "synthesis" and table is None:
        raise InputError("--model synthesis reads the evidence base v2 (data/evidence/); it cannot be used with --data")
    no_v2 = "--data: the multi-source synthesis reads the evidence base v2's families, which a --data file lacks"
    if model == "single":
        headline, note = SINGLE, "--model single: this technique's sources alone, not the default multi-source model"
    elif model == "multi":
        headline = MULTI
        note = (
            "--model multi: the four sources of enterpriseLang's notes, treated as measuring the same thing, "
            "not the default multi-source model"
        )
    elif model == "synthesis":
        headline, note = SYNTHESIS, None
    elif reasons:
        headline, note = SINGLE, reasons[0]
    elif table is not None:
        headline, note = SYNTHESIS, None
    elif applies:
        headline, note = MULTI, no_v2
    else:
        headline = SINGLE
        note = (
            f"{no_v2}, and the file has too few techniques reported by several sources for the multi-technique "
            "model (it needs at least 5 techniques, 3 of them with several sources)"
        )
    if options.prior is not None and headline != SINGLE:
        raise InputError(
            f"--prior {options.prior} sets the single-technique model's hyperprior, but the headline here is the "
            f"{headline} model (its priors are fixed in attackprev.model.priors); add --model single "
            "to report the single-technique model under this prior"
        )
    # --all writes the catalogue of the default multi-source model, or of the multi-technique one when asked
    catalogue_model = (MULTI if model == "multi" or table is None else SYNTHESIS) if all_techniques else None
    fit_synthesis = catalogue_model == SYNTHESIS or (headline == SYNTHESIS and bool(techniques))
    fit_multi = catalogue_model == MULTI or (headline == MULTI and bool(techniques))
    if fit_synthesis:
        check_family("--target", options.target, table)
    elif options.target != DEFAULT_TARGET:
        raise InputError(
            f"--target {options.target}: it sets the multi-source model's scale, which this run does not fit"
        )

    sampler = _sampler_options(options)
    sampled_single = options.engine == "mcmc" and bool(techniques)
    if sampler and not (fit_multi or fit_synthesis or sampled_single):
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
        synthesis=SynthesisSettings(**sampler),
        fit_synthesis=fit_synthesis,
        target=options.target,
    )


def check_family(option: str, family: str, table) -> None:
    """Refuse, in one line, an option naming a family the evidence base does not have."""
    families = sorted({c.family for c in table.counts})
    if family not in families:
        raise InputError(f"{option} {family!r}: not a family of the evidence; families: {', '.join(families)}")


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
    table=None,
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
    table
        The evidence base v2 (:func:`attackprev.evidence.counts.load_counts`) for the
        multi-source synthesis, the default model; ``None`` for a run on a ``--data`` file.

    Returns
    -------
    RunResult
    """
    from attackprev.analysis.technique import analyse_technique
    from attackprev.reporting.technique import settings_text, write_technique_report

    options = options or RunOptions()
    echo = echo or print
    out = Path(out)
    plan = plan or plan_run(options, evidence, techniques, all_techniques, table)
    command = command or "attackprev fit " + " ".join((["--all"] if all_techniques else []) + techniques)
    result = RunResult()

    def say(line: str) -> None:
        result.lines.append(line)
        echo(line)

    synthesis = None
    if plan.fit_synthesis:
        synthesis = _fit_synthesis(table, plan, options, out, all_techniques, command, progress, say, result)
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
            synthesis=synthesis if plan.headline == SYNTHESIS else None,
        )
        target = write_technique_report(analysis, out, command=command, figures=options.figures)
        s = analysis.summary
        result.targets.append(target)
        lo, hi = s["prevalence"]["hdi_94"]
        d = s["diagnostics"]
        status = "diagnostics passed" if d["passed"] else "DIAGNOSTICS FAILED: " + "; ".join(d["problems"])
        say(
            f"{t}: {s['mal']['expression']}  ({s['model']} model, {s['engine']}; mean {s['prevalence']['mean']:.4f}, "
            f"94 % HDI {lo:.4f}–{hi:.4f}; {status}) -> {target}"
        )
        result.failed |= not d["passed"]
    return result


def _fit_synthesis(
    table, plan: RunPlan, options: RunOptions, out: Path, all_techniques, command, progress, say, result
):
    """Fit (or reuse) the multi-source model; with ``--all``, write its catalogue. Returns the view."""
    from attackprev.analysis.synthesis import SynthesisView
    from attackprev.inference.synthesis_cache import cached_fit_synthesis
    from attackprev.reporting.technique import settings_text

    if progress:
        print("multi-source model: looking for a saved fit, else fitting (about 3 minutes) ...", file=sys.stderr)
    start = time.perf_counter()
    fitted, origin = cached_fit_synthesis(table, settings=plan.synthesis, refit=options.refit, progress=progress)
    how = "fitted" if origin == "fitted" else f"reused {origin}"
    status = "diagnostics passed" if fitted.passed else "DIAGNOSTICS FAILED: " + "; ".join(fitted.diagnostics.problems)
    say(
        f"multi-source model: {len(fitted.data.techniques)} techniques, {len(fitted.data.sources)} sources, "
        f"{settings_text(asdict(plan.synthesis))} ({how} in {time.perf_counter() - start:.1f} s; {status})"
    )
    result.failed |= not fitted.passed
    if all_techniques:
        from attackprev.reporting.synthesis import write_synthesis_report

        summary, estimates, predictive = synthesis_summary(fitted, table, plan.target, "T1102", command)
        target = write_synthesis_report(
            summary, estimates, predictive, out, extra=browse_files(fitted, table, summary, estimates)
        )
        result.targets.append(target)
        h = summary["headline"]
        say(
            f"catalogue on the {plan.target} scale -> {target} (T1102: {h['mean']:.4f}, 94 % HDI "
            f"{h['hdi_94'][0]:.4f}-{h['hdi_94'][1]:.4f})"
        )
    return SynthesisView(fitted, table, plan.target)


def browse_files(result, table, summary: dict, estimates: list[dict]) -> dict[str, str]:
    """The catalogue's Navigator layers (``layers/<family>.json``, ``layers/enterpriselang_shift.json``) and
    its browsable page (``index.html``), as path inside ``OUT/techniques/`` -> text."""
    from attackprev.analysis.browse import (
        family_label,
        family_scales,
        page_meta,
        page_rows,
        technique_evidence,
    )
    from attackprev.analysis.synthesis import target_description
    from attackprev.atomic import round_floats
    from attackprev.reporting.catalogue_page import render_catalogue_page
    from attackprev.reporting.navigator import catalogue_layers

    families = result.data.families
    evidence = technique_evidence(result)
    # every file states the numbers catalogue.csv states (six significant digits)
    scales = round_floats(family_scales(result, table, summary["target"], estimates))
    labels = {f: family_label(table, f) for f in families}
    descriptions = {f: target_description(result, table, f) for f in families}
    summary = round_floats(summary)
    files = {
        f"layers/{name}": text
        for name, text in catalogue_layers(scales, labels, descriptions, evidence, summary).items()
    }
    rows = page_rows(scales[summary["target"]], evidence)
    files["index.html"] = render_catalogue_page(rows, page_meta(summary, table, families))
    return files


def synthesis_summary(result, table, target: str, technique_id: str, command: str) -> tuple[dict, list, list]:
    """The synthesis catalogue's summary, its estimates and its predictive rows."""
    from attackprev.analysis.synthesis import (
        ELANG_T1102,
        add_runner_up,
        elang_comparison,
        family_rows,
        load_runner_up,
        predictive_rows,
        source_pulls,
        target_description,
        technique_estimates,
        technique_headline,
    )
    from attackprev.evidence.attack import attack_table
    from attackprev.inference.summaries import draw_summary
    from attackprev.reporting.synthesis import mal_line

    estimates = technique_estimates(result, table, target)
    runner_up = add_runner_up(estimates, load_runner_up(), target)
    predictive = predictive_rows(result, table)
    headline = technique_headline(result, technique_id, target, ELANG_T1102)
    multi = [result.data.families[f] for f in result.data.multi_source_families()]
    summary = {
        "target": target,
        "target_description": target_description(result, table, target),
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
        "enterpriselang": elang_comparison(estimates),
        "runner_up": runner_up,
        "diagnostics": result.diagnostics.to_dict(),
        "record": result.record(),
        "command": command,
    }
    return summary, estimates, predictive


def run_simulation(
    language: Path,
    model: Path,
    entry_points: list[str],
    targets: list[str],
    *,
    steps: Path | None = None,
    settings=None,
    out: Path | str = "reports",
    name: str | None = None,
    command: str = "",
    refit: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> RunResult:
    """Push joint posterior draws of the multi-source model through a MAL attack graph; write the report.

    Parameters
    ----------
    language
        A MAL language: a ``.mal`` file or a ``.mar`` archive.
    model
        A mal-toolbox instance model (``.yml``/``.json``) of that language.
    entry_points, targets
        Attack-graph nodes (``"Asset:step"``, with the model's asset names) where the attacker starts and
        whose compromise is asked about.
    steps
        The step table mapping the language's steps to ATT&CK techniques (default enterpriseLang's,
        ``data/enterpriselang_attack_steps.csv``).
    settings
        :class:`attackprev.analysis.simulation.SimulationSettings`.
    out
        Reports folder; the report goes to ``OUT/simulation/<name>/`` (``name``: the model file's stem).
    """
    from attackprev.analysis.simulation import PosteriorDraws, SimulationSettings, simulate
    from attackprev.analysis.synthesis import target_description
    from attackprev.config import ELANG_ATTACK_STEPS_CSV
    from attackprev.evidence.counts import load_counts
    from attackprev.inference.synthesis_cache import cached_fit_synthesis
    from attackprev.reporting.simulation import write_simulation_report
    from attackprev.simulation.graph import load_attack_graph
    from attackprev.simulation.techniques import read_step_techniques

    settings = settings or SimulationSettings()
    echo = echo or print
    result = RunResult()
    if not entry_points:
        raise InputError("name at least one entry point, e.g. --entry internet:attackerAccess")
    if not targets:
        raise InputError("name at least one target step, e.g. --target dc:execute")
    if settings.draws < 20 or settings.episodes < 1:
        raise InputError("--draws must be at least 20 and --episodes at least 1")
    step_table = read_step_techniques(steps or ELANG_ATTACK_STEPS_CSV)
    graph = load_attack_graph(language, model)
    graph.nodes([*entry_points, *targets])  # an unknown step is one line, before the fit
    table = load_counts()
    check_family("--scale", settings.scale, table)
    if progress:
        print("multi-source model: looking for a saved fit, else fitting (about 3 minutes) ...", file=sys.stderr)
    fitted, _ = cached_fit_synthesis(table, settings=SynthesisSettings(), refit=refit, progress=progress)
    start = time.perf_counter()
    summary, draws = simulate(
        graph,
        step_table,
        entry_points,
        targets,
        PosteriorDraws.from_synthesis(fitted, settings.scale, target_description(fitted, table, settings.scale)),
        settings,
        language=Path(language),
        model=Path(model),
        command=command or "attackprev simulate",
    )
    folder = write_simulation_report(summary, draws, out, name or Path(model).stem)
    result.targets.append(folder)
    result.failed = not fitted.passed
    elapsed = time.perf_counter() - start
    for t in summary["targets"]:
        p = t["posterior"]
        line = (
            f"{t['target']}: P(reached) {p['mean']:.4g} (94 % interval across draws {p['hdi_94'][0]:.4g}-"
            f"{p['hdi_94'][1]:.4g}); language's values {t['language']['p']:.4g}, "
            f"posterior means {t['plug_in']['p']:.4g}"
        )
        result.lines.append(line)
        echo(line)
    tail = f"{settings.draws} draws x {settings.episodes} episodes in {elapsed:.1f} s -> {folder}"
    result.lines.append(tail)
    echo(tail)
    return result
