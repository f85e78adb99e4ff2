"""export_mal: the fragment compiles with mal-toolbox, mal-simulator samples p, patches are exact and atomic."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from malsim.mal_simulator.ttc_utils import DistFunction, TTCDist

from attackprev.errors import InputError
from attackprev.mal.dictionary import ttc_dict
from attackprev.mal.export import export_mal
from attackprev.mal.malfile import TtcChange
from attackprev.mal.mapping import estimates_from_catalogue
from tests.mal.test_expressions import compile_steps
from tests.mal.test_malfile import LANG, compile_file


def write_summary(reports: Path, technique_id: str, p, hdi=(0.03, 0.07), model: str = "multi-source") -> Path:
    """A minimal ``reports/<id>/summary.json`` as the model writes it (``model``: its headline model)."""
    folder = reports / technique_id.lower()
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "technique_id": technique_id,
        "prevalence": {"mean": 0.047, "sd": 0.01, "median": 0.046, "hdi_94": list(hdi)},
        "mal": {"expression": "Bernoulli(...)", "p": p, "model": model},
        "ttc": {"kind": "degenerate", "value_days": 0},
    }
    path = folder / "summary.json"
    path.write_text(json.dumps(summary), encoding="utf-8")
    return path


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    write_summary(folder, "T1102", 0.0471)
    (folder / "techniques").mkdir()  # a folder without summary.json is skipped
    return folder


def test_t1102_fragment_compiles_and_malsim_samples_p(reports, tmp_path):
    result = export_mal(reports)
    assert list(result.json) == ["T1102"]
    entry = result.json["T1102"]
    assert entry["attack_step"] == "webService"
    assert entry["expression"] == "Bernoulli(0.0471)"
    assert "| webService [Bernoulli(0.0471)]" in result.fragment.splitlines()
    assert "94% HDI 0.03 to 0.07" in result.fragment
    assert "reports/t1102/summary.json" in result.fragment

    body = "\n".join("        " + line for line in result.fragment.splitlines())
    compiled = compile_steps(tmp_path, body)
    expected = {"type": "function", "name": "Bernoulli", "arguments": [0.0471]}
    assert compiled["webService"] == expected
    assert entry["ttc"] == expected

    dist = TTCDist.from_dict(compiled["webService"])
    rng = np.random.default_rng(20240611)  # attempt_bernoulli takes a numpy Generator
    n, p = 100_000, 0.0471
    hits = sum(dist.attempt_bernoulli(rng) for _ in range(n))
    assert abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_product_ttc_keeps_its_exponential_and_writes_it_first(tmp_path):
    """mal-simulator's effort-based mode reads only the left factor: the time factor comes first."""
    reports = tmp_path / "reports"
    write_summary(reports, "T1219", 0.0812)
    entry = export_mal(reports).json["T1219"]
    assert entry["expression"] == "Exponential(106.67)*Bernoulli(0.0812)"
    assert entry["ttc"]["lhs"] == {"type": "function", "name": "Exponential", "arguments": [106.67]}
    dist = TTCDist.from_dict(entry["ttc"])
    assert dist.function is DistFunction.EXPONENTIAL and dist.args == [106.67]
    assert dist.combine_with.function is DistFunction.BERNOULLI
    assert dist.combine_with.args == [0.0812]


