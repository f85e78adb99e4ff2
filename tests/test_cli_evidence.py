"""`attackprev evidence build` and `attackprev list` end to end, through the command in a subprocess.

Runs that corrupt a table work on a copy of data/ (ATTACKPREV_DATA_DIR) and write the report
into tmp_path, so the repository is never written to.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

ATTACKPREV = [sys.executable, "-m", "attackprev.cli"]
CISA_RAW = "raw/splunk/splunk_cisa_alerts_2020_2024.csv"


def run(*args: str, data: Path | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    env.pop("ATTACKPREV_DATA_DIR", None)
    if data is not None:
        env["ATTACKPREV_DATA_DIR"] = str(data)
    return subprocess.run([*ATTACKPREV, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a bad-input exit, without its prefix."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("attackprev: error: ")
    return lines[0].removeprefix("attackprev: error: ")


@pytest.fixture
def data(tmp_path) -> Path:
    """A copy of the repository's data/ folder."""
    return Path(shutil.copytree(ROOT / "data", tmp_path / "data"))


def evidence_files(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data / "evidence").iterdir())}


def edit_line(path: Path, prefix: str, old: str, new: str | None) -> int:
    """Replace ``old`` by ``new`` in the one line starting with ``prefix`` (``new=None`` deletes the line).

    Returns the line's 1-based number (the header is line 1).
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert len(found) == 1, (path, prefix, found)
    i = found[0]
    assert old in lines[i], (path, lines[i])
    if new is None:
        del lines[i]
    else:
        lines[i] = lines[i].replace(old, new, 1)
    path.write_text("\n".join(lines), encoding="utf-8")
    return i + 1


# --------------------------------------------------------------------------------------
# evidence build
# --------------------------------------------------------------------------------------
def test_check_on_the_repository_passes():
    proc = run("evidence", "build", "--check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "wrote" not in proc.stdout


def _coverage_sometimes(data: Path) -> str:
    line = edit_line(data / "sources.csv", "cisa_2022,", ",complete,", ",sometimes,")
    return f"{data / 'sources.csv'}:{line}: coverage 'sometimes' must be one of complete, partial"


def _decision_maybe(data: Path) -> str:
    line = edit_line(data / "id_decisions.csv", f"{CISA_RAW},T1660,", ",exclude,", ",maybe,")
    return f"{data / 'id_decisions.csv'}:{line}: decision 'maybe' must be one of correct, exclude"


def _decision_missing(data: Path) -> str:
    edit_line(data / "id_decisions.csv", f"{CISA_RAW},T1566:001,", "T1566:001", None)
    raw_lines = (data / CISA_RAW).read_text(encoding="utf-8").split("\n")
    line = next(i for i, text in enumerate(raw_lines, start=1) if text.startswith("T1566:001,"))
    return f"{data / CISA_RAW}:{line}: malformed ATT&CK technique ID 'T1566:001'"


def _counted_n_mismatch(data: Path) -> str:
    line = edit_line(data / "sources.csv", "cisa_2021,", ",13,counted,", ",12,counted,")
    return f"{data / 'sources.csv'}:{line}: cisa_2021: trials 12 but the raw rows give 13"


CORRUPT: dict[str, Callable[[Path], str]] = {
    "sources.csv coverage 'sometimes'": _coverage_sometimes,
    "id_decisions.csv decision 'maybe'": _decision_maybe,
    "id_decisions.csv lacks T1566:001": _decision_missing,
    "sources.csv cisa_2021 trials 12": _counted_n_mismatch,
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_build_with_a_bad_table_exits_2_and_writes_nothing(tmp_path, data, case):
    expected = CORRUPT[case](data)
    before = evidence_files(data)
    report = tmp_path / "out" / "evidence.md"
    proc = run("evidence", "build", "--report", str(report), data=data)
    message = one_error_line(proc)
    assert message.startswith(expected), message
    if case == "id_decisions.csv lacks T1566:001":
        assert "add a decision for it to id_decisions.csv" in message
    assert "wrote" not in proc.stdout
    assert evidence_files(data) == before  # byte-identical, and no temporary file left behind
    assert not report.exists() and not report.parent.exists()


def test_check_names_the_stale_table_and_a_build_repairs_it(tmp_path, data):
    committed = evidence_files(data)
    report = tmp_path / "out" / "evidence.md"
    report.parent.mkdir()
    shutil.copyfile(ROOT / "reports" / "evidence.md", report)
    edit_line(data / "evidence" / "counts.csv", "T1102,attack_groups_v18,", ",33,172,", ",34,172,")
    edited = evidence_files(data)

    proc = run("evidence", "build", "--check", "--report", str(report), data=data)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert str(data / "evidence" / "counts.csv") in proc.stderr
    for fresh in ("members.csv", "excluded_rows.csv", "evidence.md"):
        assert fresh not in proc.stderr
    assert evidence_files(data) == edited  # --check writes nothing

    report.unlink()
    proc = run("evidence", "build", "--report", str(report), data=data)
    assert proc.returncode == 0, proc.stderr
    assert evidence_files(data) == committed
    assert f"wrote {data / 'evidence' / 'counts.csv'}" in proc.stdout and f"wrote {report}" in proc.stdout
    # the report does not depend on where data/ is: the copy's build gives the committed report
    assert report.read_bytes() == (ROOT / "reports" / "evidence.md").read_bytes()


def test_check_names_a_stale_report(tmp_path, data):
    report = tmp_path / "evidence.md"
    report.write_text((ROOT / "reports" / "evidence.md").read_text(encoding="utf-8") + "an edit\n", encoding="utf-8")
    proc = run("evidence", "build", "--check", "--report", str(report), data=data)
    assert proc.returncode == 1, proc.stderr
    assert str(report) in proc.stderr and "counts.csv" not in proc.stderr
    assert report.read_text(encoding="utf-8").endswith("an edit\n")


# --------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------
T1102_SOURCES = {
    "attack_campaigns_v18": "7 / 52",
    "attack_groups_v18": "33 / 172",
    "attack_software_v18": "77 / 784",
    "cisa_2020": "2 / 16",
    "cisa_2021": "0 / 13",
    "cisa_2022": "1 / 16",
    "cisa_2023": "0 / 28",
    "cisa_2024": "1 / 11",
    "ctid_tie_2024": "182 / 2650",
    "mtrends2020": "9 / 227",
    "mtrends2021": "4 / 409",
    "mtrends2022": "7 / 650",
    "sok2019_windows_malware": "47 / 951",
}


def _source_lines(stdout: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^  (\S+) +(\d+ / \d+)", stdout, re.MULTILINE)}


def test_list_one_technique_shows_a_line_per_source():
    proc = run("list", "T1102")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "T1102 Web Service: 11 of 13 sources with k > 0"
    assert _source_lines(proc.stdout) == T1102_SOURCES
    assert "members:" not in proc.stdout


def test_list_members_names_the_groups():
    proc = run("list", "T1102", "--members")
    assert proc.returncode == 0, proc.stderr
    assert _source_lines(proc.stdout) == T1102_SOURCES
    members = [line.split("members: ", 1)[1] for line in proc.stdout.splitlines() if "members: " in line]
    groups = [m for m in members if m.startswith("G")]
    assert len(groups) == 1
    assert len(groups[0].split()) == 33 and all(re.fullmatch(r"G\d{4}", g) for g in groups[0].split())


def test_list_unknown_technique_exits_2():
    message = one_error_line(run("list", "T9999"))
    assert "unknown ATT&CK technique ID 'T9999'" in message


def test_list_everything_has_header_and_sources_section():
    proc = run("list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.match(r"\d+ techniques with a nonzero count, \d+ sources in \d+ families \(", lines[0]), lines[0]
    assert lines.count("sources:") == 1
    listed = [line.split()[0] for line in lines[lines.index("sources:") + 1 :]]
    with (ROOT / "data" / "sources.csv").open(newline="", encoding="utf-8") as f:
        assert sorted(listed) == sorted(r["source_id"] for r in csv.DictReader(f))
    assert any(line.startswith("  T1102 ") and "attack_groups_v18 33/172" in line for line in lines)


def test_list_refuses_a_zero_from_a_partial_source(data):
    counts = data / "evidence" / "counts.csv"
    line = edit_line(counts, "T1102,mtrends2021,", "T1102,mtrends2021,4,", "T1102,mtrends2021,0,")
    message = one_error_line(run("list", "T1102", data=data))
    assert message.startswith(f"{counts}:{line}: mtrends2021 is a partial source"), message
