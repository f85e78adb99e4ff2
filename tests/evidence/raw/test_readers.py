"""The raw readers on small files: counting rules, roll-up inputs, what is left out, and bad rows."""

from __future__ import annotations

import json

import pytest

from attackprev.errors import InputError
from attackprev.evidence.raw.attack_uses import read_attack_uses
from attackprev.evidence.raw.splunk import read_cisa, read_mtrends
from attackprev.evidence.raw.tie import read_tie
from tests.conftest import write_csv

CISA_HEADER = "TID,Technique,Type,Year,Reporter,Target,Source\n"
MACRO_HEADER = "Rank,Tactic,TID,Technique,Percentage,Reporter,Year,Type,extracted_Source\n"


def test_attack_uses_counts_each_user_once_and_resolves_revoked_ids(tmp_path):
    path = write_csv(
        tmp_path / "uses.csv",
        """\
        user_type,user_id,user_name,technique_id,relationship_created
        group,G0001,A,T1102.001,2020-01-01
        group,G0001,A,T1102.002,2020-01-01
        group,G0002,B,T1102,2020-01-01
        software,S0001,C,T1086,2020-01-01
        campaign,C0001,D,T1043,2020-01-01
        """,
    )
    counted, left = read_attack_uses({}, path)
    groups, software, campaigns = counted
    assert groups.members == {"T1102.001": {"G0001"}, "T1102.002": {"G0001"}, "T1102": {"G0002"}}
    assert software.members == {"T1059.001": {"S0001"}} and software.raw_ids == {"T1059.001": {"T1086"}}
    assert campaigns.members == {} and "deprecated" in left[0].reason and left[0].raw_rows == "6"
    assert (groups.in_file, software.in_file) == (2, 1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("team,G0001,A,T1102,2020-01-01", "user_type 'team'"),
        ("group,S0001,A,T1102,2020-01-01", "not a group ID"),
        ("group,G0001,A,T9999,2020-01-01", "unknown ATT&CK technique ID 'T9999'"),
        ("group,G0001,A,t1102,2020-01-01", "malformed"),
    ],
)
def test_attack_uses_bad_rows(tmp_path, row, message):
    path = write_csv(tmp_path / "uses.csv", "user_type,user_id,user_name,technique_id,relationship_created\n" + row)
    with pytest.raises(InputError, match=message) as err:
        read_attack_uses({}, path)
    assert str(err.value).startswith(f"{path}:2:")


def test_attack_uses_repeated_relationship(tmp_path):
    header = "user_type,user_id,user_name,technique_id,relationship_created\n"
    path = write_csv(tmp_path / "u.csv", header + "group,G0001,A,T1102,x\ngroup,G0001,A,T1102,y\n")
    with pytest.raises(InputError, match="repeats the relationship of line 2"):
        read_attack_uses({}, path)


def _tie(tmp_path, reports):
    path = tmp_path / "tie.json"
    path.write_text(json.dumps({"reports": reports}))
    return path


def test_tie_leaves_out_attack_campaign_records_and_deprecated_ids(tmp_path):
    reports = [
        {"id": 1, "origin_of_data": "OpenCTI", "mitre_techniques": {"T1102": 3, "T1102.002": 1}},
        {"id": 2, "origin_of_data": "TRAM", "mitre_techniques": {"T1043": 1}},
        {"id": 3, "origin_of_data": "MITRE ATT&CK Campaigns", "mitre_techniques": {"T1102": 1}},
    ]
    counted, left = read_tie({}, _tie(tmp_path, reports))
    assert counted.trials == 2  # report 3 is left out; report 2 still counts in n
    assert counted.members == {"T1102": {"report 1"}, "T1102.002": {"report 1"}}
    reasons = " ".join(x.reason for x in left)
    assert "deprecated" in reasons and "reports of origin 'MITRE ATT&CK Campaigns'" in reasons


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ([{"id": 1, "origin_of_data": "x"}], "lacks"),
        ([{"id": 1, "origin_of_data": "x", "mitre_techniques": {"T1102": 0}}], "0 mentions"),
        ([{"id": 1, "origin_of_data": "x", "mitre_techniques": {}}] * 2, "repeats report id 1"),
        ([], "non-empty 'reports'"),
    ],
)
def test_tie_bad_input(tmp_path, reports, message):
    with pytest.raises(InputError, match=message):
        read_tie({}, _tie(tmp_path, reports))


