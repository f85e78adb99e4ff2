"""The default T1102 run end to end: diagnostics, numbers, report text, saved posterior."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.slow  # `make test` runs each file on one xdist worker, so the T1102 fit runs once


def test_default_run_succeeds_with_healthy_sampler(t1102_run):
    assert t1102_run["result"].exit_code == 0, t1102_run["result"].output
    s = t1102_run["summary"]
    d = s["diagnostics"]  # the headline's: the multi-source fit
    assert d["passed"] and d["problems"] == []
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400
    assert (d["chains"], d["draws"]) == (4, 1500) == (s["settings"]["chains"], s["settings"]["draws"])
    single = s["models"]["single_technique"]["diagnostics"]
    assert single["passed"] and single["divergences"] == 0 and single["min_ess_bulk"] >= 1000
    assert (single["chains"], single["draws"]) == (4, 4000)


def test_summary_has_every_promised_field(t1102_run):
    s = t1102_run["summary"]
    assert s["technique_id"] == "T1102"
    for key in ("mean", "sd", "median", "hdi_94"):
        assert key in s["prevalence"]
    lo, hi = s["prevalence"]["hdi_94"]
    assert 0 < lo < s["prevalence"]["median"] < hi < 1
    assert set(s["predictive"]) >= {"mean", "hdi_94"}
    single = s["models"]["single_technique"]
    assert [(x["source_id"], x["successes"], x["trials"]) for x in single["sources"]] == [
        ("mtrends2020", 9, 227),
        ("sok2019_windows_malware", 47, 951),
    ]
    for x in single["sources"]:
        assert x["hdi_94"][0] < x["posterior_mean"] < x["hdi_94"][1]
    c = s["comparison"]
    assert c["point_estimate"] == 0.0445
    assert c["naive_mean"] == pytest.approx((0.0396 + 47 / 951) / 2)
    assert c["prob_greater"] == pytest.approx(1 - c["percentile"] / 100, abs=1e-5)  # six significant figures each
    assert c["inside_hdi_94"] == (lo <= 0.0445 <= hi)
    assert s["ttc"]["kind"] == "degenerate" and s["ttc"]["value_days"] == 0
    assert s["settings"]["seed"] == 20201102 == single["settings"]["seed"] and "pymc" in s["versions"]
    assert single["priors"]["name"] == "halfnormal1" and single["prior"] == "halfnormal1"
    assert s["priors"] == s["models"]["multi_source"]["priors"]  # the headline's priors are the catalogue's
    assert re.fullmatch(r"[0-9a-f]{64}", s["data_sha256"])


def test_headline_is_the_multi_source_posterior_on_the_target_scale(t1102_run):
    s = t1102_run["summary"]
    assert s["mal"]["model"] == "multi-source" == s["model"]
    assert s["estimand"] == {"default": True, "note": None}
    single = s["models"]["single_technique"]
    assert single["mal"]["model"] == "single-technique"
    # every source on one scale narrows T1102's interval
    width = s["prevalence"]["hdi_94"][1] - s["prevalence"]["hdi_94"][0]
    assert width < single["prevalence"]["hdi_94"][1] - single["prevalence"]["hdi_94"][0]
    m = s["models"]["multi_source"]
    assert m["techniques"] >= 600 and m["diagnostics"]["passed"] and m["target"] == "mtrends"
    assert m["prevalence"] == s["prevalence"] and m["mal"]["expression"] == s["mal"]["expression"]
    assert s["models"]["multi_technique"] is None
    # every source's count and pull, and every family's scale and predictive interval
    assert {p["source_id"] for p in m["pulls"]} >= {"mtrends2020", "sok2019_windows_malware", "attack_groups_v18"}
    assert set(m["by_family"]) == set(m["scales"]) and "mtrends" in m["scales"]
    assert m["scales"]["mtrends"]["mean"] == pytest.approx(s["prevalence"]["mean"], rel=1e-5)
    text = (t1102_run["folder"] / "report.md").read_text()
    assert "## The note's sources alone against every source" in text
    assert f"`{single['mal']['expression']}` | `{s['mal']['expression']}`" in text
    for family in m["scales"]:
        assert f"| {family} | " in text


def test_mal_value_is_the_posterior_mean(t1102_run):
    s = t1102_run["summary"]
    assert s["mal"]["p"] == pytest.approx(s["prevalence"]["mean"], rel=1e-3)
    assert s["mal"]["expression"] == f"Bernoulli({s['mal']['p']:g})"
    lo, hi = s["predictive"]["hdi_94"]  # a new M-Trends year's rate: wider than the typical year's
    assert lo <= s["prevalence"]["hdi_94"][0] and hi >= s["prevalence"]["hdi_94"][1]
    # the report says how many of p's digits the draws support
    assert 0 < s["mal"]["mcse"] < 0.05 * s["mal"]["p"]
    single = s["models"]["single_technique"]
    assert single["mal"]["mcse"] == pytest.approx(single["posterior_table"]["mu"]["mcse_mean"])
    text = (t1102_run["folder"] / "report.md").read_text()
    assert f"two Monte Carlo standard errors of {s['mal']['mcse']:.2g}" in text


def test_mcmc_agrees_with_the_exact_posterior(t1102_run):
    s = t1102_run["summary"]
    single = s["models"]["single_technique"]
    mc, ex = single["posterior_table"]["mu"], single["exact"]["prevalence"]
    assert abs(mc["mean"] - ex["mean"]) <= 3 * mc["mcse_mean"]
    assert abs(mc["sd"] - ex["sd"]) <= 0.1 * ex["sd"]
    for a, b in zip(mc["hdi_94"], ex["hdi_94"], strict=True):
        assert abs(a - b) <= 0.002
    assert single["exact"]["accuracy"]["max_abs_change"] < 1e-3


def test_sensitivity_covers_the_required_priors(t1102_run):
    table = t1102_run["summary"]["models"]["single_technique"]["sensitivity"]
    names = [r["prior"] for r in table]
    assert {"halfnormal1", "pareto", "bda3"} <= set(names) and len(names) >= 4
    bda3 = next(r for r in table if r["prior"] == "bda3")
    assert bda3["hdi_94"][1] > 0.4  # BDA3's prior leaves μ wide open with two sources


def test_report_states_the_computed_numbers(t1102_run):
    s = t1102_run["summary"]
    text = (t1102_run["folder"] / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# T1102 Web Service")
    assert lines[2].startswith("> **Target population: intrusions investigated by Mandiant incident responders**")
    assert lines[4].startswith("> **Diagnostics passed.**")
    assert f"| webService [{s['mal']['expression']}]" in text
    assert f"{s['comparison']['percentile']:.0f}th percentile" in text
    assert f"P(p > 0.0445) = {s['comparison']['prob_greater']:.2f}" in text
    assert "| 9 / 227 | inferred |" in text and "This is an inference" in text
    assert "reproduces the published `Bernoulli(0.0445)`" in text
    assert "exactly 0 days" in text
    for row in s["models"]["single_technique"]["sensitivity"]:
        assert f"`{row['prior']}`" in text
    for name in re.findall(r"\]\(([\w.]+\.png)\)", text):
        assert (t1102_run["folder"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(re.findall(r"\]\(([\w.]+\.png)\)", text)) >= 5
    # the μ figure shows the headline (multi-source) posterior, and the report says which fit each figure is of
    assert "The μ figure shows the headline, the multi-source rate on the target scale" in text
    assert "[the catalogue](../techniques/catalogue.md)" in text
    # the Reproduce line names what produced the headline, and both data files
    assert "headline: multi-source synthesis" in text and "`data/evidence/counts.csv`" in text
    assert "seed 20201102, 4 chains × 1500 draws after 1000 tuning steps" in text
    # the sensitivity table marks the default prior and says which model it belongs to
    assert "`halfnormal1` (default, this run)" in text and "Of the single-technique model" in text


def test_saved_posterior_records_its_provenance(t1102_run):
    import xarray as xr

    s = t1102_run["summary"]
    with xr.open_datatree(t1102_run["folder"] / "posterior.nc") as tree:
        attrs = tree.attrs
        assert json.loads(attrs["priors"])["name"] == "halfnormal1"
        assert attrs["data_sha256"] == s["data_sha256"]
        assert int(attrs["seed"]) == 20201102
        assert "pymc" in json.loads(attrs["versions"])
        alone = s["models"]["single_technique"]["prevalence"]["mean"]
        assert float(tree["posterior"]["mu"].mean()) == pytest.approx(alone, rel=1e-5)  # JSON keeps 6 figures
        assert list(tree["posterior"]["theta"].coords["source"].values) == ["mtrends2020", "sok2019_windows_malware"]
        assert {"prior", "posterior_predictive", "observed_data", "sample_stats"} <= set(tree.children)


def test_same_seed_gives_identical_summary(t1102_run, tmp_path):
    """A second run into another folder (the multi-source fit reused from the cache) writes the same numbers."""
    from typer.testing import CliRunner

    from attackprev.cli import app

    result = CliRunner().invoke(app, ["fit", "T1102", "--out", str(tmp_path), "--no-figures"])
    assert result.exit_code == 0
    again = (tmp_path / "t1102" / "summary.json").read_text()
    assert again == (t1102_run["folder"] / "summary.json").read_text()


def test_every_mcmc_rate_agrees_with_the_exact_engine(t1102_run):
    """θ_s, θ_new and κ from the draws against the exact grid posterior (catches a swapped Beta(β′, α′) draw)."""
    single = t1102_run["summary"]["models"]["single_technique"]
    mcmc, exact = single["posterior_table"], single["exact"]["table"]
    assert set(mcmc) == set(exact)
    for key in [k for k in mcmc if k.startswith("theta")]:
        m, e = mcmc[key], exact[key]
        assert abs(m["mean"] - e["mean"]) <= 4 * m["mcse_mean"] + 1e-4, key
        assert abs(m["sd"] - e["sd"]) <= 0.1 * e["sd"], key
    # the data pin each source's rate near its own count: 9/227 and 47/951
    assert abs(mcmc["theta[mtrends2020]"]["mean"] - 9 / 227) < 0.02
    assert abs(mcmc["theta[sok2019_windows_malware]"]["mean"] - 47 / 951) < 0.01
    assert abs(mcmc["kappa"]["median"] - exact["kappa"]["median"]) <= 0.15 * exact["kappa"]["median"]
