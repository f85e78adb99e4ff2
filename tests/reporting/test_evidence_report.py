"""reports/evidence.md: generated from the built tables; its numbers are the tables'."""

from __future__ import annotations

import re

import pytest

from attackprev.config import COUNTS_CSV, REPORTS_DIR
from attackprev.evidence.audit.sources import mtrends_denominators, source_findings, tie_overlaps
from attackprev.evidence.build import build_evidence
from attackprev.evidence.counts import load_counts
from attackprev.evidence.ids import load_decisions
from attackprev.inference.summaries import jeffreys_interval
from attackprev.reporting.evidence import _cell, _pct, render_evidence_markdown


@pytest.fixture(scope="module")
def text():
    built = build_evidence()
    return render_evidence_markdown(
        built, load_counts(COUNTS_CSV), source_findings(load_decisions()), mtrends_denominators(), tie_overlaps()
    )


def test_committed_report_is_what_the_build_writes(text):
    assert (REPORTS_DIR / "evidence.md").read_text(encoding="utf-8") == text


def test_headline_counts(text):
    table = load_counts(COUNTS_CSV)
    first = text.splitlines()[2]
    assert first.startswith(f"{len(table.used_sources())} sources in {len(table.families())} families")
    assert f"{len(table.techniques())} of the 691 live" in first


def test_t1102_row_of_each_source(text):
    table = load_counts(COUNTS_CSV)
    section = text.split("## T1102 (Web Service)")[1].split("\n## ")[0]
    for c in table.for_technique("T1102"):
        row = next(line for line in section.splitlines() if line.startswith(f"| `{c.source_id}` |"))
        cell = row.split("|")[3].strip()
        assert cell.startswith(f"{c.successes}/{c.trials:,}"), (c.source_id, cell)


def test_assumption_effect_interval_is_jeffreys(text):
    # 2021: T1102 "1 %" at the assumed 409 is 4 of 409; the interval is the equal-tailed Jeffreys one
    row = next(line for line in text.splitlines() if line.startswith("| 2021 | 409 | 409 | 1 % | 4 |"))
    lo, hi = jeffreys_interval(4, 409)
    assert f"{100 * lo:.2f} %–{100 * hi:.2f} %" in row
    lo, hi = jeffreys_interval(10, 1000)
    assert f"{100 * lo:.2f} %–{100 * hi:.2f} %" in row


def test_left_out_total_matches_the_table(text):
    import csv

    from attackprev.config import EXCLUDED_ROWS_CSV

    with open(EXCLUDED_ROWS_CSV, newline="", encoding="utf-8") as fh:
        n = sum(1 for _ in csv.DictReader(fh))
    assert f"{n} entries of `data/evidence/excluded_rows.csv`" in text
    section = text.split("## Left out")[1].split("\n## ")[0]
    assert sum(int(m) for m in re.findall(r"^\| (\d+) \|", section, re.M)) == n


def test_percentages_and_cells():
    assert (_pct(0.0396), _pct(0.0), _pct(1.0), _pct(47 / 951)) == ("3.96 %", "0.00 %", "100.00 %", "4.94 %")
    assert _cell("a|b\nc") == "a\\|b c"  # a pipe would end the Markdown cell, a newline the row
    assert _cell(409) == "409"
