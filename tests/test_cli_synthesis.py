"""`attackprev synthesis` end to end: bad options refused in one line, a small fit writes its report."""

from __future__ import annotations

import json

import pytest

from attackprev.reporting.synthesis import render_synthesis_markdown
from tests.conftest import ROOT
from tests.test_cli_evidence import one_error_line, run


def test_unknown_target_is_refused_before_fitting(tmp_path):
    line = one_error_line(run("synthesis", "--target", "gartner", "--out", str(tmp_path)))
    assert "--target 'gartner': not a family" in line and "mtrends" in line
    assert not (tmp_path / "sources").exists()


def test_trials_override_of_a_counted_source_is_refused(tmp_path):
    line = one_error_line(run("synthesis", "--trials", "cisa_2021=20", "--out", str(tmp_path)))
    assert "cisa_2021's n is counted" in line


@pytest.mark.slow
def test_small_fit_writes_a_complete_report(tmp_path):
    proc = run(
        "synthesis", "--target", "attack_groups", "--draws", "100", "--tune", "150", "--chains", "2",
        "--seed", "3", "--out", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode in (0, 3), proc.stderr  # 3: a fit this short may fail its diagnostics, and says so
    folder = tmp_path / "sources"
    assert sorted(p.name for p in folder.iterdir()) == ["estimates.csv", "predictive.csv", "report.md", "summary.json"]
    s = json.loads((folder / "summary.json").read_text())
    assert s["target"] == "attack_groups" and s["record"]["settings"]["seed"] == 3
    assert s["record"]["settings"]["draws"] == 100
    text = (folder / "report.md").read_text()
    assert text == render_synthesis_markdown(s)
    if proc.returncode == 3:
        assert text.startswith("> **Sampler diagnostics failed**")
    assert "T1102 on the attack_groups scale" in proc.stdout, proc.stdout + proc.stderr


def test_committed_report_is_its_summary_rendered():
    folder = ROOT / "reports" / "sources"
    s = json.loads((folder / "summary.json").read_text())
    assert (folder / "report.md").read_text() == render_synthesis_markdown(s)
    assert s["diagnostics"]["passed"] and s["target"] == "mtrends"
    h = s["headline"]
    assert h["hdi_94"][0] <= h["mean"] <= h["hdi_94"][1]
    p = float(s["mal"].removeprefix("[Bernoulli(").removesuffix(")]"))
    assert abs(p - h["mean"]) <= 5e-5 * h["mean"] * 10  # the posterior mean to 4 significant digits
