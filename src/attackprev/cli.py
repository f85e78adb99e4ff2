"""The ``attackprev`` command line.

Exit codes: 0 success; 2 bad input (one line naming the file, row and problem); 3 a run
whose sampler diagnostics failed (its report is still written, flagged at the top).
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from attackprev.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_DIAGNOSTICS = 3
ENGINES = ("mcmc", "exact")
MODELS = ("auto", "single", "catalogue")

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


def _quiet_libraries() -> None:
    import logging

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    for name in ("pymc", "pytensor", "arviz", "numba"):
        logging.getLogger(name).setLevel(logging.ERROR)


@app.command()
@user_errors
def fit(
    techniques: Annotated[list[str] | None, typer.Argument(help="ATT&CK IDs, e.g. T1102.")] = None,
    all_techniques: Annotated[
        bool, typer.Option("--all", help="Fit the multi-technique model and write the catalogue report.")
    ] = False,
    data: Annotated[
        Path | None, typer.Option(help="CSV of observations: technique_id, source_id, successes, trials.")
    ] = None,
    sources: Annotated[Path | None, typer.Option(help="Sources table for --data (optional).")] = None,
    trials: Annotated[list[str] | None, typer.Option(help="Override a source's trials: SOURCE=N (repeatable).")] = None,
    weight: Annotated[list[str] | None, typer.Option(help="Weight a source in [0, 1]: SOURCE=W (repeatable).")] = None,
    prior: Annotated[str, typer.Option(help="Hyperprior (see `attackprev priors`).")] = "halfnormal1",
    engine: Annotated[str, typer.Option(help="mcmc (default) or exact (grid, no sampling).")] = "mcmc",
    model: Annotated[
        str,
        typer.Option(
            help="auto: the multi-technique model when the evidence supports it (and no --weight), "
            "else single; or single / catalogue."
        ),
    ] = "auto",
    out: Annotated[Path, typer.Option(help="Folder for reports.")] = Path("reports"),
    draws: Annotated[int, typer.Option(min=100, help="Draws per chain.")] = 4000,
    tune: Annotated[int, typer.Option(min=100, help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(min=1, help="Chains.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20201102,
    figures: Annotated[bool, typer.Option(help="Draw the report's figures.")] = True,
) -> None:
    """Fit techniques and write their reports to OUT/<technique id>/."""
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
    from attackprev.evidence.tables import check_technique_format
    from attackprev.model.priors import get_prior

    if not techniques and not all_techniques:
        raise InputError("name at least one technique, e.g. `attackprev fit T1102`, or use --all")
    techniques = techniques or []
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if model not in MODELS:
        raise InputError(f"--model {model!r}: choose one of {', '.join(MODELS)}")
    try:
        chosen_prior = get_prior(prior)
    except ValueError as err:
        raise InputError(f"--prior: {err}") from None
    weights = _pairs(weight, "--weight", float)
    overrides = _pairs(trials, "--trials", int)
    ids = [check_technique_format(t) for t in techniques]

    from attackprev.evidence.attack import check_technique_id

    for t in ids:
        check_technique_id(t)
    from attackprev.evidence.tables import load_evidence

    if data is None:
        evidence = load_evidence(OBSERVATIONS_CSV, sources or SOURCES_CSV, overrides)
    else:
        evidence = load_evidence(data, sources, overrides)
    known = {s.source_id for s in evidence.observations}
    for sid in list(weights) + list(overrides):
        if sid not in known:
            raise InputError(f"unknown source {sid!r}; sources in the evidence: {', '.join(sorted(known))}")
    for t in ids:
        evidence.for_technique(t)  # every technique must have evidence before anything runs

    interactive = _interactive()
    if not interactive:
        _quiet_libraries()
    from attackprev.inference.mcmc import SamplerSettings

    settings = SamplerSettings(draws=draws, tune=tune, chains=chains, seed=seed)
    command = "attackprev " + " ".join(sys.argv[1:]) if sys.argv[1:] else "attackprev fit"
    workers = None
    if figures and engine == "mcmc" and ids:
        from attackprev.reporting.figure_workers import FigureWorkers

        workers = FigureWorkers.start()  # forked now, before any sampler thread; they warm up meanwhile
    try:
        failed = _fit_and_write(
            ids,
            evidence,
            settings,
            all_techniques=all_techniques,
            model=model,
            engine=engine,
            weights=weights,
            prior=chosen_prior,
            out=out,
            command=command,
            figures=figures,
            workers=workers,
        )
    finally:
        if workers is not None:
            workers.close()
    if failed:
        raise typer.Exit(EXIT_DIAGNOSTICS)


def _fit_and_write(
    ids, evidence, settings, *, all_techniques, model, engine, weights, prior, out, command, figures, workers
) -> bool:
    """The work of ``fit`` once its input is checked; True when a fit failed its diagnostics."""
    from attackprev.analysis.technique import analyse_technique
    from attackprev.reporting.technique import write_technique_report

    interactive = _interactive()
    failed = False
    catalogue = None
    if all_techniques:
        from attackprev.reporting.catalogue import fit_catalogue, write_catalogue_report

        if interactive:
            typer.echo("fitting the multi-technique model (every variant) ...", err=True)
        result = fit_catalogue(evidence, progress=interactive)
        target = write_catalogue_report(result, evidence, out)
        status = "diagnostics passed" if result.passed else "DIAGNOSTICS FAILED"
        typer.echo(
            f"catalogue: {len(result.data.techniques)} techniques, model {result.variant} ({status}) -> {target}"
        )
        failed |= not result.passed
        catalogue = result.tree
    elif ids and _wants_catalogue(model, engine, weights, evidence):
        from attackprev.reporting.catalogue import CATALOGUE_DIR, fit_catalogue, load_cached_catalogue

        catalogue = load_cached_catalogue(out / CATALOGUE_DIR, evidence)
        if catalogue is None:
            if interactive:
                typer.echo("no saved catalogue for this evidence: fitting the multi-technique model ...", err=True)
            catalogue = fit_catalogue(evidence, progress=interactive).tree
    for t in ids:
        if interactive:
            typer.echo(f"fitting {t} ({engine}, prior {prior.name}) ...", err=True)
        result = analyse_technique(
            t, evidence, prior, settings, weights, engine, progress=interactive, catalogue=catalogue, workers=workers
        )
        target = write_technique_report(result, out, command=command, figures=figures)
        s = result.summary
        lo, hi = s["prevalence"]["hdi_94"]
        status = (
            "diagnostics passed" if result.passed else "DIAGNOSTICS FAILED: " + "; ".join(s["diagnostics"]["problems"])
        )
        typer.echo(
            f"{t}: {s['mal']['expression']}  (μ mean {s['prevalence']['mean']:.4f}, 94 % HDI "
            f"{lo:.4f}–{hi:.4f}; {status}) -> {target}"
        )
        failed |= not result.passed
    return failed


def _wants_catalogue(model: str, engine: str, weights: dict, evidence) -> bool:
    if model == "single" or engine == "exact":
        return False
    from attackprev.reporting.catalogue import catalogue_applies  # imports PyMC: only when it may be needed

    if model == "catalogue":
        if not catalogue_applies(evidence):
            raise InputError("--model catalogue needs at least 5 techniques, 3 of them with several sources")
        return True
    return not weights and catalogue_applies(evidence)


@app.command("list")
@user_errors
def list_evidence(
    data: Annotated[Path | None, typer.Option(help="CSV of observations instead of the bundled one.")] = None,
) -> None:
    """List the techniques and sources the evidence covers."""
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
    from attackprev.evidence.tables import load_evidence

    evidence = load_evidence(data or OBSERVATIONS_CSV, SOURCES_CSV if data is None else None)
    by_tech: dict[str, list] = {}
    for o in evidence.observations:
        by_tech.setdefault(o.technique_id, []).append(o)
    typer.echo(f"{len(by_tech)} techniques, {len(evidence.observations)} observations ({evidence.path})")
    for tid in sorted(by_tech):
        figures = ", ".join(f"{o.source_id} {o.successes}/{o.trials}" for o in by_tech[tid])
        typer.echo(f"  {tid:10s} {figures}")
    typer.echo("sources:")
    for sid in sorted({o.source_id for o in evidence.observations}):
        count = sum(o.source_id == sid for o in evidence.observations)
        src = evidence.sources.get(sid)
        basis = next(o.trials_basis for o in evidence.observations if o.source_id == sid)
        trials = next(o.trials for o in evidence.observations if o.source_id == sid)
        label = f" — {src.population}" if src and src.population else ""
        typer.echo(f"  {sid:26s} {count:3d} techniques, n = {trials} ({basis}){label}")


@app.command("export-mal")
@user_errors
def export_mal_command(
    reports: Annotated[Path, typer.Option(help="Folder of technique reports to export.")] = Path("reports"),
    patch: Annotated[Path | None, typer.Option(help="A .mal file whose mapped attack steps get the new TTCs.")] = None,
    out: Annotated[Path | None, typer.Option(help="Patched file (default: NAME.patched.mal beside it).")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite --patch itself, atomically.")] = False,
    skip_missing: Annotated[
        bool, typer.Option("--skip-missing", help="Leave out mapped steps the .mal file lacks.")
    ] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON form to this file.")] = None,
    catalogue: Annotated[
        Path | None,
        typer.Option(
            help="Read the probabilities from this catalogue CSV only (default: REPORTS/techniques/ + reports)."
        ),
    ] = None,
) -> None:
    """Print each technique's MAL TTC (fragment and mal-toolbox JSON form); optionally patch a .mal file."""
    import json

    from attackprev.mal.core import export_mal, format_changes

    if in_place and patch is None:
        raise InputError("--in-place needs --patch FILE.mal")
    result = export_mal(
        reports,
        patch=patch,
        out=out,
        in_place=in_place,
        catalogue=catalogue,
        missing="skip" if skip_missing else "error",
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
        for path in result.written:
            typer.echo(f"wrote {path}")


@app.command()
def priors() -> None:
    """List the hyperpriors on offer."""
    from attackprev.model.priors import DEFAULT_PRIOR, PRIORS

    for name, p in PRIORS.items():
        mark = " (default)" if name == DEFAULT_PRIOR else ""
        typer.echo(f"{name:13s}{mark:10s} {p.label}\n{'':23s} {p.rationale}; {p.reference}")


def main() -> None:
    """Entry point of the ``attackprev`` script."""
    app()


if __name__ == "__main__":
    main()
