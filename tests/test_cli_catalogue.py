"""`attackprev fit --all` (the multi-source catalogue) end to end: bad options refused in one line, a small
fit writes its catalogue and a technique report on the chosen scale."""

from __future__ import annotations

import csv
import json
import os
import subprocess

import pytest

from attackprev.reporting.synthesis import render_synthesis_markdown
from tests.conftest import ROOT
from tests.test_cli_evidence import ATTACKPREV, one_error_line, run


def test_unknown_target_is_refused_before_fitting(tmp_path):
    line = one_error_line(run("fit", "--all", "--target", "gartner", "--out", str(tmp_path)))
    assert "--target 'gartner': not a family" in line and "mtrends" in line
    assert not (tmp_path / "techniques").exists()


def test_trials_override_of_a_counted_source_is_refused(tmp_path):
    line = one_error_line(run("fit", "--all", "--trials", "cisa_2021=20", "--out", str(tmp_path)))
    assert "cisa_2021's n is counted" in line


@pytest.mark.slow
def test_small_fit_writes_the_catalogue_and_a_report_on_the_target_scale(tmp_path):
    env = os.environ | {"PYTHONPATH": str(ROOT), "ATTACKPREV_CACHE_DIR": str(tmp_path / "cache")}
    args = ["fit", "T1102", "--all", "--target", "attack_groups", "--draws", "100", "--tune", "150"]
    args += ["--chains", "2", "--seed", "3", "--no-figures", "--out", str(tmp_path)]
    proc = subprocess.run([*ATTACKPREV, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert proc.returncode in (0, 3), proc.stderr  # 3: a fit this short may fail its diagnostics, and says so
    folder = tmp_path / "techniques"
    files = ["catalogue.csv", "catalogue.md", "index.html", "layers", "predictive.csv", "summary.json"]
    assert sorted(p.name for p in folder.iterdir()) == files
    written = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    layer = {
        t["techniqueID"]: t for t in json.loads((folder / "layers" / "attack_groups.json").read_text())["techniques"]
    }
    with (folder / "catalogue.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):  # the target's layer states the target-scale catalogue
            assert layer[r["technique_id"]]["score"] == round(float(r["mean"]) * 10_000), r["technique_id"]
    # the same posterior (the saved fit, reused) writes the same catalogue, layers and page, byte for byte
    again = subprocess.run([*ATTACKPREV, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert again.returncode == proc.returncode and "reused" in again.stdout, again.stdout + again.stderr
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == written
    s = json.loads((folder / "summary.json").read_text())
    assert s["target"] == "attack_groups" and s["record"]["settings"]["seed"] == 3
    assert s["runner_up"]["model"] is None  # the comparison scores the mtrends scale only
    assert s["record"]["settings"]["draws"] == 100
    text = (folder / "catalogue.md").read_text()
    assert text == render_synthesis_markdown(s)
    if proc.returncode == 3:
        assert text.startswith("> **Sampler diagnostics failed**")
    report = json.loads((tmp_path / "t1102" / "summary.json").read_text())
    assert report["model"] == "multi-source" and report["models"]["multi_source"]["target"] == "attack_groups"
    assert report["prevalence"]["mean"] == pytest.approx(s["headline"]["mean"], rel=1e-5)  # one fit, both reports
    head = (tmp_path / "t1102" / "report.md").read_text().split("## The question")[0]
    assert "> **Target population: adversary groups" in head  # first, with the diagnostics' verdict
    assert "catalogue on the attack_groups scale" in proc.stdout, proc.stdout + proc.stderr


def test_committed_catalogue_is_its_summary_rendered():
    folder = ROOT / "reports" / "techniques"
    s = json.loads((folder / "summary.json").read_text())
    assert (folder / "catalogue.md").read_text() == render_synthesis_markdown(s)
    assert s["diagnostics"]["passed"] and s["target"] == "mtrends"
    with (folder / "catalogue.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert s["runner_up"]["model"] == "exchangeable" and s["runner_up"]["techniques"] == len(rows)
    differ = [r["technique_id"] for r in rows if r["runner_up_differs"] == "True"]
    assert sorted(differ) == sorted(d["technique_id"] for d in s["runner_up"]["differ"])
    h = s["headline"]
    assert h["hdi_94"][0] <= h["mean"] <= h["hdi_94"][1]
    p = float(s["mal"].removeprefix("[Bernoulli(").removesuffix(")]"))
    assert abs(p - h["mean"]) <= 5e-5 * h["mean"] * 10  # the posterior mean to 4 significant digits
