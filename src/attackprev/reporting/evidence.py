"""The evidence report, ``reports/evidence.md``: what every source counts, and how it was checked.

Written by ``attackprev evidence build`` from the built tables (:mod:`attackprev.evidence.build`),
the checks of the raw copies (:mod:`attackprev.evidence.audit.sources`) and the map of
enterpriseLang's attack steps to ATT&CK. Every number in it is computed here.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from attackprev.config import ELANG_ATTACK_STEPS_CSV, HDI_PROB, OBSERVATIONS_CSV
from attackprev.evidence.attack import attack_table
from attackprev.evidence.audit.sources import SourceFinding
from attackprev.evidence.build import Built
from attackprev.evidence.counts import CountTable
from attackprev.evidence.ids import live_techniques
from attackprev.inference.summaries import jeffreys_interval

#: The technique the project started from, shown with its sub-techniques.
FOCUS = "T1102"
#: Denominators at which the effect of the M-Trends n assumption is shown.
N_ALTERNATIVES = (1000, 2000)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def sources_section(table: CountTable) -> list[str]:
    """The sources table: family, what one trial is, coverage, n and its basis, techniques counted."""
    lines = [
        "## Sources",
        "",
        "| source | family | one trial is | year | coverage | n (basis) | techniques with k > 0 | rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_source: dict[str, list] = defaultdict(list)
    for c in table.counts:
        by_source[c.source_id].append(c)
    for sid in table.used_sources():
        src = table.sources[sid]
        rows = by_source[sid]
        ns = sorted({c.trials for c in rows})
        n = f"{ns[0]:,}" if len(ns) == 1 else f"{ns[0]:,}–{ns[-1]:,}"
        basis = "/".join(sorted({c.trials_basis for c in rows}))
        positive = sum(c.successes > 0 for c in rows)
        lines.append(
            f"| `{sid}` | {src.family} | {_cell(src.unit)} | {src.year} | {src.coverage} | {n} ({basis}) | "
            f"{positive} | {len(rows)} |"
        )
    lines += [
        "",
        "*complete*: every live technique was counted, so a technique the source does not name is 0 of n. "
        "*partial*: only the rows the source lists; a technique it does not list is unknown, never 0. "
        "n's basis: *published* by the source (ATT&CK's active groups, software and campaigns as counted in its "
        "bundle), *counted* here from the raw rows, *inferred* from the rounding of the percentages, or *assumed* "
        "(an overridable choice, below).",
        "",
    ]
    return lines


def overlap_section(overlaps: dict[str, int]) -> list[str]:
    """What the sources share: the reason families must not be read as independent."""
    return [
        "## Overlaps between sources",
        "",
        "The sources are not independent samples. ATT&CK's records are written from public threat reports, the "
        "same kind of report the CTID set holds; the CTID set's 22 ATT&CK campaign records are left out of it for "
        f"that reason. Of the {overlaps['reports']:,} CTID reports kept, {overlaps['linked']:,} are tagged with an "
        f"ATT&CK group, software or campaign, and {overlaps['shared_reference']:,} cite an address that another "
        "report in the set also cites (possible duplicates within the set). M-Trends 2020 is one report read twice "
        "(the notes and the copy), merged below.",
        "",
    ]


def coverage_section(table: CountTable) -> list[str]:
    """How many techniques have evidence, and from how many sources and families."""
    live = live_techniques()
    positive: dict[str, set] = defaultdict(set)
    families: dict[str, set] = defaultdict(set)
    for c in table.counts:
        if c.successes > 0:
            positive[c.technique_id].add(c.source_id)
            families[c.technique_id].add(c.family)
    with_any = [t for t in live if positive.get(t)]
    subs = sum("." in t for t in with_any)
    dist = Counter(min(len(positive.get(t, ())), 10) for t in live)
    fam = Counter(len(families.get(t, ())) for t in live)
    lines = [
        "## Coverage",
        "",
        f"ATT&CK v18.1 has {len(live)} live techniques and sub-techniques. {len(with_any)} of them "
        f"({len(with_any) - subs} techniques, {subs} sub-techniques) have a nonzero count from at least one source; "
        f"the complete sources give the other {len(live) - len(with_any)} a count of 0 of n.",
        "",
        "| sources with k > 0 | " + " | ".join("10+" if k == 10 else str(k) for k in range(11)) + " |",
        "|---|" + "---|" * 11,
        "| techniques | " + " | ".join(str(dist.get(k, 0)) for k in range(11)) + " |",
        "",
        "| families with k > 0 | " + " | ".join(str(k) for k in range(max(fam) + 1)) + " |",
        "|---|" + "---|" * (max(fam) + 1),
        "| techniques | " + " | ".join(str(fam.get(k, 0)) for k in range(max(fam) + 1)) + " |",
        "",
    ]
    return lines


def focus_section(table: CountTable, focus: str = FOCUS) -> list[str]:
    """The focus technique and its sub-techniques: every source's k of n."""
    ids = sorted({c.technique_id for c in table.counts if c.technique_id.split(".")[0] == focus})
    grid = {(c.technique_id, c.source_id): c for c in table.counts if c.technique_id in ids}
    sources = [s for s in table.used_sources() if any((t, s) in grid for t in ids)]
    names = attack_table()
    lines = [
        f"## {focus} ({names[focus].name}) and its sub-techniques",
        "",
        "k of n per source; for a complete source, (k′) is the number that name the ID itself (the rest name a "
        "sub-technique). A blank cell: the partial source gives no figure.",
        "",
        "| source | family | " + " | ".join(f"{t} {names[t].name}" for t in ids) + " |",
        "|---|---|" + "---|" * len(ids),
    ]
    for sid in sources:
        cells = []
        for t in ids:
            c = grid.get((t, sid))
            if c is None:
                cells.append("")
                continue
            text = f"{c.successes}/{c.trials:,}"
            if c.successes_exact is not None and c.successes_exact != c.successes:
                text += f" ({c.successes_exact}′)"
            if c.percent:
                text += f" ({c.percent} %)"
            cells.append(text)
        lines.append(f"| `{sid}` | {table.sources[sid].family} | " + " | ".join(cells) + " |")
    counts = {t: sum(1 for s in sources if (t, s) in grid and grid[(t, s)].successes > 0) for t in ids}
    every = {t: sum(1 for s in sources if (t, s) in grid) for t in ids}
    lines += [
        "",
        "Sources with a count (with k > 0): " + "; ".join(f"{t}: {every[t]} ({counts[t]})" for t in ids) + ".",
        "",
    ]
    return lines


