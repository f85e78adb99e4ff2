"""The family-by-family reading of the multi-source fit: weights, subsets, leaving families out, gaps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from attackprev.analysis.families import (
    PRIOR,
    disagreements,
    droppable_families,
    family_logit_variance,
    family_sources,
    family_weights,
    fast_subset,
    gap_reason,
    headline_by_target,
    logit_variance,
    precision_shares,
    read_catalogue,
    subset_table,
    target_shares,
)
from attackprev.model.synthesis import SynthesisData
from tests.synthesis_fixtures import make_table

SOURCES = {
    "mt_a": ("mtrends", "partial"),
    "mt_b": ("mtrends", "partial"),
    "grp": ("groups", "complete"),
    "sok": ("sok", "partial"),
}
ROWS = [
    ("T1", "mt_a", 9, 227),
    ("T1", "mt_b", 4, 409),
    ("T1", "grp", 33, 172),
    ("T1", "sok", 47, 951),
    ("T2", "mt_a", 20, 227),
    ("T2", "grp", 50, 172),
    ("T3", "grp", 0, 172),
    ("T3", "sok", 5, 951),
]


@dataclass
class _Settings:
    seed: int = 1
    chains: int = 1


class _Result:
    """A stand-in for a SynthesisResult: fixed draws of the posterior's variables."""

    def __init__(self, data: SynthesisData, draws: dict[str, np.ndarray]):
        self.data = data
        self._draws = draws
        self.settings = _Settings()

    def stacked(self, name: str) -> np.ndarray:
        return self._draws[name]


def _result(sigma=(0.5, 0.3, 1.5), kappa=(50.0,), tau=0.2, draws=4) -> tuple[_Result, object]:
    table = make_table(ROWS, SOURCES)
    data = SynthesisData.from_counts(table)
    nt, nf, nc = len(data.techniques), len(data.families), len(data.cells)
    rng = np.random.default_rng(0)
    out = {
        "a": rng.normal(-3.0, 0.1, (draws, nt)),
        "b": np.tile(np.array([0.0, 1.0, 0.5])[:nf], (draws, 1)),
        "sigma": np.tile(np.array(sigma), (draws, 1)),
        "phi": rng.normal(-3.0, 0.1, (draws, nc)),
        "level_sd": np.full(draws, 1.2),
        "log_kappa": np.log(np.tile(np.array(kappa), (draws, 1))),
        "tau": np.full(draws, tau),
    }
    return _Result(data, out), table


# ------------------------------------------------------------------------ precision of counts
def test_logit_variance_known_answer():
    assert logit_variance(9, 227) == pytest.approx(1 / 9.5 + 1 / 218.5)
    assert np.allclose(logit_variance(np.array([0, 5]), np.array([10, 10])), [1 / 0.5 + 1 / 10.5, 2 / 5.5])


def test_family_variance_pools_counts_without_kappa():
    assert family_logit_variance([(9, 227), (4, 409)]) == pytest.approx(logit_variance(13, 636))


def test_family_variance_with_kappa_inflates_each_source_and_adds_the_year_shift():
    kappa, tau = 50.0, 0.3
    v1 = logit_variance(9, 227) * (227 + kappa) / (1 + kappa) + tau**2
    v2 = logit_variance(4, 409) * (409 + kappa) / (1 + kappa) + tau**2
    got = family_logit_variance([(9, 227), (4, 409)], kappa, tau)
    assert got == pytest.approx(1 / (1 / v1 + 1 / v2))
    assert got > family_logit_variance([(9, 227), (4, 409)])  # overdispersion: counts for less


def test_family_variance_with_huge_kappa_is_the_binomial_one():
    combined = 1 / (1 / logit_variance(9, 227) + 1 / logit_variance(4, 409))
    assert family_logit_variance([(9, 227), (4, 409)], 1e12) == pytest.approx(combined, rel=1e-6)


def test_family_variance_needs_rows():
    with pytest.raises(ValueError):
        family_logit_variance([])