def test_cisa_counts_advisories_and_keeps_ics_only_ones_out_of_n(tmp_path):
    path = write_csv(
        tmp_path / "cisa.csv",
        CISA_HEADER
        + "T1102,Web Service,Public,2020,CISA,Enterprise,https://x/aa20-001a\n"
        + "T1102,Web Service,Public,2020,CISA,Enterprise,https://x/aa20-001a\n"  # repeated row: counts once
        + "T1102.001,Web Service: Dead Drop Resolver,Public,2020,CISA,Enterprise,https://x/aa20-002a\n"
        + "T0814,Denial of Service,Public,2020,CISA,ICS,https://x/aa20-003a\n"
        + "T1190,Ingress Tool Transfer,Public,2021,CISA,Enterprise,https://x/aa21-001a\n",  # name and ID disagree
    )
    counted, left = read_cisa({}, path)
    by_year = {c.source_id: c for c in counted}
    assert by_year["cisa_2020"].trials == 2  # aa20-003a maps only ICS techniques
    assert by_year["cisa_2020"].members == {"T1102": {"aa20-001a"}, "T1102.001": {"aa20-002a"}}
    assert by_year["cisa_2021"].trials == 1 and by_year["cisa_2021"].members == {}
    reasons = " | ".join(x.reason for x in left)
    assert "maps no Enterprise technique" in reasons and "'Ingress Tool Transfer' (T1105)" in reasons


def test_cisa_bad_rows(tmp_path):
    for row, message in [
        ("T1102,W,Public,2019,CISA,Enterprise,https://x/aa19-001a", "Year '2019'"),
        ("T1102,W,Public,2020,FBI,Enterprise,https://x/aa20-001a", "Reporter 'FBI'"),
        ("T1102,W,Public,2020,CISA,Mobile,https://x/aa20-001a", "Target 'Mobile'"),
        ("T1102,W,Public,2020,CISA,Enterprise,https://x/report", "not a CISA advisory"),
    ]:
        path = write_csv(tmp_path / "c.csv", CISA_HEADER + row + "\n")
        with pytest.raises(InputError, match=message):
            read_cisa({}, path)


def test_mtrends_reads_only_mtrends_rows_and_keeps_percent_text(tmp_path):
    path = write_csv(
        tmp_path / "macro.csv",
        MACRO_HEADER
        + '1,C2,T1102,Web Service,"1",M-Trends,2021,Private,u\n'
        + '2,C2,T1102,Web Service,"5.5",Red Canary,2021,Private,u\n'
        + '3,C2,T1102,Web Service,"5.5",CTID Sightings,2022,Private,u\n',
    )
    percents, left = read_mtrends({}, path)
    assert [(p.source_id, p.technique_id, p.percent_text, p.line) for p in percents] == [
        ("mtrends2021", "T1102", "1", 2)
    ]
    assert {x.source_id for x in left} == {"Red Canary 2021", "CTID Sightings 2022"}


def test_mtrends_bad_rows(tmp_path):
    for row, message in [
        ('1,C2,T1102,Web Service,"x",M-Trends,2021,Private,u', "not a number"),
        ('1,C2,T1102,Web Service,"0",M-Trends,2021,Private,u', "outside"),
        ('1,C2,T1102,Web Service,"1",Gartner,2021,Private,u', "unknown Reporter"),
    ]:
        path = write_csv(tmp_path / "m.csv", MACRO_HEADER + row + "\n")
        with pytest.raises(InputError, match=message):
            read_mtrends({}, path)
