"""Data quality of the evidence base v2's raw copies: checks computed from the raw files.

* the copy's CTID Sightings 2023 rows repeat its 2022 percentages under other techniques;
* the copy's aggregate CISA percentages imply yearly n other than the raw advisory rows give;
* the M-Trends years of the copy lack whole tactics (2024: Execution, Command and Control);
* the smallest denominator every M-Trends percentage of a year fits (the assumed n);
* rows whose technique name and ID disagree (an ID or a name typed wrong).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from attackprev.evidence.attack import attack_table
from attackprev.evidence.denominators import recover_denominator
from attackprev.evidence.ids import name_conflict, names_of, resolve
from attackprev.evidence.raw.splunk import CISA_CSV, MACRO_CSV, YEARS
from attackprev.evidence.raw.tie import LEFT_OUT_ORIGIN, TIE_JSON
from attackprev.evidence.tables import read_table


@dataclass(frozen=True)
class SourceFinding:
    """One data-quality finding about a raw copy."""

    source: str
    kind: str
    detail: str


def tie_overlaps(path: Path = TIE_JSON) -> dict[str, int]:
    """How the TIE reports (ATT&CK campaign records left out) overlap ATT&CK and one another.

    Returns
    -------
    dict
        ``reports``; ``linked``: reports tagged with an ATT&CK group, software or campaign (they
        describe adversaries that ATT&CK's own records also count); ``shared_reference``: reports
        citing an address that another report also cites (possible duplicates within the set).
    """
    reports = [
        r
        for r in json.loads(Path(path).read_text(encoding="utf-8"))["reports"]
        if r["origin_of_data"] != LEFT_OUT_ORIGIN
    ]
    cited = Counter(ref["url"] for r in reports for ref in r.get("references", []) if ref.get("url"))
    return {
        "reports": len(reports),
        "linked": sum(
            bool(r.get("associated_groups") or r.get("associated_software") or r.get("associated_campaigns"))
            for r in reports
        ),
        "shared_reference": sum(
            any(cited[ref.get("url")] > 1 for ref in r.get("references", []) if ref.get("url")) for r in reports
        ),
    }


def _rows(path: Path) -> list[tuple[int, dict]]:
    rows, _ = read_table(path, [])
    return rows


def sightings_repeat(path: Path = MACRO_CSV) -> SourceFinding | None:
    """The copy's CTID Sightings 2023 percentages against 2022's."""
    rows = [r for _, r in _rows(path) if r["Reporter"] == "CTID Sightings"]
    by_year = {y: {r["TID"]: r["Percentage"] for r in rows if r["Year"] == y} for y in ("2022", "2023")}
    old, new = by_year["2022"], by_year["2023"]
    if not old or not new:
        return None
    same_values = sorted(new.values()) == sorted(old.values())
    moved = sum(1 for tid, p in new.items() if old.get(tid) != p)
    if not same_values:
        return None
    return SourceFinding(
        "CTID Sightings (copy)",
        "repeated figures",
        f"the {len(new)} percentages of 2023 are exactly the {len(old)} of 2022, and {moved} of them sit under a "
        "different technique than in 2022: the 2023 rows are a re-labelled copy, so neither year is used",
    )


def cisa_aggregate_n(macro: Path = MACRO_CSV, raw: Path = CISA_CSV) -> list[SourceFinding]:
    """Per year, the n the aggregate CISA percentages imply against the raw advisories."""
    advisories: dict[str, set] = defaultdict(set)
    enterprise: dict[str, set] = defaultdict(set)
    for _, r in _rows(raw):
        advisories[r["Year"]].add(r["Source"])
        if r["Target"] == "Enterprise":
            enterprise[r["Year"]].add(r["Source"])
    percents: dict[str, list[float]] = defaultdict(list)
    for _, r in _rows(macro):
        if r["Reporter"] == "CISA":
            percents[r["Year"]].append(float(r["Percentage"]))
    out = []
    for year in YEARS:
        if not percents[year]:
            continue
        decimals = max(len(p.split(".")[1]) if "." in p else 0 for p in map(str, percents[year]))
        try:
            implied = recover_denominator(percents[year], decimals, f"CISA {year}").trials
        except ValueError:
            implied = None
        n_raw, n_ent = len(advisories[year]), len(enterprise[year])
        if implied != n_ent:
            out.append(
                SourceFinding(
                    f"CISA {year}",
                    "other n",
                    f"the aggregate percentages fit n = {implied if implied else 'no n up to 5000'} at the smallest; "
                    f"the raw rows have {n_raw} advisories ({n_ent} with Enterprise techniques), which is the n used",
                )
            )
    return out


def mtrends_gaps(path: Path = MACRO_CSV) -> list[SourceFinding]:
    """Per year of the M-Trends copy: what every other year lists but this one lacks.

    Two signs that a year's table is incomplete: a tactic of the copy's own ``Tactic`` column with
    no row this year although at least three other years have rows for it; and techniques that
    every other year lists (by ATT&CK tactic). Either way absent techniques are unknown, not 0.
    """
    rows = [r for _, r in _rows(path) if r["Reporter"] == "M-Trends"]
    years = sorted({r["Year"] for r in rows})
    labels: dict[str, Counter] = defaultdict(Counter)
    ids: dict[str, set] = defaultdict(set)
    for r in rows:
        ids[r["Year"]].add(r["TID"])
        for label in r["Tactic"].split("\n"):
            if label.strip():
                labels[r["Year"]][label.strip()] += 1
    table = attack_table()
    all_labels = set().union(*(set(c) for c in labels.values()))
    out = []
    for year in years:
        others = [y for y in years if y != year]
        gone = sorted(t for t in all_labels if labels[year][t] == 0 and sum(labels[y][t] > 0 for y in others) >= 3)
        common = set.intersection(*(ids[y] for y in others)) if others else set()
        lacking = sorted(common - ids[year])
        if not gone and not lacking:
            continue
        parts = []
        if gone:
            parts.append(f"no row under the tactic {', '.join(repr(t) for t in gone)}")
        if lacking:
            tactics = Counter(t for tid in lacking if tid in table for t in table[tid].tactics)
            top = ", ".join(f"{t} {n}" for t, n in sorted(tactics.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
            parts.append(
                f"{len(lacking)} techniques that every other year lists are missing ({', '.join(lacking[:8])}"
                f"{' ...' if len(lacking) > 8 else ''}; by ATT&CK tactic: {top})"
            )
        out.append(
            SourceFinding(
                f"M-Trends {year} (copy)",
                "missing rows",
                "; ".join(parts) + ": the copy is partial, so absent techniques are unknown, not 0",
            )
        )
    return out


def mtrends_denominators(path: Path = MACRO_CSV) -> dict[str, int]:
    """Per year (2021 on), the smallest n every M-Trends percentage of the copy fits at one decimal."""
    percents: dict[str, list[float]] = defaultdict(list)
    for _, r in _rows(path):
        if r["Reporter"] == "M-Trends" and r["Year"] != "2020":
            percents[r["Year"]].append(float(r["Percentage"]))
    return {y: recover_denominator(p, 1, f"M-Trends {y}").trials for y, p in sorted(percents.items())}


def name_mismatches(decisions: dict, paths: tuple[Path, ...] = (MACRO_CSV, CISA_CSV)) -> list[SourceFinding]:
    """Rows whose technique name names another technique than their ID (:func:`name_conflict`); all left out."""
    out = []
    for path in paths:
        for line, r in _rows(path):
            if r.get("Target", "Enterprise") != "Enterprise" or r["Reporter"] not in ("M-Trends", "CISA"):
                continue
            if path == MACRO_CSV and r["Reporter"] != "M-Trends":
                continue
            res = resolve(r["TID"], decisions, path, line)
            if res.technique_id is None:
                continue
            where = f"{r['Reporter']} {r['Year']} ({path.name}:{line})"
            conflict = name_conflict(res.technique_id, r["Technique"])
            if conflict:
                out.append(SourceFinding(where, "name and ID disagree", f"{r['TID']}: {conflict}; left out"))
                continue
            own = r["Technique"].rpartition(":")[2].strip()
            named = names_of(own)
            if named and res.technique_id not in named:
                out.append(
                    SourceFinding(
                        where,
                        "sub-technique name differs",
                        f"{r['TID']} ({attack_table()[res.technique_id].name!r}) is named {own!r}, the name of "
                        f"{', '.join(sorted(named))}; the parent technique agrees, so it is counted under "
                        f"{res.technique_id}",
                    )
                )
    return out


def source_findings(decisions: dict) -> list[SourceFinding]:
    """Every finding of this module, in a fixed order.

    ``decisions`` come from :func:`~attackprev.evidence.ids.load_decisions`.
    """
    found: list[SourceFinding] = []
    repeat = sightings_repeat()
    if repeat is not None:
        found.append(repeat)
    found += cisa_aggregate_n()
    found += mtrends_gaps()
    found += name_mismatches(decisions)
    return found
