"""reports/validation.md: verdicts from the checks' saved figures; failures, missing and stale checks first."""

from __future__ import annotations

import pytest

from attackprev.validation.summary import read_records, render, write_record

SOURCES = {
    "data_sha256": "abc",
    "loso": {"0.5": [52, 100, 0.05], "0.8": [81, 100, 0.04], "0.94": [93, 100, 0.0237], "refits": 10,
             "refits_failing_diagnostics": 0},
    "forecast_source": "mtrends2024",
    "forecast": {"previous year": {"rows": 50, "difference": 12.0, "difference_se": 4.0},
                 "enterpriseLang": {"rows": 20, "difference": 30.0, "difference_se": 9.0}},
    "priors": [{"mean": 0.026, "passed": True}, {"mean": 0.027, "passed": True}],
}  # fmt: skip
SBC = {"data_sha256": "abc", "catalogues": 100, "techniques": 20, "chi2_p": {"m": 0.5, "s": 0.2}, "ks_p": {},
       "coverage_94": {}, "fits_with_problems": 0}  # fmt: skip
COMPARISON = {
    "data_sha256": "abc",
    "headline": "synthesis",
    "choice": "synthesis",
    "runner_up": "offsets_only",
    "totals": {"synthesis": {"total": -900.0, "count": 800, "difference": 0.0, "difference_se": 0.0},
               "offsets_only": {"total": -950.0, "count": 800, "difference": -50.0, "difference_se": 10.0}},
    "fits": 12,
    "fits_failing_diagnostics": 0,
}  # fmt: skip


def _records(**changes):
    records = {"sources": SOURCES, "synthesis_sbc": SBC, "comparison": COMPARISON}
    return records | changes


def test_every_check_passing_is_said_first_with_its_figures():
    text = render(_records(), "abc")
    assert text.startswith("> **Every check of the headline model passed**")
    assert "93 of 100 = 0.930 (0.94 ± 0.047)" in text
    assert "previous year: +12.0 ± 8.0 over 50 counts" in text
    assert "smallest p = 0.2 (s); 0 at or below 0.01" in text
    assert "chosen: synthesis, runner-up: offsets_only" in text
    assert "runs from 0.0260 to 0.0270" in text
    assert "Sampler diagnostics" not in text


def test_unhealthy_fits_are_said_first_even_when_every_check_passes():
    records = _records(
        sources=SOURCES | {"loso": SOURCES["loso"] | {"refits_failing_diagnostics": 3}},
        synthesis_sbc=SBC | {"fits_with_problems": 40},
        comparison=COMPARISON | {"fits_failing_diagnostics": 5},
    )
    head = render(records, "abc").split("# Validation")[0]
    assert head.startswith("> **Every check of the headline model passed**")
    expected = "3 of 10 held-out refits; 40 of 100 SBC fits; 5 of 12 model-comparison fits miss"
    assert f"> **Sampler diagnostics:** {expected}" in head
    priors = [{"mean": 0.026, "diagnostics": "0, 1.009, 441"}, {"mean": 0.027, "diagnostics": "0, 1.017, 520"}]
    head = render(_records(sources=SOURCES | {"priors": priors}), "abc").split("# Validation")[0]
    assert "1 of 2 prior-sensitivity fits miss" in head  # R-hat 1.017 > 1.01
    priors = [{"mean": 0.026, "diagnostics": "", "passed": True}, {"mean": 0.027, "diagnostics": "", "passed": False}]
    assert "1 of 2 prior-sensitivity fits" in render(_records(sources=SOURCES | {"priors": priors}), "abc")
    older = {k: v for k, v in COMPARISON.items() if not k.startswith("fits")}
    head = render(_records(comparison=older), "abc").split("# Validation")[0]
    assert "predate its count of fits failing the diagnostics" in head


@pytest.mark.parametrize(
    ("records", "data", "expected"),
    [
        (_records(synthesis_sbc=SBC | {"chi2_p": {"m": 0.5, "s": 0.004}}), "abc", "Failed: Simulation-based"),
        (_records(sources=SOURCES | {"loso": SOURCES["loso"] | {"0.94": [80, 100, 0.0237]}}), "abc", "Failed: Leave"),
        (_records(comparison=COMPARISON | {"choice": "offsets_only"}), "abc", "Failed: Model choice"),
        (_records(comparison=None), "abc", "validation.comparison` has not been run"),
        (_records(), "other data", "ran on other data than today's evidence"),
    ],
)
def test_a_failed_missing_or_stale_check_is_said_first(records, data, expected):
    text = render(records, data)
    head = text.split("# Validation")[0]
    assert head.startswith("> **Not every check passed.**") and expected in head


def test_records_round_trip(tmp_path):
    write_record(tmp_path, "sources", SOURCES)
    records = read_records(tmp_path)
    assert records["sources"]["loso"]["0.94"] == [93, 100, 0.0237] and records["comparison"] is None
