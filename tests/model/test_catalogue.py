"""The multi-technique model: its data arrays, its log density against the beta-binomial sum, the LOO choice."""

from __future__ import annotations

import numpy as np
import pytest

from attackprev.evidence.tables import load_evidence
from attackprev.model.catalogue import VARIANTS, CatalogueData, build_catalogue_model, compare_variants
from attackprev.model.likelihood import log_binom_coef, log_marginal
from attackprev.model.priors import CataloguePriors


@pytest.fixture(scope="module")
def evidence():
    return load_evidence()


def test_data_arrays_cover_every_observation(evidence):
    data = CatalogueData.from_observations(list(evidence.observations))
    assert len(data.labels) == len(evidence.observations)
    assert data.sources[0] == "mtrends2020" == data.reference
    assert len(data.techniques) == len(evidence.techniques())
    i = data.labels.index("T1102|sok2019_windows_malware")
    assert (data.successes[i], data.trials[i]) == (47, 951)
    assert data.techniques[data.technique_idx[i]] == "T1102"
    assert int(np.sum(data.sources_per_technique() > 1)) >= 20


@pytest.mark.parametrize("name", list(VARIANTS))
def test_model_logp_is_the_beta_binomial_sum(evidence, name):
    """The compiled log-density at a point equals the hand-written sum of priors and likelihood."""
    import scipy.stats

    data = CatalogueData.from_observations(list(evidence.observations))
    pri = CataloguePriors()
    model = build_catalogue_model(data, pri, VARIANTS[name])
    rng = np.random.default_rng(3)
    point = {k: np.asarray(rng.normal(0, 0.3, size=model.initial_point()[k].shape)) for k in model.initial_point()}
    logp = model.compile_logp()(point)
    m = point["mu_logit_mean"]
    sd = np.exp(point["mu_logit_sd_log__"])
    logit_mu = m + sd * point["mu_z"]
    expected = (
        scipy.stats.norm(*pri.mu_logit_mean).logpdf(m)
        + scipy.stats.halfnorm(scale=pri.mu_logit_sd).logpdf(sd)
        + np.log(sd)
        + scipy.stats.norm.logpdf(point["mu_z"]).sum()
        + scipy.stats.norm(*pri.log_kappa_mean).logpdf(point["log_kappa_mean"])
    )
    log_kappa = np.full(len(data.techniques), point["log_kappa_mean"])
    if VARIANTS[name].pooled_kappa:
        ks = np.exp(point["log_kappa_sd_log__"])
        expected += scipy.stats.halfnorm(scale=pri.log_kappa_sd).logpdf(ks) + np.log(ks)
        expected += scipy.stats.norm.logpdf(point["kappa_z"]).sum()
        log_kappa = log_kappa + ks * point["kappa_z"]
    eta = logit_mu[data.technique_idx]
    if VARIANTS[name].source_offsets:
        free = point["source_offset_free"]
        expected += scipy.stats.norm(0, pri.source_offset_sd).logpdf(free).sum()
        eta = eta + np.concatenate([[0.0], free])[data.source_idx]
    p = 1 / (1 + np.exp(-eta))
    expected += log_marginal(data.successes, data.trials, 1.0, p, np.exp(log_kappa)[data.technique_idx]).sum()
    assert logp == pytest.approx(expected, rel=1e-9)
    # and the likelihood is scipy's beta-binomial up to the binomial coefficient
    k = np.exp(log_kappa)[data.technique_idx]
    ref = scipy.stats.betabinom(data.trials, p * k, (1 - p) * k).logpmf(data.successes)
    ours = log_marginal(data.successes, data.trials, 1.0, p, k) + log_binom_coef(data.trials, data.successes)
    assert np.allclose(ours, ref)


def _fake_tree(elpd_i: np.ndarray):
    import xarray as xr

    rng = np.random.default_rng(0)
    ll = elpd_i[None, None, :] + rng.normal(0, 0.01, (2, 200, elpd_i.size))
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(2, 200)))}),
            "log_likelihood": xr.Dataset({"y": (("chain", "draw", "observation"), ll)}),
        }
    )


def test_loo_keeps_the_simpler_model_unless_the_complex_one_is_clearly_better():
    base = np.full(50, -2.0)
    slightly = base + np.where(np.arange(50) % 2 == 0, 0.05, -0.03)  # +0.5 in total, noisy
    clearly = base + 0.5  # +25 in total, every point
    chosen, rows = compare_variants({"shared": _fake_tree(base), "pooled": _fake_tree(slightly)})
    assert chosen == "shared" and rows[0]["variant"] == "pooled"
    chosen, _ = compare_variants({"shared": _fake_tree(base), "pooled": _fake_tree(clearly)})
    assert chosen == "pooled"
    chosen, rows = compare_variants({"shared": _fake_tree(base), "pooled": _fake_tree(clearly)}, eligible={"shared"})
    assert chosen == "shared" and not next(r for r in rows if r["variant"] == "pooled")["eligible"]
