"""The default T1102 run end to end: diagnostics, numbers, report text, saved posterior."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from attackprev.reporting.technique import (
    _comparison,
    _diag_rows,
    _mcse_sentence,
    _status,
    interval,
    k3,
    kint,
    num,
    pct,
    settings_text,
)

# The end-to-end tests share the T1102 fit (`make test` runs each file on one xdist worker, so it runs once) and are
# marked slow one by one; the formatting tests at the end are not.


def headline_draws(technique_id: str) -> np.ndarray:
    """The default multi-source fit's draws of a technique on the mtrends scale (the fit the run reused)."""
    from attackprev.evidence.counts import load_counts
    from attackprev.inference.synthesis import SynthesisSettings, target_draws
    from attackprev.inference.synthesis_cache import cached_fit_synthesis

    result, _ = cached_fit_synthesis(load_counts(), settings=SynthesisSettings())
    return target_draws(result, "mtrends")[:, result.data.techniques.index(technique_id)]


@pytest.mark.slow
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


@pytest.mark.slow
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
    # counted again from the multi-source fit's own draws of T1102 on the mtrends scale (summary.json keeps six figures)
    draws = headline_draws("T1102")
    assert c["prob_greater"] == pytest.approx(np.mean(draws > 0.0445), abs=1e-5)
    assert c["percentile"] == pytest.approx(100 * np.mean(draws <= 0.0445), abs=1e-3)
    assert c["inside_hdi_94"] == (lo <= 0.0445 <= hi)
    assert s["ttc"]["kind"] == "degenerate" and s["ttc"]["value_days"] == 0
    assert s["settings"]["seed"] == 20201102 == single["settings"]["seed"] and "pymc" in s["versions"]
    assert single["priors"]["name"] == "halfnormal1" and single["prior"] == "halfnormal1"
    assert s["priors"] == s["models"]["multi_source"]["priors"]  # the headline's priors are the catalogue's
    assert re.fullmatch(r"[0-9a-f]{64}", s["data_sha256"])


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_mcmc_agrees_with_the_exact_posterior(t1102_run):
    s = t1102_run["summary"]
    single = s["models"]["single_technique"]
    mc, ex = single["posterior_table"]["mu"], single["exact"]["prevalence"]
    assert abs(mc["mean"] - ex["mean"]) <= 3 * mc["mcse_mean"]
    assert abs(mc["sd"] - ex["sd"]) <= 0.1 * ex["sd"]
    for a, b in zip(mc["hdi_94"], ex["hdi_94"], strict=True):
        assert abs(a - b) <= 0.002
    assert single["exact"]["accuracy"]["max_abs_change"] < 1e-3


@pytest.mark.slow
def test_sensitivity_covers_the_required_priors(t1102_run):
    table = t1102_run["summary"]["models"]["single_technique"]["sensitivity"]
    names = [r["prior"] for r in table]
    assert {"halfnormal1", "pareto", "bda3"} <= set(names) and len(names) >= 4
    bda3 = next(r for r in table if r["prior"] == "bda3")
    assert bda3["hdi_94"][1] > 0.4  # BDA3's prior leaves μ wide open with two sources


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_same_seed_gives_identical_summary(t1102_run, tmp_path):
    """A second run into another folder (the multi-source fit reused from the cache) writes the same numbers."""
    from typer.testing import CliRunner

    from attackprev.cli import app

    result = CliRunner().invoke(app, ["fit", "T1102", "--out", str(tmp_path), "--no-figures"])
    assert result.exit_code == 0
    again = (tmp_path / "t1102" / "summary.json").read_text()
    assert again == (t1102_run["folder"] / "summary.json").read_text()


@pytest.mark.slow
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


# ------------------------------------------------------------------------------ formatting, known inputs
@pytest.mark.parametrize(
    ("x", "digits", "text"),
    [
        (0.0396, 2, "3.96 %"),
        (0.0, 2, "0.00 %"),
        (1.0, 2, "100.00 %"),
        (0.00004, 2, "0.00 %"),  # below half a unit of the last digit
        (0.5, 0, "50 %"),
        (47 / 951, 1, "4.9 %"),
    ],
)
def test_pct(x, digits, text):
    assert pct(x, digits) == text