def crosscheck_section(built: Built) -> list[str]:
    """M-Trends 2020 in enterpriseLang's notes against the third-party copy."""
    outcome = Counter(r["outcome"].split(";")[0] for r in built.crosscheck)
    same_id = sum(r["outcome"] == "agree" and r["notes_id"] == r["copy_id"] for r in built.crosscheck)
    lines = [
        "## M-Trends 2020: enterpriseLang's notes against the third-party copy",
        "",
        f"Of {len(built.crosscheck)} techniques (current IDs), {outcome.get('agree', 0)} are in both and agree "
        f"exactly ({same_id} under the same ID, {outcome.get('agree', 0) - same_id} once revoked or mistyped IDs are "
        f"resolved), {outcome.get('disagree', 0)} in both disagree, {outcome.get('notes only', 0)} are only in the "
        f"notes and {outcome.get('copy only', 0)} only in the copy. Where only one of two values is a whole count "
        "of the inferred 227, that one is used. Every row other than an agreement or a usable copy-only figure:",
        "",
        "| technique | notes | copy | outcome |",
        "|---|---|---|---|",
    ]
    for r in built.crosscheck:
        if r["outcome"] in ("agree", "copy only"):
            continue
        notes = f"{r['notes']} % ({r['notes_id']})" if r["notes"] else ""
        copy = f"{r['copy']} % ({r['copy_id']})" if r["copy"] else ""
        lines.append(f"| {r['technique_id']} | {notes} | {copy} | {_cell(r['outcome'])} |")
    lines.append("")
    return lines


