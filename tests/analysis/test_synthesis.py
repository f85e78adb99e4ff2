"""The model comparison's runner-up beside the catalogue's estimates."""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.analysis.synthesis import MATERIAL_RATIO, add_runner_up, load_runner_up
from attackprev.validation.comparison import runner_up_values, values_csv


def _estimate(t: str, mean: float, low: float, high: float) -> dict:
    return {"technique_id": t, "mean": mean, "hdi_low": low, "hdi_high": high}


@pytest.fixture
def comparison_csv(tmp_path):
    """The comparison's CSV as `validation.comparison` writes it, from draws of known means."""
    rng = np.random.default_rng(0)
    headline = rng.normal([0.02, 0.10, 0.30], 0.001, size=(4000, 3))
    runner_up = rng.normal([0.021, 0.30, 0.31], 0.001, size=(4000, 3))
    rows = runner_up_values(headline, runner_up, ["T1", "T2", "T3"], reported={"T1"})
    path = tmp_path / "model_comparison.csv"
    path.write_text(values_csv(rows, "synthesis", "exchangeable"))
    return path


def test_load_runner_up_reads_what_the_comparison_writes(comparison_csv):
    values = load_runner_up(comparison_csv)
    assert sorted(values) == ["T1", "T2", "T3"] and values["T2"]["model"] == "exchangeable"
    assert values["T2"]["mean"] == pytest.approx(0.30, abs=1e-3)
    assert values["T2"]["hdi_low"] < 0.30 < values["T2"]["hdi_high"]


def test_a_missing_comparison_adds_nothing(tmp_path):
    assert load_runner_up(tmp_path / "absent.csv") == {}
    estimates = [_estimate("T1", 0.02, 0.01, 0.03)]
    assert add_runner_up(estimates, {}, "mtrends")["model"] is None
    assert "runner_up_mean" not in estimates[0]


def test_material_differences_are_flagged_against_the_current_headline(comparison_csv):
    estimates = [
        _estimate("T1", 0.020, 0.015, 0.025),  # runner-up 0.021: inside, ratio 1.05
        _estimate("T2", 0.100, 0.050, 0.400),  # runner-up 0.30: inside the HDI but 3 times the mean
        _estimate("T3", 0.250, 0.240, 0.260),  # runner-up 0.31: outside the HDI, ratio 1.24
        _estimate("T4", 0.010, 0.005, 0.020),  # not in the comparison
    ]
    out = add_runner_up(estimates, load_runner_up(comparison_csv), "mtrends")
    assert out["model"] == "exchangeable" and out["techniques"] == 3 and out["material_ratio"] == MATERIAL_RATIO
    assert [d["technique_id"] for d in out["differ"]] == ["T2", "T3"]  # largest ratio first
    assert [r.get("runner_up_differs") for r in estimates] == [False, True, True, None]
    assert estimates[2]["runner_up_mean"] == pytest.approx(0.31, abs=1e-3)


def test_another_target_gets_no_runner_up(comparison_csv):
    """The comparison scores the mtrends scale only: its values are not put beside another scale's."""
    estimates = [_estimate("T1", 0.2, 0.1, 0.3)]
    assert add_runner_up(estimates, load_runner_up(comparison_csv), "attack_groups")["model"] is None
    assert "runner_up_model" not in estimates[0]
