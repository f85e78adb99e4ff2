"""Checks on the hand-edited evidence tables in data/."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from attackprev.evidence.attack import attack_table, check_technique_id

DATA = Path(__file__).resolve().parents[2] / "data"

# Measured on the re-reading of the enterpriseLang notes (enterpriselang_evidence.csv, not shipped):
EVIDENCE_ROWS = 339
EVIDENCE_NOTES = 176
# sha256 of the sorted lines "note_path<TAB>source_key<TAB>reported_as", one per evidence row
EVIDENCE_DIGEST = "9d533b0aadb44c0e4b48c128b9365f63f5214ba673a07a1c3558246f421ae287"
# evidence rows per countable source (observations + their excluded duplicates / non-countable rows)
EVIDENCE_ROWS_PER_SOURCE = {
    "mtrends2020": 33,
    "sok2019_windows_malware": 26,
    "redcanary_2020_tdr": 13,
    "recordedfuture_2019": 6,
}

SOURCE_COLUMNS = [
    "source_id",
    "family",
    "unit",
    "coverage",
    "publisher",
    "citation",
    "year",
    "url",
    "population",
    "trials",
    "trials_basis",
    "percent_decimals",
    "notes",
]
OBSERVATION_COLUMNS = [
    "technique_id",
    "technique_name",
    "source_id",
    "successes",
    "trials",
    "percent",
    "reported_as",
    "location",
    "note_path",
]
EXCLUDED_COLUMNS = [
    "technique_id",
    "technique_name",
    "source_key",
    "reported_as",
    "reason",
    "note_path",
]
NOTE_COLUMNS = [
    "technique_id",
    "technique_name",
    "note_path",
    "published_result",
    "published_arithmetic",
    "ttc_text",
    "note_caveats",
    "note_kind",
    "technique_id_as_recorded",
]
REASON_CATEGORIES = {
    "proxy",
    "no denominator",
    "share of detections",
    "derived",
    "derived ratio",
    "chart reading",
    "author's count",
    "assumption",
    "unsourced",
    "ordinal",
    "ttc input",
    "no figure",
    "not a technique",
    "unverifiable",
    "duplicate",
}


def read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (DATA / name).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def sources() -> dict[str, dict[str, str]]:
    header, rows = read("sources.csv")
    assert header == SOURCE_COLUMNS
    by_id = {r["source_id"]: r for r in rows}
    assert len(by_id) == len(rows), "duplicate source_id"
    return by_id


@pytest.fixture(scope="module")
def observations() -> list[dict[str, str]]:
    header, rows = read("observations.csv")
    assert header == OBSERVATION_COLUMNS
    return rows


@pytest.fixture(scope="module")
def excluded() -> list[dict[str, str]]:
    header, rows = read("excluded.csv")
    assert header == EXCLUDED_COLUMNS
    return rows


@pytest.fixture(scope="module")
def notes() -> list[dict[str, str]]:
    header, rows = read("enterpriselang_notes.csv")
    assert header == NOTE_COLUMNS
    return rows


def decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def test_sources_are_well_formed(sources):
    assert set(sources) >= {
        "mtrends2020",
        "sok2019_windows_malware",
        "redcanary_2020_tdr",
    }
    for sid, s in sources.items():
        assert re.fullmatch(r"[a-z0-9_]+", sid), sid
        assert s["citation"] and s["population"] and s["notes"], sid
        assert re.fullmatch(r"(19|20)\d\d", s["year"]), sid
        assert s["trials_basis"] in {"published", "inferred", "assumed", "counted"}, sid
        assert re.fullmatch(r"[a-z0-9_]+", s["family"]) and s["unit"] and s["publisher"], sid
        assert s["coverage"] in {"complete", "partial"}, sid
        # trials blank exactly when it is to be inferred from the percentages
        assert (s["trials"] == "") == (s["trials_basis"] == "inferred"), sid
        if s["trials"]:
            assert int(s["trials"]) > 0, sid
        if s["trials_basis"] == "inferred":
            assert s["percent_decimals"] != "", f"{sid}: inference needs percent_decimals"
        if s["percent_decimals"]:
            assert 0 <= int(s["percent_decimals"]) <= 4, sid


def test_named_sources_are_as_published(sources):
    sok, mt, rc = (
        sources["sok2019_windows_malware"],
        sources["mtrends2020"],
        sources["redcanary_2020_tdr"],
    )
    assert (sok["trials"], sok["trials_basis"], sok["percent_decimals"]) == (
        "951",
        "published",
        "",
    )
    assert sok["url"] == "https://doi.org/10.1007/978-3-030-37228-6_20"
    assert "10.1007/978-3-030-37228-6_20" in sok["citation"]
    assert (mt["trials"], mt["trials_basis"], mt["percent_decimals"]) == (
        "",
        "inferred",
        "2",
    )
    assert "227" in mt["notes"]
    assert (rc["trials_basis"], rc["percent_decimals"]) == ("assumed", "0")
    assert int(rc["trials"]) > 0


def test_observation_ids_are_known_attack_ids(observations):
    for line, o in enumerate(observations, start=2):
        # raises InputError naming the line if the ID is malformed or unknown (revoked IDs are allowed)
        check_technique_id(o["technique_id"], "data/observations.csv", line)
        assert o["technique_id"] == o["technique_id"].strip()


def test_observations_reference_existing_sources(observations, sources):
    used = {o["source_id"] for o in observations}
    assert used <= set(sources), used - set(sources)
    partial = {sid for sid, s in sources.items() if s["coverage"] == "partial"}
    # every source of enterpriseLang's notes has observations; the others are built from data/raw/
    v2_only = {sid for sid in sources if not sid.startswith(("mtrends2020", "sok", "redcanary", "recordedfuture"))}
    assert set(sources) - v2_only <= used, f"sources without observations: {set(sources) - v2_only - used}"
    assert not (v2_only & used), "observations.csv holds the notes' sources only"
    assert used <= partial


def test_one_row_per_technique_and_source(observations):
    keys = Counter((o["technique_id"], o["source_id"]) for o in observations)
    assert [k for k, n in keys.items() if n > 1] == []


def test_observations_are_sorted(observations):
    keys = [(o["technique_id"], o["source_id"]) for o in observations]
    assert keys == sorted(keys)


def test_each_row_is_a_count_or_a_percentage(observations, sources):
    for o in observations:
        where = (o["technique_id"], o["source_id"])
        src = sources[o["source_id"]]
        assert (o["successes"] == "") != (o["percent"] == ""), where
        assert o["reported_as"] and o["location"] and o["note_path"], where
        n = int(o["trials"] or src["trials"] or 0)
        if o["trials"]:
            assert int(o["trials"]) != int(src["trials"] or 0), f"{where}: trials repeats the source's"
        if o["successes"]:
            k = int(o["successes"])
            assert n > 0, f"{where}: a count needs a known number of trials"
            assert 0 <= k <= n, where
            assert o["successes"] in o["reported_as"].replace(",", ""), where
        else:
            p = Decimal(o["percent"])
            assert 0 <= p <= 100, where
            assert src["percent_decimals"] != "", f"{where}: percentage from a source without percent_decimals"
            assert decimals(o["percent"]) <= int(src["percent_decimals"]), where
            assert o["reported_as"].startswith(o["percent"]), where


def _round_pct(k: int, n: int, places: int) -> Decimal:
    return (Decimal(100 * k) / Decimal(n)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def _fits(pct: str, n: int) -> bool:
    p = Decimal(pct)
    k = int((p * n / 100).to_integral_value(ROUND_HALF_UP))
    return any(0 <= j <= n and _round_pct(j, n, 2) == p for j in (k - 1, k, k + 1))


def test_every_mtrends_percentage_is_a_count_out_of_227(observations):
    pcts = [o["percent"] for o in observations if o["source_id"] == "mtrends2020"]
    assert len(pcts) == 33
    assert len(set(pcts)) == 17
    not_fitting = [p for p in pcts if not _fits(p, 227)]
    assert not_fitting == []


def test_227_is_the_smallest_denominator_fitting_mtrends(observations):
    pcts = sorted(
        {o["percent"] for o in observations if o["source_id"] == "mtrends2020"},
        key=Decimal,
    )
    fitting = [n for n in range(20, 3001) if all(_fits(p, n) for p in pcts)]
    assert fitting[0] == 227
    assert all(n % 227 == 0 for n in fitting)


def test_fit_check_can_fail():
    assert _fits("3.96", 227) and not _fits("3.97", 227) and not _fits("3.96", 226)


def test_t1102_rows_are_exactly_as_published(observations):
    rows = {o["source_id"]: o for o in observations if o["technique_id"] == "T1102"}
    assert set(rows) == {"mtrends2020", "sok2019_windows_malware"}
    mt, sok = rows["mtrends2020"], rows["sok2019_windows_malware"]
    assert (mt["successes"], mt["trials"], mt["percent"], mt["reported_as"]) == (
        "",
        "",
        "3.96",
        "3.96%",
    )
    assert (sok["successes"], sok["trials"], sok["percent"]) == ("47", "", "")
    assert sok["reported_as"] == "47 out of 951 (47/951 = 4.94%)"
    assert mt["note_path"] == sok["note_path"] == "enterpriselang probabilities/webService.md"
    assert mt["technique_name"] == sok["technique_name"] == "Web Service"


def test_excluded_rows_have_a_reason(excluded):
    for e in excluded:
        category, _, explanation = e["reason"].partition(": ")
        assert category in REASON_CATEGORIES, e
        assert len(explanation) > 10, e
        assert e["source_key"], e


def test_duplicates_point_at_a_kept_observation(excluded, observations):
    kept = {(o["technique_id"], o["source_id"], o["reported_as"], o["note_path"]) for o in observations}
    dups = [e for e in excluded if e["reason"].startswith("duplicate")]
    assert dups, "the T1571 SoK figure appears in both folders"
    for e in dups:
        kept_path = re.search(r"same figure as (.+?) \(kept\)", e["reason"]).group(1)
        assert (
            e["technique_id"],
            e["source_key"],
            e["reported_as"],
            kept_path,
        ) in kept, e
        assert kept_path != e["note_path"]


def test_countable_sources_are_not_excluded_without_cause(excluded):
    # a countable source's row may only be excluded as a duplicate or a non-comparable measure
    for e in excluded:
        if e["source_key"] in EVIDENCE_ROWS_PER_SOURCE:
            assert e["reason"].split(":")[0] in {"duplicate", "share of detections"}, e


def test_observations_and_excluded_account_for_every_evidence_row(observations, excluded, notes):
    note_paths = {n["note_path"] for n in notes}
    rows = [(o["note_path"], o["source_id"], o["reported_as"]) for o in observations]
    rows += [(e["note_path"], e["source_key"], e["reported_as"]) for e in excluded]
    from_notes = [r for r in rows if r[0] in note_paths]
    assert len(from_notes) == EVIDENCE_ROWS
    per_source = Counter(r[1] for r in from_notes if r[1] in EVIDENCE_ROWS_PER_SOURCE)
    assert per_source == EVIDENCE_ROWS_PER_SOURCE
    digest = hashlib.sha256("\n".join(sorted("\t".join(r) for r in from_notes)).encode()).hexdigest()
    assert digest == EVIDENCE_DIGEST, "a row was added, dropped or edited relative to the enterpriseLang notes"


def test_notes_table(notes):
    assert len(notes) == EVIDENCE_NOTES
    assert len({(n["note_path"], n["note_caveats"]) for n in notes}) == EVIDENCE_NOTES
    kinds = Counter(n["note_kind"] for n in notes)
    assert kinds == {"technique": 161, "mitigation": 12, "tactic": 3}
    patterns = {
        "technique": r"T\d{4}(\.\d{3})?",
        "mitigation": r"M\d{4}(/M\d{4})?",
        "tactic": r"TA\d{4}",
    }
    for line, n in enumerate(notes, start=2):
        assert re.fullmatch(patterns[n["note_kind"]], n["technique_id"]), n
        assert n["technique_id_as_recorded"].startswith(n["technique_id"]), n
        if n["note_kind"] == "technique":
            check_technique_id(n["technique_id"], "data/enterpriselang_notes.csv", line)
    assert len({n["technique_id"] for n in notes if n["note_kind"] == "technique"}) == 152


def test_every_row_comes_from_a_listed_note(observations, excluded, notes):
    note_paths = {n["note_path"] for n in notes}
    assert {o["note_path"] for o in observations} <= note_paths
    assert {e["note_path"] for e in excluded} <= note_paths


def test_t1102_note_is_kept_for_comparison(notes):
    (web,) = [n for n in notes if n["note_path"] == "enterpriselang probabilities/webService.md"]
    assert web["technique_id"] == "T1102"
    assert web["published_result"] == "Bernoulli(0.0445)"


def test_observed_techniques_migrate_without_collisions(observations):
    # two old IDs of one source must not become the same current technique
    from attackprev.evidence.attack import current_id

    keys = Counter((current_id(o["technique_id"]), o["source_id"]) for o in observations)
    assert [k for k, n in keys.items() if n > 1] == []
    assert all(o["technique_id"] in attack_table() for o in observations)
