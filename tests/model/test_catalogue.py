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


def _two_techniques() -> CatalogueData:
    """T1102 from a reference and another source, T1003 from the reference alone."""
    return CatalogueData(
        techniques=["T1003", "T1102"],
        sources=["ref", "other"],
        technique_idx=np.array([1, 1, 0]),
        source_idx=np.array([0, 1, 0]),
        successes=np.array([9.0, 47.0, 30.0]),
        trials=np.array([227.0, 951.0, 100.0]),
        labels=["T1102|ref", "T1102|other", "T1003|ref"],
        reference="ref",
    )


def test_derived_rates_are_the_closed_form_betas():
    """θ_new,t ~ Beta(μ_t κ_t, (1 − μ_t) κ_t) and θ_i ~ Beta(p_i κ_t + y_i, (1 − p_i) κ_t + n_i − y_i), with
    logit p_i = logit μ_t + δ_s: the draws at fixed (μ, κ, δ) against scipy's Betas with the parameters written out."""
    import scipy.stats
    import xarray as xr
    from scipy.special import expit, logit

    from attackprev.model.catalogue import add_catalogue_derived

    data = _two_techniques()
    draws = 20_000
    mu, kappa, offset = np.array([0.3, 0.05]), np.array([8.0, 30.0]), np.array([0.0, 0.7])
    post = xr.Dataset(
        {
            "mu": (("chain", "draw", "technique"), np.broadcast_to(mu, (1, draws, 2)).copy()),
            "kappa": (("chain", "draw", "technique"), np.broadcast_to(kappa, (1, draws, 2)).copy()),
            "source_offset": (("chain", "draw", "source"), np.broadcast_to(offset, (1, draws, 2)).copy()),
        },
        coords={"chain": [0], "draw": np.arange(draws), "technique": data.techniques, "source": data.sources},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, draws), bool))})
    tree = add_catalogue_derived(xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}), data, seed=1)
    derived = tree["posterior"]
    expected_new = {"T1003": scipy.stats.beta(0.3 * 8, 0.7 * 8), "T1102": scipy.stats.beta(0.05 * 30, 0.95 * 30)}
    for j, t in enumerate(data.techniques):
        sample = derived["theta_new"].values[0, :, j]
        assert scipy.stats.kstest(sample, expected_new[t].cdf).pvalue > 1e-3, t
    p_other = expit(logit(0.05) + 0.7)  # T1102 as the other source sees it
    expected_obs = [
        scipy.stats.beta(0.05 * 30 + 9, 0.95 * 30 + 218),
        scipy.stats.beta(p_other * 30 + 47, (1 - p_other) * 30 + 904),
        scipy.stats.beta(0.3 * 8 + 30, 0.7 * 8 + 70),
    ]
    for i, ref in enumerate(expected_obs):
        assert scipy.stats.kstest(derived["theta"].values[0, :, i], ref.cdf).pvalue > 1e-3, data.labels[i]


