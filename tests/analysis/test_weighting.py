"""Source weighting and the other sweeps of the notebooks, against answers known in closed form."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from attackprev.analysis.weighting import (
    FAST_ENV,
    Estimate,
    bisect,
    catalogue_comparison,
    complete_pooling,
    count_for_denominator,
    denominator_sweep,
    disagreement_reason,
    excluded_figures,
    fast_mode,
    hierarchical,
    interval,
    leave_one_out,
    markdown_table,
    mcmc_check,
    mean_of_percentages,
    no_pooling,
    pooled_rate,
    repo_root,
    weight_grid,
    weight_sweep,
)
from attackprev.inference.exact import fit_exact
from attackprev.model.priors import PRIORS
from tests.grid_reference import grid_mu

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


# ------------------------------------------------------------------------ what the notebooks read and print
@pytest.mark.parametrize(
    ("value", "fast"),
    [(None, False), ("", False), ("0", False), ("false", False), (" No ", False), ("1", True), ("yes", True)],
)
def test_fast_mode_reads_its_environment_variable(monkeypatch, value, fast):
    if value is None:
        monkeypatch.delenv(FAST_ENV, raising=False)
    else:
        monkeypatch.setenv(FAST_ENV, value)
    assert fast_mode() is fast


def test_repo_root_is_the_folder_holding_the_project():
    assert repo_root().resolve() == Path(__file__).resolve().parents[2]
    assert (repo_root() / "pyproject.toml").is_file()


def test_mean_of_percentages_is_enterpriselangs_arithmetic():
    """T1102's note: (3.96 % + 47/951) / 2 = 4.451 %, published as 0.0445; the sizes 227 and 951 play no part."""
    assert mean_of_percentages([0.0396, 47 / 951]) == pytest.approx(0.044510830704521556, rel=1e-12)
    assert round(mean_of_percentages(x for x in (0.0396, 47 / 951)), 4) == 0.0445  # any iterable
    assert mean_of_percentages([0.5]) == 0.5


def test_estimate_rows():
    assert Estimate("m", 0.1, 0.05, 0.2).as_row() == {"method": "m", "mean": 0.1, "low": 0.05, "high": 0.2}
    assert Estimate("point", 0.0445).as_row() == {"method": "point", "mean": 0.0445, "low": None, "high": None}


@pytest.mark.parametrize(
    ("low", "high", "digits", "text"),
    [
        (0.01234, 0.5, 4, "[0.0123, 0.5000]"),
        (0.0, 1.0, 4, "[0.0000, 1.0000]"),
        (0.00004, 0.00006, 4, "[0.0000, 0.0001]"),  # below half a unit of the last digit: 0; above: 1
        (0.125, 0.875, 2, "[0.12, 0.88]"),  # exactly representable halves round to even
        (0.0416, 1.9, 1, "[0.0, 1.9]"),
        (None, 0.2, 4, "–"),
        (0.1, None, 4, "–"),
    ],
)
def test_interval_text(low, high, digits, text):
    assert interval(low, high, digits) == text


def test_markdown_table():
    rows = [{"a": 1, "b": "x"}, {"a": 2.5, "b": None}]
    table = markdown_table(rows, {"A": lambda r: r["a"], "B": lambda r: r["b"]})
    assert table == "| A | B |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    assert markdown_table([], {"only": str}) == "| only |\n|---|"


def test_excluded_figures_are_the_rows_of_the_technique(tmp_path):
    path = tmp_path / "excluded.csv"
    path.write_text(
        "technique_id,reason,source_key\nT11,proxy: a count of something else,a\nT2,repeat,b\nT11,repeat,c\n",
        encoding="utf-8",
    )
    assert [r["source_key"] for r in excluded_figures("T11", path)] == ["a", "c"]
    assert excluded_figures("T2", path)[0]["reason"] == "repeat"
    assert excluded_figures("T3", path) == []


def test_excluded_figures_of_the_bundled_table_match_a_hand_count():
    import csv

    from attackprev.config import EXCLUDED_CSV

    with open(EXCLUDED_CSV, newline="", encoding="utf-8") as fh:
        counted = [r["technique_id"] for r in csv.DictReader(fh)]
    for t in ("T1571", "T1076", "T1102"):
        assert len(excluded_figures(t)) == counted.count(t)
    assert counted.count("T1571") > 0 and counted.count("T1102") == 0


