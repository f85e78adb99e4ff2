"""The evidence base v2 build: the committed tables are what the build gives, and its counts are right.

Figures checked against answers computed independently of the build (straight from the raw files
here, or as published in the project's reference notes for the raw copies).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import pytest

from attackprev.config import COUNTS_CSV, DATA_DIR, EVIDENCE_DIR
from attackprev.evidence.build import build_evidence, stale_tables
from attackprev.evidence.counts import load_counts
from attackprev.evidence.ids import live_techniques

RAW = DATA_DIR / "raw"


@pytest.fixture(scope="module")
def built():
    return build_evidence()


@pytest.fixture(scope="module")
def counts(built):
    return {(r["technique_id"], r["source_id"]): r for r in built.counts}


def test_committed_tables_match_the_build(built):
    assert stale_tables(built) == []


def test_t1102_as_published_in_the_reference(counts):
    # ../shared/reference/README.md (evidence_v2): 33/172 groups, 77/784 software, 7/52 campaigns;
    # T1102.001: 6/15/2, .002: 16/37/1, .003: 2/6/1; CISA 2020-2024: 2, 0, 1, 0, 1 of 16, 13, 16*, 28, 11
    # (*18 advisories in 2022, 2 of them ICS only); TIE: 186 of 2,672 with the 22 campaign records,
    # 182 of 2,650 without.
    expect = {
        "T1102": (33, 77, 7),
        "T1102.001": (6, 15, 2),
        "T1102.002": (16, 37, 1),
        "T1102.003": (2, 6, 1),
    }
    for tid, (g, s, c) in expect.items():
        got = tuple(counts[(tid, f"attack_{k}_v18")]["successes"] for k in ("groups", "software", "campaigns"))
        assert got == (g, s, c), tid
    assert [counts[("T1102", f"cisa_{y}")]["successes"] for y in range(2020, 2025)] == [2, 0, 1, 0, 1]
    assert [counts[("T1102", f"cisa_{y}")]["trials"] for y in range(2020, 2025)] == [16, 13, 16, 28, 11]
    assert (counts[("T1102", "ctid_tie_2024")]["successes"], counts[("T1102", "ctid_tie_2024")]["trials"]) == (
        182,
        2650,
    )
    assert counts[("T1102", "mtrends2021")]["percent"] == "1" and counts[("T1102", "mtrends2022")]["percent"] == "1.1"
    assert (counts[("T1102", "mtrends2020")]["successes"], counts[("T1102", "mtrends2020")]["trials"]) == (9, 227)
    assert (counts[("T1102", "sok2019_windows_malware")]["successes"]) == 47


def test_tie_counts_recomputed_from_the_json(counts):
    data = json.loads((RAW / "ctid_tie" / "ctid_tie_combined_dataset_full_frequency_2024-03.json").read_text())
    reports = data["reports"]
    assert len(reports) == 2672
    with_campaigns = sum(any(t.split(".")[0] == "T1102" for t in r["mitre_techniques"]) for r in reports)
    exact = sum("T1102" in r["mitre_techniques"] for r in reports)
    assert (with_campaigns, exact) == (186, 157)
    kept = [r for r in reports if r["origin_of_data"] != "MITRE ATT&CK Campaigns"]
    row = counts[("T1102", "ctid_tie_2024")]
    assert row["successes"] == sum(any(t.split(".")[0] == "T1102" for t in r["mitre_techniques"]) for r in kept)
    assert row["successes_exact"] == sum("T1102" in r["mitre_techniques"] for r in kept)


def test_attack_rollup_recomputed_for_every_technique(counts):
    users = defaultdict(set)
    with open(RAW / "attack" / "attack_uses_v18.1.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            users[(r["user_type"], r["technique_id"].split(".")[0])].add(r["user_id"])
    # every active parent technique in the raw file is counted with its sub-techniques rolled up
    for (kind, parent), members in users.items():
        if (parent, f"attack_{kind}s_v18") not in counts and kind == "software":
            continue
        source = "attack_software_v18" if kind == "software" else f"attack_{kind}s_v18"
        assert counts[(parent, source)]["successes"] == len(members), (parent, kind)


def test_complete_sources_cover_every_live_technique_and_partial_ones_give_no_zero(built):
    by_source = defaultdict(list)
    for r in built.counts:
        by_source[r["source_id"]].append(r)
    live = live_techniques()
    for sid, rows in by_source.items():
        source = built.sources[sid]
        if source.coverage == "complete":
            assert sorted(r["technique_id"] for r in rows) == live, sid
        else:
            assert all(r["successes"] > 0 for r in rows), sid


def test_rollup_bounds(built):
    """A parent's count is at least each sub-technique's and at most their sum plus its own."""
    rows = {(r["technique_id"], r["source_id"]): r for r in built.counts if r["successes_exact"] != ""}
    for (tid, sid), r in rows.items():
        if "." in tid:
            continue
        subs = [v for (t, s), v in rows.items() if s == sid and t.startswith(tid + ".")]
        assert r["successes"] >= max([r["successes_exact"], *(v["successes"] for v in subs)])
        assert r["successes"] <= r["successes_exact"] + sum(v["successes"] for v in subs)


def test_members_trace_every_count(built):
    members = {(r["technique_id"], r["source_id"]): r["members"].split(" ") for r in built.members}
    for r in built.counts:
        if r["percent"] or r["source_id"] in ("sok2019_windows_malware", "recordedfuture_2019"):
            continue
        listed = members.get((r["technique_id"], r["source_id"]), [])
        if r["source_id"].startswith("ctid"):
            listed = [" ".join(listed[i : i + 2]) for i in range(0, len(listed), 2)]  # "report 12"
        assert len(listed) == r["successes"], (r["technique_id"], r["source_id"])


def test_partial_rows_trace_to_raw_rows(built):
    for r in built.counts:
        if r["percent"]:
            for ref in r["raw_rows"].split(" "):
                path, _, line = ref.rpartition(":")
                assert (DATA_DIR / path).is_file() and int(line) > 1, ref


def test_merged_and_conflicting_rows_are_left_out_not_guessed(built, counts):
    reasons = " ".join(r["reason"] for r in built.excluded)
    assert ("T1574.001", "mtrends2021") not in counts  # side-loading and search-order hijacking merged in v18
    assert "merged T1073 into the wider T1574.001" in reasons
    assert counts[("T1059.001", "mtrends2023")]["percent"] == "33.2"  # the mistyped T1086 row does not clash
    assert (
        counts[("T1505.003", "mtrends2020")]["percent"] == "15.86"
    )  # the notes' value; the copy's 15.68 fits no k/227
    assert ("T1560", "mtrends2020") not in counts


def test_mtrends_assumed_n_is_the_smallest_that_fits(built):
    from attackprev.evidence.audit.sources import mtrends_denominators

    smallest = mtrends_denominators()
    for year, n in smallest.items():
        assert built.sources[f"mtrends{year}"].trials == n


def test_the_committed_counts_load(built):
    table = load_counts(COUNTS_CSV)
    assert len(table.counts) == len(built.counts)
    assert len(table.used_sources()) >= 12 and len(table.families()) >= 7
    assert len(table.techniques()) >= 550
    for tid in ("T1102", "T1102.001", "T1102.002", "T1102.003"):
        assert len(table.for_technique(tid)) >= 5
    assert (EVIDENCE_DIR / "excluded_rows.csv").is_file()
