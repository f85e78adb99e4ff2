"""Checks of the raw copies, on the real files and on small ones built to trip each check."""

from __future__ import annotations

from attackprev.evidence.audit.sources import (
    cisa_aggregate_n,
    mtrends_denominators,
    mtrends_gaps,
    sightings_repeat,
    source_findings,
)
from attackprev.evidence.denominators import consistent_count
from attackprev.evidence.ids import load_decisions
from tests.conftest import write_csv

MACRO_HEADER = "Rank,Tactic,TID,Technique,Percentage,Reporter,Year,Type,extracted_Source\n"


def test_findings_on_the_real_copies():
    found = source_findings(load_decisions())
    text = " | ".join(f"{f.source}: {f.detail}" for f in found)
    assert "2023 are exactly the 15 of 2022" in text
    assert "CISA 2022: the aggregate percentages fit n = 14" in text
    assert "M-Trends 2024 (copy): no row under the tactic 'Command and Control'" in text
    assert "T1059, T1059.001, T1071, T1105, T1569.002" in text  # Execution's and C2's mainstays missing in 2024
    assert "'Ingress Tool Transfer' (T1105)" in text


def test_mtrends_denominators_are_the_smallest_that_fit():
    # independently: every percentage of the year is k/n rounded to one decimal for the n found, and for no smaller n
    import csv

    from attackprev.evidence.raw.splunk import MACRO_CSV

    with open(MACRO_CSV, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Reporter"] == "M-Trends"]
    for year, n in mtrends_denominators().items():
        pcts = {float(r["Percentage"]) for r in rows if r["Year"] == year}
        assert all(consistent_count(p, n, 1) is not None for p in pcts)
        assert not all(consistent_count(p, n - 1, 1) is not None for p in pcts)


def test_sightings_repeat_needs_the_same_figures(tmp_path):
    rows = [
        '1,x,T1059,a,"5",CTID Sightings,2022,P,u',
        '2,x,T1047,b,"3",CTID Sightings,2022,P,u',
        '1,x,T1047,b,"5",CTID Sightings,2023,P,u',
        '2,x,T1059,a,"3",CTID Sightings,2023,P,u',
    ]
    path = write_csv(tmp_path / "m.csv", MACRO_HEADER + "\n".join(rows) + "\n")
    assert "2 of them sit under a different technique" in sightings_repeat(path).detail
    path = write_csv(tmp_path / "m.csv", MACRO_HEADER + "\n".join([*rows[:3], rows[3].replace('"3"', '"4"')]) + "\n")
    assert sightings_repeat(path) is None


def test_cisa_aggregate_n_against_raw_rows(tmp_path):
    macro = write_csv(
        tmp_path / "m.csv", MACRO_HEADER + '1,x,T1102,W,"50",CISA,2020,P,u\n1,x,T1105,I,"25",CISA,2020,P,u\n'
    )
    raw = write_csv(
        tmp_path / "c.csv",
        "TID,Technique,Type,Year,Reporter,Target,Source\n"
        + "".join(f"T1102,W,Public,2020,CISA,Enterprise,https://x/aa20-00{i}a\n" for i in range(3)),
    )
    (finding,) = cisa_aggregate_n(macro, raw)  # 50 % and 25 % fit n = 4 at the smallest; 3 advisories
    assert "n = 4" in finding.detail and "3 advisories" in finding.detail


def test_mtrends_gaps_need_three_other_years(tmp_path):
    rows = [f'1,x,T1102,W,"1",M-Trends,{y},P,u' for y in ("2020", "2021", "2022")]
    rows += [f'1,x,T1059,C,"1",M-Trends,{y},P,u' for y in ("2020", "2021", "2022", "2023")]
    path = write_csv(tmp_path / "m.csv", MACRO_HEADER + "\n".join(rows) + "\n")
    gaps = {g.source: g.detail for g in mtrends_gaps(path)}
    assert "command-and-control" in gaps["M-Trends 2023 (copy)"] and "execution" not in gaps["M-Trends 2023 (copy)"]
    assert "M-Trends 2022 (copy)" not in gaps
