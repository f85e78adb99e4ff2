"""Resolving raw IDs: decisions, revocations (moves and merges), deprecations, name checks."""

from __future__ import annotations

import pytest

from attackprev.config import DATA_DIR
from attackprev.errors import InputError
from attackprev.evidence.ids import is_move, load_decisions, name_conflict, names_of, resolve
from tests.conftest import write_csv

CISA = DATA_DIR / "raw" / "splunk" / "splunk_cisa_alerts_2020_2024.csv"


@pytest.fixture(scope="module")
def decisions():
    return load_decisions()


def test_live_id_is_kept(decisions):
    r = resolve("T1102.002", decisions, CISA, 5)
    assert (r.technique_id, r.spelled, r.moved, r.note) == ("T1102.002", "T1102.002", True, "")


def test_revoked_move_follows_the_chain(decisions):
    r = resolve("T1086", decisions, "other.csv", 3)  # PowerShell -> T1059.001 PowerShell
    assert r.technique_id == "T1059.001" and r.moved and "revoked" in r.note


def test_revoked_merge_is_marked(decisions):
    r = resolve("T1073", decisions, "other.csv", 3)  # DLL Side-Loading -> T1574.002 -> T1574.001 DLL
    assert r.technique_id == "T1574.001" and not r.moved
    assert is_move("T1076") and not is_move("T1053.001")  # RDP moved; At (Linux) merged into At


def test_deprecated_is_left_out(decisions):
    r = resolve("T1043", decisions, "other.csv", 3)
    assert r.technique_id is None and "deprecated" in r.note


def test_decisions_correct_and_exclude(decisions):
    assert resolve("T1566:001", decisions, CISA, 9).technique_id == "T1566.001"
    assert resolve("T1047.001", decisions, CISA, 9).technique_id == "T1547.001"
    left = resolve("T1660", decisions, CISA, 9)
    assert left.technique_id is None and "Mobile" in left.note
    # a decision applies only to the file it names
    with pytest.raises(InputError, match="add a decision"):
        resolve("T1566:001", decisions, "elsewhere.csv", 9)


def test_unknown_id_stops_with_file_and_row(decisions):
    with pytest.raises(InputError) as err:
        resolve("T9999", decisions, CISA, 42)
    assert str(err.value).startswith(f"{CISA}:42: unknown ATT&CK technique ID 'T9999'")


def test_bad_decisions_table(tmp_path):
    header = "raw_file,raw_id,raw_name,decision,technique_id,reason\n"
    cases = {
        "x.csv,T1,n,maybe,,r\n": "decision 'maybe'",
        "x.csv,T1,n,correct,T1086,r\n": "not a live",
        "x.csv,T1,n,exclude,T1102,r\n": "takes no technique_id",
        "x.csv,T1,n,exclude,,\n": "needs a reason",
        "x.csv,T1,n,exclude,,r\nx.csv,T1,n,exclude,,r\n": "duplicate",
    }
    for body, message in cases.items():
        path = write_csv(tmp_path / "d.csv", header + body)
        with pytest.raises(InputError, match=message) as err:
            load_decisions(path)
        assert f"{path}:" in str(err.value)


def test_name_conflicts():
    assert name_conflict("T1190", "Ingress Tool Transfer") is not None  # names T1105
    assert name_conflict("T1190", "Exploit Public-Facing Application") is None
    assert name_conflict("T1176", "Browser Extensions") is None  # a sub-technique of the same parent
    assert name_conflict("T1583.003", "Acquire Infrastructure: Botnet") is None  # parent agrees
    assert name_conflict("T1574.001", "DLL Search Order Hijacking") is None  # a revoked name of the same technique
    assert name_conflict("T1102", "Some Name ATT&CK Never Had") is None  # not judged
    assert names_of("Web Service") == {"T1102"}
