"""The alternative multi-source models: their log densities against scipy, held-out rows, and the helpers' names."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import scipy.special
import scipy.stats
import xarray as xr

from attackprev.inference.synthesis import (
    SynthesisResult,
    SynthesisSettings,
    cell_logits,
    predictive_draws,
    target_draws,
)
from attackprev.model.alternatives import MODELS, build_exchangeable, build_offsets_only
from attackprev.model.priors import SynthesisPriors
from attackprev.model.sampling_form import SamplingForm
from attackprev.model.synthesis import SynthesisData
from tests.synthesis_fixtures import make_table

SOURCES = {
    "mt20": ("mtrends", "partial"),
    "mt21": ("mtrends", "partial"),
    "grp": ("groups", "complete"),
    "x": ("xfam", "partial"),
}
ROWS = [
    ("T1102", "mt20", 9, 227),
    ("T1102", "mt21", 4, 409),
    ("T1102", "grp", 33, 172),
    ("T1102", "x", 40, 951),
    ("T1059", "mt20", 60, 227),
    ("T1059", "grp", 80, 172),
    ("T1003", "grp", 0, 172),
    ("T1003", "x", 5, 951),
]
PRIORS = SynthesisPriors()


@pytest.fixture(scope="module")
def data() -> SynthesisData:
    return SynthesisData.from_counts(make_table(ROWS, SOURCES))


def _zerosum(model: pm.Model, name: str, value: np.ndarray) -> np.ndarray:
    """The constrained values of a ZeroSumNormal from its sampler-space value (PyMC's own transform)."""
    rv = model[name]
    return model.rvs_to_transforms[rv].backward(pt.as_tensor(value), *rv.owner.inputs).eval()


def _zerosum_logp(x: np.ndarray, sigma: float) -> float:
    """ZeroSumNormal density by hand: n normals with one degree of freedom fewer."""
    return float(scipy.stats.norm.logpdf(x, 0.0, sigma).sum() + np.log(sigma) + 0.5 * np.log(2 * np.pi))


def _beta_binomial(k, n, theta, kappa) -> float:
    return float(scipy.stats.betabinom.logpmf(k, n, theta * kappa, (1 - theta) * kappa).sum())


@pytest.fixture(params=["chosen", "centred"])
def form(request, data, monkeypatch) -> SamplingForm:
    """The form the data choose (three techniques, two years: everything non-centred) or every level
    and year shift centred; both are the same model, so the log density must match either way."""
    form = data.sampling_form()
    if request.param == "centred":
        form = replace(form, loose_levels=np.zeros_like(form.loose_levels), noncentred_years=())
    monkeypatch.setattr(SynthesisData, "sampling_form", lambda self: form)
    return form


def _levels(form: SamplingForm, c: np.ndarray, centre: float, s_a: float) -> tuple[dict, float]:
    """The sampler's values for levels c and their log density, in the form's parameterisation."""
    loose = form.loose_levels
    point = {"c_loose_z": (c[loose] - centre) / s_a, "c_pinned": c[~loose]}
    logp = scipy.stats.norm.logpdf(point["c_loose_z"]).sum() + scipy.stats.norm.logpdf(c[~loose], centre, s_a).sum()
    return {k: v for k, v in point.items() if v.size}, float(logp)


def _years(form, data, model, value: np.ndarray, tau: float) -> tuple[dict, float, np.ndarray]:
    """The sampler's value of the mtrends year shifts, their log density and each observation's shift."""
    if 0 in form.noncentred_years:
        name = "year_shift_mtrends_z"
        z = _zerosum(model, name, value)
        shift, logp = tau * z, _zerosum_logp(z, 1.0)
    else:
        name = "year_shift_mtrends"
        shift = _zerosum(model, name, value)
        logp = _zerosum_logp(shift, tau)
    by_source = {"mt20": shift[0], "mt21": shift[1]}
    per_obs = np.array([by_source.get(data.sources[s], 0.0) for s in data.source_idx])
    return {f"{name}_zerosum__": value}, logp, per_obs


def test_exchangeable_log_density_matches_scipy(data, form):
    model = build_exchangeable(data, PRIORS)
    weak = data.weak_cells()
    rng = np.random.default_rng(4)
    a, tau = np.array([-4.0, -1.0, -3.2]), 0.4
    levels, levels_logp = _levels(form, a, -3.1, 1.3)  # no family offsets: a_t is the cells' centre
    years, years_logp, shift = _years(form, data, model, np.array([0.3]), tau)
    point = {
        "level_mean": -3.1,
        "level_sd_log__": np.log(1.3),
        **levels,
        "sigma_log__": np.log(np.array([0.7, 1.1, 1.6])),
        "u_weak": rng.normal(size=int(weak.sum())),
        "phi_strong": rng.normal(-2.5, 1.0, size=int((~weak).sum())),
        "tau_log__": np.log(tau),
        **years,
        "log_kappa": np.array([3.5]),
    }
    assert {v.name for v in model.value_vars} == set(point)
    got = model.compile_logp(jacobian=False)(point)

    sigma = np.exp(point["sigma_log__"])
    fam, tech = data.cell_family(), data.cell_technique()
    want = scipy.stats.norm.logpdf(-3.1, *PRIORS.level_mean) + scipy.stats.halfnorm.logpdf(1.3, scale=PRIORS.level_sd)
    want += levels_logp
    want += scipy.stats.gamma.logpdf(sigma, PRIORS.departure[0], scale=1 / PRIORS.departure[1]).sum()
    phi = np.zeros(len(data.cells))
    phi[weak] = a[tech[weak]] + sigma[fam[weak]] * point["u_weak"]
    phi[~weak] = point["phi_strong"]
    want += scipy.stats.norm.logpdf(point["u_weak"]).sum()
    want += scipy.stats.norm.logpdf(point["phi_strong"], a[tech[~weak]], sigma[fam[~weak]]).sum()
    want += scipy.stats.halfnorm.logpdf(tau, scale=PRIORS.year_sd) + years_logp
    want += scipy.stats.norm.logpdf(3.5, *PRIORS.log_kappa)
    theta = scipy.special.expit(phi[data.cell_idx] + shift)
    mt = data.family_idx == 0
    want += _beta_binomial(data.successes[mt], data.trials[mt], theta[mt], np.exp(3.5))
    want += scipy.stats.binom.logpmf(data.successes[~mt], data.trials[~mt], theta[~mt]).sum()
    assert np.isclose(got, want, rtol=1e-9, atol=1e-8)


def test_offsets_only_log_density_matches_scipy(data, form):
    """Every family beta-binomial, one κ per family, cells at a_t + b_f exactly."""
    model = build_offsets_only(data, PRIORS)
    c, tau = np.array([-2.0, 0.5, -1.5]), 0.4
    levels, levels_logp = _levels(form, c, -3.1 + 1.2, 1.3)
    years, years_logp, shift = _years(form, data, model, np.array([-0.2]), tau)
    point = {
        "level_mean": -3.1,
        "level_sd_log__": np.log(1.3),
        "b_complete_mean": 1.2,
        "b_complete_dev_zerosum__": np.zeros(0),  # one complete family: its deviation from the mean is 0
        "b_partial": np.array([-0.7]),
        **levels,
        "tau_log__": np.log(tau),
        **years,
        "log_kappa": np.array([3.5]),
        "log_kappa_single": np.array([2.0, 5.0]),
    }
    assert {v.name for v in model.value_vars} == set(point)
    got = model.compile_logp(jacobian=False)(point)

    assert data.families == ["mtrends", "groups", "xfam"]
    b = np.array([0.0, 1.2, -0.7])
    a = c - 1.2
    want = scipy.stats.norm.logpdf(-3.1, *PRIORS.level_mean) + scipy.stats.halfnorm.logpdf(1.3, scale=PRIORS.level_sd)
    want += scipy.stats.norm.logpdf([1.2, -0.7], 0.0, PRIORS.family_offset_sd).sum()
    want += levels_logp
    want += scipy.stats.halfnorm.logpdf(tau, scale=PRIORS.year_sd) + years_logp
    want += scipy.stats.norm.logpdf([3.5, 2.0, 5.0], *PRIORS.log_kappa).sum()
    kappa = np.exp(np.array([3.5, 2.0, 5.0]))[data.family_idx]  # mtrends, then groups and xfam
    eta = a[data.technique_idx] + b[data.family_idx]
    theta = scipy.special.expit(eta + shift)
    want += _beta_binomial(data.successes, data.trials, theta, kappa)
    assert np.isclose(got, want, rtol=1e-9, atol=1e-8)


def test_exclude_rows_removes_exactly_those_rows():
    table = make_table(ROWS, SOURCES)
    held = frozenset({("T1102", "mt21"), ("T1059", "mt20")})
    full = SynthesisData.from_counts(table)
    data = SynthesisData.from_counts(table, exclude_rows=held)
    kept = {(data.techniques[t], data.sources[s]) for t, s in zip(data.technique_idx, data.source_idx, strict=True)}
    assert kept == {(t, s) for t, s, _, _ in ROWS} - held
    assert len(data.successes) == len(full.successes) - 2
    assert ("T1059", "mtrends") not in data.cells and ("T1102", "mtrends") in data.cells
    assert data.digest != full.digest and full.digest == table.digest
    assert SynthesisData.from_counts(table, exclude_rows=frozenset()).digest == full.digest


def _prior_result(data: SynthesisData, builder) -> SynthesisResult:
    """A result whose 'posterior' is 40 prior draws (2 chains × 20): enough to exercise the helpers."""
    with builder(data, PRIORS):
        prior = pm.sample_prior_predictive(draws=40, random_seed=1)["prior"].to_dataset()
    post = prior.squeeze("chain", drop=True).rename({"draw": "d_"})
    post = post.assign_coords(d_=np.arange(40)).coarsen(d_=20).construct(d_=("chain", "draw"))
    tree = xr.DataTree.from_dict({"posterior": post})
    return SynthesisResult(data, tree, None, PRIORS, SynthesisSettings(draws=20, chains=2))


@pytest.mark.parametrize("name", [m for m in MODELS if m != "synthesis"])
def test_helpers_read_every_model(data, name):
    result = _prior_result(data, MODELS[name])
    p = target_draws(result, "mtrends")
    assert p.shape == (40, len(data.techniques)) and ((p > 0) & (p < 1)).all()
    assert predictive_draws(result, "mtrends").shape == p.shape
    if name == "offsets_only":  # no departures: the target is exactly logit⁻¹(a_t + b_T)
        a, b = result.stacked("a"), result.stacked("b")
        assert np.allclose(cell_logits(result, "xfam"), a + b[:, [2]])
