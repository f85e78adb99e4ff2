"""Source weighting and the other sweeps of the notebooks, against answers known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from attackprev.analysis.weighting import (
    bisect,
    complete_pooling,
    count_for_denominator,
    denominator_sweep,
    disagreement_reason,
    leave_one_out,
    no_pooling,
    pooled_rate,
    weight_grid,
    weight_sweep,
)
from attackprev.inference.exact import fit_exact
from attackprev.model.priors import PRIORS

PRIOR = PRIORS["halfnormal1"]
Y, N = np.array([9.0, 47.0]), np.array([227.0, 951.0])


def test_pooled_rate_weights_numerator_and_denominator():
    assert pooled_rate(Y, N) == pytest.approx(56 / 1178)
    assert pooled_rate(Y, N, [0.5, 1.0]) == pytest.approx((4.5 + 47) / (113.5 + 951))
    assert pooled_rate(Y, N, [0.0, 1.0]) == pytest.approx(47 / 951)  # a weight-0 source drops out entirely


def test_complete_pooling_is_one_binomial_with_a_jeffreys_interval():
    est = complete_pooling(Y, N, [0.5, 1.0])
    dist = scipy.stats.beta(51.5 + 0.5, 1064.5 - 51.5 + 0.5)
    assert est.mean == pytest.approx(51.5 / 1064.5)
    assert (est.low, est.high) == pytest.approx((dist.ppf(0.03), dist.ppf(0.97)))
    alone = no_pooling([9, 47], [227, 951], ["a", "b"])
    assert [e.mean for e in alone] == [9 / 227, 47 / 951]


@pytest.mark.parametrize(
    ("fn", "target", "root"),
    [
        (lambda x: x**3, 0.125, 0.5),  # increasing
        (lambda x: 1.0 - x, 0.3, 0.7),  # decreasing: keeping the wrong half would end at an end point
        (lambda x: math.exp(-5 * x), math.exp(-1), 0.2),
    ],
)
def test_bisect_finds_the_crossing(fn, target, root):
    assert bisect(fn, target) == pytest.approx(root, abs=2e-6)


def test_bisect_says_when_there_is_no_crossing():
    assert bisect(lambda x: x, 2.0) is None
    assert bisect(lambda x: x, 0.0) == 0.0


def test_weight_zero_removes_a_source_and_weight_one_is_the_plain_fit():
    rows = weight_sweep(Y, N, PRIOR, source=0, grid=[0.0, 1.0])
    alone = fit_exact(Y[1:], N[1:], PRIOR)
    both = fit_exact(Y, N, PRIOR)
    assert rows[0]["mean"] == pytest.approx(alone.mu.mean, rel=1e-9)
    assert rows[1]["mean"] == pytest.approx(both.mu.mean, rel=1e-9)
    grid = weight_grid(Y, N, PRIOR, [0.0, 1.0], resolution=256)
    assert math.isnan(grid[0, 0]) and grid[1, 1] == pytest.approx(both.mu.mean, rel=1e-9)
    assert grid[0, 1] == pytest.approx(alone.mu.mean, rel=1e-9)


def test_a_fractional_denominator_is_a_weight():
    """y = 9 of 227 at weight w has the likelihood of 9w of 227w: the two sweeps must agree."""
    d = 100.0
    as_weight = weight_sweep(Y, N, PRIOR, source=0, grid=[d / 227])[0]["mean"]
    as_count = denominator_sweep(Y, N, PRIOR, 0, 100 * 9 / 227, [d], decimals=None)[0]["mean"]
    assert as_weight == pytest.approx(as_count, rel=1e-9)


def test_count_for_denominator():
    assert count_for_denominator(3.96, 227, 2) == (9, "consistent")
    assert count_for_denominator(3.96, 100, 2) == (4, "nearest")  # 4/100 = 4.00 %, not 3.96 %


def test_leave_one_out_drops_each_source_in_turn():
    rows = leave_one_out(Y, N, ["a", "b"], PRIOR)
    by_source = {r["left_out"]: r for r in rows}
    assert by_source["(none)"]["mean"] == pytest.approx(fit_exact(Y, N, PRIOR).mu.mean, rel=1e-9)
    assert by_source["a"]["mean"] == pytest.approx(fit_exact(Y[1:], N[1:], PRIOR).mu.mean, rel=1e-9)
    assert by_source["b"]["mean"] == pytest.approx(fit_exact(Y[:1], N[:1], PRIOR).mu.mean, rel=1e-9)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"evidence_part": 0.01, "model_part": 0.02}, "agrees"),
        ({"evidence_part": 0.5, "model_part": 0.2}, "other figures"),
        ({"evidence_part": 0.0, "model_part": 0.5, "rates": {"a": 0.1, "b": 0.12}, "mean": 0.3}, "shrinkage"),
        (
            {"evidence_part": 0.0, "model_part": 0.5, "rates": {"a": 0.02, "b": 0.2}, "mean": 0.1, "source_ratio": 10},
            "sources disagree",
        ),
        (
            {"evidence_part": 0.0, "model_part": 0.5, "rates": {"a": 0.1, "b": 0.2}, "mean": 0.15, "source_ratio": 2},
            "pooling",
        ),
        ({"evidence_part": None, "model_part": None}, "no published probability"),
    ],
)
def test_disagreement_reason(row, reason):
    assert disagreement_reason(row) == reason
