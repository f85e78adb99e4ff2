"""The ``attackprev`` command line.

Exit codes: 0 success; 2 bad input (one line naming the file, row and problem); 3 a run
whose sampler diagnostics failed (its report is still written, flagged at the top).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from attackprev.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_DIAGNOSTICS = 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evidence-based, calibrated probabilities for ATT&CK techniques in MAL languages.",
)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    typer.echo(f"attackprev: error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(func):
    """Turn :class:`InputError` into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as err:
            _fail(str(err))

    return wrapper


def _pairs(values: list[str] | None, option: str, cast) -> dict:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {item!r}: expected SOURCE=VALUE")
        try:
            out[key.strip()] = cast(value)
        except ValueError:
            raise InputError(f"{option} {item!r}: {value!r} is not a valid number") from None
    return out


def _interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "") == ""


@app.command()
@user_errors
def fit(
    techniques: Annotated[list[str] | None, typer.Argument(help="ATT&CK IDs, e.g. T1102.")] = None,
    all_techniques: Annotated[
        bool, typer.Option("--all", help="Fit every technique and write the catalogue (OUT/techniques/).")
    ] = False,
    target: Annotated[
        str,
        typer.Option(
            help="Family on whose scale the multi-source model states probabilities "
            "(default mtrends: share of intrusions investigated by incident responders)."
        ),
    ] = "mtrends",
    data: Annotated[
        Path | None, typer.Option(help="CSV of observations: technique_id, source_id, successes, trials.")
    ] = None,
    sources: Annotated[Path | None, typer.Option(help="Sources table for --data (optional).")] = None,
    trials: Annotated[list[str] | None, typer.Option(help="Override a source's trials: SOURCE=N (repeatable).")] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(help="Weight a source in [0, 1]: SOURCE=W (repeatable; single-technique model only)."),
    ] = None,
    prior: Annotated[
        str | None,
        typer.Option(help="Hyperprior of the single-technique model (see `attackprev priors`; default halfnormal1)."),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="mcmc (default) or exact (grid; the single-technique model only).")
    ] = "mcmc",
    model: Annotated[
        str,
        typer.Option(
            help="auto (default): the multi-source synthesis of the evidence base v2 unless an option asks for "
            "the single-technique model (with --data: the multi-technique model); synthesis; multi (the four "
            "sources of enterpriseLang's notes, exchangeable); or single."
        ),
    ] = "auto",
    out: Annotated[Path, typer.Option(help="Folder for reports.")] = Path("reports"),
    draws: Annotated[
        int | None,
        typer.Option(min=100, help="Draws per chain (default: 1500 multi-source and multi-technique, 4000 single)."),
    ] = None,
    tune: Annotated[
        int | None,
        typer.Option(min=100, help="Tuning steps per chain (default: 1000 multi-source, 1500 multi, 1000 single)."),
    ] = None,
    chains: Annotated[int | None, typer.Option(min=1, help="Chains (default 4).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 20201102).")] = None,
    figures: Annotated[bool, typer.Option(help="Draw the report's figures.")] = True,
    refit: Annotated[
        bool,
        typer.Option("--refit", help="Fit the multi-source (or multi-technique) model even if a saved fit matches."),
    ] = False,
) -> None:
    """Fit techniques and write their reports to OUT/<technique id>/."""
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
    from attackprev.evidence.attack import check_technique_id
    from attackprev.evidence.tables import check_technique_format, load_evidence
    from attackprev.pipeline import RunOptions, plan_run, quiet_libraries, run_fit

    if not techniques and not all_techniques:
        raise InputError("name at least one technique, e.g. `attackprev fit T1102`, or use --all")
    ids = [check_technique_format(t) for t in techniques or []]
    options = RunOptions(
        model=model,
        target=target,
        engine=engine,
        prior=prior,
        weights=_pairs(weight, "--weight", float),
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        figures=figures,
        refit=refit,
    )
    overrides = _pairs(trials, "--trials", int)
    for t in ids:
        check_technique_id(t)
    table = None
    if data is None:
        from attackprev.evidence.counts import load_counts

        known = {s.source_id for s in load_evidence(OBSERVATIONS_CSV, sources or SOURCES_CSV).observations}
        evidence = load_evidence(
            OBSERVATIONS_CSV, sources or SOURCES_CSV, {k: v for k, v in overrides.items() if k in known}
        )
        table = load_counts(trials_override=overrides)  # refuses an unknown source, or an n that is published
    else:
        evidence = load_evidence(data, sources, overrides)
        known = {s.source_id for s in evidence.observations}
        for sid in overrides:
            if sid not in known:
                raise InputError(f"unknown source {sid!r}; sources in the evidence: {', '.join(sorted(known))}")
    for t in ids:  # every technique must have evidence before anything runs
        evidence.for_technique(t)  # a technique report sets the single-technique model of the notes' sources beside
        if table is not None:
            table.for_technique(t)
    plan = plan_run(options, evidence, ids, all_techniques, table)  # refuses options that would not apply

    interactive = _interactive()
    if not interactive:
        quiet_libraries()
    command = "attackprev " + " ".join(sys.argv[1:]) if sys.argv[1:] else "attackprev fit " + " ".join(ids)
    workers = None
    if figures and plan.engine == "mcmc" and ids:
        from attackprev.reporting.figure_workers import FigureWorkers

        workers = FigureWorkers.start()  # forked now, before any sampler thread; they warm up meanwhile
    try:
        result = run_fit(
            ids,
            evidence,
            options,
            out=out,
            all_techniques=all_techniques,
            command=command,
            progress=interactive,
            workers=workers,
            echo=typer.echo,
            plan=plan,
            table=table,
        )
    finally:
        if workers is not None:
            workers.close()
    if result.failed:
        raise typer.Exit(EXIT_DIAGNOSTICS)