def test_derived_tree_groups_names_dims_and_log_likelihood():
    """The tree add_catalogue_derived returns, written out: its groups, the posterior without the sampler's
    auxiliaries, each variable's dims and coords, integer data, the pointwise log-likelihood against scipy's
    beta-binomial (binomial coefficient included), and draws reproducible from the seed's documented stream."""
    import scipy.stats
    import xarray as xr
    from scipy.special import expit, logit

    from attackprev.model.catalogue import add_catalogue_derived

    data = _two_techniques()
    chains, draws = 2, 5
    rng = np.random.default_rng(3)
    mu = rng.uniform(0.02, 0.4, (chains, draws, 2))
    kappa = rng.uniform(5.0, 50.0, (chains, draws, 2))
    offset = np.concatenate([np.zeros((chains, draws, 1)), rng.normal(0, 0.5, (chains, draws, 1))], axis=-1)
    dims3 = ("chain", "draw", "technique")
    post = xr.Dataset(
        {
            "mu": (dims3, mu),
            "kappa": (dims3, kappa),
            "source_offset": (("chain", "draw", "source"), offset),
            "mu_logit_mean": (("chain", "draw"), rng.normal(size=(chains, draws))),
            "mu_logit": (dims3, logit(mu)),
            "mu_z": (dims3, rng.normal(size=(chains, draws, 2))),
            "kappa_z": (dims3, rng.normal(size=(chains, draws, 2))),
            "source_offset_free": (("chain", "draw", "offset_source"), offset[..., 1:]),
        },
        coords={
            "chain": [0, 1],
            "draw": np.arange(draws),
            "technique": data.techniques,
            "source": data.sources,
            "offset_source": ["other"],
        },
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))})
    tree = add_catalogue_derived(xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}), data, seed=4)
    assert set(tree.children) == {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "observed_data",
        "constant_data",
        "posterior_predictive",
    }
    derived = tree["posterior"].to_dataset()
    assert set(derived.data_vars) == {"mu", "kappa", "source_offset", "mu_logit_mean", "theta_new", "theta"}
    assert derived["theta_new"].dims == dims3 and derived["theta"].dims == ("chain", "draw", "observation")
    assert list(tree["sample_stats"].to_dataset().data_vars) == ["diverging"]
    obs = {"observation": data.labels}
    for group in ("log_likelihood", "posterior_predictive"):
        ds = tree[group].to_dataset()
        assert list(ds.data_vars) == ["y"] and ds["y"].dims == ("chain", "draw", "observation"), group
        assert list(ds["observation"].values) == data.labels and list(ds["technique"].values) == data.techniques
    observed = tree["observed_data"].to_dataset()
    assert observed["y"].dims == ("observation",) and observed["y"].dtype.kind == "i"
    assert observed["y"].values.tolist() == [9, 47, 30] and list(observed["observation"].values) == obs["observation"]
    constant = tree["constant_data"].to_dataset()
    assert set(constant.data_vars) == {"trials", "technique", "source"}
    assert constant["trials"].dtype.kind == "i" and constant["trials"].values.tolist() == [227, 951, 100]
    assert constant["technique"].values.tolist() == ["T1102", "T1102", "T1003"]
    assert constant["source"].values.tolist() == ["ref", "other", "ref"]
    assert all(constant[v].dims == ("observation",) for v in constant.data_vars)
    assert list(constant["observation"].values) == data.labels
    # log-likelihood: scipy's beta-binomial at each draw's rate as each source sees it
    p = expit(logit(mu[..., data.technique_idx]) + offset[..., data.source_idx])
    k = kappa[..., data.technique_idx]
    expected = scipy.stats.betabinom(data.trials, p * k, (1 - p) * k).logpmf(data.successes)
    assert np.allclose(tree["log_likelihood"]["y"].values, expected, rtol=1e-10, atol=1e-10)
    # the draws: the stream np.random.default_rng([seed, 2]), θ_new, then θ, then the replicated counts
    stream = np.random.default_rng([4, 2])
    theta_new = stream.beta(mu * kappa, (1 - mu) * kappa)
    theta = stream.beta(p * k + data.successes, (1 - p) * k + data.trials - data.successes)
    y_rep = stream.binomial(data.trials.astype(int), theta)
    assert np.array_equal(derived["theta_new"].values, theta_new)
    assert np.allclose(derived["theta"].values, theta, rtol=1e-9)  # p computed here in another order of operations
    ppc = tree["posterior_predictive"]["y"].values
    assert ppc.dtype.kind == "i" and np.array_equal(ppc, y_rep)


# --- the data arrays, built by hand ---------------------------------------------------------------------------------


def _obs(technique: str, source: str, successes: int, trials: int):
    from attackprev.evidence.tables import Observation

    return Observation(technique, source, successes, trials, None, "test")


def test_default_reference_goes_first_even_when_another_source_sorts_before_it():
    """mtrends2020, the default reference, comes first although "aaa" sorts before it; the rest alphabetically."""
    obs = [_obs("T2", "zzz", 1, 10), _obs("T1", "aaa", 2, 20), _obs("T1", "mtrends2020", 3, 30)]
    data = CatalogueData.from_observations(obs)
    assert data.sources == ["mtrends2020", "aaa", "zzz"]
    assert data.reference == "mtrends2020"
    assert data.techniques == ["T1", "T2"]
    assert data.source_idx.tolist() == [2, 1, 0]
    assert data.technique_idx.tolist() == [1, 0, 0]
    assert data.labels == ["T2|zzz", "T1|aaa", "T1|mtrends2020"]


def test_an_absent_reference_is_not_invented_and_the_first_source_takes_its_place():
    obs = [_obs("T1", "zzz", 1, 10), _obs("T1", "bbb", 2, 20)]
    data = CatalogueData.from_observations(obs, reference="mtrends2020")
    assert data.sources == ["bbb", "zzz"]
    assert data.reference == "bbb"
    assert data.source_idx.tolist() == [1, 0]


