"""Splunk SURGe's transcriptions of yearly reports (``splunk/macro-level-attack-trending``).

Two files under ``data/raw/splunk/``:

* ``splunk_cisa_alerts_2020_2024.csv``: one row per technique per CISA advisory (``Source`` is
  the advisory's address). An advisory counts once per technique; n per year is the number of
  distinct advisories with at least one Enterprise technique (ICS rows are another ATT&CK domain).
* ``splunk_macro_attack_aggregate_2020_2024.csv``: yearly percentages per technique. Only the
  M-Trends rows are used; the others are left out with their reason (:data:`LEFT_OUT`).
"""

from __future__ import annotations

from pathlib import Path

from attackprev.config import RAW_DIR
from attackprev.errors import InputError
from attackprev.evidence.ids import Decision, name_conflict, raw_key, resolve
from attackprev.evidence.raw.records import Counted, Left, Percent
from attackprev.evidence.tables import read_table

CISA_CSV = RAW_DIR / "splunk" / "splunk_cisa_alerts_2020_2024.csv"
MACRO_CSV = RAW_DIR / "splunk" / "splunk_macro_attack_aggregate_2020_2024.csv"
YEARS = ("2020", "2021", "2022", "2023", "2024")

#: Reporters of the aggregate file that are not used, and why.
LEFT_OUT = {
    "CISA": "superseded: CISA is counted advisory by advisory from the raw file "
    "splunk_cisa_alerts_2020_2024.csv (these aggregate percentages imply other yearly n, e.g. 14 for 2022)",
    "Red Canary": "not countable: a top-10 list of shares of threats (detections, not organisations), "
    "with denominators known only as rounded press figures; a top-10 list would bound unlisted techniques "
    "(a censored observation), which is left for later",
    "CTID Sightings": "not used: the 2023 rows repeat the 2022 percentages under other techniques "
    "(see reports/evidence.md), and the denominator is unpublished",
}


def _lines(numbers: list[int]) -> str:
    """Compress sorted line numbers into ranges: ``2-5 9 11-12``."""
    out, start, prev = [], None, None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if prev != start else str(start))
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else str(start))
    return " ".join(out)


def read_cisa(
    decisions: dict[tuple[str, str], Decision], path: str | Path = CISA_CSV
) -> tuple[list[Counted], list[Left]]:
    """Count, per year and technique, the CISA advisories that name it.

    Returns
    -------
    (list of Counted, list of Left)
        One :class:`Counted` per year (``cisa_<year>``); members are advisory codes (``aa20-183a``).
    """
    rows, _ = read_table(path, ["TID", "Technique", "Year", "Reporter", "Target", "Source"])
    counted = {y: Counted(f"cisa_{y}", 0) for y in YEARS}
    enterprise: dict[str, set[str]] = {y: set() for y in YEARS}
    other: dict[str, dict[str, list[int]]] = {y: {} for y in YEARS}
    left: list[Left] = []
    for line, r in rows:
        if r["Reporter"] != "CISA":
            raise InputError(f"Reporter {r['Reporter']!r}: expected CISA", path, line)
        if r["Year"] not in YEARS:
            raise InputError(f"Year {r['Year']!r} is not one of {', '.join(YEARS)}", path, line)
        advisory = r["Source"].rstrip("/").rsplit("/", 1)[-1]
        if not advisory.startswith("aa"):
            raise InputError(f"Source {r['Source']!r} is not a CISA advisory address", path, line)
        year = r["Year"]
        if r["Target"] != "Enterprise":
            if r["Target"] != "ICS":
                raise InputError(f"Target {r['Target']!r}: expected Enterprise or ICS", path, line)
            other[year].setdefault(advisory, []).append(line)
            continue
        enterprise[year].add(advisory)
        res = resolve(r["TID"], decisions, path, line)
        conflict = name_conflict(res.technique_id, r["Technique"]) if res.technique_id else None
        if res.technique_id is None or conflict:
            note = res.note if conflict is None else f"left out: {conflict}; which is meant is unknown"
            left.append(Left(raw_key(path), str(line), f"cisa_{year}", res.raw_id, note))
            continue
        counted[year].add(res.technique_id, advisory, res.raw_id)
    for year in YEARS:
        counted[year].trials = counted[year].in_file = len(enterprise[year])
        for advisory, lines in sorted(other[year].items()):
            only = advisory not in enterprise[year]
            left.append(
                Left(
                    raw_key(path),
                    _lines(lines),
                    f"cisa_{year}",
                    "",
                    f"left out: ATT&CK for ICS rows of advisory {advisory}"
                    + (", which maps no Enterprise technique and so is not in n" if only else ""),
                )
            )
    return list(counted.values()), left


def read_mtrends(
    decisions: dict[tuple[str, str], Decision], path: str | Path = MACRO_CSV
) -> tuple[list[Percent], list[Left]]:
    """The M-Trends percentages of the aggregate file, and every other row left out with its reason.

    Returns
    -------
    (list of Percent, list of Left)
        Percentages as written (``"1"``, ``"1.1"``) with their raw rows; source ``mtrends<year>``.
    """
    rows, _ = read_table(path, ["Rank", "Tactic", "TID", "Technique", "Percentage", "Reporter", "Year"])
    out: list[Percent] = []
    left: list[Left] = []
    blocks: dict[tuple[str, str], list[int]] = {}
    key = raw_key(path)
    for line, r in rows:
        if r["Year"] not in YEARS:
            raise InputError(f"Year {r['Year']!r} is not one of {', '.join(YEARS)}", path, line)
        if r["Reporter"] != "M-Trends":
            if r["Reporter"] not in LEFT_OUT:
                raise InputError(f"unknown Reporter {r['Reporter']!r}", path, line)
            blocks.setdefault((r["Reporter"], r["Year"]), []).append(line)
            continue
        source_id = f"mtrends{r['Year']}"
        try:
            pct = float(r["Percentage"])
        except ValueError:
            raise InputError(f"Percentage {r['Percentage']!r} is not a number", path, line) from None
        if not 0 < pct <= 100:
            raise InputError(f"Percentage {r['Percentage']} is outside (0, 100]", path, line)
        res = resolve(r["TID"], decisions, path, line)
        conflict = name_conflict(res.technique_id, r["Technique"]) if res.technique_id else None
        if res.technique_id is None or conflict:
            note = res.note if conflict is None else f"left out: {conflict}; which is meant is unknown"
            left.append(Left(key, str(line), source_id, res.raw_id, note))
            continue
        out.append(
            Percent(
                source_id,
                res.technique_id,
                res.raw_id,
                r["Technique"],
                r["Percentage"],
                key,
                line,
                res.spelled,
                res.moved,
            )
        )
    for (reporter, year), lines in sorted(blocks.items()):
        left.append(Left(key, _lines(lines), f"{reporter} {year}", "", f"left out: {LEFT_OUT[reporter]}"))
    return out, left
