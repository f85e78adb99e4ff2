"""The multi-technique fit: a seeded fit's diagnostics and the catalogue table written from it."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from attackprev.evidence.tables import load_evidence
from attackprev.reporting.catalogue import _fmt, _mcse_note, excluded_markdown, render_catalogue_markdown, rows_to_csv


@pytest.fixture(scope="module")
def evidence():
    return load_evidence()


@pytest.fixture(scope="module")
def pooled_fit(evidence):
    from attackprev.inference.catalogue import fit_catalogue

    return fit_catalogue(evidence, variants=["pooled"])


@pytest.mark.slow
def test_seeded_multi_technique_fit_is_healthy(pooled_fit):
    d = pooled_fit.diagnostics["pooled"]
    assert d.divergences == 0, d
    assert d.max_rhat <= 1.01, d
    assert d.min_ess_bulk >= 400, d
    mu = pooled_fit.tree["posterior"]["mu"]
    assert mu.sizes["technique"] == 53


@pytest.mark.slow
def test_catalogue_table_contents(pooled_fit, evidence, tmp_path):
    from attackprev.reporting.catalogue import write_catalogue_report

    folder = write_catalogue_report(pooled_fit, evidence, tmp_path)
    rows = list(csv.DictReader(io.StringIO((folder / "catalogue.csv").read_text())))
    assert len(rows) == len(evidence.techniques())
    t1102 = next(r for r in rows if r["technique_id"] == "T1102")
    mu = pooled_fit.mu_draws("T1102")
    assert float(t1102["mean"]) == pytest.approx(mu.mean(), rel=1e-5)
    assert 0 < float(t1102["mean_mcse"]) < mu.std() / 10  # Monte Carlo error of the mean, well below the sd
    assert float(t1102["published_p"]) == 0.0445
    assert t1102["mal_expression"] == f"Bernoulli({float(t1102['p']):g})"
    inside = float(t1102["hdi_94_low"]) <= 0.0445 <= float(t1102["hdi_94_high"])
    assert t1102["published_inside_hdi_94"] == str(inside)
    # time factors are kept as published; revoked IDs show their replacement
    rdp = next(r for r in rows if r["technique_id"] == "T1076")
    assert rdp["mal_expression"].startswith("Exponential(480)*") and rdp["current_id"] == "T1021.001"
    # sorted by |log(mean / published)|, largest first, techniques without a published p last
    ratios = [abs(np.log(float(r["mean"]) / float(r["published_p"]))) for r in rows if r["published_p"]]
    assert ratios == sorted(ratios, reverse=True)
    assert all(not r["published_p"] for r in rows[len(ratios) :])
    text = (folder / "catalogue.md").read_text()
    # one variant fitted: nothing to compare, so no PSIS-LOO table (its rows are checked on known input below)
    assert pooled_fit.comparison == [] and "## Which model: PSIS-LOO" not in text
    assert "## Figures left out of the model" in text and "| proxy |" in text


# ------------------------------------------------------------------------------ rendering, known inputs
def row(t: str, **kw) -> dict:
    base = {
        "technique_id": t,
        "current_id": "",
        "name": "Web Service",
        "evidence": "mtrends2020 9/227; sok2019_windows_malware 47/951",
        "published_result": "Bernoulli(0.0445)",
        "published_p": 0.0445,
        "mean": 0.02635841,
        "mean_mcse": 0.0000123456789,
        "hdi_94_low": 0.0118,
        "hdi_94_high": 0.043,
        "published_inside_hdi_94": False,
        "prob_above_published": 0.0254,
        "mal_expression": "Bernoulli(0.02636)",
    }
    return base | kw


ROWS = [
    row("T1102"),
    row(
        "T1076",
        current_id="T1021.001",
        name="Remote Services, RDP",
        evidence="mtrends2020 43/227",
        published_result="Bernoulli(0.5561)*Exponential(480)",
        published_p=0.5561,
        mean=0.19,
        mean_mcse=0.0004,
        hdi_94_low=0.14,
        hdi_94_high=0.6,
        published_inside_hdi_94=True,
        prob_above_published=0.0,
        mal_expression="Exponential(480)*Bernoulli(0.19)",
    ),
    row(
        "T1571",
        name="Non-Standard Port",
        evidence="mtrends2020 5/227",
        published_result="",
        published_p=None,
        mean=0.025,
        mean_mcse=0.0002,
        published_inside_hdi_94=None,
        prob_above_published=None,
        mal_expression="Bernoulli(0.025)",
    ),
]


def test_fmt():
    assert (_fmt(None), _fmt(0.04449999), _fmt(0.5, 2), _fmt(0.0), _fmt(1.0, 0)) == (
        "–",
        "0.0445",
        "0.50",
        "0.0000",
        "1",
    )


def test_rows_to_csv():
    lines = rows_to_csv(ROWS).splitlines()
    assert lines[0] == (
        "technique_id,current_id,name,evidence,published_result,published_p,mean,mean_mcse,hdi_94_low,hdi_94_high,"
        "published_inside_hdi_94,prob_above_published,mal_expression,p"
    )
    assert lines[1] == (
        "T1102,,Web Service,mtrends2020 9/227; sok2019_windows_malware 47/951,Bernoulli(0.0445),0.0445,0.0263584,"
        "1.23457e-05,0.0118,0.043,False,0.0254,Bernoulli(0.02636),0.02636"
    )
    assert lines[2] == (
        'T1076,T1021.001,"Remote Services, RDP",mtrends2020 43/227,Bernoulli(0.5561)*Exponential(480),0.5561,0.19,'
        "0.0004,0.14,0.6,True,0,Exponential(480)*Bernoulli(0.19),0.19"
    )
    assert lines[3] == "T1571,,Non-Standard Port,mtrends2020 5/227,,,0.025,0.0002,0.0118,0.043,,,Bernoulli(0.025),0.025"
    assert len(lines) == 4


def test_mcse_note_names_the_largest_absolute_and_relative_errors():
    assert _mcse_note(ROWS) == (
        "The draws fix each posterior mean to within two Monte Carlo standard errors (`mean_mcse` in the CSV): at "
        "most ±0.0008 (T1076), or ±1.6 % of the mean (T1571); MAL values keep four significant figures only so that "
        "a rerun with the same seed writes the same file."
    )


def diagnostics(passed: bool) -> dict:
    return {
        "divergences": 0 if passed else 5,
        "max_rhat": 1.0042 if passed else 1.2,
        "min_ess_bulk": 812.6 if passed else 20.0,
        "chains": 4,
        "draws": 1500,
        "passed": passed,
        "problems": [] if passed else ["5 divergent transitions", "max R-hat 1.200 > 1.01"],
    }


def loo_row(variant: str, diff: float, dse: float, bad: int, eligible: bool) -> dict:
    return {
        "variant": variant,
        "description": f"{variant} model",
        "elpd_loo": -123.44 - diff,
        "se": 5.56,
        "elpd_diff": diff,
        "dse": dse,
        "p_loo": 12.34,
        "pareto_k_bad": bad,
        "eligible": eligible,
    }


def catalogue_summary(variant: str = "offsets", comparison: list | None = None) -> dict:
    return {
        "diagnostics": {"offsets": diagnostics(True), "shared": diagnostics(False)},
        "variant": variant,
        "variant_description": "one κ, a systematic offset per source",
        "reference_source": "mtrends2020",
        "techniques": ROWS,
        "n_techniques": 3,
        "n_observations": 4,
        "n_multi_source": 1,
        "hyperparameters": [
            {"name": "mu_logit_mean", "mean": -2.0, "sd": 0.5, "hdi_94": [-2.9, -1.1], "ess_bulk": 812.6, "r_hat": 1.0},
            {
                "name": "source_offset[sok]",
                "mean": math.log(2.0),
                "sd": 0.2,
                "hdi_94": [math.log(1.5), math.log(2.7)],
                "ess_bulk": 900.0,
                "r_hat": 1.001,
            },
        ],
        "comparison": comparison or [],
        "priors": {"mu_logit_mean": "Normal(-2, 1.5)"},
        "versions": {"pymc": "5.0"},
        "settings": {"seed": 7, "chains": 4, "draws": 1500, "tune": 1500},
        "data_sha256": "ab" * 32,
    }


def test_the_report_states_its_diagnostics_first():
    lines = render_catalogue_markdown(catalogue_summary()).splitlines()
    assert lines[:3] == [
        "# Every technique with countable evidence",
        "",
        "> **Diagnostics passed** for the chosen model `offsets`: 0 divergent transitions, max R-hat 1.004, min bulk "
        "ESS 813 (4 chains × 1500 draws).",
    ]
    failed = render_catalogue_markdown(catalogue_summary(variant="shared")).splitlines()
    assert failed[2:5] == [
        "> **⚠ THE CHOSEN MODEL FAILED ITS DIAGNOSTICS — do not use these numbers as they stand.**",
        "> - 5 divergent transitions",
        "> - max R-hat 1.200 > 1.01",
    ]
    assert not any(line.startswith("> **Diagnostics passed**") for line in failed)


def test_the_report_rows_and_counts():
    text = render_catalogue_markdown(catalogue_summary())
    lines = text.splitlines()
    assert "enterpriseLang's published value lies inside the 94 % HDI for 1 of the 2 techniques that have one." in text
    assert (
        "| T1102 Web Service | mtrends2020 9/227; sok2019_windows_malware 47/951 | `Bernoulli(0.0445)` | 0.0264 | "
        "[0.0118, 0.0430] | **no** | 0.03 | `Bernoulli(0.02636)` |"
    ) in lines
    assert (
        "| T1076 → T1021.001 Remote Services, RDP | mtrends2020 43/227 | `Bernoulli(0.5561)*Exponential(480)` | "
        "0.1900 | [0.1400, 0.6000] | yes | 0.00 | `Exponential(480)*Bernoulli(0.19)` |"
    ) in lines
    assert (
        "| T1571 Non-Standard Port | mtrends2020 5/227 | `` | 0.0250 | [0.0118, 0.0430] | – | – | `Bernoulli(0.025)` |"
    ) in lines
    assert "| mu_logit_mean | -2.000 | 0.500 | [-2.900, -1.100] | 813 | 1.000 |" in lines
    assert "- sok counts the same technique 2.0 times as often in odds as `mtrends2020` (94 % HDI 1.5 to 2.7)." in lines
    assert "| `offsets` | 0 | 1.004 | 813 | yes |" in lines
    assert "| `shared` | 5 | 1.200 | 20 | no: 5 divergent transitions; max R-hat 1.200 > 1.01 |" in lines
    assert "Required: 0 divergences, R-hat ≤ 1.01, bulk ESS ≥ 400 for every parameter." in lines
    assert (
        "`attackprev fit --all` — priors: mu_logit_mean: Normal(-2, 1.5). Seed 7, 4 chains × 1500 draws after 1500 "
        "tuning steps; data SHA-256 `abababababababab…`. Versions: pymc 5.0."
    ) in lines
    assert "## Which model: PSIS-LOO" not in text  # no comparison, no section


def test_the_psis_loo_section():
    rows = [loo_row("offsets", 0.0, 0.0, 0, True), loo_row("shared", 3.26, 1.04, 2, False)]
    lines = render_catalogue_markdown(catalogue_summary(comparison=rows)).splitlines()
    start = lines.index("## Which model: PSIS-LOO")
    assert lines[start + 4 : start + 6] == [
        "| `offsets` (offsets model) | -123.4 | 5.6 | 0.0 | 0.0 | 12.3 | 0 of 4 | yes |",  # 0.0, never -0.0
        "| `shared` (shared model) | -126.7 | 5.6 | -3.3 | 1.0 | 12.3 | 2 of 4 | no (failed diagnostics) |",
    ]
    assert lines[start + 7] == (
        "The highest expected log predictive density is `offsets`'s. PSIS-LOO is unreliable for observations whose "
        "Pareto k exceeds its threshold (up to 2 of 4 here): most techniques have a single observation, so leaving it "
        "out changes that technique's posterior a lot. Treat the differences as indicative."
    )
    kept = [loo_row("offsets", 0.0, 0.0, 0, True), loo_row("shared", 1.26, 1.04, 0, True)]
    lines = render_catalogue_markdown(catalogue_summary(variant="shared", comparison=kept)).splitlines()
    start = lines.index("## Which model: PSIS-LOO")
    assert lines[start + 7] == (
        "`offsets` scores highest, but `shared` is within two standard errors of it (-1.3 ± 1.0) or the better-scoring "
        "ones failed their diagnostics, and the simpler adequate model is kept. "
    )


def test_excluded_figures_are_counted_by_reason(tmp_path):
    path = tmp_path / "excluded.csv"
    path.write_text("technique_id,reason\nT1,proxy: a\nT2,repeat\nT3,proxy: b\nT4,\n", encoding="utf-8")
    assert excluded_markdown(path) == (
        "## Figures left out of the model\n\n4 figures quoted in the enterpriseLang notes do not count how often "
        "attacks use a technique (or repeat another), and are recorded with their reasons in `data/excluded.csv`:\n\n"
        "| reason | figures |\n|---|---|\n| proxy | 2 |\n| repeat | 1 |\n| unspecified | 1 |"
    )