@app.command("list")
@user_errors
def list_evidence(
    techniques: Annotated[list[str] | None, typer.Argument(help="ATT&CK IDs to show in detail, e.g. T1102.")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV of observations instead of the bundled evidence.")] = None,
    members: Annotated[
        bool, typer.Option("--members", help="With technique IDs: also list what makes up each count.")
    ] = False,
) -> None:
    """List the evidence: every technique's sources and counts (the evidence base v2), or a --data file."""
    if data is not None:
        _list_observations(data)
        return
    from attackprev.evidence.counts import load_counts
    from attackprev.evidence.tables import check_technique_format

    table = load_counts()
    if techniques:
        from attackprev.evidence.attack import check_technique_id

        for t in techniques:
            check_technique_id(check_technique_format(t))
        _list_detail(table, techniques, members)
        return
    by_tech: dict[str, list] = {}
    for c in table.counts:
        by_tech.setdefault(c.technique_id, []).append(c)
    complete = [s for s in table.used_sources() if table.sources[s].coverage == "complete"]
    typer.echo(
        f"{len(table.techniques())} techniques with a nonzero count, {len(table.used_sources())} sources in "
        f"{len(table.families())} families ({table.path}); counts k/n, zeros of the {len(complete)} complete "
        "sources not shown. `attackprev list T1102` shows one technique in full."
    )
    for tid in sorted(by_tech):
        shown = ", ".join(f"{c.source_id} {c.successes}/{c.trials}" for c in by_tech[tid] if c.successes > 0)
        typer.echo(f"  {tid:10s} {shown or '(0 in every complete source)'}")
    typer.echo("sources:")
    for sid in table.used_sources():
        src = table.sources[sid]
        rows = [c for c in table.counts if c.source_id == sid]
        positive = sum(c.successes > 0 for c in rows)
        ns = sorted({c.trials for c in rows})
        n = str(ns[0]) if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
        typer.echo(
            f"  {sid:24s} {src.family:17s} {src.coverage:8s} n = {n} ({rows[0].trials_basis}), one trial = {src.unit}; "
            f"{positive} techniques with k > 0"
        )


def _list_detail(table, techniques: list[str], members: bool) -> None:
    from attackprev.config import MEMBERS_CSV
    from attackprev.evidence.attack import attack_table
    from attackprev.evidence.tables import read_table

    lists = {}
    if members:
        rows, _ = read_table(MEMBERS_CSV, ["source_id", "technique_id", "members"])
        lists = {(r["technique_id"], r["source_id"]): r["members"] for _, r in rows}
    for tid in techniques:
        rows = table.for_technique(tid)
        typer.echo(
            f"{tid} {attack_table()[tid].display_name}: "
            f"{sum(c.successes > 0 for c in rows)} of {len(rows)} sources with k > 0"
        )
        for c in rows:
            src = table.sources[c.source_id]
            extra = []
            if c.successes_exact is not None and c.successes_exact != c.successes:
                extra.append(f"{c.successes_exact} name {tid} itself")
            if c.percent:
                extra.append(f"published {c.percent} %")
            if c.raw_ids:
                extra.append(f"as {c.raw_ids}")
            typer.echo(
                f"  {c.source_id:24s} {c.successes:5d} / {c.trials:<6d} {c.trials_basis:9s} {src.family:17s} "
                f"one trial = {src.unit}" + (f"  ({'; '.join(extra)})" if extra else "")
            )
            if c.raw_rows:
                typer.echo(f"      rows: {c.raw_rows}")
            if members and (tid, c.source_id) in lists:
                typer.echo(f"      members: {lists[(tid, c.source_id)]}")


def _list_observations(data: Path) -> None:
    from attackprev.evidence.tables import load_evidence

    evidence = load_evidence(data, None)
    by_tech: dict[str, list] = {}
    for o in evidence.observations:
        by_tech.setdefault(o.technique_id, []).append(o)
    typer.echo(f"{len(by_tech)} techniques, {len(evidence.observations)} observations ({evidence.path})")
    for tid in sorted(by_tech):
        figures = ", ".join(f"{o.source_id} {o.successes}/{o.trials}" for o in by_tech[tid])
        typer.echo(f"  {tid:10s} {figures}")


evidence_app = typer.Typer(
    no_args_is_help=True, help="Build and check the evidence base from the raw copies in data/raw/."
)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("build")
@user_errors
def evidence_build(
    check: Annotated[
        bool,
        typer.Option("--check", help="Only compare: exit 1 if a table or the report is not what the build gives."),
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Where to write the evidence report.")] = None,
) -> None:
    """Rebuild data/evidence/ (counts, members, excluded rows) and reports/evidence.md from the raw copies."""
    from attackprev.atomic import write_text_atomic
    from attackprev.config import EVIDENCE_DIR, REPORTS_DIR
    from attackprev.evidence.audit.sources import mtrends_denominators, source_findings, tie_overlaps
    from attackprev.evidence.build import build_evidence, stale_tables, write_evidence
    from attackprev.evidence.counts import load_counts
    from attackprev.evidence.ids import load_decisions
    from attackprev.reporting.evidence import render_evidence_markdown

    built = build_evidence()
    report_path = report or REPORTS_DIR / "evidence.md"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # check what was built before replacing anything
        write_evidence(built, tmp)
        table = load_counts(Path(tmp) / "counts.csv")
        text = render_evidence_markdown(
            built, table, source_findings(load_decisions()), mtrends_denominators(), tie_overlaps()
        )
    if check:
        stale = [f"{EVIDENCE_DIR / name}" for name in stale_tables(built)]
        if not report_path.is_file() or report_path.read_text(encoding="utf-8") != text:
            stale.append(str(report_path))
        if stale:
            typer.echo(
                f"attackprev: {', '.join(stale)} differ from what the build gives; run `attackprev evidence build`",
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"{EVIDENCE_DIR} and {report_path}: as the build gives them")
        return
    for path in write_evidence(built):
        typer.echo(f"wrote {path}")
    write_text_atomic(report_path, text)
    typer.echo(f"wrote {report_path}")


@app.command("export-mal")
@user_errors
def export_mal_command(
    reports: Annotated[Path, typer.Option(help="Folder of technique reports to export.")] = Path("reports"),
    patch: Annotated[
        Path | None,
        typer.Option(
            help="A .mal file whose mapped attack steps get the new TTCs. A step is found by asset and name, or by "
            "name alone where the asset lacks it (e.g. on OS, which Windows extends); a TTC commented out after the "
            "step's name (`| webService //(0.0445)]`) is restored in front of the comment, which is kept. Mapped "
            "steps the file lacks are listed; the command fails only if none is found."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Patched file (default: NAME.patched.mal beside it).")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite --patch itself, atomically.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail if any mapped step is missing from the .mal file.")
    ] = False,
    skip_missing: Annotated[
        bool,
        typer.Option("--skip-missing", help="Do not fail even if no mapped step is in the .mal file."),
    ] = False,
    simulator: Annotated[
        str,
        typer.Option(
            help="securicad (default): MAL as the MAL compiler and securiCAD read it. malsim: for mal-simulator 3.3; "
            "fails, naming each step and distribution, on a TTC it rejects (TruncatedNormal, Pareto, Zero, "
            "Infinity) or misreads (a compound time factor), with --patch on any other TTC of the file it cannot "
            "load, and warns about those it misreads. Either way a time factor is written first: "
            "Exponential(r)*Bernoulli(p)."
        ),
    ] = "securicad",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON form to this file.")] = None,
    catalogue: Annotated[
        Path | None,
        typer.Option(
            help="Read the probabilities from this catalogue CSV only (default: REPORTS/techniques/catalogue.csv, "
            "plus multi-technique reports of techniques it lacks)."
        ),
    ] = None,
    prefer_reports: Annotated[
        bool,
        typer.Option(
            "--prefer-reports",
            help="Use each technique's own report (REPORTS/<ID>/summary.json) in place of the catalogue, "
            "whatever model produced it.",
        ),
    ] = False,
) -> None:
    """Print each technique's MAL TTC (fragment and mal-toolbox JSON form); optionally patch a .mal file.

    By default the values are the multi-technique model's (the catalogue); each entry names its model.
    """
    import json

    from attackprev.mal.export import export_mal
    from attackprev.mal.malfile import format_changes, format_unmatched

    if in_place and patch is None:
        raise InputError("--in-place needs --patch FILE.mal")
    if strict and skip_missing:
        raise InputError("give either --strict or --skip-missing, not both")
    result = export_mal(
        reports,
        patch=patch,
        out=out,
        in_place=in_place,
        catalogue=catalogue,
        missing="error" if strict else "skip" if skip_missing else "list",
        prefer_reports=prefer_reports,
        simulator=simulator,
    )
    if result.set_aside:
        aside = ", ".join(f"{e.technique_id} ({e.model or 'model not recorded'})" for e in result.set_aside)
        typer.echo(
            f"technique reports not used (default model's values taken; --prefer-reports uses them): {aside}", err=True
        )
    typer.echo(result.fragment.rstrip())
    typer.echo("")
    text = json.dumps(result.json, indent=2, ensure_ascii=False)
    typer.echo(text)
    if json_out is not None:
        from attackprev.atomic import write_text_atomic

        write_text_atomic(json_out, text + "\n")
    if patch is not None:
        typer.echo("")
        typer.echo(format_changes(result.changes))
        if result.unmatched:
            typer.echo(format_unmatched(result.unmatched), err=True)
        for line in result.warnings:
            typer.echo(f"warning: {line}", err=True)
        for path in result.written:
            typer.echo(f"wrote {path}")


@app.command()
def priors() -> None:
    """List the hyperpriors on offer."""
    from attackprev.model.priors import DEFAULT_PRIOR, PRIORS

    for name, p in PRIORS.items():
        mark = " (default)" if name == DEFAULT_PRIOR else ""
        typer.echo(f"{name:13s}{mark:10s} {p.label}\n{'':23s} {p.rationale}; {p.reference}")


@app.command()
@user_errors
def simulate(
    language: Annotated[Path, typer.Argument(help="MAL language: a .mal file or a .mar archive.")],
    model: Annotated[Path, typer.Argument(help="mal-toolbox instance model of that language (.yml or .json).")],
    entry: Annotated[
        list[str] | None, typer.Option(help="Attack step where the attacker starts, ASSET:step (repeatable).")
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option(help="Attack step whose compromise is asked about, ASSET:step (repeatable).")
    ] = None,
    steps: Annotated[
        Path | None,
        typer.Option(
            help="CSV mapping the language's steps to ATT&CK techniques (asset, attack_step, technique_id); "
            "default enterpriseLang's (data/enterpriselang_attack_steps.csv)."
        ),
    ] = None,
    scale: Annotated[
        str, typer.Option(help="Family on whose scale the techniques' probabilities are taken (default mtrends).")
    ] = "mtrends",
    draws: Annotated[int, typer.Option(help="Joint posterior draws pushed through the graph.")] = 1000,
    episodes: Annotated[int, typer.Option(help="Simulated episodes per draw.")] = 32768,
    seed: Annotated[int | None, typer.Option(help="Seed of the draws' choice and the episodes.")] = None,
    out: Annotated[Path, typer.Option(help="Reports folder: writes OUT/simulation/NAME/.")] = Path("reports"),
    name: Annotated[str | None, typer.Option(help="Report folder name (default: the model file's stem).")] = None,
    refit: Annotated[bool, typer.Option(help="Refit the multi-source model even if a saved fit exists.")] = False,
) -> None:
    """Push posterior draws of every mapped step's probability through a MAL attack graph.

    Reports, per target, the distribution across draws of P(reached) and of the time to compromise,
    beside the answers with the language's own values and with the posterior means, and which
    techniques' uncertainty moves the answer most.
    """
    from attackprev.analysis.simulation import SimulationSettings
    from attackprev.config import DEFAULT_SEED
    from attackprev.pipeline import quiet_libraries, run_simulation

    quiet_libraries()
    settings = SimulationSettings(
        draws=draws, episodes=episodes, seed=DEFAULT_SEED if seed is None else seed, scale=scale
    )
    result = run_simulation(
        language,
        model,
        entry or [],
        target or [],
        steps=steps,
        settings=settings,
        out=out,
        name=name,
        command="attackprev simulate " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "attackprev simulate",
        refit=refit,
        progress=_interactive(),
        echo=typer.echo,
    )
    if result.failed:
        raise typer.Exit(EXIT_DIAGNOSTICS)


def main() -> None:
    """Entry point of the ``attackprev`` script."""
    app()


if __name__ == "__main__":
    main()
