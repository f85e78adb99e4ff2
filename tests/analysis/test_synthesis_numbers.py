"""Every number derived from a multi-source posterior, against sums over known draws.

The posterior here is drawn with numpy (:func:`tests.synthesis_fixtures.posterior_result`), not
sampled, so each derived figure (target-scale rates, new-report rates, family rows, a technique's
headline, the pulls of its sources, enterpriseLang's comparison) has an answer computed from the
draws directly and from closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats

from attackprev.analysis import synthesis as an
from attackprev.inference.summaries import hdi
from attackprev.inference.synthesis import cell_logits, predictive_draws, target_draws
from tests.synthesis_fixtures import posterior_result, small_table


@pytest.fixture(scope="module")
def table():
    return small_table()


@pytest.fixture(scope="module")
def result(table):
    return posterior_result(table)


def _stack(result, name):
    x = result.tree["posterior"][name].values
    return x.reshape(-1, *x.shape[2:])


def _cell(result, technique, family):
    return result.data.cells.index((technique, family))


# -- the estimands ----------------------------------------------------------------------------
def test_target_scale_is_the_cell_where_the_family_reports_the_technique(result):
    phi = _stack(result, "phi")
    p = target_draws(result, "groups")
    for t in ("T1059", "T1102", "T1003", "T1566"):
        j = result.data.techniques.index(t)
        np.testing.assert_allclose(p[:, j], scipy.special.expit(phi[:, _cell(result, t, "groups")]), rtol=1e-12)


def test_elsewhere_it_is_level_plus_offset_plus_a_normal_departure(result):
    """T1566 has no mtrends row: (logit − a − b_mtrends) / σ_mtrends must be standard normal."""
    j = result.data.techniques.index("T1566")
    a, b, sigma = _stack(result, "a")[:, j], _stack(result, "b")[:, 0], _stack(result, "sigma")[:, 0]
    z = (cell_logits(result, "mtrends")[:, j] - a - b) / sigma
    assert scipy.stats.kstest(z, "norm").pvalue > 0.001
    # on the malware scale the offset is malware's (index 2), not the reference's 0
    f = result.data.families.index("malware")
    j = result.data.techniques.index("T1102")
    a, b, sigma = _stack(result, "a")[:, j], _stack(result, "b")[:, f], _stack(result, "sigma")[:, f]
    z = (cell_logits(result, "malware")[:, j] - a - b) / sigma
    assert scipy.stats.kstest(z, "norm").pvalue > 0.001 and abs(b.mean() - 0.5 * f) < 0.01


def test_an_unknown_family_is_refused(result):
    with pytest.raises(ValueError, match="unknown family 'cisa'"):
        target_draws(result, "cisa")


def test_a_one_source_family_predicts_its_own_rate(result):
    """groups has one source: a new report's rate is the cell's rate itself."""
    j = result.data.techniques.index("T1003")
    pred = predictive_draws(result, "groups")[:, j]
    np.testing.assert_allclose(pred, scipy.special.expit(_stack(result, "phi")[:, _cell(result, "T1003", "groups")]))


def test_a_several_source_family_predicts_a_beta_around_a_shifted_year(table):
    """mtrends has two years: rate ~ Beta(θκ, (1−θ)κ), θ = logit⁻¹(φ + τ z). With τ = 0 the mean is
    E expit(φ) and the spread about θ is θ(1−θ)/(κ+1); a year shift τ widens it further."""
    still = posterior_result(table, tau=0.0, log_kappa=np.log(50.0), draws=20000)
    j, c = still.data.techniques.index("T1059"), _cell(still, "T1059", "mtrends")
    theta = scipy.special.expit(_stack(still, "phi")[:, c])
    pred = predictive_draws(still, "mtrends")[:, j]
    se = pred.std() / np.sqrt(pred.size)
    assert abs(pred.mean() - theta.mean()) < 4 * se
    within = np.mean((pred - theta) ** 2)
    expected = np.mean(theta * (1 - theta) / 51.0)
    assert within == pytest.approx(expected, rel=0.05)
    shifted = posterior_result(table, tau=1.0, log_kappa=np.log(50.0), draws=20000)
    assert predictive_draws(shifted, "mtrends")[:, j].std() > 1.2 * pred.std()
    # a huge κ and no shift: a new report's rate is the cell's rate
    sharp = posterior_result(table, tau=0.0, log_kappa=14.0, draws=2000)
    np.testing.assert_allclose(
        predictive_draws(sharp, "mtrends")[:, j], scipy.special.expit(_stack(sharp, "phi")[:, c]), atol=3e-3
    )


# -- what the reports state -------------------------------------------------------------------
def test_family_rows(result, table):
    rows = {r["family"]: r for r in an.family_rows(result, table)}
    assert list(rows) == ["mtrends", "groups", "malware"]
    assert rows["mtrends"]["offset"] is None and rows["mtrends"]["sources"] == ["mtrends2020", "mtrends2021"]
    assert (rows["mtrends"]["techniques"], rows["groups"]["techniques"], rows["malware"]["techniques"]) == (2, 4, 2)
    assert rows["groups"]["unit"] == "group"
    for f, fam in enumerate(["mtrends", "groups", "malware"]):
        sigma = _stack(result, "sigma")[:, f]
        assert rows[fam]["departure_sd"]["mean"] == pytest.approx(sigma.mean())
        assert rows[fam]["departure_sd"]["hdi_94"] == list(hdi(sigma))
    assert rows["malware"]["offset"]["mean"] == pytest.approx(_stack(result, "b")[:, 2].mean())


def test_technique_estimates(result, table):
    rows = {r["technique_id"]: r for r in an.technique_estimates(result, table, "groups")}
    assert set(rows) == {"T1003", "T1059", "T1102", "T1566"}
    phi = _stack(result, "phi")
    x = scipy.special.expit(phi[:, _cell(result, "T1102", "groups")])
    r = rows["T1102"]
    assert r["mean"] == pytest.approx(x.mean()) and r["sd"] == pytest.approx(x.std(ddof=1))
    assert [r["hdi_low"], r["hdi_high"]] == list(hdi(x)) == [r["hdi_94_low"], r["hdi_94_high"]]
    assert r["p"] == float(f"{x.mean():.4g}") and r["mal_expression"] == f"Bernoulli({x.mean():.4g})"
    assert r["published_p"] == 0.0445 and r["enterpriselang_steps"] == "ExternalNetwork.webService"
    assert r["prob_above_published"] == pytest.approx(np.count_nonzero(x > 0.0445) / x.size)
    assert r["published_inside_hdi_94"] == bool(hdi(x)[0] <= 0.0445 <= hdi(x)[1])
    # what each rests on: T1102 has mtrends and groups rows, positive in three sources
    assert (r["target_data"], r["families"], r["sources_positive"]) == (True, 2, 3)
    # T1566: zero in groups (complete), 20 in malware; no published value
    r = rows["T1566"]
    assert (r["families"], r["sources_positive"], r["published_p"], r["prob_above_published"]) == (2, 1, None, None)
    assert rows["T1003"]["name"] == "OS Credential Dumping"
    # on the mtrends scale T1566 has no target data
    assert not {r["technique_id"]: r for r in an.technique_estimates(result, table, "mtrends")}["T1566"]["target_data"]


def test_technique_headline_and_view(result, table):
    head = an.technique_headline(result, "T1102", "mtrends", 0.0445)
    x = scipy.special.expit(_stack(result, "phi")[:, _cell(result, "T1102", "mtrends")])
    assert head["mean"] == pytest.approx(x.mean()) and head["hdi_94"] == list(hdi(x))
    assert head["prob_greater"] == pytest.approx(np.count_nonzero(x > 0.0445) / x.size)
    assert head["percentile_of_point"] == pytest.approx(100 * np.count_nonzero(x < 0.0445) / x.size)
    assert head["point_inside_hdi"] == bool(hdi(x)[0] <= 0.0445 <= hdi(x)[1])
    g = scipy.special.expit(_stack(result, "phi")[:, _cell(result, "T1102", "groups")])
    assert head["by_family"]["groups"]["mean"] == pytest.approx(g.mean())
    view = an.SynthesisView(result, table, "mtrends")
    h = view.headline("T1102")
    assert h.mu.shape == (2, 2000)
    np.testing.assert_allclose(h.mu.ravel(), x, rtol=1e-12)
    assert np.array_equal(
        h.theta_new.ravel(), predictive_draws(result, "mtrends")[:, result.data.techniques.index("T1102")]
    )
    assert view.description == "intrusions"  # the year of one report dropped


def test_source_pulls_move_each_rate_by_the_offsets(result, table):
    pulls = {p["source_id"]: p for p in an.source_pulls(result, table, "T1003", "mtrends")}
    b = _stack(result, "b").mean(axis=0)
    rate = (47 + 0.5) / (951 + 1.0)
    expected = scipy.special.expit(scipy.special.logit(rate) - b[2] + b[0])
    assert pulls["malware"]["on_target_scale"] == pytest.approx(expected)
    assert pulls["malware"]["rate"] == 47 / 951 and pulls["malware"]["unit"] == "sample"
    assert pulls["groups"]["departure_sd"] == pytest.approx(_stack(result, "sigma")[:, 1].mean())
    # on a family's own scale its source pulls to its own (smoothed) rate
    own = {p["source_id"]: p for p in an.source_pulls(result, table, "T1003", "malware")}
    assert own["malware"]["on_target_scale"] == pytest.approx(rate)


def test_predictive_rows_sum_the_family_counts(result, table):
    rows = {(r["technique_id"], r["family"]): r for r in an.predictive_rows(result, table)}
    assert len(rows) == 4 * 3
    assert (rows["T1102", "mtrends"]["observed_successes"], rows["T1102", "mtrends"]["observed_trials"]) == (14, 407)
    assert rows["T1566", "mtrends"]["observed_trials"] is None
    per = an.technique_predictive(result, table, "T1102")
    assert (per["mtrends"]["observed_successes"], per["mtrends"]["observed_trials"]) == (14, 407)
    assert per["malware"]["observed_successes"] is None
    g = scipy.special.expit(_stack(result, "phi")[:, _cell(result, "T1102", "groups")])
    assert per["groups"]["mean"] == pytest.approx(g.mean()) == pytest.approx(rows["T1102", "groups"]["mean"])
    assert [per["groups"]["hdi_low"], per["groups"]["hdi_high"]] == list(hdi(g))


# -- comparisons with other values ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("other", "ratio", "outside", "differs"),
    [
        (0.012, 1.2, False, False),
        (0.016, 1.6, False, True),
        (0.025, 2.5, True, True),
        (0.004, 0.4, True, True),
        (0.005, 0.5, False, True),  # on the HDI's lower bound: inside; but 1 / 0.5 = 2 > 1.5
        (0.02, 2.0, False, True),  # on the upper bound: inside
        (0.015, 1.5, False, False),  # a ratio of exactly 1.5 is not beyond it
        (0.0065, 0.65, False, True),  # 1 / 0.65 = 1.54: beyond, from below
    ],
)
def test_material_difference(other, ratio, outside, differs):
    got = an.material_difference(0.01, 0.005, 0.02, other)
    assert got[0] == pytest.approx(ratio) and got[1:] == (outside, differs)


def test_runner_up_is_added_only_on_the_default_target():
    estimates = [
        {"technique_id": "T1", "mean": 0.01, "hdi_low": 0.005, "hdi_high": 0.02},
        {"technique_id": "T2", "mean": 0.10, "hdi_low": 0.08, "hdi_high": 0.12},
        {"technique_id": "T3", "mean": 0.10, "hdi_low": 0.08, "hdi_high": 0.12},
    ]
    values = {
        "T1": {"model": "offsets only", "mean": 0.03, "hdi_low": 0.02, "hdi_high": 0.04},
        "T2": {"model": "offsets only", "mean": 0.11, "hdi_low": 0.09, "hdi_high": 0.13},
        "T3": {"model": "offsets only", "mean": 0.05, "hdi_low": 0.04, "hdi_high": 0.06},
    }
    nothing = {"model": None, "techniques": 0, "differ": [], "material_ratio": 1.5}
    assert an.add_runner_up([dict(r) for r in estimates], values, "groups") == nothing
    assert an.add_runner_up([dict(r) for r in estimates], {}, "mtrends") == nothing
    rows = [dict(r) for r in estimates]
    got = an.add_runner_up(rows, values, "mtrends")
    assert (got["model"], got["techniques"], got["material_ratio"]) == ("offsets only", 3, 1.5)
    # ordered by |log ratio|: T1 (×3) before T3 (×0.5)
    assert [r["technique_id"] for r in got["differ"]] == ["T1", "T3"]
    assert [(r["ratio"], r["outside_hdi"]) for r in got["differ"]] == [(pytest.approx(3.0), True), (0.5, True)]
    assert [r["runner_up_differs"] for r in rows] == [True, False, True]
    assert rows[0] == estimates[0] | {
        "runner_up_model": "offsets only",
        "runner_up_mean": 0.03,
        "runner_up_hdi_94_low": 0.02,
        "runner_up_hdi_94_high": 0.04,
        "runner_up_differs": True,
    }
    # a technique the comparison lacks is skipped, and the ones after it still get theirs
    rows = [dict(r) for r in estimates]
    got = an.add_runner_up(rows, {k: v for k, v in values.items() if k != "T2"}, "mtrends")
    assert got["techniques"] == 2 and "runner_up_model" not in rows[1] and rows[2]["runner_up_mean"] == 0.05


def test_enterpriselang_comparison_counts_and_orders():
    estimates = [
        {"technique_id": "A", "mean": 0.01, "hdi_high": 0.02, "published_p": 0.04, "published_inside_hdi_94": False},
        {"technique_id": "B", "mean": 0.10, "hdi_high": 0.20, "published_p": 0.08, "published_inside_hdi_94": True},
        {"technique_id": "C", "mean": 0.50, "hdi_high": 0.60, "published_p": 0.05, "published_inside_hdi_94": False},
        {"technique_id": "D", "mean": 0.30, "hdi_high": 0.40, "published_p": None, "published_inside_hdi_94": None},
    ]
    got = an.elang_comparison(estimates, top=2)
    assert (got["techniques"], got["inside"], got["above_hdi"]) == (3, 1, 1)
    assert got["median_ratio"] == pytest.approx(0.8)  # ratios 4, 0.8, 0.1
    assert [r["technique_id"] for r in got["largest"]] == ["C", "A"] and got["largest"][0]["ratio"] == pytest.approx(
        0.1
    )
    assert an.elang_comparison(estimates[3:])["median_ratio"] is None


def test_what_each_estimate_rests_on_counts_every_positive_source(table):
    """A count of 1 is positive; several enterpriseLang steps are listed in order; units are joined."""
    from tests.synthesis_fixtures import ROWS

    rows = [*ROWS, ("T1102", "malware", 1, 951), ("T1190", "groups", 50, 170), ("T1190", "mtrends2020", 20, 227)]
    tab = small_table(rows, units={"mtrends2021": "case"})
    result = posterior_result(tab)
    est = {r["technique_id"]: r for r in an.technique_estimates(result, tab, "groups")}
    assert est["T1102"]["sources_positive"] == 4 and est["T1102"]["families"] == 3
    assert est["T1102"]["target"] == "groups" and est["T1102"]["target_data"]
    assert est["T1190"]["enterpriselang_steps"] == (
        "Service.exploitHighVulnerabilityPublicFacingApplication "
        "Service.exploitLowVulnerabilityPublicFacingApplication "
        "Service.exploitMediumVulnerabilityPublicFacingApplication"
    )
    assert est["T1190"]["published_p"] == 0.5  # the first step's
    rows_by_family = {r["family"]: r for r in an.family_rows(result, tab)}
    assert rows_by_family["mtrends"]["unit"] == "case, intrusion"


def test_headline_on_another_target_and_predictive_intervals(result, table):
    head = an.technique_headline(result, "T1102", "groups", 0.0445)
    g = scipy.special.expit(_stack(result, "phi")[:, _cell(result, "T1102", "groups")])
    assert head["target"] == "groups" and head["mean"] == pytest.approx(g.mean())
    rows = {(r["technique_id"], r["family"]): r for r in an.predictive_rows(result, table)}
    assert [rows["T1102", "groups"]["hdi_low"], rows["T1102", "groups"]["hdi_high"]] == list(hdi(g))


def test_enterpriselang_comparison_edges():
    empty = {"techniques": 0, "inside": 0, "median_ratio": None, "largest": []}
    assert an.elang_comparison([{"technique_id": "D", "published_p": None}]) == empty
    # a published value on the HDI's upper bound is not above it
    on_bound = [
        {"technique_id": "A", "mean": 0.01, "hdi_high": 0.02, "published_p": 0.02, "published_inside_hdi_94": True}
    ]
    assert an.elang_comparison(on_bound)["above_hdi"] == 0
    many = [
        {
            "technique_id": f"T{i}",
            "mean": 0.01,
            "hdi_high": 0.5,
            "published_p": 0.01 * (i + 1),
            "published_inside_hdi_94": True,
        }
        for i in range(20)
    ]
    assert len(an.elang_comparison(many)["largest"]) == 15  # the default: the 15 largest disagreements


# -- sources outside the fit, the per-family dictionaries and the headline's form (mutation survivors) ----
def test_a_source_outside_the_fit_is_skipped_and_the_later_ones_kept():
    """malware's T1003 row comes first in the table but the fit has no malware source: only groups pulls, to
    logit⁻¹(logit((30 + ½) / (170 + 1)) − b̄_groups) on the mtrends scale (b_mtrends = 0)."""
    from tests.synthesis_fixtures import ROWS

    without = [r for r in ROWS if r[1] != "malware"]
    fit = posterior_result(small_table(without))
    table = small_table([("T1003", "malware", 47, 951), *without])
    pulls = an.source_pulls(fit, table, "T1003", "mtrends")
    assert [p["source_id"] for p in pulls] == ["groups"]
    b = _stack(fit, "b")[:, fit.data.families.index("groups")].mean()
    want = scipy.special.expit(scipy.special.logit(30.5 / 171.0) - b)
    assert pulls[0]["on_target_scale"] == pytest.approx(want, rel=1e-12)


def test_technique_predictive_names_each_family_and_has_no_counts_where_it_has_no_rows(result, table):
    """T1102 has no malware row: its malware entry has neither successes nor trials (not 0 of 0)."""
    per = an.technique_predictive(result, table, "T1102")
    assert list(per) == ["mtrends", "groups", "malware"]
    x = predictive_draws(result, "malware")[:, result.data.techniques.index("T1102")]
    lo, hi = hdi(x)
    assert per["malware"] == {
        "family": "malware",
        "mean": pytest.approx(x.mean(), rel=1e-12),
        "hdi_low": lo,
        "hdi_high": hi,
        "observed_successes": None,
        "observed_trials": None,
    }
    assert [per[f]["family"] for f in per] == ["mtrends", "groups", "malware"]


def test_the_view_headline_is_labelled_with_its_scale_and_shaped_chain_by_draw(result, table):
    h = an.SynthesisView(result, table, "groups").headline("T1059")
    assert h.label == "multi-source (groups scale)"
    assert h.mu.shape == h.theta_new.shape == (2, 2000)  # posterior_result's 2 chains of 2000 draws
    j = result.data.techniques.index("T1059")
    np.testing.assert_array_equal(h.theta_new[1], predictive_draws(result, "groups")[2000:, j])
