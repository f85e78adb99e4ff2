"""The multi-source model: its arrays, its log density against scipy, and its structure."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.special
import scipy.stats

from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import SynthesisData, build_synthesis_model
from tests.synthesis_fixtures import make_table

SOURCES = {"mt20": ("mtrends", "partial"), "mt21": ("mtrends", "partial"), "grp": ("groups", "complete")}
ROWS = [
    ("T1102", "mt20", 9, 227),
    ("T1102", "mt21", 4, 409),
    ("T1102", "grp", 33, 172),
    ("T1059", "mt20", 60, 227),
    ("T1059", "grp", 80, 172),
    ("T1003", "grp", 0, 172),
]


def _random_point(model, seed: int) -> dict:
    """Every value variable of ``model`` drawn from Normal(0.5, 0.7), seeded."""
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0.5, 0.7, np.shape(value)) for name, value in model.initial_point().items()}


def _at_point(model, names, point):
    """The model's deterministics ``names`` at ``point`` (the value variables), not at fresh random draws."""
    outputs = model.replace_rvs_by_values([model[v] for v in names])
    return model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore")(point)


def _logp(model, name, point) -> float:
    """The log density of variable ``name`` alone at ``point``, on its own scale (no Jacobian)."""
    return model.compile_logp(vars=[model[name]], jacobian=False)(point)


def test_arrays_put_the_reference_first_and_index_cells():
    data = SynthesisData.from_counts(make_table(ROWS, SOURCES))
    assert data.families == ["mtrends", "groups"] and data.reference == "mtrends"
    assert data.techniques == ["T1003", "T1059", "T1102"]
    assert data.complete == [1]  # groups
    assert data.multi_source_families() == [0]  # mtrends has two sources
    assert data.cells == [
        ("T1003", "groups"),
        ("T1059", "groups"),
        ("T1059", "mtrends"),
        ("T1102", "groups"),
        ("T1102", "mtrends"),
    ]
    t1102_mt = data.cells.index(("T1102", "mtrends"))
    rows = np.flatnonzero(data.cell_idx == t1102_mt)
    assert sorted(data.successes[rows]) == [4, 9]  # both years of one technique share one cell
    # 0 of 172 pins nothing: non-centred; 80 of 172 is measured with logit variance ~0.02: centred
    weak = dict(zip(data.cells, data.weak_cells(), strict=True))
    assert weak[("T1003", "groups")] and not weak[("T1059", "groups")]


def test_held_out_source_is_gone_and_recorded():
    data = SynthesisData.from_counts(make_table(ROWS, SOURCES), exclude_sources=("mt21",))
    assert "mt21" not in data.sources and data.multi_source_families() == []
    assert data.digest.endswith("held out: mt21")
    both = SynthesisData.from_counts(make_table(ROWS, SOURCES), exclude_sources=("mt21", "grp"))
    assert both.digest.endswith("|held out: grp,mt21")  # sorted, comma-separated


def test_log_density_matches_scipy():
    """One family, one source each: every term of the model's log density recomputed with scipy."""
    sources = {"mt": ("mtrends", "partial"), "x": ("xfam", "partial")}
    rows = [("T1102", "mt", 9, 227), ("T1102", "x", 47, 951), ("T1059", "mt", 60, 227), ("T1059", "x", 2, 951)]
    data = SynthesisData.from_counts(make_table(rows, sources))
    priors = SynthesisPriors()
    model = build_synthesis_model(data, priors)
    form = data.sampling_form()
    weak, loose = form.weak_cells, form.loose_levels
    assert loose.all()  # two techniques: s_a cannot be estimated, so both levels are non-centred
    rng = np.random.default_rng(3)
    c = np.array([-1.0, -3.2])
    point = {
        "level_mean": -3.1,
        "level_sd_log__": np.log(1.3),
        "b_partial": np.array([0.4]),
        "c_loose_z": (c[loose] + 3.1) / 1.3,
        "c_pinned": c[~loose],
        "sigma_log__": np.log(np.array([0.7, 1.1])),
        "u_weak": rng.normal(size=int(weak.sum())),
        "phi_strong": rng.normal(-2.5, 1.0, size=int((~weak).sum())),
    }
    point = {k: v for k, v in point.items() if k in {v.name for v in model.value_vars}}
    got = model.compile_logp(jacobian=False)(point)

    sigma = np.exp(point["sigma_log__"])
    b = np.array([0.0, point["b_partial"][0]])
    want = scipy.stats.norm.logpdf(-3.1, *priors.level_mean)
    want += scipy.stats.halfnorm.logpdf(1.3, scale=priors.level_sd)
    want += scipy.stats.norm.logpdf(b[1], 0, priors.family_offset_sd)
    want += scipy.stats.norm.logpdf((c[loose] + 3.1) / 1.3).sum()  # non-centred: c = m + b̄ + s_a z, b̄ = 0 here
    want += scipy.stats.norm.logpdf(c[~loose], -3.1, 1.3).sum()
    want += scipy.stats.gamma.logpdf(sigma, priors.departure[0], scale=1 / priors.departure[1]).sum()
    phi = np.zeros(len(data.cells))
    fam = np.array([data.families.index(f) for _, f in data.cells])
    tech = np.array([data.techniques.index(t) for t, _ in data.cells])
    centre = c[tech] + b[fam]
    if weak.any():
        phi[weak] = centre[weak] + sigma[fam[weak]] * point["u_weak"]
        want += scipy.stats.norm.logpdf(point["u_weak"]).sum()
    if (~weak).any():
        phi[~weak] = point["phi_strong"]
        want += scipy.stats.norm.logpdf(point["phi_strong"], centre[~weak], sigma[fam[~weak]]).sum()
    p = 1 / (1 + np.exp(-phi[data.cell_idx]))
    want += scipy.stats.binom.logpmf(data.successes, data.trials, p).sum()
    assert np.isclose(got, want, rtol=1e-9, atol=1e-8)