@pytest.mark.parametrize(
    ("x", "digits", "text"),
    [
        (None, 4, "–"),
        (math.nan, 4, "–"),
        (np.float64("nan"), 4, "–"),
        (0, 4, "0"),
        (0.0, 4, "0"),
        (0.0445, 4, "0.0445"),
        (0.5, 4, "0.5000"),
        (1, 4, "1.0000"),
        (-0.25, 4, "-0.2500"),
        (0.001, 4, "0.0010"),  # the threshold itself keeps fixed notation
        (0.00099999, 4, "0.001"),  # below it: two significant digits
        (0.000123456, 4, "0.00012"),
        (1e-7, 4, "1e-07"),  # tiny values fall to exponent notation
        (0.0123, 3, "0.012"),  # digits=3: the threshold is 0.01
        (0.00567, 3, "0.0057"),
        (123.44, 4, "123.4"),
        (100, 4, "100.0"),
        (999.94, 4, "999.9"),
        (1000, 4, "1,000"),
        (1234567.8, 4, "1,234,568"),
    ],
)
def test_num(x, digits, text):
    assert num(x, digits) == text


@pytest.mark.parametrize(
    ("x", "text"),
    [(0.0012345, "0.00123"), (12.345, "12.3"), (0.0, "0"), (999.4, "999"), (1000, "1,000"), (1234.6, "1,235")],
)
def test_k3(x, text):
    assert k3(x) == text


def test_k3_just_below_a_thousand_is_not_exponent_notation():
    assert k3(999.6) == "1,000"


def test_intervals():
    assert kint((1.5, 2500.0)) == "[1.5, 2,500]"
    assert interval((0.0118, 0.043)) == "[0.0118, 0.0430]"
    assert interval((5e-7, 0.1)) == "[0, 0.1000]"  # a bound below 10⁻⁶ is shown as 0
    assert interval((-1e-7, 0.3)) == "[0, 0.3000]"
    assert interval((2e-6, 0.1)) == "[2e-06, 0.1000]"
    assert interval((0.0204, 0.0697), pct) == "[2.04 %, 6.97 %]"
    assert interval([0.0, 1.0], pct) == "[0.00 %, 100.00 %]"


def test_settings_and_mcse_sentences():
    assert settings_text(None) == "exact grid engine (no sampling)"
    assert settings_text({"seed": 3, "chains": 4, "draws": 1500, "tune": 1000}) == (
        "seed 3, 4 chains × 1500 draws after 1000 tuning steps"
    )
    assert _mcse_sentence(None) == ""
    assert _mcse_sentence(0.00012345) == (
        " The draws fix p to within about ±0.0002 (two Monte Carlo standard errors of 0.00012); its further digits "
        "are kept only so that a rerun with the same seed writes the same expression."
    )
    assert "±0.001 (two Monte Carlo standard errors of 0.00049)" in _mcse_sentence(0.00049)  # 0.00098 to one figure


# ------------------------------------------------------------------------------ the diagnostics banner
LIMITS = {"divergences": 0, "max_rhat": 1.01, "min_ess_bulk": 400}


def diag(passed: bool = True, **kw) -> dict:
    d = {
        "divergences": 0,
        "max_rhat": 1.0026,
        "min_ess_bulk": 1234.4,
        "min_ess_tail": 999.5,
        "chains": 4,
        "draws": 4000,
        "problems": [] if passed else ["3 divergent transitions", "max R-hat 1.020 > 1.01"],
        "passed": passed,
        "limits": LIMITS,
    }
    return d | kw


def summary(engine: str = "mcmc", passed: bool = True, multi: dict | None = None, source: dict | None = None) -> dict:
    single = {
        "engine": engine,
        "diagnostics": diag(),
        "agreement": {"mu_mean_diff_in_mcse": 0.66} if engine == "mcmc" else None,
    }
    return {
        "model": "single-technique" if multi is None and source is None else "multi-source",
        "engine": engine,
        "diagnostics": diag(passed),
        "estimand": {"default": source is not None, "note": None if source else "--model single: the note's sources"},
        "models": {"single_technique": single, "multi_technique": multi, "multi_source": source},
    }


