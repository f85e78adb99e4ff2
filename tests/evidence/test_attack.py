"""ATT&CK ID validation and migration against the bundled v18.1 table."""

from __future__ import annotations

import pytest

from attackprev.errors import InputError
from attackprev.evidence.attack import (
    ATTACK_VERSION,
    attack_table,
    check_technique_id,
    current_id,
    describe_migration,
)


def test_table_shape():
    table = attack_table()
    assert ATTACK_VERSION == "18.1"
    assert len(table) == 835
    assert sum(t.revoked for t in table.values()) == 132
    assert sum(t.deprecated for t in table.values()) == 12
    assert sum(t.is_subtechnique for t in table.values()) == 479
    # every revoked ID names a replacement that exists in the table
    for t in table.values():
        assert (t.revoked_by is not None) == t.revoked, t
        if t.revoked_by is not None:
            assert t.revoked_by in table, t


def test_live_id_is_kept():
    t = check_technique_id("T1102")
    assert (t.name, t.is_subtechnique, t.revoked, t.deprecated) == (
        "Web Service",
        False,
        False,
        False,
    )
    assert t.url == "https://attack.mitre.org/techniques/T1102"
    assert current_id("T1102") == "T1102"
    assert describe_migration("T1102") is None


def test_subtechnique_display_name():
    t = check_technique_id("T1102.002")
    assert t.name == "Bidirectional Communication"
    assert t.display_name == "Web Service: Bidirectional Communication"
    assert check_technique_id("T1102").display_name == "Web Service"
    assert {i for i in attack_table() if i.startswith("T1102.")} == {
        "T1102.001",
        "T1102.002",
        "T1102.003",
    }


def test_whitespace_is_stripped():
    assert check_technique_id("  T1102\t").id == "T1102"


@pytest.mark.parametrize(
    ("old", "revoked_by", "current"),
    [
        # T1574.002 DLL Side-Loading was itself revoked into T1574.001 "DLL" (ATT&CK v17)
        ("T1073", "T1574.002", "T1574.001"),
        ("T1086", "T1059.001", "T1059.001"),
        ("T1107", "T1070.004", "T1070.004"),
        ("T1100", "T1505.003", "T1505.003"),
    ],
)
def test_revoked_ids_map_to_their_replacement(old, revoked_by, current):
    t = check_technique_id(old)
    assert t.revoked and t.revoked_by == revoked_by
    assert current_id(old) == current
    assert not attack_table()[current].revoked


def test_describe_migration_follows_the_chain():
    assert describe_migration("T1086") == (
        "T1086 PowerShell (revoked) -> T1059.001 Command and Scripting Interpreter: PowerShell"
    )
    assert describe_migration("T1073") == (
        "T1073 DLL Side-Loading (revoked) -> T1574.002 Hijack Execution Flow: DLL Side-Loading (revoked)"
        " -> T1574.001 Hijack Execution Flow: DLL"
    )


def test_deprecated_id_has_no_replacement():
    t = check_technique_id("T1064")
    assert t.deprecated and not t.revoked
    assert current_id("T1064") == "T1064"
    assert describe_migration("T1064") == "T1064 Scripting (deprecated; no replacement in ATT&CK v18.1)"


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("t1102", "did you mean 'T1102'?"),
        ("t1574.002", "did you mean 'T1574.002'?"),
        ("1102", "did you mean 'T1102'?"),
        ("T11022", None),
        ("T1102.1", None),
        ("T1102.0011", None),
        ("Web Service", None),
        ("", None),
        ("T1102 (inferred; not in file)", None),
    ],
)
def test_malformed_ids_are_rejected(bad, hint):
    with pytest.raises(InputError) as exc:
        check_technique_id(bad)
    message = str(exc.value)
    assert message.startswith(f"malformed ATT&CK technique ID {bad!r}")
    if hint is not None:
        assert message.endswith(hint)
    else:
        assert "did you mean" not in message


def test_unknown_id_names_it_and_suggests_neighbours():
    with pytest.raises(InputError) as exc:
        check_technique_id("T1000", path="data/observations.csv", row=7)
    assert str(exc.value) == (
        "data/observations.csv:7: unknown ATT&CK technique ID 'T1000' (not in ATT&CK v18.1); "
        "nearest valid IDs: T1001, T1003, T1005"
    )
    assert exc.value.path == "data/observations.csv" and exc.value.row == 7


def test_unknown_subtechnique_suggests_its_parent_and_siblings():
    with pytest.raises(InputError) as exc:
        check_technique_id("T1102.009")
    message = str(exc.value)
    assert "unknown ATT&CK technique ID 'T1102.009'" in message
    suggested = message.rsplit("nearest valid IDs: ", 1)[1].split(", ")
    assert suggested[0] == "T1102"
    assert all(s == "T1102" or s.startswith("T1102.") for s in suggested)
    for s in suggested:
        check_technique_id(s)


def test_suggestions_are_live_ids():
    # suggestions point at live IDs, never at revoked or deprecated ones
    with pytest.raises(InputError) as exc:
        check_technique_id("T1700")
    suggested = exc.value.message.rsplit("nearest valid IDs: ", 1)[1].split(", ")
    assert len(suggested) == 3
    for s in suggested:
        assert check_technique_id(s).live


def test_current_id_rejects_unknown():
    with pytest.raises(InputError, match="unknown ATT&CK technique ID 'T1999'"):
        current_id("T1999")