# ------------------------------------------------------------------------ shares
def test_precision_shares_sum_to_one_and_match_a_known_answer():
    shares = precision_shares({"a": 0.1, "b": 0.3}, {"a": 0.3, "b": 0.1}, level_sd=2.0)
    pa, pb, pp = 1 / (0.1 + 0.09), 1 / (0.3 + 0.01), 1 / 4.0
    total = pa + pb + pp
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares == pytest.approx({"a": pa / total, "b": pb / total, PRIOR: pp / total})


def test_equal_families_get_equal_shares():
    shares = precision_shares({"a": 0.2, "b": 0.2, "c": 0.2}, {"a": 0.5, "b": 0.5, "c": 0.5})
    assert shares == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_huge_n_and_tiny_sigma_take_nearly_all_the_weight():
    v = {"big": logit_variance(50_000, 1_000_000), "small": logit_variance(9, 227)}
    shares = precision_shares(v, {"big": 0.01, "small": 1.0}, level_sd=1.0)
    assert shares["big"] > 0.99


def test_a_large_departure_scale_drowns_a_large_sample():
    v = {"big": logit_variance(50_000, 1_000_000), "small": logit_variance(9, 227)}
    shares = precision_shares(v, {"big": 3.0, "small": 0.1})
    assert shares["small"] > shares["big"]


def test_target_shares_sum_to_one_and_match_a_known_answer():
    v = {"t": 0.2, "a": 0.1}
    sd = {"t": 0.5, "a": 0.3}
    shares = target_shares(v, sd, "t", level_sd=2.0)
    own = 1 / 0.2
    others = {"a": 1 / (0.1 + 0.09), PRIOR: 1 / 4.0}
    p = sum(others.values())
    via = 1 / (1 / p + 0.25)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["t"] == pytest.approx(own / (own + via))
    assert shares["a"] == pytest.approx(via * others["a"] / p / (own + via))


def test_target_without_data_leans_on_the_others_only():
    shares = target_shares({"a": 0.1, "b": 0.2}, {"a": 0.3, "b": 0.3, "t": 0.5}, "t", level_sd=1.0)
    assert "t" not in shares
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_target_with_a_huge_count_carries_its_own_value():
    v = {"t": logit_variance(50_000, 1_000_000), "a": 0.01}
    shares = target_shares(v, {"t": 1.0, "a": 0.1}, "t")
    assert shares["t"] > 0.99


# ------------------------------------------------------------------------ a fit, family by family
def test_family_weights_rows_and_shares():
    result, table = _result()
    rows = family_weights(result, table, "T1", "mtrends")
    assert [r["family"] for r in rows] == ["mtrends", "groups", "sok", PRIOR]
    assert sum(r["level_share"] for r in rows) == pytest.approx(1.0)
    assert sum(r["target_share"] for r in rows) == pytest.approx(1.0)
    mt = rows[0]
    assert (mt["successes"], mt["trials"], mt["sources"]) == (13, 636, ["mt_a", "mt_b"])
    # M-Trends has two sources here, so its κ and τ apply; the others are single binomials
    assert mt["logit_var"] == pytest.approx(family_logit_variance([(9, 227), (4, 409)], 50.0, 0.2), rel=1e-5)
    assert rows[1]["logit_var"] == pytest.approx(logit_variance(33, 172))
    moved = math.log(33.5 / 139.5) - 1.0  # the groups' offset removed, the reference's (0) added
    assert rows[1]["on_target_scale"] == pytest.approx(1 / (1 + math.exp(-moved)), rel=1e-6)


def test_family_weights_without_overdispersion_pool_the_counts():
    result, table = _result()
    rows = family_weights(result, table, "T1", "mtrends", overdispersion=False)
    assert rows[0]["logit_var"] == pytest.approx(logit_variance(13, 636))


def test_headline_by_target_has_one_row_per_family():
    result, _ = _result()
    rows = headline_by_target(result, "T3", 0.05)
    assert [r["target"] for r in rows] == result.data.families
    assert [r["target_data"] for r in rows] == [False, True, True]  # T3 has no M-Trends row
    for r in rows:
        assert 0.0 <= r["prob_greater"] <= 1.0
        assert r["hdi_94"][0] <= r["mean"] <= r["hdi_94"][1]


