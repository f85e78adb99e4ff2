"""The command line: exit codes, one-line errors, atomic reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_csv

ATTACKPREV = [sys.executable, "-m", "attackprev.cli"]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([*ATTACKPREV, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture
def earlier_report(tmp_path):
    """An output folder holding an earlier T1102 report that must survive failed runs."""
    out = tmp_path / "reports"
    (out / "t1102").mkdir(parents=True)
    (out / "t1102" / "summary.json").write_text('{"earlier": true}\n')
    return out


def assert_untouched(out: Path) -> None:
    assert (out / "t1102" / "summary.json").read_text() == '{"earlier": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["t1102"]  # no temporary folders left behind


BAD = {
    "counts above trials": (
        "technique_id,source_id,successes,trials\nT1102,a,12,10\n",
        "obs.csv:2: successes 12 exceed trials 10",
    ),
    "negative count": (
        "technique_id,source_id,successes,trials\nT1102,a,-3,10\n",
        "obs.csv:2: successes -3 is negative",
    ),
    "non-integer": (
        "technique_id,source_id,successes,trials\nT1102,a,1.5,10\n",
        "obs.csv:2: successes '1.5' is not a whole number",
    ),
    "zero trials": ("technique_id,source_id,successes,trials\nT1102,a,0,0\n", "obs.csv:2: trials is 0"),
    "percent out of range": (
        "technique_id,source_id,percent\nT1102,a,101\n",
        "obs.csv:2: percent 101 is outside 0-100",
    ),
    "missing column": ("technique_id,successes,trials\nT1102,1,2\n", "obs.csv:1: missing column 'source_id'"),
    "empty": ("", "obs.csv: file is empty"),
    "duplicate": ("technique_id,source_id,successes,trials\nT1102,a,1,9\nT1102,a,2,9\n", "obs.csv:3: duplicate row"),
    "malformed id": (
        "technique_id,source_id,successes,trials\nTX102,a,1,9\n",
        "obs.csv:2: malformed technique ID 'TX102'",
    ),
    "unknown id": (
        "technique_id,source_id,successes,trials\nT1999,a,1,9\n",
        "obs.csv:2: unknown ATT&CK technique ID 'T1999'",
    ),
    "no evidence for requested": (
        "technique_id,source_id,successes,trials\nT1105,a,1,9\n",
        "no evidence for technique T1102",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line_and_keeps_earlier_report(tmp_path, earlier_report, case):
    text, expected = BAD[case]
    data = tmp_path / "obs.csv"
    data.write_text(text, encoding="utf-8")
    proc = run("fit", "T1102", "--data", str(data), "--out", str(earlier_report), "--engine", "exact")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert expected in lines[0]
    assert_untouched(earlier_report)


def test_not_utf8_exits_2(tmp_path, earlier_report):
    data = tmp_path / "obs.csv"
    data.write_bytes(b"technique_id,source_id,successes,trials\nT1102,\xff\xfe,1,9\n")
    proc = run("fit", "T1102", "--data", str(data), "--out", str(earlier_report), "--engine", "exact")
    assert proc.returncode == 2 and "obs.csv:2: not UTF-8 text" in proc.stderr
    assert_untouched(earlier_report)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["T11O2"], "malformed technique ID 'T11O2'"),
        (["T1999"], "unknown ATT&CK technique ID 'T1999'"),
        (["T1001"], "no evidence for technique T1001"),
        (["T1102", "--weight", "mtrends2020=1.5"], "weights must be in [0, 1]"),
        (["T1102", "--weight", "nosuch=0.5"], "unknown source 'nosuch'"),
        (["T1102", "--prior", "flat"], "unknown prior 'flat'"),
        (["T1102", "--engine", "gibbs"], "--engine 'gibbs'"),
        (["T1102", "--engine", "exact", "--draws", "500"], "--draws: nothing is sampled in this run"),
        (["T1102", "--engine", "exact", "--model", "multi"], "--model multi: --engine exact computes"),
        (["T1102", "--engine", "mcmc", "--prior", "pareto"], "--prior pareto sets the single-technique model's"),
        (["T1102", "--engine", "mcmc", "--model", "multi", "--weight", "mtrends2020=0.5"], "--model multi: --weight"),
    ],
)
def test_bad_arguments_exit_2(earlier_report, args, expected):
    proc = (
        run("fit", *args, "--out", str(earlier_report), "--engine", "exact")
        if "--engine" not in args
        else run("fit", *args, "--out", str(earlier_report))
    )
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert_untouched(earlier_report)


def test_exact_engine_report_replaces_earlier_one(tmp_path, earlier_report):
    proc = run("fit", "T1102", "--engine", "exact", "--out", str(earlier_report))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((earlier_report / "t1102" / "summary.json").read_text())
    assert summary["engine"] == "exact"
    assert summary["mal"]["expression"].startswith("Bernoulli(")
    single = summary["models"]["single_technique"]
    # against brute-force quadrature on a fixed fine grid, not the exact engine's own figures again
    from attackprev.model.priors import PRIORS
    from tests.grid_reference import grid_mu

    reference = grid_mu([9, 47], [227, 951], PRIORS["halfnormal1"])
    assert single["engine"] == "exact" and summary["prevalence"]["mean"] == pytest.approx(reference.mean, rel=1e-3)
    assert summary["comparison"]["prob_greater"] == pytest.approx(reference.prob_above(0.0445), abs=2e-3)
    assert sorted(p.name for p in earlier_report.iterdir()) == ["t1102"]
    assert "Bernoulli(" in proc.stdout and proc.stderr == ""  # quiet when not on a terminal
    # the change of estimand is stated in the output, the report's first lines and summary.json
    assert summary["model"] == "single-technique" == summary["mal"]["model"]
    assert summary["models"]["multi_technique"] is None
    assert summary["estimand"]["default"] is False and "--engine exact" in summary["estimand"]["note"]
    assert "note: the headline is the single-technique model, not the default: --engine exact" in proc.stdout
    first = (earlier_report / "t1102" / "report.md").read_text().splitlines()[2]
    assert first.startswith("> **Headline: the single-technique model, not the default multi-source model**")


def test_user_csv_with_three_sources(tmp_path):
    data = write_csv(
        tmp_path / "mine.csv",
        """
        technique_id,source_id,successes,trials
        T1102,a,9,227
        T1102,b,47,951
        T1102,c,30,400
        """,
    )
    proc = run("fit", "T1102", "--data", str(data), "--engine", "exact", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "r" / "t1102" / "summary.json").read_text())
    assert [s["source_id"] for s in summary["models"]["single_technique"]["sources"]] == ["a", "b", "c"]
    assert summary["comparison"]["naive_mean"] == pytest.approx((9 / 227 + 47 / 951 + 30 / 400) / 3)


def test_weight_is_recorded_and_moves_the_answer(tmp_path):
    out = tmp_path / "r"
    base = run("fit", "T1102", "--engine", "exact", "--out", str(out / "a"))
    half = run("fit", "T1102", "--engine", "exact", "--weight", "sok2019_windows_malware=0.25", "--out", str(out / "b"))
    assert base.returncode == half.returncode == 0
    a = json.loads((out / "a" / "t1102" / "summary.json").read_text())
    b = json.loads((out / "b" / "t1102" / "summary.json").read_text())
    assert b["weights"]["sok2019_windows_malware"] == 0.25
    assert (
        b["prevalence"]["hdi_94"][1] - b["prevalence"]["hdi_94"][0]
        > a["prevalence"]["hdi_94"][1] - a["prevalence"]["hdi_94"][0]
    )


@pytest.mark.slow
def test_failed_diagnostics_exit_3_and_flag_the_report(tmp_path):
    args = ["--draws", "100", "--tune", "100", "--chains", "2", "--model", "single"]
    proc = run("fit", "T1102", *args, "--no-figures", "--out", str(tmp_path))
    assert proc.returncode == 3, proc.stderr
    report = (tmp_path / "t1102" / "report.md").read_text().splitlines()
    assert report[2].startswith("> **Headline: the single-technique model") and "--model single" in report[2]
    assert "FAILED ITS DIAGNOSTICS" in report[4]
    summary = json.loads((tmp_path / "t1102" / "summary.json").read_text())
    assert summary["diagnostics"]["passed"] is False
    assert any("ESS" in p for p in summary["diagnostics"]["problems"])


def test_list_shows_techniques_and_inferred_denominator():
    proc = run("list")
    assert proc.returncode == 0, proc.stderr
    assert "T1102" in proc.stdout and "mtrends2020 9/227" in proc.stdout
    assert "n = 227 (inferred)" in proc.stdout


def test_export_mal_prints_t1102_line_and_json_and_patches(tmp_path):
    out = tmp_path / "reports"
    assert run("fit", "T1102", "--engine", "exact", "--out", str(out)).returncode == 0
    p = json.loads((out / "t1102" / "summary.json").read_text())["mal"]["p"]
    mal = tmp_path / "lang.mal"
    original = (
        '#id: "org.example.lang"\n#version: "1.0.0"\n\ncategory C {\n  asset ExternalNetwork {\n'
        "    | webService [Bernoulli(0.0445)]\n      -> other\n    | other\n  }\n}\n"
    )
    mal.write_text(original)
    proc = run("export-mal", "--reports", str(out), "--patch", str(mal), "--prefer-reports")
    assert proc.returncode == 0, proc.stderr
    assert f"| webService [Bernoulli({p:g})]" in proc.stdout
    assert '"name": "Bernoulli"' in proc.stdout and "Bernoulli(0.0445)" in proc.stdout  # old value in the table
    patched = (tmp_path / "lang.patched.mal").read_text().splitlines()
    assert patched[5] == f"    | webService [Bernoulli({p:g})]"
    assert [a for i, a in enumerate(patched) if i != 5] == [a for i, a in enumerate(original.splitlines()) if i != 5]
    assert mal.read_text() == original


def test_export_mal_in_place_needs_patch(tmp_path):
    proc = run("export-mal", "--in-place", "--reports", str(tmp_path))
    assert proc.returncode == 2 and "--in-place needs --patch" in proc.stderr


def test_export_mal_covers_every_mapped_technique_of_the_catalogue():
    """With reports/techniques/ present every technique with an enterpriseLang step is exported from it, T1102
    included, each with the population its probability is a share of."""
    import csv

    from attackprev.evidence.attack import current_id
    from attackprev.mal.mapping import load_steps

    proc = run("export-mal", "--reports", str(ROOT / "reports"))
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    with (ROOT / "reports" / "techniques" / "catalogue.csv").open() as f:
        catalogue = {row["technique_id"] for row in csv.DictReader(f)}
    mapped = [t for t in load_steps() if t in catalogue or current_id(t) in catalogue]  # revoked IDs take the new one's
    assert len(steps) == len(mapped) > 50
    assert "// T1086 is T1059.001 in ATT&CK v18.1: p is T1059.001's" in proc.stdout
    t1102 = json.loads((ROOT / "reports" / "t1102" / "summary.json").read_text())
    assert t1102["mal"]["model"] == "multi-source"  # the same model as the catalogue, so the same value
    assert f"| webService [{t1102['mal']['expression']}]" in steps
    assert "reports/techniques/catalogue.csv" in proc.stdout
    assert "// target population: mtrends (intrusions investigated by Mandiant incident responders)" in proc.stdout


@pytest.mark.slow
def test_fresh_fit_all_with_two_techniques_carries_a_failed_multi_technique_fit_to_exit_3(tmp_path):
    """A fresh `fit --all` through the command line, two techniques in one call, too few draws to pass."""
    from tests.test_pipeline import SMALL

    data = write_csv(tmp_path / "small.csv", SMALL)
    out = tmp_path / "out"
    args = ["fit", "--all", "T1102", "T1059", "--data", str(data), "--draws", "100", "--tune", "100"]
    env = os.environ | {"PYTHONPATH": str(ROOT), "ATTACKPREV_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [*ATTACKPREV, *args, "--chains", "2", "--no-figures", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 3, proc.stderr
    assert "fitted" in proc.stdout and "DIAGNOSTICS FAILED" in proc.stdout
    catalogue = (out / "techniques" / "catalogue.md").read_text().splitlines()
    assert "FAILED ITS DIAGNOSTICS" in catalogue[2]
    for tid in ("t1102", "t1059"):
        summary = json.loads((out / tid / "summary.json").read_text())
        assert summary["model"] == "multi-technique" and summary["diagnostics"]["passed"] is False
        assert summary["settings"] | {"target_accept": None} == {
            "draws": 100,
            "tune": 100,
            "chains": 2,
            "seed": 20201102,
            "target_accept": None,
        }
        assert any("bulk ESS" in p for p in summary["diagnostics"]["problems"])
        head = (out / tid / "report.md").read_text().split("## The question")[0]
        assert "not the default multi-source model** — --data" in head and "FAILED ITS DIAGNOSTICS" in head


# -- options through the command line, in process, with values that change the answer -------------------------
def _fit_in_process(tmp_path, *args):
    from typer.testing import CliRunner

    from attackprev.cli import app

    result = CliRunner().invoke(app, ["fit", *args, "--engine", "exact", "--no-figures", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    return result


def _exact_mean(technique, overrides=None):
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
    from attackprev.evidence.tables import load_evidence
    from attackprev.inference.exact import fit_exact
    from attackprev.model.priors import PRIORS

    obs = [
        o for o in load_evidence(OBSERVATIONS_CSV, SOURCES_CSV, overrides).observations if o.technique_id == technique
    ]
    return fit_exact([o.successes for o in obs], [o.trials for o in obs], PRIORS["halfnormal1"]).mu.mean


def test_trials_override_reaches_the_counts(tmp_path):
    """--trials mtrends2020=454 (3.96 % of 454 = 18): the headline is the exact engine's on 18 of 454."""
    _fit_in_process(tmp_path / "a", "T1102", "--trials", "mtrends2020=454")
    summary = json.loads((tmp_path / "a" / "t1102" / "summary.json").read_text())
    mtrends = next(e for e in summary["evidence"] if e["source_id"] == "mtrends2020")
    assert (mtrends["successes"], mtrends["trials"]) == (18, 454)
    assert summary["prevalence"]["mean"] == pytest.approx(_exact_mean("T1102", {"mtrends2020": 454}), rel=1e-5)
    assert summary["prevalence"]["mean"] != pytest.approx(_exact_mean("T1102"), rel=1e-3)


def test_several_techniques_in_one_call(tmp_path):
    result = _fit_in_process(tmp_path, "T1102", "T1003")
    for t in ("T1102", "T1003"):
        summary = json.loads((tmp_path / t.lower() / "summary.json").read_text())
        assert summary["technique_id"] == t
        assert summary["prevalence"]["mean"] == pytest.approx(_exact_mean(t), rel=1e-5)
    assert [line.split(":")[0] for line in result.output.splitlines() if line.startswith("T1")] == ["T1102", "T1003"]