def assumption_section(table: CountTable, smallest: dict[str, int], focus: str = FOCUS) -> list[str]:
    """The assumed n of M-Trends 2021–2024 and what it does to an interval."""
    lines = [
        "## M-Trends 2021–2024: the assumed number of intrusions",
        "",
        "The copy gives percentages with one decimal and no n. The assumption used is the smallest n for which "
        "every percentage of the year is a whole count rounded to one decimal: a lower bound under that reading "
        "(every n from about 1,000 up fits too). A larger true n would make each figure more informative; the "
        "assumption errs towards less. Override it with `load_counts(trials_override={...})`.",
        "",
        f"Effect on one figure: the {HDI_PROB:.0%} Jeffreys interval of {focus}'s rate at the assumed n and at "
        + " and ".join(f"{n:,}" for n in N_ALTERNATIVES)
        + "; and, over all the year's figures, the median ratio of interval widths (assumed n ÷ "
        + f"{N_ALTERNATIVES[0]:,}).",
        "",
        f"| year | smallest n that fits | n used | {focus} as published | k at n used | interval at n used | "
        + " | ".join(f"at {n:,}" for n in N_ALTERNATIVES)
        + f" | median width ratio vs {N_ALTERNATIVES[0]:,} |",
        "|---|---|---|---|---|---|" + "---|" * len(N_ALTERNATIVES) + "---|",
    ]
    for year, fit in smallest.items():
        sid = f"mtrends{year}"
        rows = [c for c in table.counts if c.source_id == sid]
        if not rows:
            continue
        n_used = rows[0].trials
        pct = np.array([float(c.percent) for c in rows])
        ratios = []
        for p in pct:
            a = jeffreys_interval(round(p * n_used / 100), n_used)
            b = jeffreys_interval(round(p * N_ALTERNATIVES[0] / 100), N_ALTERNATIVES[0])
            ratios.append((a[1] - a[0]) / (b[1] - b[0]))
        focus_row = next((c for c in rows if c.technique_id == focus), None)
        if focus_row is None:
            cells = ["not listed", "", ""] + [""] * len(N_ALTERNATIVES)
        else:
            p = float(focus_row.percent)
            lo, hi = jeffreys_interval(focus_row.successes, n_used)
            cells = [f"{focus_row.percent} %", str(focus_row.successes), f"{_pct(lo)}–{_pct(hi)}"]
            for n in N_ALTERNATIVES:
                lo2, hi2 = jeffreys_interval(round(p * n / 100), n)
                cells.append(f"{_pct(lo2)}–{_pct(hi2)}")
        lines.append(f"| {year} | {fit:,} | {n_used:,} | " + " | ".join(cells) + f" | {np.median(ratios):.2f} |")
    lines += [
        "",
        "Its effect on the multi-source synthesis's T1102 headline (a refit with every assumed n doubled) is in "
        "`reports/validation-sources.md`.",
        "",
    ]
    return lines


def findings_section(findings: list[SourceFinding]) -> list[str]:
    """The data-quality findings about the raw copies."""
    kinds = Counter(f.kind for f in findings)
    lines = [
        "## Data quality of the raw copies",
        "",
        f"{len(findings)} findings ("
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        + ").",
        "",
        "| where | finding | detail |",
        "|---|---|---|",
    ]
    lines += [f"| {_cell(f.source)} | {f.kind} | {_cell(f.detail)} |" for f in findings]
    lines.append("")
    return lines