def test_banner_of_a_passed_single_technique_run():
    lines = _status(summary())
    assert lines == [
        "> **Headline: the single-technique model, not the default multi-source model** — --model single: the note's "
        "sources. Its probability is not on the same footing as the catalogue's (`reports/techniques/`), which "
        "`attackprev export-mal` uses by default.",
        ">",
        "> **Diagnostics passed.** Single-technique model (the headline): 0 divergent transitions, max R-hat 1.003, "
        "min bulk ESS 1234 (4 chains × 4000 draws). The single-technique MCMC mean of μ is 0.7 Monte Carlo standard "
        "errors from the exact one.",
    ]


def test_banner_of_a_failed_run_lists_every_problem():
    lines = _status(summary(passed=False))
    assert lines[-3:] == [
        "> **⚠ THIS RUN FAILED ITS DIAGNOSTICS — do not use its numbers as they stand.**",
        "> - 3 divergent transitions",
        "> - max R-hat 1.020 > 1.01",
    ]
    assert not any("Diagnostics passed" in line for line in lines)


def test_banner_of_the_exact_engine_and_of_the_multi_source_headline():
    assert _status(summary(engine="exact"))[-1] == (
        "> **Engine: exact grid quadrature** (no sampling, so no sampler diagnostics)."
    )
    source = {"target": "mtrends", "target_description": "intrusions investigated by Mandiant incident responders"}
    lines = _status(summary(source=source))
    assert lines[:2] == [
        "> **Target population: intrusions investigated by Mandiant incident responders** (`--target mtrends`): the "
        "headline probability is on this scale.",
        ">",
    ]
    assert lines[2].startswith("> **Diagnostics passed.** Multi-source model (the headline): 0 divergent")
    assert " Single-technique fit beside it: 0 divergent transitions, max R-hat 1.003, min bulk ESS 1234 " in lines[2]


def test_diagnostics_rows_round_at_the_boundaries():
    rows = _diag_rows(diag(max_rhat=1.01004, min_ess_bulk=399.6, min_ess_tail=400.5, divergences=2))
    assert rows == [
        ["divergent transitions", "2", "= 0"],
        ["max R-hat", "1.0100", "≤ 1.01"],  # 1.01004 fails the limit, yet shows as 1.0100
        ["min bulk ESS", "400", "≥ 400"],  # so does a bulk ESS of 399.6
        ["min tail ESS", "400", ""],  # 400.5: half to even
        ["chains × draws", "4 × 4000", ""],
    ]


# ------------------------------------------------------------------------------ the comparison sentence
def comparison_summary(percentile: float, prob: float, hdi=(0.0118, 0.043), mean=0.0264, point=0.0445) -> dict:
    return {
        "comparison": {"point_estimate": point, "percentile": percentile, "prob_greater": prob, "inside_hdi_94": False},
        "prevalence": {"mean": mean, "median": 0.0259, "hdi_94": list(hdi)},
        "models": {"single_technique": {}, "multi_technique": None, "multi_source": {"target": "mtrends"}},
    }


def test_comparison_sentence():
    text = _comparison(comparison_summary(97.46, 0.0254))[-1]
    assert text == (
        "enterpriseLang's 0.0445 sits at the 97th percentile of the posterior of p: P(p > 0.0445) = 0.03. It lies "
        "outside the 94 % HDI [0.0118, 0.0430]. The posterior mean, 0.0264, is 0.59 times the point estimate, and "
        "the posterior median is 0.0259; the interval's upper end is 3.6 times its lower end."
    )
    assert _comparison(comparison_summary(50.0, 0.5, hdi=(0.0, 0.2)))[-1] == ""  # no ratio of ends when one is 0


@pytest.mark.parametrize(
    ("percentile", "ordinal"),
    [(1.2, "1st"), (2.4, "2nd"), (3.0, "3rd"), (22.0, "22nd"), (11.4, "11th"), (12.6, "13th"), (97.0, "97th")],
)
def test_comparison_ordinals(percentile, ordinal):
    assert f"sits at the {ordinal} percentile" in _comparison(comparison_summary(percentile, 1 - percentile / 100))[-1]