# ------------------------------------------------------------------------ subsets and leaving families out
def test_subset_table_keeps_the_techniques_and_changes_the_digest():
    table = make_table(ROWS, SOURCES)
    sub = subset_table(table, ["T1", "T3"])
    assert {c.technique_id for c in sub.counts} == {"T1", "T3"}
    assert len(sub.counts) == 6
    assert sub.digest != table.digest
    assert subset_table(table, ["T3", "T1"]).digest == sub.digest
    with pytest.raises(ValueError, match="T9"):
        subset_table(table, ["T1", "T9"])


def test_fast_subset_keeps_every_family_and_the_requested_techniques():
    table = make_table(ROWS, SOURCES)
    chosen = fast_subset(table, ["T2"], size=2, few=1)
    assert "T2" in chosen
    families = {c.family for c in subset_table(table, chosen).counts if c.successes > 0}
    assert families == {"mtrends", "groups", "sok"}
    assert fast_subset(table, ["T2"], size=10) == ["T1", "T2", "T3"]


def test_leaving_families_out():
    table = make_table(ROWS, SOURCES)
    assert family_sources(table, "mtrends") == ("mt_a", "mt_b")
    assert droppable_families(["mtrends", "groups", "sok"], "mtrends") == ["groups", "sok"]
    with pytest.raises(ValueError, match="reference"):
        SynthesisData.from_counts(table, exclude_sources=family_sources(table, "mtrends"))


# ------------------------------------------------------------------------ why estimates and published values differ
def test_gap_reason():
    assert gap_reason(0.01, 0.5, None) == "no target data"
    assert gap_reason(0.01, 0.5, 0.02) == "target data"  # the target's own rate is far below, like the estimate
    assert gap_reason(0.01, 0.5, 0.45) == "other families"  # its own rate is near the published value
    assert gap_reason(0.01, 0.5, 0.9) == "other families"  # its own rate is on the other side


def test_disagreements_sorts_by_the_log_ratio_and_reads_the_pulls():
    estimates = [
        {"technique_id": "T1", "mean": 0.02, "published_p": 0.04},
        {"technique_id": "T2", "mean": 0.2, "published_p": 0.01},
        {"technique_id": "T3", "mean": 0.1, "published_p": None},
    ]
    pulls = {
        "T1": [
            {"family": "mtrends", "successes": 5, "trials": 100, "on_target_scale": 0.05},
            {"family": "groups", "successes": 1, "trials": 100, "on_target_scale": 0.004},
        ],
        "T2": [{"family": "groups", "successes": 30, "trials": 100, "on_target_scale": 0.15}],
    }
    rows = disagreements(estimates, pulls, "mtrends", top=5)
    assert [r["technique_id"] for r in rows] == ["T2", "T1"]
    assert rows[0]["reason"] == "no target data" and rows[0]["target_rate"] is None
    assert rows[0]["log_ratio"] == pytest.approx(math.log(20))
    assert rows[1]["target_rate"] == pytest.approx(0.05) and rows[1]["reason"] == "other families"
    assert (rows[1]["pull_low"], rows[1]["pull_high"]) == (0.004, 0.004)
    assert rows[1]["reporting"] == ["groups", "mtrends"]
    assert len(disagreements(estimates, pulls, "mtrends", top=1)) == 1


def test_read_catalogue(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("technique_id,mean\nT1,0.1\n", encoding="utf-8")
    assert read_catalogue(old) is None
    assert read_catalogue(tmp_path / "missing.csv") is None
    new = tmp_path / "catalogue.csv"
    new.write_text(
        "technique_id,name,target,mean,sd,hdi_low,hdi_high,p,target_data,families,published_p,"
        "prob_above_published,published_inside_hdi_94\n"
        "T1,One,mtrends,0.1,0.01,0.08,0.12,0.1,True,3,0.05,0.99,False\n"
        "T2,Two,mtrends,0.2,0.02,0.15,0.25,0.2,False,2,,,\n",
        encoding="utf-8",
    )
    rows = read_catalogue(new)
    assert rows[0]["mean"] == 0.1 and rows[0]["target_data"] is True and rows[0]["families"] == 3
    assert rows[0]["published_inside_hdi_94"] is False  # a flag, not the (truthy) string "False"
    assert rows[1]["published_p"] is None and rows[1]["target_data"] is False
    assert rows[1]["published_inside_hdi_94"] is None