def test_published_ttc_without_bernoulli_gets_one_in_front(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1055.012", 0.0123)  # published "Exponential(1440) (...)"
    write_summary(reports, "T1032", 0.2)  # published TruncatedNormal(26.82,15.913)
    table = export_mal(reports).json
    assert table["T1055.012"]["expression"] == "Exponential(1440)*Bernoulli(0.0123)"
    assert "no Bernoulli factor" in table["T1055.012"]["remark"]
    assert table["T1032"]["expression"] == "Bernoulli(0.2)"
    assert "probability in percent" in table["T1032"]["remark"]


def test_catalogue_gives_the_same_export_as_the_summaries(reports, tmp_path):
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("technique_id,p,hdi_94_low,hdi_94_high\nT1102,0.0471,0.03,0.07\n")
    assert estimates_from_catalogue(catalogue)[0].p == 0.0471
    from_catalogue = export_mal(reports, catalogue=catalogue)
    from_reports = export_mal(reports)
    assert from_catalogue.json["T1102"]["expression"] == from_reports.json["T1102"]["expression"]


def test_catalogue_argument_replaces_the_reports_folder(reports, tmp_path):
    """With catalogue= the values are the CSV's, not the reports folder's (0.0623, not the report's 0.0471), and a
    technique the folder lacks is exported too."""
    catalogue = tmp_path / "estimates.csv"
    catalogue.write_text("technique_id,p,hdi_94_low,hdi_94_high\nT1102,0.0623,0.04,0.09\nT1219,0.0812,,\n")
    table = export_mal(reports, catalogue=catalogue).json
    assert sorted(table) == ["T1102", "T1219"]
    assert table["T1102"]["expression"] == "Bernoulli(0.0623)" and table["T1102"]["hdi_94"] == [0.04, 0.09]
    assert table["T1102"]["report"] == "estimates.csv"  # shown relative to the reports folder's parent
    assert table["T1219"]["expression"] == "Exponential(106.67)*Bernoulli(0.0812)"
    assert export_mal(reports).json["T1102"]["expression"] == "Bernoulli(0.0471)"  # the folder alone: its report


def test_unmapped_technique_is_refused(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T9999", 0.1)
    with pytest.raises(InputError, match="T9999 has no enterpriseLang step"):
        export_mal(reports)


def test_patch_changes_exactly_the_intended_lines(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 0.0471)
    write_summary(reports, "T1219", 0.0812)
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")

    result = export_mal(reports, patch=lang)
    patched = tmp_path / "lang.patched.mal"
    assert result.written == [patched]
    assert lang.read_text(encoding="utf-8") == LANG

    before = LANG.splitlines()
    after = patched.read_text(encoding="utf-8").splitlines()
    assert len(after) == len(before)
    changed = {i: after[i] for i in range(len(before)) if before[i] != after[i]}
    assert changed == {
        before.index("        | remoteAccessSoftware [Bernoulli(0.0789)*Exponential(106.67)]"): (
            "        | remoteAccessSoftware [Exponential(106.67)*Bernoulli(0.0812)]"
        ),
        before.index("        & webService [Bernoulli(0.0445)]"): ("        & webService [Bernoulli(0.0471)]"),
    }
    assert result.changes == [
        TtcChange(
            "Service",
            "remoteAccessSoftware",
            "Bernoulli(0.0789)*Exponential(106.67)",
            "Exponential(106.67)*Bernoulli(0.0812)",
        ),
        TtcChange("ExternalNetwork", "webService", "Bernoulli(0.0445)", "Bernoulli(0.0471)"),
    ]
    assert result.unmatched == []

    steps = compile_file(patched)
    assert steps[("ExternalNetwork", "webService")] == ttc_dict("Bernoulli(0.0471)")
    assert steps[("Service", "remoteAccessSoftware")]["lhs"]["arguments"] == [106.67]
    assert steps[("Service", "webService")] is None  # same name, other asset: untouched
    assert steps[("Service", "executionPrevention")] == ttc_dict("Bernoulli(0.3)")


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_invalid_report_writes_nothing(p, tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", p)
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")
    with pytest.raises(InputError, match="p must be"):
        export_mal(reports, patch=lang, fragment_dir=tmp_path / "fragment")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports"]


def test_non_finite_published_rate_writes_nothing(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 0.0471)
    steps = tmp_path / "steps.csv"
    steps.write_text(
        "technique_id,attack_step,asset,published_ttc,source\n"
        "T1102,webService,ExternalNetwork,Bernoulli(0.0445)*Exponential(inf),test\n"
    )
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")
    with pytest.raises(InputError, match="finite") as err:
        export_mal(reports, steps_csv=steps, patch=lang)
    assert str(err.value).startswith(f"{steps}:2: ")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports", "steps.csv"]


def test_in_place_patch_is_atomic(tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 1.5)
    lang = tmp_path / "lang.mal"
    lang.write_text(LANG, encoding="utf-8")

    with pytest.raises(InputError):  # invalid value: refused before writing
        export_mal(reports, patch=lang, in_place=True)
    assert lang.read_text(encoding="utf-8") == LANG

    write_summary(reports, "T1102", 0.0471)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):  # failure while writing
        export_mal(reports, patch=lang, in_place=True)
    assert lang.read_text(encoding="utf-8") == LANG
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports"]

    monkeypatch.undo()
    result = export_mal(reports, patch=lang, in_place=True)
    assert result.written == [lang]
    assert lang.read_text(encoding="utf-8") == LANG.replace(
        "& webService [Bernoulli(0.0445)]", "& webService [Bernoulli(0.0471)]"
    )
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lang.mal", "reports"]


# ------------------------------------------------------------------ which model's values


def write_catalogue(reports: Path, rows: str) -> Path:
    """``reports/techniques/catalogue.csv`` with the columns export_mal reads (and one it ignores)."""
    path = reports / "techniques" / "catalogue.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("technique_id,mean,p,hdi_94_low,hdi_94_high\n" + rows, encoding="utf-8")
    return path


def test_default_export_takes_the_catalogue_over_a_single_technique_report(tmp_path, capsys):
    reports = tmp_path / "reports"
    write_catalogue(reports, "T1102,0.05636,0.05636,0.017,0.106\n")
    write_summary(reports, "T1102", 0.0471, model="single-technique")

    result = export_mal(reports)
    entry = result.json["T1102"]
    assert entry["expression"] == "Bernoulli(0.05636)"
    assert entry["model"] == "multi-source"
    assert entry["report"] == "reports/techniques/catalogue.csv"
    assert "p = 0.05636 (94% HDI 0.017 to 0.106), multi-source model; reports/techniques/catalogue.csv" in (
        result.fragment
    )
    assert [(e.technique_id, e.model) for e in result.set_aside] == [("T1102", "single-technique")]

    preferred = export_mal(reports, prefer_reports=True)
    entry = preferred.json["T1102"]
    assert entry["expression"] == "Bernoulli(0.0471)"
    assert entry["model"] == "single-technique"
    assert entry["report"] == "reports/t1102/summary.json"
    assert "single-technique model; reports/t1102/summary.json" in preferred.fragment
    assert preferred.set_aside == []


def test_default_model_report_fills_in_a_technique_the_catalogue_lacks(tmp_path):
    reports = tmp_path / "reports"
    write_catalogue(reports, "T1102,0.05636,0.05636,0.017,0.106\n")
    write_summary(reports, "T1219", 0.0812)  # multi-source headline, not in the catalogue
    write_summary(reports, "T1032", 0.2, model="single-technique")  # not in the catalogue either

    table = export_mal(reports).json
    assert sorted(table) == ["T1102", "T1219"]
    assert table["T1219"]["expression"] == "Exponential(106.67)*Bernoulli(0.0812)"
    assert (table["T1219"]["model"], table["T1219"]["report"]) == ("multi-source", "reports/t1219/summary.json")
    assert table["T1102"]["report"] == "reports/techniques/catalogue.csv"

    assert sorted(export_mal(reports, prefer_reports=True).json) == ["T1032", "T1102", "T1219"]


def test_only_single_technique_reports_need_prefer_reports(tmp_path):
    reports = tmp_path / "reports"
    write_summary(reports, "T1102", 0.0471, model="single-technique")
    with pytest.raises(InputError, match=r"another model \(single-technique\).*--prefer-reports"):
        export_mal(reports)
    assert export_mal(reports, prefer_reports=True).json["T1102"]["model"] == "single-technique"
    with pytest.raises(InputError, match="not both"):
        export_mal(reports, catalogue=write_catalogue(tmp_path / "other", "T1102,0.05,0.05,,\n"), prefer_reports=True)


def test_catalogue_rows_without_a_step_are_left_out_and_the_target_is_named(tmp_path):
    """The catalogue lists every technique with evidence; only those with an enterpriseLang step are exported,
    each with the population its probability is a share of (from the catalogue's summary)."""
    reports = tmp_path / "reports"
    path = reports / "techniques" / "catalogue.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "technique_id,target,p,hdi_94_low,hdi_94_high\nT1102,mtrends,0.0264,0.0118,0.043\n"
        "T1001.001,mtrends,0.008,0.0003,0.02\n",
        encoding="utf-8",
    )
    (path.parent / "summary.json").write_text(
        json.dumps({"target": "mtrends", "target_description": "intrusions investigated by responders"})
    )
    result = export_mal(reports)
    assert list(result.json) == ["T1102"]  # T1001.001 has no step in data/enterpriselang_steps.csv
    assert result.json["T1102"]["target"] == "mtrends (intrusions investigated by responders)"
    assert "// target population: mtrends (intrusions investigated by responders)" in result.fragment
