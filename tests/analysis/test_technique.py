"""One technique's numbers (the exact engine, and a multi-technique headline of known draws) against hand counts,
scipy.stats and a brute-force posterior."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import xarray as xr

from attackprev.analysis.technique import MULTI, SINGLE, analyse_technique, resolve_weights, sensitivity_table
from attackprev.errors import InputError
from attackprev.evidence.tables import load_evidence
from attackprev.inference.catalogue import CatalogueResult, CatalogueSettings
from attackprev.inference.diagnostics import Diagnostics
from attackprev.model.catalogue import CatalogueData
from attackprev.model.priors import PRIORS, CataloguePriors
from tests.grid_reference import beta_hdi, grid_mu

PRIOR = PRIORS["halfnormal1"]
CHAINS, DRAWS = 4, 2500
MU = (30.0, 970.0)  # T1102's μ_t in the known posterior: mean 0.03, well below enterpriseLang's 0.0445
NEW = (3.0, 97.0)
LOG_KAPPA = (3.0, 0.5)


@pytest.fixture(scope="module")
def evidence():
    return load_evidence()


@pytest.fixture(scope="module")
def catalogue(evidence) -> CatalogueResult:
    """A multi-technique result for T1102 and T1076 whose draws are independent Beta and log-normal samples."""
    data = CatalogueData.from_observations([o for o in evidence.observations if o.technique_id in ("T1102", "T1076")])
    rng = np.random.default_rng(77)
    shape = (CHAINS, DRAWS, len(data.techniques))
    dims = ("chain", "draw", "technique")
    post = xr.Dataset(
        {
            "mu": (dims, rng.beta(*MU, size=shape)),
            "theta_new": (dims, rng.beta(*NEW, size=shape)),
            "kappa": (dims, np.exp(rng.normal(*LOG_KAPPA, size=shape))),
        },
        coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), "technique": data.techniques},
    )
    return CatalogueResult(
        data=data,
        variant="pooled",
        tree=xr.DataTree.from_dict({"posterior": post}),
        diagnostics={"pooled": Diagnostics(0, 1.003, 1500.0, 1400.0, CHAINS, DRAWS)},
        comparison=[],
        key="key",
        priors=CataloguePriors(),
        settings=CatalogueSettings(),
        seconds={},
    )


@pytest.fixture(scope="module")
def multi(evidence, catalogue) -> dict:
    return analyse_technique(
        "T1102", evidence, PRIOR, engine="exact", catalogue=catalogue, estimand_note="a note"
    ).summary


def mu_draws(catalogue) -> np.ndarray:
    return catalogue.tree["posterior"]["mu"].sel(technique="T1102").values.ravel()


def test_headline_comparison_counts_the_draws(multi, catalogue):
    """P(μ > published) and the published value's percentile, by counting draws; its place against the HDI."""
    mu = mu_draws(catalogue)
    c = multi["comparison"]
    assert multi["model"] == MULTI and multi["estimand"] == {"default": False, "note": "a note"}
    assert c["point_estimate"] == 0.0445
    assert c["prob_greater"] == pytest.approx(np.count_nonzero(mu > 0.0445) / mu.size, abs=1e-12)
    assert c["percentile"] == pytest.approx(100.0 * np.count_nonzero(mu <= 0.0445) / mu.size, abs=1e-10)
    sf = scipy.stats.beta(*MU).sf(0.0445)
    assert abs(c["prob_greater"] - sf) < 4 * math.sqrt(sf / mu.size) + 1e-4
    assert c["inside_hdi_94"] is False and beta_hdi(*MU)[1] < 0.0445
    assert c["naive_mean"] == pytest.approx((0.0396 + 47 / 951) / 2, rel=1e-12)


def test_headline_summaries_are_the_draws(multi, catalogue):
    mu = mu_draws(catalogue)
    prev = multi["prevalence"]
    assert prev["mean"] == pytest.approx(mu.mean(), rel=1e-12) and prev["median"] == pytest.approx(np.median(mu))
    assert prev["sd"] == pytest.approx(mu.std(ddof=1), rel=1e-12)
    lo, hi = beta_hdi(*MU)
    assert prev["hdi_94"] == pytest.approx([lo, hi], abs=0.06 * (hi - lo))  # 4 sd of 10,000 draws' HDI
    new = catalogue.tree["posterior"]["theta_new"].sel(technique="T1102").values.ravel()
    assert multi["predictive"]["mean"] == pytest.approx(new.mean(), rel=1e-12)
    # κ's interval is the HDI of log κ mapped back: for log κ ~ Normal(3, 0.5), exp(3 ± 1.881 × 0.5)
    kappa = multi["concentration"]
    log_interval = scipy.stats.norm(*LOG_KAPPA).interval(0.94)
    assert kappa["hdi_94"] == pytest.approx(list(np.exp(log_interval)), rel=0.03)
    assert kappa["median"] == pytest.approx(math.exp(LOG_KAPPA[0]), rel=0.02)


