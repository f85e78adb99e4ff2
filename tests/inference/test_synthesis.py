"""Fitting the multi-source model: recovery of known offsets, seeds, and the target-scale draws."""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.inference.synthesis import SynthesisSettings, cell_logits, fit_synthesis, predictive_draws, target_draws
from tests.synthesis_fixtures import simulate_table

TRUTH = {"mtrends": 0.0, "groups": 1.0, "reports": -0.8, "malware": 0.5}
DEPARTURES = {"mtrends": 0.6, "groups": 0.5, "reports": 0.7, "malware": 1.0}
TRIALS = {"mtrends": 400, "groups": 170, "reports": 2600, "malware": 950}
COVERAGE = {"mtrends": "partial", "groups": "complete", "reports": "complete", "malware": "partial"}
QUICK = SynthesisSettings(draws=300, tune=400, chains=2, seed=5)


def _live(n: int) -> list[str]:
    from attackprev.evidence.ids import live_techniques

    return [t for t in live_techniques() if "." not in t][:n]


@pytest.fixture(scope="module")
def simulated():
    table = simulate_table(_live(120), TRUTH, DEPARTURES, TRIALS, COVERAGE, seed=11)
    return table, fit_synthesis(table, settings=QUICK)


@pytest.mark.slow
def test_recovers_the_family_offsets_and_departures(simulated):
    _, result = simulated
    b = result.stacked("b")
    sigma = result.stacked("sigma")
    for f, family in enumerate(result.data.families):
        lo, hi = np.quantile(b[:, f], [0.005, 0.995])
        assert lo <= TRUTH[family] <= hi, (family, lo, hi)
        lo, hi = np.quantile(sigma[:, f], [0.005, 0.995])
        assert lo <= DEPARTURES[family] <= hi, (family, lo, hi)
    # a systematic offset is not mistaken for technique-by-technique scatter, nor the reverse
    assert abs(b[:, result.data.families.index("groups")].mean() - 1.0) < 0.25
    assert result.diagnostics.divergences == 0


@pytest.mark.slow
def test_target_scale_uses_the_family_cell_or_its_departure_scale(simulated):
    _, result = simulated
    phi = result.stacked("phi")
    logits = cell_logits(result, "mtrends")
    for j, (t, fam) in enumerate(result.data.cells):
        if fam == "mtrends":
            assert np.array_equal(logits[:, result.data.techniques.index(t)], phi[:, j])
    missing = [i for i, t in enumerate(result.data.techniques) if (t, "mtrends") not in result.data.cells]
    assert missing, "the simulated partial family lists only some techniques"
    # where the target has no row: a_t + b_T + N(0, σ_T), so the spread exceeds that of a_t alone
    a = result.stacked("a")[:, missing]
    assert (logits[:, missing].std(axis=0) > a.std(axis=0)).all()
    p = target_draws(result, "mtrends")
    assert p.shape == (QUICK.chains * QUICK.draws, len(result.data.techniques)) and ((p > 0) & (p < 1)).all()
    # a new report of a multi-year family is more spread than the family's typical-year rate; a
    # one-source family's new report is its rate
    assert np.array_equal(predictive_draws(result, "groups"), target_draws(result, "groups"))
    assert np.array_equal(cell_logits(result, "mtrends"), logits)  # seeded: same draws twice


@pytest.mark.slow
def test_seed_changes_draws_and_same_seed_repeats(simulated):
    table, result = simulated
    again = fit_synthesis(table, settings=QUICK)
    assert np.array_equal(again.stacked("a"), result.stacked("a"))
    other = fit_synthesis(table, settings=SynthesisSettings(draws=300, tune=400, chains=2, seed=6))
    assert not np.array_equal(other.stacked("a"), result.stacked("a"))
    assert other.record()["settings"]["seed"] == 6 and result.record()["settings"]["seed"] == 5
