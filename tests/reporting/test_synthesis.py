"""The multi-source catalogue report's formatting: known inputs, exact text."""

from __future__ import annotations

import copy
import json

import pytest

from attackprev.reporting.synthesis import (
    _csv,
    _elang_section,
    _interval,
    _interval_raw,
    _p,
    mal_line,
    render_synthesis_markdown,
)
from tests.conftest import ROOT

SUMMARY = ROOT / "reports" / "techniques" / "summary.json"


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.0445, "0.0445"),
        (0.5, "0.5000"),
        (1.0, "1.0000"),
        (0.001, "0.0010"),  # the threshold keeps four decimals
        (0.00099, "0.00099"),  # below it, two significant figures
        (3.45221e-05, "3.5e-05"),
        (0.0, "0"),
    ],
)
def test_p(x, text):
    assert _p(x) == text


def test_intervals():
    assert _interval({"hdi_94": [0.0118, 0.043]}) == "0.0118–0.0430"
    assert _interval({"hdi_94": [3.45221e-05, 0.00721189]}) == "3.5e-05–0.0072"
    assert _interval_raw({"hdi_94": [0.405, -0.6049]}) == "0.41 to -0.60"  # 0.405 is stored just above ·405


@pytest.mark.parametrize(
    ("p", "line"),
    [
        (0.0445, "[Bernoulli(0.0445)]"),
        (0.0263584, "[Bernoulli(0.02636)]"),
        (0.0, "[Bernoulli(0)]"),
        (1.0, "[Bernoulli(1)]"),
        (0.99996, "[Bernoulli(0.99996)]"),  # four figures would round it to 1
        (1e-9, "[Bernoulli(0.000000001)]"),  # never exponent notation (mal-toolbox misreads it)
        (0.5, "[Bernoulli(0.5)]"),
    ],
)
def test_mal_line(p, line):
    assert mal_line(p) == line


def test_csv_writes_six_figures_and_blanks():
    rows = [{"a": 0.0263584123, "b": None, "c": True, "d": "x, y", "e": 3}]
    assert _csv(rows, ["a", "b", "c", "d", "e"]) == 'a,b,c,d,e\n0.0263584,,True,"x, y",3\n'


@pytest.fixture
def summary() -> dict:
    """The committed catalogue's summary, with a headline of chosen numbers."""
    s = json.loads(SUMMARY.read_text(encoding="utf-8"))
    s["headline"] |= {
        "mean": 0.0264,
        "hdi_94": [0.0118, 0.043],
        "point": 0.0445,
        "percentile_of_point": 96.9333,
        "prob_greater": 0.0306667,
        "point_inside_hdi": False,
    }
    return s


def test_a_passed_fit_opens_with_the_title_and_states_its_diagnostics(summary):
    summary["diagnostics"] |= {"max_rhat": 1.00875, "min_ess_bulk": 441.389, "divergences": 0}
    lines = render_synthesis_markdown(summary).splitlines()
    assert lines[0] == "# The catalogue: every technique from every source, on one scale"
    assert lines[4].startswith("Diagnostics: 0 divergences, max R-hat 1.009, min bulk ESS 441 over every sampled ")
    assert "(4 chains × 1500 draws; required: 0 divergences, R-hat ≤ 1.01, ESS ≥ 400)" in lines[4]
    assert (
        "**0.0264** on the mtrends scale (94% HDI 0.0118–0.0430). enterpriseLang's `Bernoulli(0.0445)` is at the "
        "96.9th percentile of this posterior; P(p > 0.0445) = 0.031; it is outside the 94% HDI."
    ) in lines


def test_a_failed_fit_opens_with_a_warning(summary):
    summary["diagnostics"] |= {"passed": False, "problems": ["3 divergent transitions", "min bulk ESS 212 < 400"]}
    lines = render_synthesis_markdown(summary).splitlines()
    assert lines[:3] == [
        "> **Sampler diagnostics failed** (3 divergent transitions; min bulk ESS 212 < 400): the numbers below are "
        "not reliable.",
        "",
        "# The catalogue: every technique from every source, on one scale",
    ]


def test_a_tiny_headline_keeps_two_significant_figures(summary):
    summary["headline"] |= {"mean": 0.00042, "hdi_94": [0.0, 0.0012], "point_inside_hdi": True}
    text = render_synthesis_markdown(summary)
    assert "**0.00042** on the mtrends scale (94% HDI 0–0.0012)." in text and "it is inside the 94% HDI" in text


def test_the_enterpriselang_section():
    largest = {
        "technique_id": "T1176.001",
        "name": "Software Extensions: Browser Extensions",
        "published_p": 0.85,
        "mean": 0.00259539,
        "hdi_low": 3.45221e-05,
        "hdi_high": 0.00721189,
        "prob_above_published": 0.0,
        "target_data": False,
        "enterpriselang_steps": "Browser.browserExtensions",
    }
    s = {
        "target": "mtrends",
        "enterpriselang": {
            "techniques": 97,
            "inside": 17,
            "above_hdi": 67,
            "median_ratio": 2.7549,
            "largest": [largest],
        },
    }
    lines = _elang_section(s)
    assert lines[2] == (
        "97 techniques have a step in enterpriseLang whose TTC publishes a Bernoulli probability "
        "(`data/enterpriselang_attack_steps.csv`). 17 of those values lie inside the technique's 94% HDI on the "
        "mtrends scale and 67 above it; the median ratio of published to estimated is 2.75. enterpriseLang averages "
        "percentages of sources that count different populations; the estimates here are all on the mtrends scale "
        "(the families' offsets are below)."
    )
    assert lines[4] == "The 1 largest disagreements (by ratio):"
    assert lines[8] == (
        "| T1176.001 Software Extensions: Browser Extensions | 0.85 | 0.0026 | 3.5e-05–0.0072 | 0.000 | no | "
        "Browser.browserExtensions |"
    )
    empty = copy.deepcopy(s)
    empty["enterpriselang"] |= {"techniques": 0, "largest": []}
    assert _elang_section(empty) == []
