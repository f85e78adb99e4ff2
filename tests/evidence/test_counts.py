"""load_counts: reading data/evidence/counts.csv back, its checks and the --trials override."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from attackprev.errors import InputError
from attackprev.evidence import counts as counts_module
from attackprev.evidence.build import COUNTS_COLUMNS as COUNT_COLUMNS
from attackprev.evidence.counts import load_counts
from attackprev.evidence.ids import live_techniques
from attackprev.evidence.tables import load_sources
from tests.conftest import write_csv
from tests.evidence.test_data_tables import SOURCE_COLUMNS

# source_id: (family, coverage, trials, trials_basis, percent_decimals)
SOURCES = {
    "part_pub": ("fam_a", "partial", "100", "published", ""),
    "part_assumed": ("fam_b", "partial", "650", "assumed", "1"),
    "part_inferred": ("fam_b", "partial", "", "inferred", "2"),
    "comp_counted": ("fam_c", "complete", "16", "counted", ""),
}

# the rows of the small counts table (line 2 onwards)
ROWS = [
    "T1102,part_pub,9,100,published,,,,",
    "T1102,part_assumed,7,650,assumed,,1.1,,raw/x.csv:7",
    "T1105,part_assumed,13,650,assumed,,2,,raw/x.csv:8",
    "T1059.001,part_pub,3,100,published,,,T1086,notes.csv:4",
]


def write_sources(path: Path, sources: dict[str, tuple] = SOURCES) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=SOURCE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for sid, (family, coverage, trials, basis, decimals) in sources.items():
            writer.writerow(
                {
                    "source_id": sid,
                    "family": family,
                    "unit": "trial",
                    "coverage": coverage,
                    "citation": f"citation of {sid}",
                    "year": "2024",
                    "trials": trials,
                    "trials_basis": basis,
                    "percent_decimals": decimals,
                }
            )
    return path


def write_counts(path: Path, rows: list[str]) -> Path:
    path.write_text(",".join(COUNT_COLUMNS) + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    """(counts.csv, sources.csv) of the small table; rewrite counts.csv with write_counts to corrupt it."""
    return write_counts(tmp_path / "counts.csv", ROWS), write_sources(tmp_path / "sources.csv")


def load_error(counts: Path, sources: Path, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        load_counts(counts, sources, **kwargs)
    return str(err.value)


# --------------------------------------------------------------------------------------
# a good table
# --------------------------------------------------------------------------------------
def test_small_table_loads_as_written(files):
    counts, sources = files
    table = load_counts(counts, sources)
    assert table.path == str(counts)
    got = {
        (c.technique_id, c.source_id): (c.successes, c.trials, c.trials_basis, c.family, c.line) for c in table.counts
    }
    assert got == {
        ("T1102", "part_pub"): (9, 100, "published", "fam_a", 2),
        ("T1102", "part_assumed"): (7, 650, "assumed", "fam_b", 3),
        ("T1105", "part_assumed"): (13, 650, "assumed", "fam_b", 4),
        ("T1059.001", "part_pub"): (3, 100, "published", "fam_a", 5),
    }
    row = table.for_technique("T1059.001")[0]
    assert (row.raw_ids, row.raw_rows, row.successes_exact, row.percent, row.rate) == (
        "T1086",
        "notes.csv:4",
        None,
        "",
        0.03,
    )
    assert table.techniques() == ["T1059.001", "T1102", "T1105"]
    assert table.used_sources() == ["part_assumed", "part_pub"]
    assert table.families() == ["fam_a", "fam_b"]
    assert table.overrides == {}
    assert len(table.digest) == 64
    with pytest.raises(InputError, match="no counts for technique T1001"):
        table.for_technique("T1001")


# --------------------------------------------------------------------------------------
# bad rows: one InputError naming file, row and problem
# --------------------------------------------------------------------------------------
BAD_ROWS = {
    "count above n": (
        ["T1102,part_pub,9,100,published,,,,", "T1105,part_pub,101,100,published,,,,"],
        "counts.csv:3: successes 101 exceed trials 100",
    ),
    "unknown source": (
        ["T1102,part_pub,9,100,published,,,,", "T1102,nosuch,1,10,published,,,,"],
        "counts.csv:3: source 'nosuch' is not in sources.csv",
    ),
    "partial source given a zero": (
        ["T1102,part_pub,9,100,published,,,,", "T1105,part_pub,0,100,published,,,,"],
        "counts.csv:3: part_pub is a partial source (absent means unknown), so it cannot give a zero",
    ),
    "lower-case ID": (
        ["T1105,part_pub,1,100,published,,,,", "t1102,part_pub,9,100,published,,,,"],
        "counts.csv:3: malformed technique ID 't1102'; expected T1234 or T1234.567 (did you mean T1102?)",
    ),
    "short sub-technique number": (
        ["T1102.1,part_pub,9,100,published,,,,"],
        "counts.csv:2: malformed technique ID 'T1102.1'",
    ),
    "revoked ID": (
        ["T1102,part_pub,9,100,published,,,,", "T1086,part_pub,3,100,published,,,,"],
        "counts.csv:3: T1086 is not a live ATT&CK v18.1 ID (revoked or deprecated)",
    ),
    "deprecated ID": (
        ["T1064,part_pub,3,100,published,,,,"],
        "counts.csv:2: T1064 is not a live ATT&CK v18.1 ID (revoked or deprecated)",
    ),
    "unknown ID": (
        ["T1999,part_pub,3,100,published,,,,"],
        "counts.csv:2: unknown ATT&CK technique ID 'T1999'",
    ),
    "duplicate (technique, source)": (
        [
            "T1102,part_pub,9,100,published,,,,",
            "T1105,part_pub,1,100,published,,,,",
            "T1102,part_pub,8,100,published,,,,",
        ],
        "counts.csv:4: duplicate row for (T1102, part_pub); first on line 2",
    ),
    "zero trials": (["T1102,part_pub,0,0,published,,,,"], "counts.csv:2: trials is 0"),
    "count not a number": (["T1102,part_pub,nine,100,published,,,,"], "counts.csv:2: successes 'nine' is not a number"),
    "percent out of range": (["T1102,part_assumed,7,650,assumed,,110,,"], "counts.csv:2: percent 110 is outside 0-100"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_names_file_row_and_problem(files, case):
    counts, sources = files
    rows, expected = BAD_ROWS[case]
    write_counts(counts, rows)
    message = load_error(counts, sources)
    assert message.startswith(str(counts.parent / "counts.csv") + ":"), message
    assert expected in message
    assert "\n" not in message


def test_blank_family_is_refused(tmp_path):
    """A sources table with a family column must fill it; one without the column (a user's old file) gets the ID."""
    sources = write_sources(tmp_path / "sources.csv", SOURCES | {"part_pub": ("", "partial", "100", "published", "")})
    with pytest.raises(InputError, match="family is blank") as err:
        load_sources(sources)
    assert str(err.value).startswith(f"{sources}:")
    old_style = write_csv(
        tmp_path / "old.csv", "source_id,citation,trials,trials_basis\nsrc,Some report,100,published\n"
    )
    assert load_sources(old_style)["src"].family == "src"


def test_source_without_family_is_refused_if_one_gets_through(files, monkeypatch):
    """The guard itself, reached only with a Source whose family is blank (load_sources never gives one)."""
    counts, sources = files

    def blank_family(path):
        table = load_sources(path)
        return table | {"part_assumed": dataclasses.replace(table["part_assumed"], family="")}

    monkeypatch.setattr(counts_module, "load_sources", blank_family)
    assert "counts.csv:3: source 'part_assumed' has no family in sources.csv" in load_error(counts, sources)


# --------------------------------------------------------------------------------------
# complete sources: a row for every live technique
# --------------------------------------------------------------------------------------
def complete_rows() -> list[str]:
    return [f"{tid},comp_counted,{int(tid == 'T1102')},16,counted,0,,," for tid in live_techniques()]


def test_complete_source_with_every_live_technique_loads_zeros_included(files):
    counts, sources = files
    rows = complete_rows()
    write_counts(counts, [*ROWS, *rows])
    table = load_counts(counts, sources)
    mine = [c for c in table.counts if c.source_id == "comp_counted"]
    assert len(mine) == len(live_techniques()) > 600
    assert sum(c.successes for c in mine) == 1
    assert [c.successes_exact for c in mine[:2]] == [0, 0]
    assert table.techniques() == ["T1059.001", "T1102", "T1105"]  # zeros are not techniques with a count
    assert table.families() == ["fam_a", "fam_b", "fam_c"]


def test_complete_source_missing_one_live_technique_is_refused(files):
    counts, sources = files
    rows = complete_rows()
    dropped = rows.pop(100).split(",")[0]
    write_counts(counts, [*ROWS, *rows])
    message = load_error(counts, sources)
    # no row to point at: the error names the file only
    assert message == f"{counts}: comp_counted is complete but has no row for 1 live techniques (e.g. {dropped})"


# --------------------------------------------------------------------------------------
# trials_override
# --------------------------------------------------------------------------------------
def test_override_of_assumed_n_recomputes_counts_from_percentages(files):
    counts, sources = files
    table = load_counts(counts, sources, trials_override={"part_assumed": 1000})
    got = {(c.technique_id, c.source_id): (c.successes, c.trials, c.trials_basis) for c in table.counts}
    assert got == {
        ("T1102", "part_pub"): (9, 100, "published"),  # untouched
        ("T1102", "part_assumed"): (11, 1000, "assumed"),  # 1.1 % of 1000
        ("T1105", "part_assumed"): (20, 1000, "assumed"),  # 2 % of 1000
        ("T1059.001", "part_pub"): (3, 100, "published"),
    }
    assert table.overrides == {"part_assumed": 1000}
    small = load_counts(counts, sources, trials_override={"part_assumed": 300})
    assert {c.technique_id: c.successes for c in small.counts if c.source_id == "part_assumed"} == {
        "T1102": 3,  # 1.1 % of 300 = 3.3
        "T1105": 6,
    }


def test_override_of_inferred_n_is_allowed(files):
    counts, sources = files
    write_counts(counts, [*ROWS, "T1102,part_inferred,9,227,inferred,,3.96,,"])
    table = load_counts(counts, sources, trials_override={"part_inferred": 500})
    row = next(c for c in table.counts if c.source_id == "part_inferred")
    assert (row.successes, row.trials, row.trials_basis) == (20, 500, "assumed")  # 3.96 % of 500 = 19.8


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"part_pub": 500}, "--trials part_pub=500: part_pub's n is published, not an assumption to override"),
        ({"comp_counted": 20}, "--trials comp_counted=20: comp_counted's n is counted, not an assumption to override"),
        ({"nosuch": 500}, "--trials nosuch=500: unknown source; sources: comp_counted, part_assumed"),
        ({"part_assumed": 0}, "--trials part_assumed=0: n must be at least 1"),
    ],
)
def test_refused_overrides(files, override, expected):
    counts, sources = files
    assert expected in load_error(counts, sources, trials_override=override)