# ------------------------------------------------------------------------ against a brute-force posterior
def test_hierarchical_is_the_mean_and_hdi_of_mu():
    exact = fit_exact(Y, N, PRIOR)
    est = hierarchical(exact)
    assert est.method == "hierarchical (exact)" and (est.low, est.high) == exact.mu.hdi_94
    assert est.mean == pytest.approx(grid_mu(Y, N, PRIOR).mean, rel=1e-3)
    assert hierarchical(exact, "named").method == "named"


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0])
def test_sweep_rows_match_a_brute_force_posterior(weight):
    """Mean of μ and P(μ > 0.0445) with the SoK study's weight at w, against quadrature on a fixed fine grid."""
    (row,) = weight_sweep(Y, N, PRIOR, source=1, grid=[weight], point=0.0445)
    ref = grid_mu(Y, N, PRIOR, weights=[1.0, weight])
    assert row["weight"] == weight
    assert row["mean"] == pytest.approx(ref.mean, rel=1e-3)
    assert row["prob_greater"] == pytest.approx(ref.prob_above(0.0445), abs=2e-3)
    assert row["hdi_low"] < row["median"] < row["hdi_high"]


def test_sweep_without_a_point_has_no_probability():
    (row,) = weight_sweep(Y, N, PRIOR, source=0, grid=[1.0])
    assert set(row) == {"weight", "mean", "median", "hdi_low", "hdi_high"}


def test_leave_one_out_probabilities_match_a_brute_force_posterior():
    rows = {r["left_out"]: r for r in leave_one_out(Y, N, ["mt", "sok"], PRIOR, point=0.0445)}
    assert rows["mt"]["prob_greater"] == pytest.approx(grid_mu(Y[1:], N[1:], PRIOR).prob_above(0.0445), abs=2e-3)
    assert rows["(none)"]["prob_greater"] == pytest.approx(grid_mu(Y, N, PRIOR).prob_above(0.0445), abs=2e-3)


def test_weight_grid_needs_two_sources_and_is_the_weighted_fit():
    with pytest.raises(ValueError, match="exactly two sources"):
        weight_grid([1, 2, 3], [10, 20, 30], PRIOR, [0.5, 1.0])
    grid = weight_grid(Y, N, PRIOR, [0.5, 1.0], resolution=256)
    assert grid[0, 1] == pytest.approx(fit_exact(Y, N, PRIOR, weights=[0.5, 1.0]).mu.mean, rel=1e-9)
    assert grid[1, 0] == pytest.approx(fit_exact(Y, N, PRIOR, weights=[1.0, 0.5]).mu.mean, rel=1e-9)


def test_denominator_sweep_with_whole_counts():
    """3.96 % of 227 is 9 (consistent), of 454 is 18 (consistent), of 100 is 4 (nearest: 4.00 %)."""
    rows = denominator_sweep(Y, N, PRIOR, 0, 3.96, [100, 227, 454], decimals=2, point=0.0445)
    assert [(r["trials"], r["successes"], r["how"]) for r in rows] == [
        (100, 4, "nearest"),
        (227, 9, "consistent"),
        (454, 18, "consistent"),
    ]
    assert [r["rate"] for r in rows] == [0.04, 9 / 227, 18 / 454]
    assert rows[1]["mean"] == pytest.approx(fit_exact(Y, N, PRIOR).mu.mean, rel=1e-9)
    assert rows[0]["mean"] == pytest.approx(grid_mu([4, 47], [100, 951], PRIOR).mean, rel=1e-3)
    assert rows[0]["prob_greater"] == pytest.approx(grid_mu([4, 47], [100, 951], PRIOR).prob_above(0.0445), abs=2e-3)


# ------------------------------------------------------------------------ MCMC against exact, on known draws
def _tree(mu: np.ndarray, divergent: int = 0):
    """A posterior of μ alone, shape (chain, draw), with ``divergent`` divergent transitions in chain 0."""
    import xarray as xr

    chains, draws = mu.shape
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    diverging = np.zeros(mu.shape, bool)
    diverging[0, :divergent] = True
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"mu": (("chain", "draw"), mu)}, coords=coords),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging)}, coords=coords),
        }
    )


