"""The sampled form of the multi-source model: chosen from the data, and never changing the model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytest
import scipy.stats

from attackprev.evidence.counts import load_counts
from attackprev.model.priors import SynthesisPriors
from attackprev.model.sampling_form import choose_form
from attackprev.model.synthesis import SynthesisData, build_synthesis_model
from tests.synthesis_fixtures import make_table

FAMILIES = ("ref", "f1", "f2", "f3")


def _table(level_sd: float, sigma: float, tau: float, techniques: int = 60, n: int = 5000, seed: int = 1):
    """Counts drawn from the model's structure: levels a_t, departures d_tf, ten reference years
    shifted ±τ."""
    rng = np.random.default_rng(seed)
    sources = {f"ref{y}": ("ref", "partial") for y in range(10)}
    sources |= {f: (f, "complete") for f in FAMILIES[1:]}
    shift = {f"ref{y}": tau * (-1) ** y for y in range(10)}
    a = rng.normal(-2.0, level_sd, techniques)
    rows = []
    for t in range(techniques):
        for s in sources:
            logit = a[t] + rng.normal(0.0, sigma) + shift.get(s, 0.0)
            rows.append((f"T{1000 + t}", s, int(rng.binomial(n, 1 / (1 + np.exp(-logit)))), n))
    return make_table(rows, sources)


def test_small_departures_make_cells_non_centred_and_large_ones_centred():
    small = SynthesisData.from_counts(_table(1.5, 0.0, 0.5), reference="ref")
    large = SynthesisData.from_counts(_table(1.5, 1.0, 0.5), reference="ref")
    f_small, f_large = choose_form(small), choose_form(large)
    assert np.all(f_small.sigma_hat < 0.1)
    assert np.all((f_large.sigma_hat > 0.4) & (f_large.sigma_hat < 1.1))  # a lower bound of σ = 1
    # n = 5000 measures a logit to a variance of ~0.001-0.01: above 0 but below 1 (the reference family
    # pools ten years, so its cells stay centred while σ̂ exceeds their noise)
    assert f_small.weak_cells.mean() > 0.7 and f_large.weak_cells.mean() < 0.1


def test_equal_levels_are_non_centred_and_spread_ones_centred():
    equal = choose_form(SynthesisData.from_counts(_table(0.0, 0.3, 0.5), reference="ref"))
    spread = choose_form(SynthesisData.from_counts(_table(2.0, 0.3, 0.5), reference="ref"))
    assert equal.level_sd_hat < 0.2 and equal.loose_levels.all()
    assert 1.2 < spread.level_sd_hat < 2.2 and not spread.loose_levels.any()


def test_years_that_do_not_differ_are_non_centred():
    flat = choose_form(SynthesisData.from_counts(_table(1.5, 0.3, 0.0), reference="ref"))
    shifted = choose_form(SynthesisData.from_counts(_table(1.5, 0.3, 0.8), reference="ref"))
    assert flat.noncentred_years == (0,) and flat.tau_hat < 0.1
    assert shifted.noncentred_years == () and shifted.tau_hat > 0.15  # a lower bound of τ = 0.8


def test_counts_too_few_to_estimate_leave_the_fixed_rules():
    """A family of fewer than 8 informative cells has no moment estimate: 0 of n counts say nothing."""
    data = SynthesisData.from_counts(_table(1.5, 0.3, 0.5, techniques=5), reference="ref")
    assert np.isnan(choose_form(data).sigma_hat).all()


def test_the_full_evidence_keeps_its_tuned_form():
    """On the real counts every scale is estimated well away from 0: levels and year shifts centred."""
    form = choose_form(SynthesisData.from_counts(load_counts()))
    assert not form.loose_levels.any() and form.noncentred_years == ()
    assert form.level_sd_hat > 1.0 and form.tau_hat > 0.05


@pytest.mark.parametrize("level_sd, tau", [(0.0, 0.0), (2.0, 0.8)])
def test_the_prior_is_the_same_in_every_form(level_sd, tau):
    """The form only reparameterises: the prior of levels, shifts and cell logits is unchanged."""
    table = _table(level_sd, 0.3, tau, techniques=12)
    data = SynthesisData.from_counts(table, reference="ref")
    form = choose_form(data)
    zeros = replace(data, successes=np.zeros_like(data.successes))
    other = choose_form(zeros)
    assert other.loose_levels.all() and other.noncentred_years == (0,)  # zeros: everything non-centred
    names = ["c", "e", "phi"]
    draws = {}
    for key, d in (("data", data), ("zeros", zeros)):
        model = build_synthesis_model(d, SynthesisPriors())
        draws[key] = pm.sample_prior_predictive(
            draws=3000, model=model, var_names=names, random_seed=7, return_inferencedata=False
        )
    if level_sd > 0:
        assert not form.loose_levels.any() and form.noncentred_years == ()
    for name in names:
        for j in (0, -1):
            a, b = draws["data"][name][:, j], draws["zeros"][name][:, j]
            assert scipy.stats.ks_2samp(a, b).pvalue > 0.001, (name, j)