def test_override_of_a_row_without_percentage_is_refused(files):
    counts, sources = files
    write_counts(counts, [*ROWS, "T1110,part_assumed,5,650,assumed,,,,"])
    message = load_error(counts, sources, trials_override={"part_assumed": 1000})
    assert "counts.csv:6: --trials part_assumed: this row gives a count, not a percentage" in message


def test_override_never_turns_a_published_share_into_zero(files):
    """1.1 % of 40 is 0.44: the count is 1 (a positive published share is at least one),"""
    counts, sources = files
    table = load_counts(counts, sources, trials_override={"part_assumed": 40})
    assert {c.successes for c in table.counts if c.source_id == "part_assumed" and c.percent == "1.1"} == {1}


def test_digest_follows_files_and_overrides(files):
    counts, sources = files
    base = load_counts(counts, sources).digest
    assert load_counts(counts, sources).digest == base
    one = load_counts(counts, sources, trials_override={"part_assumed": 1000}).digest
    two = load_counts(counts, sources, trials_override={"part_assumed": 1001}).digest
    assert len({base, one, two}) == 3
    assert load_counts(counts, sources, trials_override={"part_assumed": 1000}).digest == one
    write_counts(counts, [*ROWS[:-1], "T1059.001,part_pub,4,100,published,,,T1086,notes.csv:4"])
    assert load_counts(counts, sources).digest not in {base, one, two}


