"""Evidence loading: every kind of bad input, and denominators recovered while loading."""

from __future__ import annotations

import pytest

from attackprev.errors import InputError
from attackprev.evidence.tables import load_evidence
from tests.conftest import write_csv


def test_bundled_t1102_resolves_to_published_counts():
    ev = load_evidence()
    rows = {o.source_id: o for o in ev.for_technique("T1102")}
    assert (rows["mtrends2020"].successes, rows["mtrends2020"].trials) == (9, 227)
    assert rows["mtrends2020"].trials_basis == "inferred"
    assert (rows["sok2019_windows_malware"].successes, rows["sok2019_windows_malware"].trials) == (47, 951)
    assert rows["sok2019_windows_malware"].trials_basis == "published"
    assert ev.recoveries["mtrends2020"].trials == 227


def test_every_bundled_mtrends_row_recovers_to_its_percentage():
    ev = load_evidence()
    rows = [o for o in ev.observations if o.source_id == "mtrends2020"]
    assert len(rows) >= 30
    for o in rows:
        assert o.trials == 227 and round(100 * o.successes / 227, 2) == o.percent


def test_override_beats_recovery():
    ev = load_evidence(trials_override={"mtrends2020": 454})
    row = next(o for o in ev.for_technique("T1102") if o.source_id == "mtrends2020")
    assert (row.successes, row.trials, row.trials_basis) == (18, 454, "assumed")


def test_user_file_with_percentages_recovers_its_own_denominator(tmp_path):
    f = write_csv(
        tmp_path / "obs.csv",
        """
        technique_id,source_id,successes,trials,percent
        T1102,a,,,3.96
        T1105,a,,,0.44
        T1106,a,,,18.94
        T1102,b,47,951,
        """,
    )
    ev = load_evidence(f, None)
    assert ev.recoveries["a"].trials == 227
    assert {(o.source_id, o.successes, o.trials) for o in ev.for_technique("T1102")} == {("a", 9, 227), ("b", 47, 951)}


BAD_INPUTS = {
    "counts above trials": ("T1102,a,12,10\n", ":2: successes 12 exceed trials 10"),
    "negative count": ("T1102,a,-1,10\n", ":2: successes -1 is negative"),
    "non-integer count": ("T1102,a,2.5,10\n", ":2: successes '2.5' is not a whole number"),
    "not a number": ("T1102,a,abc,10\n", ":2: successes 'abc' is not a number"),
    "zero trials": ("T1102,a,0,0\n", ":2: trials is 0"),
    "malformed technique": ("T11O2,a,1,10\n", ":2: malformed technique ID 'T11O2'"),
    "lower-case technique": ("t1102,a,1,10\n", "did you mean T1102?"),
    "unknown technique": ("T1999,a,1,10\n", ":2: unknown ATT&CK technique ID 'T1999'"),
    "duplicate row": ("T1102,a,1,10\nT1102,a,2,10\n", ":3: duplicate row for (T1102, a); first seen on line 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_rows_name_file_and_line(tmp_path, case):
    body, expected = BAD_INPUTS[case]
    f = tmp_path / "obs.csv"
    f.write_text("technique_id,source_id,successes,trials\n" + body, encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_evidence(f, None)
    message = str(err.value)
    assert message.startswith(str(f))
    assert expected in message
    assert "\n" not in message


def test_percent_outside_range(tmp_path):
    f = write_csv(tmp_path / "o.csv", "technique_id,source_id,percent\nT1102,a,120\n")
    with pytest.raises(InputError, match=r"o.csv:2: percent 120 is outside 0-100"):
        load_evidence(f, None)


def test_missing_column(tmp_path):
    f = write_csv(tmp_path / "o.csv", "technique_id,successes,trials\nT1102,1,2\n")
    with pytest.raises(InputError, match=r"o.csv:1: missing column 'source_id'"):
        load_evidence(f, None)


def test_empty_file(tmp_path):
    f = tmp_path / "o.csv"
    f.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        load_evidence(f, None)


def test_header_only(tmp_path):
    f = write_csv(tmp_path / "o.csv", "technique_id,source_id,successes,trials\n")
    with pytest.raises(InputError, match="no data rows"):
        load_evidence(f, None)


def test_not_utf8(tmp_path):
    f = tmp_path / "o.csv"
    f.write_bytes(b"technique_id,source_id,successes,trials\nT1102,caf\xe9,1,2\n")
    with pytest.raises(InputError, match=r"o.csv:2: not UTF-8 text"):
        load_evidence(f, None)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_evidence(tmp_path / "nope.csv", None)


def test_source_not_in_sources_table(tmp_path):
    f = write_csv(tmp_path / "o.csv", "technique_id,source_id,successes,trials\nT1102,nobody,1,2\n")
    with pytest.raises(InputError, match="source_id 'nobody' is not in"):
        load_evidence(f)


def test_technique_without_evidence():
    ev = load_evidence()
    with pytest.raises(InputError, match="no evidence for technique T1001"):
        ev.for_technique("T1001")


def test_revoked_ids_are_accepted_as_published(tmp_path):
    f = write_csv(tmp_path / "o.csv", "technique_id,source_id,successes,trials\nT1073,a,3,10\n")
    assert load_evidence(f, None).observations[0].technique_id == "T1073"


def test_data_hash_changes_with_data(tmp_path):
    a = write_csv(tmp_path / "a.csv", "technique_id,source_id,successes,trials\nT1102,a,3,10\n")
    b = write_csv(tmp_path / "b.csv", "technique_id,source_id,successes,trials\nT1102,a,4,10\n")
    assert load_evidence(a, None).digest != load_evidence(b, None).digest
    assert load_evidence(a, None).digest == load_evidence(a, None).digest
