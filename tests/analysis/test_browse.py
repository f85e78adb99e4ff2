"""What the layers and the catalogue page show per technique: labels, evidence lists, page rows, and the committed
page's data against ``catalogue.csv``."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from attackprev.analysis.browse import (
    TACTIC_ORDER,
    evidence_text,
    family_label,
    page_rows,
    tactic_label,
    technique_evidence,
)
from attackprev.evidence.attack import attack_table
from attackprev.model.synthesis import SynthesisData
from tests.conftest import ROOT
from tests.synthesis_fixtures import make_table

FOLDER = ROOT / "reports" / "techniques"


def test_tactic_labels_are_attacks_names():
    assert tactic_label("command-and-control") == "Command and Control"
    assert tactic_label("resource-development") == "Resource Development"
    live = {t for x in attack_table().values() if x.live for t in x.tactics}
    assert live == set(TACTIC_ORDER)  # every tactic of ATT&CK v18.1 has its place in the kill-chain order


def test_family_labels_name_the_unit_in_the_plural():
    table = make_table([("T1102", "a", 1, 10)], {"a": ("fam", "complete")})
    assert family_label(table, "fam") == "fam (trials)"
    for unit, plural in [
        ("malware family", "malware families"),
        ("software", "software"),
        ("CTI report", "CTI reports"),
    ]:
        table.sources["a"] = table.sources["a"].__class__(**{**table.sources["a"].__dict__, "unit": unit})
        assert family_label(table, "fam") == f"fam ({plural})"


class _Result:
    def __init__(self, data):
        self.data = data


def test_evidence_lists_every_fitted_count_target_family_first():
    rows = [("T1102", "z_src", 3, 30), ("T1102", "m_src", 9, 227), ("T1001", "m_src", 1, 227), ("T1001", "a_src", 0, 5)]
    sources = {"z_src": ("zfam", "complete"), "m_src": ("mtrends", "partial"), "a_src": ("afam", "complete")}
    data = SynthesisData.from_counts(make_table(rows, sources), reference="mtrends")
    ev = technique_evidence(_Result(data))
    assert ev["T1102"] == [
        {"source": "m_src", "family": "mtrends", "k": 9, "n": 227},
        {"source": "z_src", "family": "zfam", "k": 3, "n": 30},
    ]
    assert [c["family"] for c in ev["T1001"]] == ["mtrends", "afam"]
    assert evidence_text(ev["T1102"]) == "m_src 9/227, z_src 3/30"
    assert sum(len(v) for v in ev.values()) == int(np.asarray(data.successes).size)


def test_page_rows_carry_the_estimate_its_evidence_and_enterpriselangs_value():
    estimate = {
        "technique_id": "T1102",
        "name": "Web Service",
        "mean": 0.0263584,
        "hdi_94_low": 0.0117588,
        "hdi_94_high": 0.0429907,
        "target_data": True,
        "mal_expression": "Bernoulli(0.02636)",
        "published_p": 0.0445,
        "enterpriselang_steps": "Service.webService",
        "prob_above_published": 0.0306667,
        "published_inside_hdi_94": False,
        "runner_up_model": "exchangeable",
        "runner_up_mean": 0.03,
        "runner_up_hdi_94_low": 0.01,
        "runner_up_hdi_94_high": 0.05,
        "runner_up_differs": False,
    }
    counts = {"T1102": [{"source": "m", "family": "mtrends", "k": 9, "n": 227}]}
    (row,) = page_rows([estimate], counts)
    assert row["tactics"] == ["command-and-control"] and row["url"].endswith("/techniques/T1102")
    assert row["elang"]["ratio"] == pytest.approx(0.0263584 / 0.0445) and row["elang"]["inside"] is False
    assert row["families"] == ["mtrends"] and row["sources"] == counts["T1102"]
    assert row["runner_up"]["model"] == "exchangeable" and row["mal"] == "Bernoulli(0.02636)"
    (bare,) = page_rows([{**estimate, "published_p": None, "runner_up_model": None}], {})
    assert bare["elang"] is None and bare["runner_up"] is None and bare["sources"] == []


def committed_page_data() -> list[dict]:
    html = (FOLDER / "index.html").read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="catalogue-data">(.*?)</script>', html, re.S).group(1)
    data = json.loads(blob)
    return data["rows"] if isinstance(data, dict) else data


def test_the_committed_page_states_what_catalogue_csv_states():
    with (FOLDER / "catalogue.csv").open(newline="") as fh:
        rows = {r["technique_id"]: r for r in csv.DictReader(fh)}
    page = {r["id"]: r for r in committed_page_data()}
    assert set(page) == set(rows)
    for t, r in rows.items():
        p = page[t]
        assert (p["mean"], p["low"], p["high"]) == pytest.approx(
            (float(r["mean"]), float(r["hdi_94_low"]), float(r["hdi_94_high"])), rel=1e-5
        ), t
        assert p["mal"] == r["mal_expression"] and p["target_data"] == (r["target_data"] == "True"), t
        assert (p["elang"] is None) == (r["published_p"] == ""), t
    t1102 = {c["source"]: (c["k"], c["n"]) for c in page["T1102"]["sources"]}
    assert t1102["mtrends2020"] == (9, 227) and t1102["sok2019_windows_malware"] == (47, 951)