def test_a_reference_that_is_the_only_source():
    obs = [_obs("T1", "ref", 1, 10), _obs("T2", "ref", 2, 20)]
    data = CatalogueData.from_observations(obs, reference="ref")
    assert data.sources == ["ref"] and data.reference == "ref"
    assert data.source_idx.tolist() == [0, 0]


def test_counts_are_float_arrays_even_from_integers():
    obs = [_obs("T1", "ref", 3, 10), _obs("T2", "other", 7, 20)]
    data = CatalogueData.from_observations(obs, reference="ref")
    assert data.successes.dtype == np.float64 and data.trials.dtype == np.float64
    assert data.successes.tolist() == [3.0, 7.0] and data.trials.tolist() == [10.0, 20.0]


def test_sources_per_technique_counts_a_trailing_technique_without_observations_as_zero():
    data = CatalogueData(
        techniques=["T1", "T2", "T3"],
        sources=["ref", "b"],
        technique_idx=np.array([0, 0, 1]),
        source_idx=np.array([0, 1, 0]),
        successes=np.array([1.0, 2.0, 3.0]),
        trials=np.array([10.0, 20.0, 30.0]),
        labels=["T1|ref", "T1|b", "T2|ref"],
        reference="ref",
    )
    assert data.sources_per_technique().tolist() == [2, 1, 0]


# --- the model's variables, dims and data on a small data set ---------------------------------------------------------


def _small_data(sources: list[str]) -> CatalogueData:
    """Three techniques; observations cycle through ``sources``."""
    t_idx = [0, 0, 1, 2, 2]
    s_idx = [i % len(sources) for i in range(len(t_idx))]
    techniques = ["T1", "T2", "T3"]
    return CatalogueData(
        techniques=techniques,
        sources=list(sources),
        technique_idx=np.array(t_idx),
        source_idx=np.array(s_idx),
        successes=np.array([1.0, 4.0, 0.0, 9.0, 12.0]),
        trials=np.array([10.0, 20.0, 15.0, 30.0, 40.0]),
        labels=[f"{techniques[t]}|{sources[s]}" for t, s in zip(t_idx, s_idx, strict=True)],
        reference=sources[0],
    )


_DATA_DIMS = {name: ("observation",) for name in ("technique_idx", "source_idx", "successes", "trials")}
_BASE_DIMS = _DATA_DIMS | {"mu_z": ("technique",), "mu": ("technique",), "kappa": ("technique",)}
_POOLED_DIMS = {"kappa_z": ("technique",)}
_OFFSET_DIMS = {"source_offset_free": ("offset_source",), "source_offset": ("source",)}
_BASE_VARS = {"mu_logit_mean", "mu_logit_sd", "mu_z", "mu", "log_kappa_mean", "kappa", "likelihood"}


