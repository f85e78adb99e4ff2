"""Checks of data/enterpriselang_attack_steps.csv: enterpriseLang's attack steps mapped to ATT&CK v18.1."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from attackprev.evidence.attack import attack_table, current_id

DATA = Path(__file__).resolve().parents[2] / "data"
HEADER = [
    "asset",
    "attack_step",
    "step_type",
    "hidden",
    "ttc",
    "technique_id",
    "technique_name",
    "mapping_basis",
    "wrapper_of",
]
#: ``none: wrapper of X``, ``... X (which is not mapped)`` or ``... X (Asset.X)`` for X in another asset
WRAPPER = re.compile(r"^none: wrapper of (\w+)(?: \((?:(which is not mapped)|(\w+)\.(\w+))\))?$")


def read(name: str) -> tuple[list[str], list[tuple[int, dict]]]:
    with (DATA / name).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [(reader.line_num, row) for row in reader]
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def steps() -> list[tuple[int, dict]]:
    return read("enterpriselang_attack_steps.csv")[1]


@pytest.fixture(scope="module")
def by_step(steps) -> dict[tuple[str, str], dict]:
    return {(r["asset"], r["attack_step"]): r for _, r in steps}


def test_header():
    assert read("enterpriselang_attack_steps.csv")[0] == HEADER


def test_one_row_per_asset_and_step(steps):
    repeated = [key for key, n in Counter((r["asset"], r["attack_step"]) for _, r in steps).items() if n > 1]
    assert repeated == []
    assert len(steps) == 596  # the count data/enterpriselang_attack_steps.md gives


def test_step_type_and_hidden(steps):
    assert [line for line, r in steps if r["step_type"] not in {"|", "&"}] == []
    assert [line for line, r in steps if r["hidden"] not in {"True", "False"}] == []
    assert [line for line, r in steps if not (r["asset"] and r["attack_step"])] == []


def test_technique_ids_are_live_with_their_v18_names(steps):
    table = attack_table()
    bad = []
    for line, r in steps:
        tid = r["technique_id"]
        if not tid:
            if r["technique_name"]:
                bad.append((line, "a name without an ID"))
            continue
        technique = table.get(tid)
        if technique is None or not technique.live:
            bad.append((line, f"{tid} is not a live ATT&CK v18.1 ID"))
        elif r["technique_name"] != technique.display_name:
            bad.append((line, f"{r['technique_name']!r} is not {tid}'s name {technique.display_name!r}"))
    assert bad == []


def test_mapping_basis_says_how_or_why_not(steps):
    bad = []
    for line, r in steps:
        basis = r["mapping_basis"]
        if r["technique_id"]:
            if not re.match(r"(note|name|manual)\b", basis):
                bad.append((line, basis))
        elif not basis.startswith("none:") or not basis.removeprefix("none:").strip():
            bad.append((line, basis))
    assert bad == []
    assert sum(bool(r["technique_id"]) for _, r in steps) == 385  # the count data/enterpriselang_attack_steps.md gives


def test_wrapper_of_is_the_wrapped_steps_technique(steps, by_step):
    """`attemptX` gives X's technique: the asset's own X, or the other asset's X that the basis names."""
    bad = []
    for line, r in steps:
        m = WRAPPER.match(r["mapping_basis"])
        if m is None:
            if r["wrapper_of"] or r["mapping_basis"].startswith("none: wrapper"):
                bad.append((line, f"wrapper_of {r['wrapper_of']!r} with basis {r['mapping_basis']!r}"))
            continue
        wrapped, unmapped, other_asset, other_step = m.groups()
        if r["attack_step"] != "attempt" + wrapped[0].upper() + wrapped[1:]:
            bad.append((line, f"{r['attack_step']} does not wrap {wrapped}"))
        if other_step is not None and other_step != wrapped:
            bad.append((line, f"the basis names {other_asset}.{other_step}, not {wrapped}"))
        target = by_step.get((other_asset or r["asset"], wrapped))
        if target is None:
            bad.append((line, f"wrapped step {other_asset or r['asset']}.{wrapped} is not in the table"))
        elif target["technique_id"] != r["wrapper_of"]:
            bad.append((line, f"wrapper_of {r['wrapper_of']!r} but {wrapped} is {target['technique_id']!r}"))
        if (unmapped is not None) != (r["wrapper_of"] == ""):
            bad.append((line, "'which is not mapped' and an empty wrapper_of go together"))
    assert bad == []
    assert sum(bool(WRAPPER.match(r["mapping_basis"])) for _, r in steps) == 98  # 92 + 6, as the .md counts them


def test_every_step_of_enterpriselang_steps_is_mapped_or_explained(by_step):
    """enterpriselang_steps.csv's (technique, step, asset) agree, revocations followed, or the basis says why not."""
    _, rows = read("enterpriselang_steps.csv")
    assert rows
    bad, explained = [], []
    for line, s in rows:
        old = s["technique_id"]
        for asset in s["asset"].split(";"):
            r = by_step.get((asset, s["attack_step"]))
            if r is None:
                bad.append((line, f"{asset}.{s['attack_step']} is not in the transcription"))
            elif r["technique_id"] != current_id(old):
                if old in r["mapping_basis"] and "enterpriselang_steps.csv" in r["mapping_basis"]:
                    explained.append((asset, s["attack_step"], old))
                else:
                    bad.append(
                        (line, f"{asset}.{s['attack_step']}: {old} -> {r['technique_id']!r}, {r['mapping_basis']!r}")
                    )
    assert bad == []
    # the two deprecated IDs data/enterpriselang_attack_steps.md names (no live replacement)
    assert sorted(explained) == [("OS", "scripting", "T1064"), ("Windows", "pathInterception", "T1034")]
