"""Export the model's probabilities as enterpriseLang TTCs, and optionally patch a ``.mal`` file.

:func:`export_mal` turns each technique's probability into the time factor enterpriseLang
published for its step times ``Bernoulli(p)``, writes a ``.mal`` fragment and the
mal-toolbox JSON form, and can rewrite those steps in a user's ``.mal`` file. With
``simulator='malsim'`` the output is also checked against what mal-simulator can run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from attackprev.atomic import write_text_atomic
from attackprev.config import CATALOGUE_DIR, DEFAULT_MODEL, STEPS_CSV
from attackprev.errors import InputError
from attackprev.mal.dictionary import ttc_dicts
from attackprev.mal.expressions import format_probability, malsim_problems, malsim_time_factor, ttc_expression
from attackprev.mal.malfile import TtcChange, Unmatched, malsim_check, patch_mal
from attackprev.mal.mapping import (
    Estimate,
    estimates_from_catalogue,
    estimates_from_reports,
    load_steps,
    published_time_factor,
)

#: The tools ``export_mal`` writes for, by the name its ``simulator`` parameter takes.
SIMULATORS = {
    "securicad": "securiCAD and the MAL compiler",
    "malsim": "mal-simulator 3.3 (TTCs checked against what it can run)",
}


@dataclass
class MalExport:
    """What :func:`export_mal` produced.

    Attributes
    ----------
    fragment
        One ``| step [expr]`` line per technique, each after comment lines naming the
        technique, its asset, p's 94 % interval, the model and file it came from, and the
        published TTC.
    json
        ``{technique_id: {"attack_step", "assets", "expression", "ttc", "p", "hdi_94",
        "model", "published_ttc", "report", "remark"}}``; ``ttc`` is the mal-toolbox
        dictionary form, ``model`` the model that produced ``p`` (``'multi-technique'``
        for the catalogue) and ``report`` the summary or CSV it was read from.
    changes
        The change table of the patched file (empty without ``patch``).
    unmatched
        Mapped steps the patched file lacks, each with its technique and the reason
        (empty without ``patch``).
    warnings
        With ``simulator='malsim'`` and ``patch``: TTCs of other steps of the patched file
        that mal-simulator reads differently from the MAL compiler, one line each.
    written
        Files written, in order.
    set_aside
        Technique reports found in the reports folder but not exported (the catalogue
        gives the technique, or the report's model is not the default one); empty with
        ``prefer_reports`` or ``catalogue``.
    """

    fragment: str
    json: dict[str, dict[str, Any]]
    changes: list[TtcChange] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    set_aside: list[Estimate] = field(default_factory=list)


def _display(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _choose_estimates(
    reports_dir: Path, catalogue: str | Path | None, prefer_reports: bool
) -> tuple[list[Estimate], list[Estimate]]:
    """The estimates to export and the technique reports set aside (see :func:`export_mal`)."""
    if catalogue is not None:
        estimates = estimates_from_catalogue(catalogue)
        if not estimates:
            raise InputError("the catalogue has no technique", Path(catalogue))
        return estimates, []
    reports = estimates_from_reports(reports_dir)
    table = reports_dir / CATALOGUE_DIR / "catalogue.csv"
    listed = estimates_from_catalogue(table) if table.exists() else []
    if prefer_reports:
        own = {e.technique_id for e in reports}
        estimates = reports + [e for e in listed if e.technique_id not in own]
        set_aside = []
    else:
        in_table = {e.technique_id for e in listed}
        used = [e.technique_id not in in_table and e.model == DEFAULT_MODEL for e in reports]
        estimates = listed + [e for e, u in zip(reports, used, strict=True) if u]
        set_aside = [e for e, u in zip(reports, used, strict=True) if not u]
    if not estimates:
        where = f"no {CATALOGUE_DIR}/catalogue.csv and no <technique>/summary.json"
        if set_aside:
            models = sorted({str(e.model) for e in set_aside})
            raise InputError(
                f"{where} of the {DEFAULT_MODEL} model in the reports folder; the technique reports "
                f"here are of another model ({', '.join(models)}) and are used only with "
                "prefer_reports (--prefer-reports)",
                reports_dir,
            )
        raise InputError(f"{where} in the reports folder", reports_dir)
    return estimates, set_aside


def _to_step_ids(estimates: list[Estimate], steps: dict) -> tuple[list[Estimate], dict[str, str]]:
    """The catalogue's estimates (current ATT&CK IDs) keyed by the IDs the step table uses.

    A step recorded under a revoked or merged ID (T1086 PowerShell, now T1059.001) takes the value of
    the technique that replaced it; two steps merged into one technique both take its value. Returns
    the estimates and, for each renamed step ID, the current ID it took its value from.
    """
    from dataclasses import replace

    from attackprev.evidence.attack import current_id

    catalogue = {e.technique_id: e for e in estimates if e.origin.name == "catalogue.csv"}
    if not catalogue:
        return estimates, {}
    out = [e for e in estimates if e.origin.name != "catalogue.csv"]
    own = {e.technique_id for e in out}
    renamed = {}
    for step_id in steps:
        if step_id in own:
            continue
        now = step_id if step_id in catalogue else current_id(step_id)
        if now in catalogue:
            out.append(replace(catalogue[now], technique_id=step_id))
            if now != step_id:
                renamed[step_id] = now
    return out, renamed


def export_mal(
    reports_dir: str | Path,
    steps_csv: str | Path | None = None,
    patch: str | Path | None = None,
    out: str | Path | None = None,
    in_place: bool = False,
    *,
    catalogue: str | Path | None = None,
    fragment_dir: str | Path | None = None,
    missing: Literal["list", "error", "skip"] = "list",
    digits: int = 4,
    prefer_reports: bool = False,
    simulator: Literal["securicad", "malsim"] = "securicad",
) -> MalExport:
    """Turn each technique's probability into an enterpriseLang TTC, and optionally patch.

    By default the values are the default model's: every technique of the catalogue
    table ``<reports_dir>/techniques/catalogue.csv`` (the multi-technique model), plus a
    technique missing from it whose own report ``<reports_dir>/<id>/summary.json`` has the
    multi-technique model as its headline (``summary["mal"]["model"] ==
    'multi-technique'``). Any other technique report, e.g. a single-technique fit
    (``fit --model single`` or ``--engine exact``), is set aside
    (:attr:`MalExport.set_aside`) unless ``prefer_reports`` is given. Every entry of the
    fragment and the JSON names the model its value came from.

    For each technique the new TTC is the time factor of the TTC enterpriseLang published
    for it (``published_ttc`` in the step table) times ``Bernoulli(p)``, time factor first
    (``Exponential(106.67)*Bernoulli(0.0812)``; the MAL compiler reads both orders the
    same, mal-simulator's effort-based mode only the left factor): only the Bernoulli
    factor is replaced and the time factor is kept verbatim; a step without one gets a lone
    ``Bernoulli(p)`` (it takes no time). Where the published TTC has no Bernoulli factor
    (``Exponential(1440)``) it is kept whole as the time factor before the new Bernoulli;
    a lone ``TruncatedNormal`` (a percent-scale probability in three notes) is dropped.
    Both cases carry a ``remark`` in the JSON and the fragment; see
    :func:`attackprev.mal.mapping.published_time_factor`.

    ``simulator`` names the tool the output is for. ``'securicad'`` (default) writes MAL
    as the MAL compiler and securiCAD read it, unchecked beyond that. ``'malsim'``
    (mal-simulator 3.3) refuses, with one line per step naming the step and the
    distribution, any exported TTC that mal-simulator rejects (``TruncatedNormal``,
    ``Pareto``, ``Zero``, ``Infinity``, a bare number) or reads differently (a compound
    time factor), rather than rewriting it; it writes a named time constant such as
    ``HardAndCertain`` as its definition (``Exponential(0.1)``, with a remark). With
    ``patch`` it also checks the other TTCs of the patched file: one that mal-simulator
    rejects is an error (the file would not load), one it misreads (e.g.
    ``Bernoulli(p)*Exponential(r)``) a warning (:attr:`MalExport.warnings`).

    Everything is read and checked before anything is written, so an invalid value
    leaves no file behind and an in-place patch leaves the original intact.

    Parameters
    ----------
    reports_dir
        A reports folder: ``techniques/catalogue.csv`` and ``<id>/summary.json`` per
        technique (folders without one are skipped; every summary found is checked, used
        or not). A summary's ``p`` is ``summary["mal"]["p"]``.
    steps_csv
        Technique -> step table (default ``data/enterpriselang_steps.csv``).
    patch
        A ``.mal`` file whose mapped steps get the new TTCs.
    out
        Where to write the patched file (default ``<name>.patched.mal`` beside it).
    in_place
        Replace ``patch`` itself, atomically (temporary file in the same folder, then
        ``os.replace``).
    catalogue
        Read the estimates from this CSV only (``technique_id, p, hdi_94_low,
        hdi_94_high``; recorded as the multi-technique model's) instead of the reports
        folder.
    fragment_dir
        If given, also write ``mal_fragment.txt`` and ``mal_ttcs.json`` there.
    missing
        Mapped steps the ``.mal`` file lacks (matched by asset and step name, or by step
        name alone where the asset has no such step; see
        :func:`attackprev.mal.malfile.patch_mal`): ``'list'`` (default) patches every
        mapped step found, lists the rest in :attr:`MalExport.unmatched` and fails only if
        none is found; ``'error'`` fails if any is missing; ``'skip'`` never fails.
    digits
        Significant digits of ``p`` (never rounded to exactly 0 or 1).
    prefer_reports
        Use every technique's own report in place of its catalogue row, whatever model
        produced it; the catalogue then only fills in techniques without a report.
    simulator
        ``'securicad'`` (default) or ``'malsim'``: the tool the TTCs are for (see above).

    Returns
    -------
    MalExport
        Fragment, JSON form, change table, the mapped steps not patched, the warnings,
        the files written and the reports set aside.

    Raises
    ------
    InputError
        For an invalid report, catalogue, step table or ``.mal`` file, nothing to export
        (e.g. only single-technique reports without ``prefer_reports``), a technique
        without a mapped step, a technique or step given twice, ``out`` together with
        ``in_place``, ``catalogue`` together with ``prefer_reports``, mapped steps missing
        from the ``.mal`` file (as ``missing`` says), an unknown ``simulator``, or (with
        ``'malsim'``) TTCs mal-simulator cannot run.
    """
    if simulator not in SIMULATORS:
        raise InputError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    reports_dir = Path(reports_dir)
    if in_place and out is not None:
        raise InputError("give either an output file or in_place, not both")
    if in_place and patch is None:
        raise InputError("in_place needs a .mal file to patch")
    if catalogue is not None and prefer_reports:
        raise InputError("give either a catalogue CSV or prefer_reports, not both")
    steps = load_steps(steps_csv)
    estimates, set_aside = _choose_estimates(reports_dir, catalogue, prefer_reports)
    estimates, renamed = _to_step_ids(estimates, steps)
    seen: dict[str, Path] = {}
    for est in estimates:
        if est.technique_id in seen:
            raise InputError(
                f"{est.technique_id} has two estimates (also in {seen[est.technique_id]})",
                est.origin,
            )
        seen[est.technique_id] = est.origin
    base = reports_dir.parent

    entries = []
    for est in sorted(estimates, key=lambda e: e.technique_id):
        mapping = steps.get(est.technique_id)
        if mapping is None and est.origin.name == "catalogue.csv":
            continue  # the catalogue holds every technique with evidence; only those with a step are exported
        if mapping is None:
            raise InputError(
                f"{est.technique_id} has no enterpriseLang step in "
                f"{_display(Path(steps_csv or STEPS_CSV), base)}; add a row",
                est.origin,
            )
        time_factor, remark = published_time_factor(mapping.published_ttc)
        if simulator == "malsim":
            time_factor, rewritten = malsim_time_factor(time_factor)
            remark = "; ".join(r for r in (remark, rewritten) if r) or None
        expression = ttc_expression(est.p, time_factor, digits)
        entries.append((est, mapping, expression, remark))
    if simulator == "malsim":
        refused = [
            f"{est.technique_id} -> {';'.join(mapping.assets) or 'any asset'}.{mapping.attack_step} "
            f"[{expression}]: {problem.message}"
            for est, mapping, expression, _ in entries
            for problem in malsim_problems(expression)
        ]
        if refused:
            raise InputError(
                f"mal-simulator cannot run {len(refused)} exported TTC(s): {'; '.join(refused)}; "
                "fix the published TTC in the step table, or export for securicad"
            )
    dicts = ttc_dicts(e[2] for e in entries)

    lines = [
        "// attackprev: enterpriseLang attack-step TTCs, Bernoulli(p) = model's p for MAL.",
        "// The step type (| or &) and the asset must be the language's own; patch keeps them.",
        f"// Written for {SIMULATORS[simulator]}; a published time factor comes first: X*Bernoulli(p).",
    ]
    table: dict[str, dict[str, Any]] = {}
    for (est, mapping, expression, remark), ttc in zip(entries, dicts, strict=True):
        where = ";".join(mapping.assets) or "any asset"
        interval = "no interval"
        if est.hdi_94 is not None:
            lo, hi = est.hdi_94
            interval = f"94% HDI {format_probability(lo)} to {format_probability(hi)}"
        report = _display(est.origin, base)
        lines.append("")
        model = f"{est.model} model" if est.model else "model not recorded"
        lines.append(
            f"// {est.technique_id} -> {where}.{mapping.attack_step}: "
            f"p = {format_probability(est.p, digits)} ({interval}), {model}; {report}"
        )
        if est.target:
            lines.append(f"// target population: {est.target}; p is the share of it that uses the technique")
        if est.technique_id in renamed:
            now = renamed[est.technique_id]
            lines.append(f"// {est.technique_id} is {now} in ATT&CK v18.1: p is {now}'s")
        lines.append(f"// published: {mapping.published_ttc or '(none)'}")
        if remark:
            lines.append(f"// note: {remark}")
        lines.append(f"| {mapping.attack_step} [{expression}]")
        table[est.technique_id] = {
            "attack_step": mapping.attack_step,
            "assets": list(mapping.assets),
            "expression": expression,
            "ttc": ttc,
            "p": est.p,
            "hdi_94": list(est.hdi_94) if est.hdi_94 else None,
            "model": est.model,
            "target": est.target,
            "published_ttc": mapping.published_ttc,
            "report": report,
            "remark": remark,
        }
    result = MalExport("\n".join(lines) + "\n", table, set_aside=set_aside)

    target: Path | None = None
    patched = ""
    if patch is not None:
        patch = Path(patch)
        new_ttcs: dict[str, str] = {}
        owner: dict[str, str] = {}
        for est, mapping, expression, _ in entries:
            for key in mapping.patch_keys():
                if key in new_ttcs:
                    raise InputError(f"{owner[key]} and {est.technique_id} both map to step {key}")
                new_ttcs[key], owner[key] = expression, est.technique_id
        try:
            with patch.open(encoding="utf-8", newline="") as f:
                original = f.read()
        except OSError as err:
            raise InputError(f"cannot read the .mal file: {err.strerror}", patch) from err
        try:
            patched, result.changes, unmatched = patch_mal(original, new_ttcs, missing=missing)
        except InputError as err:
            raise InputError(err.message, patch) from err
        result.unmatched = [u._replace(technique_id=owner[u.key]) for u in unmatched]
        if simulator == "malsim":
            errors, result.warnings = malsim_check(patched, skip={(c.asset, c.step) for c in result.changes})
            if errors:
                raise InputError(
                    f"mal-simulator cannot load {len(errors)} other TTC(s) of the patched file: {'; '.join(errors)}; "
                    "edit them, or patch for securicad",
                    patch,
                )
        if in_place:
            target = patch
        else:
            target = Path(out) if out is not None else patch.with_name(f"{patch.stem}.patched.mal")
            if target.resolve() == patch.resolve():
                raise InputError("the output would overwrite the input; use in_place", target)

    if fragment_dir is not None:
        fragment_dir = Path(fragment_dir)
        fragment_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(fragment_dir / "mal_fragment.txt", result.fragment)
        write_text_atomic(fragment_dir / "mal_ttcs.json", json.dumps(table, indent=2) + "\n")
        result.written += [fragment_dir / "mal_fragment.txt", fragment_dir / "mal_ttcs.json"]
    if target is not None:
        write_text_atomic(target, patched)
        result.written.append(target)
    return result