def test_headline_mal_value_is_the_mean_to_four_figures(multi, catalogue):
    mu = mu_draws(catalogue)
    m = multi["mal"]
    assert m["model"] == MULTI and m["p_exact"] == pytest.approx(mu.mean(), rel=1e-12)
    assert m["p"] == float(f"{mu.mean():.4g}") and m["expression"] == f"Bernoulli({m['p']:g})"
    assert m["mcse"] == pytest.approx(mu.std() / math.sqrt(mu.size), rel=0.1)  # independent draws: sd / √N


def test_the_multi_technique_block_records_its_fit(multi, catalogue):
    block = multi["models"]["multi_technique"]
    assert block["variant"] == "pooled" and block["techniques"] == 2 and block["cache_key"] == "key"
    assert block["diagnostics"]["passed"] is True and multi["diagnostics"]["passed"] is True
    assert multi["models"]["multi_source"] is None
    assert multi["models"]["single_technique"]["model"] == SINGLE


def test_single_technique_exact_figures_match_a_brute_force_posterior(multi):
    single = multi["models"]["single_technique"]
    ref = grid_mu([9, 47], [227, 951], PRIOR)
    assert single["engine"] == "exact" and single["mal"]["mcse"] is None
    assert single["prevalence"]["mean"] == pytest.approx(ref.mean, rel=1e-3)
    assert single["comparison"]["prob_greater"] == pytest.approx(ref.prob_above(0.0445), abs=2e-3)
    assert single["comparison"]["percentile"] == pytest.approx(100 * (1 - ref.prob_above(0.0445)), abs=0.2)
    assert single["mal"]["p"] == float(f"{single['prevalence']['mean']:.4g}")


def test_the_published_arithmetic_is_recomputed(multi):
    pub = multi["published"]
    assert pub["published_p"] == 0.0445 and pub["published_result"] == "Bernoulli(0.0445)"
    assert pub["figures"] == pytest.approx([0.0396, 47 / 951], rel=1e-12)
    assert pub["naive_mean"] == pytest.approx(0.044510830704521556, rel=1e-12) and pub["reproduces"] is True
    assert multi["ttc"]["kind"] == "degenerate" and multi["ttc"]["value_days"] == 0


def test_a_published_time_factor_stays_in_the_mal_line(evidence):
    """T1076's note: Bernoulli(0.5561)*Exponential(480); only the probability is replaced."""
    s = analyse_technique("T1076", evidence, PRIOR, engine="exact").summary
    assert s["ttc"]["kind"] == "published" and s["ttc"]["time_factor"] == "Exponential(480)"
    p = float(f"{s['prevalence']['mean']:.4g}")
    assert s["mal"]["expression"] == f"Exponential(480)*Bernoulli({p:g})"
    assert s["published"]["published_p"] == 0.5561 and s["published"]["reproduces"] is False  # it averages 4 figures
    assert s["model"] == SINGLE and s["estimand"]["default"] is False


@pytest.mark.parametrize("name", list(PRIORS))
def test_sensitivity_rows_match_a_brute_force_posterior(name):
    table = sensitivity_table(np.array([9.0, 47.0]), np.array([227.0, 951.0]), ["a", "b"], np.ones(2), 0.0445)
    rows = {r["prior"]: r for r in table}
    assert set(rows) == set(PRIORS)
    ref = grid_mu([9, 47], [227, 951], PRIORS[name])
    assert rows[name]["mean"] == pytest.approx(ref.mean, rel=1e-3)
    assert rows[name]["prob_greater"] == pytest.approx(ref.prob_above(0.0445), abs=3e-3)
    assert rows[name]["label"] == PRIORS[name].label


def test_resolve_weights(evidence):
    obs = evidence.for_technique("T1102")
    assert resolve_weights(None, obs).tolist() == [1.0, 1.0]
    assert resolve_weights({"sok2019_windows_malware": 0.25}, obs).tolist() == [1.0, 0.25]
    assert resolve_weights({"mtrends2020": 0.0}, obs).tolist() == [0.0, 1.0]
    for bad in (1.5, -0.1, math.nan, math.inf):
        with pytest.raises(InputError, match="weights must be in"):
            resolve_weights({"mtrends2020": bad}, obs)
    with pytest.raises(InputError, match="every source has weight 0"):
        resolve_weights({"mtrends2020": 0.0, "sok2019_windows_malware": 0.0}, obs)


def test_the_multi_technique_headline_refuses_what_it_cannot_do(evidence, catalogue):
    with pytest.raises(InputError, match="not in the multi-technique fit"):
        analyse_technique("T1571", evidence, PRIOR, engine="exact", catalogue=catalogue)
    with pytest.raises(InputError, match="single-technique model only"):
        analyse_technique("T1102", evidence, PRIOR, engine="exact", catalogue=catalogue, weights={"mtrends2020": 0.5})
