"""The data-quality check of the enterpriseLang notes finds the known slips, and only real ones."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from attackprev.evidence.audit.checks import (
    KINDS,
    REPRODUCTION_KINDS,
    Finding,
    QualityCheck,
    check_notes,
    note_findings,
)

NOTE_COLUMNS = ["technique_id", "technique_name", "note_path", "published_result", "published_arithmetic"]
NOTE_COLUMNS += ["ttc_text", "note_caveats", "note_kind", "technique_id_as_recorded"]


@pytest.fixture(scope="module")
def check() -> QualityCheck:
    return check_notes()


def found(check: QualityCheck, note: str, kind: str) -> list[Finding]:
    """Findings of one kind for the note whose file name is ``note``."""
    return [f for f in check.findings if f.note_path.rsplit("/", 1)[-1] == note and f.kind == kind]


# ------------------------------------------------------------------------------ the known slips
def test_system_time_discovery_averages_52_3_for_53_2(check):
    (f,) = found(check, "systemTimeDiscovery.md", "input")
    assert f.technique_id == "T1124"
    assert f.published == pytest.approx(0.19744)
    assert f.recomputed == pytest.approx((0.44 + 6.492 + 53.2) / 300)
    assert "506/951 = 53.2 %" in f.detail and "52.3" in f.detail


def test_shortcut_modification_uses_0_13_x_0_27(check):
    (f,) = found(check, "shortcutModification.md", "derived input")
    assert f.technique_id == "T1547.009"
    assert f.published == pytest.approx(0.0351)
    assert f.recomputed == pytest.approx(0.153 * 0.24)
    assert "0.13 x 0.27" in f.detail and "13/85 = 15.3 %" in f.detail


def test_securityd_memory_writes_1_of_57_as_1_58(check):
    (f,) = found(check, "securitydMemory.md", "quoted ratio")
    assert f.technique_id == "T1555.002"
    assert (f.published, f.recomputed) == (pytest.approx(0.0158), pytest.approx(1 / 57))
    assert "1/57" in f.detail


def test_one_control_panel_items_version_contradicts_its_result(check):
    rows = {k: v for k, v in check.status.items() if k[0].endswith("controlPanelItems.md")}
    assert sorted(rows.values()) == ["not reproduced", "reproduced"]
    (f,) = found(check, "controlPanelItems.md", "result")
    assert (f.published, f.recomputed) == (pytest.approx(0.83), pytest.approx(0.00006))


def test_process_hollowing_averages_three_while_saying_two(check):
    (f,) = found(check, "processHollowing.md", "count")
    assert (f.published, f.recomputed) == (2, 3)


def test_process_hollowing_result_drops_the_bernoulli(check):
    (f,) = found(check, "processHollowing.md", "no Bernoulli")
    assert f.published is None
    assert f.recomputed == pytest.approx(0.0122)


def test_truncated_normal_in_percent_units(check):
    found_ids = {f.technique_id for f in check.findings if f.kind == "percent units"}
    assert found_ids == {"M1051", "T1032", "T1571"}


def test_duplicate_notes_with_different_results(check):
    names = {f.note_path.rsplit("/", 1)[-1] for f in check.findings if f.kind == "duplicate"}
    assert names == {
        "bypassUserAccountControl.md",
        "codeSigning&codeSigningCertificate.md",
        "compiledHTMLFile.md",
        "nonStandardPort.md",
        "supplyChainCompromise.md",
    }


def test_identical_duplicates_are_not_flagged(check):
    flagged = {f.note_path.rsplit("/", 1)[-1] for f in check.findings if f.kind == "duplicate"}
    assert not flagged & {"externalRemoteService.md", "dynamicDataExchange.md", "controlPanelItems.md"}


def test_web_service_is_not_flagged(check):
    assert [f for f in check.findings if f.note_path.endswith("/webService.md")] == []
    assert check.status[("enterpriselang probabilities/webService.md", "")] == "reproduced"


# ------------------------------------------------------------------------------ counts
def test_counts_add_up(check):
    s = check.stats
    assert s.notes == len(check.status) == 176
    assert s.checked + s.not_checkable == s.notes
    assert s.reproduced + s.not_reproduced == s.checked
    bad_rows = {f.note_path for f in check.findings if f.kind in REPRODUCTION_KINDS}
    assert {k[0] for k, v in check.status.items() if v == "not reproduced"} == bad_rows
    assert s.checked > s.not_checkable > 0


def test_every_finding_is_one_sentence_of_a_known_kind(check):
    for f in check.findings:
        assert f.kind in KINDS, f
        assert f.detail.endswith(".") and "\n" not in f.detail, f
    assert note_findings() == check.findings


# ------------------------------------------------------------------------------ a synthetic slip
def write_rows(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in rows)


def test_synthetic_slips_are_flagged(tmp_path):
    def note(tid: str, path: str, result: str, arithmetic: str) -> dict[str, str]:
        return {
            "technique_id": tid,
            "note_path": path,
            "published_result": result,
            "published_arithmetic": arithmetic,
            "note_kind": "technique",
        }

    notes = [
        note("T1102", "a/good.md", "Bernoulli(0.0445)", "(3.96 + 4.94) / 2 = 4.45%"),
        note("T1003", "a/mean.md", "Bernoulli(0.16)", "(10 + 20) / 2 = 16%"),  # the mean is 15
        note("T1007", "a/input.md", "Bernoulli(0.20015)", "(0.44 + 39.59) / 2 = 20.015%"),  # its figure is 40.59
        note("T1012", "a/ratio.md", "Bernoulli(0.06)", "single source 5 of 100 (6%)"),
    ]
    write_rows(tmp_path / "enterpriselang_notes.csv", NOTE_COLUMNS, notes)
    write_rows(
        tmp_path / "observations.csv",
        ["technique_id", "source_id", "successes", "trials", "percent", "reported_as", "note_path"],
        [
            {
                "technique_id": "T1007",
                "source_id": "mt",
                "percent": "0.44",
                "reported_as": "0.44%",
                "note_path": "a/input.md",
            },
            {
                "technique_id": "T1007",
                "source_id": "sok",
                "successes": "386",
                "reported_as": "386 of 951 (40.59%)",
                "note_path": "a/input.md",
            },
        ],
    )
    write_rows(
        tmp_path / "sources.csv",
        ["source_id", "trials"],
        [{"source_id": "mt", "trials": ""}, {"source_id": "sok", "trials": "951"}],
    )
    q = check_notes(tmp_path)
    kinds = {(f.note_path, f.kind) for f in q.findings}
    assert ("a/mean.md", "step") in kinds
    assert ("a/input.md", "input") in kinds
    assert ("a/ratio.md", "quoted ratio") in kinds
    assert not any(f.note_path == "a/good.md" for f in q.findings)
    (inp,) = [f for f in q.findings if f.kind == "input"]
    assert inp.recomputed == pytest.approx((0.44 + 40.59) / 200)
    assert q.stats.reproduced == 1 and q.stats.not_reproduced == 3