@pytest.mark.parametrize("n_sources", [1, 2, 3])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_model_variables_dims_data_and_coords(name, n_sources):
    """Exactly these named variables, dims, data containers and coords; source offsets only with two sources or more."""
    sources = ["ref", "b", "c"][:n_sources]
    data = _small_data(sources)
    model = build_catalogue_model(data, CataloguePriors(), VARIANTS[name])
    pooled = name in ("pooled", "offsets_pooled")
    offsets = name in ("offsets", "offsets_pooled") and n_sources > 1
    expected_vars = set(_BASE_VARS) | _DATA_DIMS.keys()
    expected_dims = dict(_BASE_DIMS)
    if pooled:
        expected_vars |= {"log_kappa_sd", "kappa_z"}
        expected_dims |= _POOLED_DIMS
    if offsets:
        expected_vars |= {"source_offset_free", "source_offset"}
        expected_dims |= _OFFSET_DIMS
    assert set(model.named_vars) == expected_vars
    assert dict(model.named_vars_to_dims) == expected_dims
    assert [v.name for v in model.data_vars] == ["technique_idx", "source_idx", "successes", "trials"]
    assert [v.name for v in model.potentials] == ["likelihood"]
    assert {k: tuple(v) for k, v in model.coords.items()} == {
        "technique": ("T1", "T2", "T3"),
        "source": tuple(sources),
        "offset_source": tuple(sources[1:]),
        "observation": tuple(data.labels),
    }
    values = model.compile_fn([model["technique_idx"], model["source_idx"], model["successes"], model["trials"]])({})
    assert [np.asarray(v).tolist() for v in values] == [
        [0, 0, 1, 2, 2],
        [i % n_sources for i in range(5)],
        [1.0, 4.0, 0.0, 9.0, 12.0],
        [10.0, 20.0, 15.0, 30.0, 40.0],
    ]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_model_logp_with_non_default_hyperpriors(name):
    """Every hyperprior parameter reaches its distribution: the compiled log-density at a point, with priors unlike the
    defaults, against scipy's densities and scipy's beta-binomial (the binomial coefficient removed)."""
    import scipy.stats

    data = _small_data(["ref", "b", "c"])
    pri = CataloguePriors(
        mu_logit_mean=(-1.0, 0.7), mu_logit_sd=0.8, log_kappa_mean=(2.0, 0.9), log_kappa_sd=0.4, source_offset_sd=0.6
    )
    model = build_catalogue_model(data, pri, VARIANTS[name])
    rng = np.random.default_rng(11)
    point = {k: np.asarray(rng.normal(0, 0.5, size=v.shape)) for k, v in model.initial_point().items()}
    m, sd, ell = point["mu_logit_mean"], np.exp(point["mu_logit_sd_log__"]), point["log_kappa_mean"]
    expected = (
        scipy.stats.norm(-1.0, 0.7).logpdf(m)
        + scipy.stats.halfnorm(scale=0.8).logpdf(sd)
        + np.log(sd)
        + scipy.stats.norm(0, 1).logpdf(point["mu_z"]).sum()
        + scipy.stats.norm(2.0, 0.9).logpdf(ell)
    )
    log_kappa = np.full(3, ell)
    if VARIANTS[name].pooled_kappa:
        ks = np.exp(point["log_kappa_sd_log__"])
        expected += scipy.stats.halfnorm(scale=0.4).logpdf(ks) + np.log(ks)
        expected += scipy.stats.norm(0, 1).logpdf(point["kappa_z"]).sum()
        log_kappa = log_kappa + ks * point["kappa_z"]
    eta = (m + sd * point["mu_z"])[data.technique_idx]
    if VARIANTS[name].source_offsets:
        free = point["source_offset_free"]
        expected += scipy.stats.norm(0, 0.6).logpdf(free).sum()
        eta = eta + np.concatenate([[0.0], free])[data.source_idx]
    p = 1 / (1 + np.exp(-eta))
    k = np.exp(log_kappa)[data.technique_idx]
    expected += (
        scipy.stats.betabinom(data.trials, p * k, (1 - p) * k).logpmf(data.successes)
        - scipy.stats.binom(data.trials, 0.5).logpmf(data.successes)
        - data.trials * np.log(2.0)
    ).sum()
    assert model.compile_logp()(point) == pytest.approx(expected, rel=1e-9)
    outs = model.replace_rvs_by_values([model["mu"], model["kappa"]])
    mu, kappa = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")(point)
    assert np.allclose(mu, 1 / (1 + np.exp(-(m + sd * point["mu_z"]))), rtol=1e-12)
    assert np.allclose(kappa, np.exp(log_kappa), rtol=1e-12)


# --- the LOO table and the choice -------------------------------------------------------------------------------------


def test_loo_table_rows_are_arviz_loo_best_first():
    """Each row's fields against arviz's own loo of the same tree; rows ordered by elpd, not by name."""
    import arviz as az

    base = np.full(40, -2.0)
    trees = {
        "pooled": _fake_tree(base - np.where(np.arange(40) % 2 == 0, 0.3, 0.1)),  # worse by 8 in total
        "shared": _fake_tree(base),
    }
    chosen, rows = compare_variants(trees)
    assert chosen == "shared"
    assert [r["variant"] for r in rows] == ["shared", "pooled"]
    keys = {
        "variant",
        "description",
        "elpd_loo",
        "se",
        "elpd_diff",
        "dse",
        "p_loo",
        "pareto_k_threshold",
        "pareto_k_bad",
        "eligible",
    }
    assert all(set(r) == keys for r in rows)
    assert rows[0]["description"] == "one κ for all techniques, no source offsets"
    assert rows[1]["description"] == "κ_t partially pooled on the log scale, no offsets"
    ref = {name: az.loo(tree, pointwise=True) for name, tree in trees.items()}
    best_i = np.asarray(ref["shared"].elpd_i)
    for r in rows:
        loo = ref[r["variant"]]
        diff_i = best_i - np.asarray(loo.elpd_i)
        assert r["elpd_loo"] == pytest.approx(float(loo.elpd), rel=1e-12)
        assert r["se"] == pytest.approx(float(loo.se), rel=1e-12)
        assert r["p_loo"] == pytest.approx(float(loo.p), rel=1e-12, abs=1e-12)
        assert r["pareto_k_threshold"] == pytest.approx(float(loo.good_k), rel=1e-12)
        assert r["pareto_k_bad"] == 0
        assert r["elpd_diff"] == pytest.approx(diff_i.sum(), abs=1e-9)
        assert r["dse"] == pytest.approx(np.std(diff_i) * np.sqrt(diff_i.size), abs=1e-9)
        assert r["eligible"] is True
    assert rows[0]["elpd_diff"] == 0.0 and rows[0]["dse"] == 0.0
    assert rows[1]["elpd_diff"] == pytest.approx(8.0, abs=0.05)
    assert rows[1]["dse"] == pytest.approx(0.1 * np.sqrt(40), abs=0.01)  # diffs 0.3 and 0.1: sd 0.1