def test_named_dimensions():
    """Every named quantity on its named dimension, each dimension's labels as the data give them."""
    model = build_synthesis_model(SynthesisData.from_counts(make_table(ROWS, SOURCES)), SynthesisPriors())
    assert model.named_vars_to_dims == {
        "a": ("technique",),
        "b": ("family",),
        "c": ("technique",),
        "sigma": ("family",),
        "phi": ("cell",),
        "d": ("cell",),
        "e": ("year_source",),
        "log_kappa": ("multi_family",),
    }
    assert {k: list(v) for k, v in model.coords.items() if k != "observation"} == {
        "technique": ["T1003", "T1059", "T1102"],
        "family": ["mtrends", "groups"],  # the reference first
        "offset_family": ["groups"],
        "cell": ["T1003|groups", "T1059|groups", "T1059|mtrends", "T1102|groups", "T1102|mtrends"],
        "year_source": ["mt20", "mt21"],
        "multi_family": ["mtrends"],
        "single_family": ["groups"],
    }
    assert list(model.coords["observation"]) == list(range(len(ROWS)))
    assert sorted(v.name for v in model.deterministics) == ["a", "b", "c", "d", "e", "phi"]
    assert sorted(v.name for v in model.observed_RVs) == ["k_multi", "k_single"]
    assert {v.name for v in model.free_RVs} >= {"level_mean", "level_sd", "sigma", "tau", "log_kappa"}


def test_levels_offsets_and_departures_add_up_to_the_cell_logits():
    """φ_tf = a_t + b_f + d_tf (the model's definition) at a random point, with b_ref = 0 and the level a_t = c_t − b̄
    (c_t, the sampled level, is a_t plus the complete families' mean offset b̄, here the one complete family's b)."""
    data = SynthesisData.from_counts(make_table(ROWS, SOURCES))
    model = build_synthesis_model(data, SynthesisPriors())
    point = _random_point(model, 11)
    # at the point's values, not at fresh random draws of the variables (which would vary from run to run)
    a, b, c, phi, d = _at_point(model, ("a", "b", "c", "phi", "d"), point)
    b_bar = float(np.mean(b[data.complete]))
    assert b[0] == 0.0 and b_bar == point["b_complete_mean"]  # one complete family: b̄ is its offset
    assert abs(b_bar) > 0.1  # a point where the complete families' offset matters
    assert np.allclose(a, c - b_bar)
    tech = [data.techniques.index(t) for t, _ in data.cells]
    fam = [data.families.index(f) for _, f in data.cells]
    assert np.allclose(phi, a[tech] + b[fam] + d)


def test_held_out_rows_are_recorded_by_count_and_digest():
    """The digest names how many rows are held out and the first 16 hex digits of the SHA-256 of the sorted
    "technique,source" pairs joined by ";" (hashlib on the bytes written out here)."""
    held = frozenset({("T1102", "mt21"), ("T1059", "grp")})
    data = SynthesisData.from_counts(make_table(ROWS, SOURCES), exclude_rows=held)
    assert len(data.successes) == len(ROWS) - 2
    digest = hashlib.sha256(b"T1059,grp;T1102,mt21").hexdigest()[:16]
    assert data.digest.endswith(f"|held-out rows: 2 {digest}")
    assert data.digest.split("|held-out rows: ")[1] == f"2 {digest}"