def test_mcmc_check_on_independent_draws():
    """Independent Beta draws: ESS ≈ the number of draws, R-hat ≈ 1, MCSE ≈ sd / √N (closed forms for iid draws)."""
    exact = fit_exact(Y, N, PRIOR)
    rng = np.random.default_rng(11)
    mu = rng.beta(4.0, 50.0, size=(4, 2000))
    out = mcmc_check(_tree(mu, divergent=3), exact)
    assert out["mcmc_mean"] == pytest.approx(mu.mean(), rel=1e-12)
    assert out["exact_mean"] == exact.mu.mean and out["exact_hdi"] == exact.mu.hdi_94
    assert out["mcse"] == pytest.approx(mu.std() / math.sqrt(mu.size), rel=0.1)
    assert out["gap_in_mcse"] == pytest.approx(abs(mu.mean() - exact.mu.mean) / out["mcse"], rel=1e-12)
    assert out["ess_bulk"] == pytest.approx(mu.size, rel=0.15)
    assert abs(out["r_hat"] - 1.0) < 0.01
    assert (out["divergences"], out["chains"], out["draws"]) == (3, 4, 2000)
    lo, hi = out["mcmc_hdi"]  # the shortest 94 % interval of Beta(4, 50), found numerically
    ref = _beta_hdi(4.0, 50.0)
    assert lo == pytest.approx(ref[0], abs=3e-3) and hi == pytest.approx(ref[1], abs=3e-3)


def _beta_hdi(a: float, b: float, prob: float = 0.94) -> tuple[float, float]:
    """The shortest interval holding ``prob`` of Beta(a, b), by minimising its width over the lower tail's mass."""
    import scipy.optimize

    dist = scipy.stats.beta(a, b)
    res = scipy.optimize.minimize_scalar(
        lambda q: dist.ppf(q + prob) - dist.ppf(q), bounds=(0.0, 1.0 - prob), method="bounded", options={"xatol": 1e-10}
    )
    return float(dist.ppf(res.x)), float(dist.ppf(res.x + prob))


# ------------------------------------------------------------------------ the catalogue against published values
def test_catalogue_comparison_splits_each_gap_by_hand():
    """Known draws for T1102 (published 0.0445, figures 3.96 % and 47/951) and T1571 (no published probability)."""
    import xarray as xr

    from attackprev.evidence.tables import load_evidence

    evidence = load_evidence()
    rng = np.random.default_rng(5)
    techniques = ["T1102", "T1571"]
    mu = np.stack([rng.beta(20.0, 980.0, size=(2, 1500)), rng.beta(2.0, 20.0, size=(2, 1500))], axis=-1)
    kappa = np.exp(rng.normal([3.0, 1.0], 0.5, size=(2, 1500, 2)))
    coords = {"chain": [0, 1], "draw": np.arange(1500), "technique": techniques}
    dims = ("chain", "draw", "technique")
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"mu": (dims, mu), "kappa": (dims, kappa)}, coords=coords)})
    rows = catalogue_comparison(tree, evidence)
    assert [r["technique_id"] for r in rows] == techniques  # a technique without a published probability last
    t1102, t1571 = rows
    draws = mu[..., 0].ravel()
    modelled = (0.0396 + 47 / 951) / 2  # the note's figures: M-Trends' printed percentage and the SoK count
    assert t1102["published"] == 0.0445 and t1102["sources"] == 2 and t1102["successes"] == 56
    assert t1102["evidence"] == "mtrends2020 9/227; sok2019_windows_malware 47/951"
    assert t1102["modelled_figures_mean"] == pytest.approx(modelled, rel=1e-12)
    assert t1102["pooled_rate"] == pytest.approx(56 / 1178, rel=1e-12)
    assert t1102["mean"] == pytest.approx(draws.mean(), rel=1e-12)
    assert t1102["log_ratio"] == pytest.approx(math.log(draws.mean() / 0.0445), rel=1e-12)
    assert t1102["evidence_part"] == pytest.approx(math.log(modelled / 0.0445), rel=1e-12)
    assert t1102["model_part"] == pytest.approx(math.log(draws.mean() / modelled), rel=1e-12)
    assert t1102["kappa_median"] == pytest.approx(float(np.median(kappa[..., 0])), rel=1e-12)
    assert t1102["source_ratio"] == pytest.approx((47 / 951) / (9 / 227), rel=1e-12)
    assert t1102["excluded"] == 0
    lo, hi = _beta_hdi(20.0, 980.0)  # about [0.012, 0.028]: 0.0445 lies far above it
    assert t1102["hdi_low"] == pytest.approx(lo, abs=1e-3) and t1102["hdi_high"] == pytest.approx(hi, abs=1e-3)
    assert t1102["inside_hdi"] is False
    # the mean (0.02) lies more than 10 % below both sources' rates, and the model's part of the gap dominates
    assert t1102["reason"] == "shrinkage"
    assert t1571["published"] is None and t1571["log_ratio"] is None and t1571["inside_hdi"] is None
    assert t1571["reason"] == "no published probability"
    assert t1571["excluded"] == len(excluded_figures("T1571")) > 0