def excluded_section(built: Built) -> list[str]:
    """Rows left out, counted by reason."""
    groups: Counter = Counter()
    for r in built.excluded:
        reason = r["reason"].removeprefix("left out: ")
        if "deprecated in ATT&CK" in reason:
            reason = "the ID is deprecated in ATT&CK v18.1 (no replacement)"
        elif "merged" in reason:
            reason = "ATT&CK v18.1 merged the technique into a wider one (or several listed ones into one)"
        elif "ICS rows" in reason:
            reason = "ATT&CK for ICS rows of a CISA advisory"
        elif "the row names" in reason:
            reason = "the row's technique name and ID disagree"
        groups[reason] += 1
    lines = [
        "## Left out",
        "",
        f"{len(built.excluded)} entries of `data/evidence/excluded_rows.csv` (each a raw row or a block of rows), "
        "by reason:",
        "",
        "| entries | reason |",
        "|---|---|",
    ]
    lines += [f"| {n} | {_cell(reason)} |" for reason, n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines.append("")
    return lines


def _unmapped_kind(basis: str) -> str:
    """``none: wrapper of X`` -> ``wrapper``; ``none: asset-state step (...)`` -> ``asset-state step``."""
    text = basis.split(":", 1)[1].strip() if ":" in basis else basis
    if "deprecated" in text:
        return "a deprecated ATT&CK technique (no replacement)"
    text = text.split("(")[0].split(";")[0].strip()
    if text.startswith("not an ATT&CK technique"):
        return "not an ATT&CK technique"
    return "wrapper" if text.startswith("wrapper") else text


def elang_section(table: CountTable, path: Path = ELANG_ATTACK_STEPS_CSV) -> list[str]:
    """enterpriseLang's attack steps: how many map to ATT&CK, and how many of those have evidence."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        steps = list(csv.DictReader(fh))
    mapped = [s for s in steps if s["technique_id"]]
    positive = {c.technique_id for c in table.counts if c.successes > 0}
    counted = {c.technique_id for c in table.counts}
    with_evidence = [s for s in mapped if s["technique_id"] in positive]
    with_rows = [s for s in mapped if s["technique_id"] in counted]
    basis = Counter(s["mapping_basis"].split(":")[0].split(" (")[0] for s in mapped)
    unmapped = Counter(_unmapped_kind(s["mapping_basis"]) for s in steps if not s["technique_id"])
    v1 = set()
    if OBSERVATIONS_CSV.is_file():
        with open(OBSERVATIONS_CSV, newline="", encoding="utf-8") as fh:
            v1 = {r["technique_id"] for r in csv.DictReader(fh)}
    lines = [
        "## Coverage of enterpriseLang",
        "",
        f"enterpriseLang (commit 5a6d07f) has {len(steps)} attack steps; {len(mapped)} correspond to an ATT&CK v18.1 "
        f"technique ({len({s['technique_id'] for s in mapped})} distinct IDs; basis: "
        + ", ".join(f"{n} by {b}" for b, n in sorted(basis.items(), key=lambda kv: -kv[1]))
        + f"). Of the mapped steps, {len(with_evidence)} have a nonzero count from at least one source and "
        f"{len(with_rows)} have at least a count (0 of n included). The evidence of enterpriseLang's own notes "
        f"covered {len(v1)} technique IDs.",
        "",
        f"Steps without a technique: {len(steps) - len(mapped)} "
        f"({', '.join(f'{n} {k}' for k, n in sorted(unmapped.items(), key=lambda kv: -kv[1]))}); "
        "`data/enterpriselang_attack_steps.csv` gives each step's basis.",
        "",
    ]
    return lines


def render_evidence_markdown(
    built: Built,
    table: CountTable,
    findings: list[SourceFinding],
    smallest: dict[str, int],
    overlaps: dict[str, int],
) -> str:
    """The whole report (see the module docstring)."""
    families = sorted({table.sources[s].family for s in table.used_sources()})
    live = live_techniques()
    positive = {c.technique_id for c in table.counts if c.successes > 0}
    lines = [
        "# Evidence base v2",
        "",
        f"{len(table.used_sources())} sources in {len(families)} families ({', '.join(families)}); "
        f"{len(positive)} of the {len(live)} live ATT&CK v18.1 techniques and sub-techniques have a nonzero count. "
        "The sources count different things (intrusions, malware, adversary groups, CTI reports, advisories): "
        "their rates are not one quantity. The multi-source synthesis, the default model (`reports/techniques/`), "
        "fits these counts with an offset per family; the single- and multi-technique models read only the four "
        "sources of `data/observations.csv`.",
        "",
        "Generated by `attackprev evidence build` from the raw copies in `data/raw/` (with their licences) and the "
        "hand-edited `data/sources.csv`, `data/observations.csv` and `data/id_decisions.csv`; the built tables are "
        "`data/evidence/counts.csv` (k of n per technique and source), `members.csv` (which groups, software, "
        "campaigns, reports or advisories make each count) and `excluded_rows.csv` (every raw row not used, "
        "with why).",
        "",
    ]
    lines += sources_section(table)
    lines += overlap_section(overlaps)
    lines += coverage_section(table)
    lines += focus_section(table)
    lines += crosscheck_section(built)
    lines += assumption_section(table, smallest)
    lines += findings_section(findings)
    lines += excluded_section(built)
    lines += elang_section(table)
    return "\n".join(lines).rstrip() + "\n"