def test_levels_centre_year_shifts_and_concentrations_enter_the_log_density():
    """With a complete family (b̄ ≠ 0) and a family of two years: the non-centred level is c_t = m + b̄ + s_a z_t;
    the counts' log-likelihood is scipy's beta-binomial (mtrends, κ = exp(log κ)) and binomial (groups) at
    θ = logit⁻¹(φ_tf + e_s), e_s the row's year shift; log κ ~ Normal(4, 1.5), scipy's density."""
    data = SynthesisData.from_counts(make_table(ROWS, SOURCES))
    priors = SynthesisPriors()
    model = build_synthesis_model(data, priors)
    assert data.sampling_form().loose_levels.all()  # every level non-centred here: c = m + b̄ + s_a z
    point = _random_point(model, 5)
    c, phi, e = _at_point(model, ("c", "phi", "e"), point)
    b_bar, s_a = point["b_complete_mean"], np.exp(point["level_sd_log__"])
    assert abs(b_bar) > 0.1
    np.testing.assert_allclose(c, point["level_mean"] + b_bar + s_a * point["c_loose_z"], rtol=1e-12)
    assert abs(e[0]) > 0.05 and e[0] == pytest.approx(-e[1])  # the two years' shifts, summing to 0

    year = {"mt20": e[0], "mt21": e[1], "grp": 0.0}
    shift = np.array([year[data.sources[i]] for i in data.source_idx])
    theta = scipy.special.expit(phi[data.cell_idx] + shift)
    kappa = np.exp(point["log_kappa"][0])
    multi = data.family_idx == 0
    k, n = data.successes, data.trials
    want_multi = scipy.stats.betabinom.logpmf(k[multi], n[multi], theta[multi] * kappa, (1 - theta[multi]) * kappa)
    want_single = scipy.stats.binom.logpmf(k[~multi], n[~multi], theta[~multi])
    assert _logp(model, "k_multi", point) == pytest.approx(want_multi.sum(), rel=1e-10)
    assert _logp(model, "k_single", point) == pytest.approx(want_single.sum(), rel=1e-10)
    want_kappa = scipy.stats.norm.logpdf(point["log_kappa"][0], 4.0, 1.5)
    assert _logp(model, "log_kappa", point) == pytest.approx(want_kappa, rel=1e-8)


def test_without_complete_families_the_levels_are_the_technique_levels():
    """No complete family: b̄ = 0, so c_t = a_t = m + s_a z_t."""
    sources = {"mt": ("mtrends", "partial"), "x": ("xfam", "partial")}
    rows = [("T1102", "mt", 9, 227), ("T1102", "x", 47, 951), ("T1059", "mt", 60, 227), ("T1059", "x", 2, 951)]
    data = SynthesisData.from_counts(make_table(rows, sources))
    model = build_synthesis_model(data, SynthesisPriors())
    assert data.complete == [] and data.sampling_form().loose_levels.all()
    point = _random_point(model, 2)
    a, c = _at_point(model, ("a", "c"), point)
    want = point["level_mean"] + np.exp(point["level_sd_log__"]) * point["c_loose_z"]
    np.testing.assert_allclose(c, want, rtol=1e-12)
    np.testing.assert_allclose(a, want, rtol=1e-12)


def test_complete_families_offsets_and_departure_scales_follow_their_priors():
    """Two complete families, non-default priors: b_f = b̄ + dev_f for each complete family; dev's log density
    falls by Σ dev² / (2 σ_b²) with σ_b the prior's family_offset_sd, 0.7 (not ZeroSumNormal's default 1); each
    family's departure scale σ_f has scipy's Gamma(3, rate 1.5) density (shape and rate not swapped)."""
    sources = dict(SOURCES, sw=("software", "complete"))
    rows = [*ROWS, ("T1102", "sw", 20, 300), ("T1059", "sw", 90, 300)]
    data = SynthesisData.from_counts(make_table(rows, sources))
    assert len(data.complete) == 2
    priors = SynthesisPriors(family_offset_sd=0.7, departure=(3.0, 1.5))
    model = build_synthesis_model(data, priors)
    point = _random_point(model, 8)
    b, b_bar, dev, sigma = _at_point(model, ("b", "b_complete_mean", "b_complete_dev", "sigma"), point)
    assert np.all(np.abs(dev) > 0.05) and dev.sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(b[data.complete], b_bar + dev, rtol=1e-12)

    other = dict(point, b_complete_dev_zerosum__=2.0 * point["b_complete_dev_zerosum__"])
    dev2 = _at_point(model, ("b_complete_dev",), other)[0]
    want = -(np.sum(dev2**2) - np.sum(dev**2)) / (2 * 0.7**2)
    drop = _logp(model, "b_complete_dev", other) - _logp(model, "b_complete_dev", point)
    assert drop == pytest.approx(want, rel=1e-10)
    gamma = scipy.stats.gamma(3.0, scale=1 / 1.5)
    assert _logp(model, "sigma", point) == pytest.approx(gamma.logpdf(sigma).sum(), rel=1e-7)