def test_loo_table_does_not_depend_on_arviz_pointwise_setting():
    """The pointwise elpd is asked for explicitly, so a user's rcParams cannot take it away."""
    import arviz as az

    base = np.full(20, -2.0)
    trees = {"shared": _fake_tree(base), "pooled": _fake_tree(base + 0.5)}
    with az.rc_context({"stats.ic_pointwise": False}):
        chosen, rows = compare_variants(trees)
    assert chosen == "pooled"
    assert rows[1]["elpd_diff"] == pytest.approx(10.0, abs=0.05)


def _stub_loo(elpd_i, pareto_k=None, good_k=0.7):
    """What compare_variants reads of an arviz ELPDData, with the pointwise values given exactly."""
    from types import SimpleNamespace

    elpd_i = np.asarray(elpd_i, float)
    k = np.zeros(elpd_i.size) if pareto_k is None else np.asarray(pareto_k, float)
    return SimpleNamespace(elpd=elpd_i.sum(), se=1.0, p=0.5, good_k=good_k, elpd_i=elpd_i, pareto_k=k)


@pytest.fixture
def stub_loo(monkeypatch):
    """``az.loo`` returns the stub it is given in place of a tree."""
    import arviz as az

    monkeypatch.setattr(az, "loo", lambda tree, **kwargs: tree)


@pytest.mark.parametrize(
    ("shared_diff", "chosen"),
    [
        ([1.0, 1.0, 0.0, 0.0], "shared"),  # elpd_diff 2, dse 1: exactly two SE, still adequate
        ([9.0, 9.0, 1.0, 1.0], "offsets"),  # elpd_diff 20, dse 8: 2.5 SE, not adequate
        ([0.25, 0.25, 0.25, 0.25], "offsets"),  # elpd_diff 1, dse 0: any loss is too much
        ([0.0, 0.0, 0.0, 0.0], "shared"),  # a tie: the simpler one
    ],
)
def test_simpler_variant_is_chosen_within_two_standard_errors(stub_loo, shared_diff, chosen):
    """dse = √n · sd(diff_i); adequate when elpd_diff ≤ 2 dse (0 when dse is 0). Written-out cases at the edges."""
    best = np.full(4, -1.0)
    loos = {"offsets": _stub_loo(best), "shared": _stub_loo(best - np.array(shared_diff))}
    got, rows = compare_variants(loos)
    assert got == chosen
    shared = next(r for r in rows if r["variant"] == "shared")
    assert shared["elpd_diff"] == sum(shared_diff)


def test_without_the_best_variant_the_margin_is_from_the_best_eligible_one(stub_loo):
    """The ineligible best sets elpd_diff; a simpler eligible variant 0.5 behind the top eligible one (2 dse = 2.5)
    is adequate."""
    best = np.full(4, -1.0)
    loos = {
        "offsets_pooled": _stub_loo(best),
        "offsets": _stub_loo(best - 2.5),  # elpd_diff 10, dse 0
        "shared": _stub_loo(best - np.array([3.25, 3.25, 2.0, 2.0])),  # elpd_diff 10.5, dse 1.25
    }
    chosen, rows = compare_variants(loos, eligible={"offsets", "shared"})
    assert [r["variant"] for r in rows] == ["offsets_pooled", "offsets", "shared"]
    assert [r["elpd_diff"] for r in rows] == [0.0, 10.0, 10.5]
    assert [r["dse"] for r in rows] == [0.0, 0.0, 1.25]
    assert chosen == "shared"


def test_pareto_k_counted_only_above_the_threshold(stub_loo):
    loos = {"shared": _stub_loo([-1.0, -1.0, -1.0, -1.0], pareto_k=[0.7, 0.5, 0.71, 0.7], good_k=0.7)}
    _, rows = compare_variants(loos)
    assert rows[0]["pareto_k_bad"] == 1
    assert rows[0]["pareto_k_threshold"] == 0.7