# --------------------------------------------------------------------------------------
# the committed table
# --------------------------------------------------------------------------------------
def test_committed_table_loads_with_t1102_counts():
    table = load_counts()
    assert table.overrides == {}
    t1102 = {c.source_id: (c.successes, c.trials) for c in table.for_technique("T1102")}
    assert t1102 == {
        "attack_groups_v18": (33, 172),
        "attack_software_v18": (77, 784),
        "attack_campaigns_v18": (7, 52),
        "ctid_tie_2024": (182, 2650),
        "cisa_2020": (2, 16),
        "cisa_2021": (0, 13),
        "cisa_2022": (1, 16),
        "cisa_2023": (0, 28),
        "cisa_2024": (1, 11),
        "mtrends2020": (9, 227),
        "mtrends2021": (4, 409),
        "mtrends2022": (7, 650),
        "sok2019_windows_malware": (47, 951),
    }
    complete = {s for s in table.used_sources() if table.sources[s].coverage == "complete"}
    assert complete == {
        "attack_groups_v18",
        "attack_software_v18",
        "attack_campaigns_v18",
        "ctid_tie_2024",
        *(f"cisa_{y}" for y in range(2020, 2025)),
    }
    n_live = len(live_techniques())
    for sid in complete:
        assert sum(c.source_id == sid for c in table.counts) == n_live
