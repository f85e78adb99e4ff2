"""The hyperpriors' labels say what they put a prior on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats


def _power(name: str = "p", **params):
    """A PowerConcentration prior named ``name``, with ``params`` and empty descriptions."""
    from attackprev.model.priors import PowerConcentration

    return PowerConcentration(name=name, label="", reference="", rationale="", **params)


def test_single_technique_prior_label_states_the_delta_method():
    """τ = 1/√(μ(1−μ)(κ+1)) understates the logit spread of a rare technique: 1.30, not 1, at μ = 0.05."""
    from attackprev.model.priors import PRIORS, logit_spread

    mu = 0.05
    kappa = 1.0 / (mu * (1 - mu)) - 1.0  # τ = 1
    assert np.isclose(logit_spread(mu, kappa), 1.0)
    draws = scipy.stats.beta(mu * kappa, (1 - mu) * kappa).rvs(400_000, random_state=1)
    exact = np.std(np.log(draws / (1 - draws)))
    assert abs(exact - 1.30) < 0.01
    assert "delta-method" in PRIORS["halfnormal1"].label and "1.30" in PRIORS["halfnormal1"].rationale


# --- log-densities at and around their bounds -------------------------------------------------------------------------


def test_pareto_logp_is_scipys_pareto_with_its_lower_bound_included():
    from attackprev.model.priors import ParetoConcentration

    prior = ParetoConcentration(name="p", label="", reference="", rationale="", minimum=2.0, shape=1.5)
    ref = scipy.stats.pareto(b=1.5, scale=2.0)
    kappa = np.array([2.0, 2.0 + 1e-9, 3.0, 50.0, 1e4])
    assert np.allclose(prior.logp_kappa(0.3, kappa), ref.logpdf(kappa), rtol=1e-12)
    assert prior.logp_kappa(0.3, 2.0) == pytest.approx(np.log(1.5 / 2.0), rel=1e-12)  # a / k0 at the minimum
    below = prior.logp_kappa(0.3, np.array([2.0 - 1e-9, 1.0, 0.1]))
    assert np.all(below == -np.inf)


def test_power_logp_is_the_closed_form_on_its_closed_interval():
    from attackprev.model.priors import PRIORS

    prior = _power(power=1.0, lower=0.1, upper=1e5)
    inside = np.array([0.1, 0.1 + 1e-12, 1.0, 1e5 - 1e-6, 1e5])
    assert np.allclose(prior.logp_kappa(0.3, inside), -np.log(inside), rtol=1e-12)
    outside = np.array([0.1 - 1e-12, 0.01, 1e5 + 1e-6, 1e7])
    assert np.all(prior.logp_kappa(0.3, outside) == -np.inf)
    bda3 = PRIORS["bda3"]
    assert np.allclose(bda3.logp_kappa(0.3, np.array([1e-3, 1.0, 1e7])), -1.5 * np.log([1e-3, 1.0, 1e7]), rtol=1e-12)


@pytest.mark.parametrize(("power", "lower", "upper"), [(1.0, 0.1, 1e5), (1.5, 1.0, 1e4), (0.5, 2.0, 50.0)])
def test_power_normaliser_makes_the_kappa_density_integrate_to_one(power, lower, upper):
    import scipy.integrate

    prior = _power(power=power, lower=lower, upper=upper)
    # over log κ, where the density is smooth: ∫ exp(logp_kappa(κ) + log κ) d log κ
    total, _ = scipy.integrate.quad(
        lambda t: np.exp(prior.logp_kappa(0.3, np.exp(t)) + t + prior.log_kappa_normaliser),
        np.log(lower),
        np.log(upper),
        epsabs=0,
        epsrel=1e-12,
    )
    assert total == pytest.approx(1.0, rel=1e-9)


def test_normalisers_of_the_other_priors():
    from attackprev.model.priors import PRIORS

    assert PRIORS["pareto"].log_kappa_normaliser == 0.0  # its logp_kappa is scipy's normalised Pareto
    assert PRIORS["halfnormal1"].log_kappa_normaliser == 0.0
    assert np.isnan(PRIORS["bda3"].log_kappa_normaliser)  # κ^(-3/2) on (0, ∞) has no finite integral


# --- draws ------------------------------------------------------------------------------------------------------------


def _ks(sample, dist) -> float:
    return scipy.stats.kstest(sample, dist.cdf).pvalue


def test_pareto_draws_are_beta_and_pareto():
    from attackprev.model.priors import ParetoConcentration

    prior = ParetoConcentration(
        name="p", label="", reference="", rationale="", mu_alpha=2.0, mu_beta=5.0, minimum=2.0, shape=1.5
    )
    mu, kappa = prior.sample(np.random.default_rng(4), 4000)
    assert mu.shape == (4000,) and kappa.shape == (4000,)
    assert _ks(mu, scipy.stats.beta(2.0, 5.0)) > 1e-3
    assert _ks(kappa, scipy.stats.pareto(b=1.5, scale=2.0)) > 1e-3


def test_loguniform_draws_are_beta_and_loguniform():
    from attackprev.model.priors import PRIORS

    prior = _power(mu_alpha=3.0, mu_beta=1.5, power=1.0, lower=0.5, upper=200.0)
    mu, kappa = prior.sample(np.random.default_rng(5), 4000)
    assert mu.shape == (4000,) and kappa.shape == (4000,)
    assert _ks(mu, scipy.stats.beta(3.0, 1.5)) > 1e-3
    assert _ks(kappa, scipy.stats.loguniform(0.5, 200.0)) > 1e-3
    mu, kappa = PRIORS["loguniform"].sample(np.random.default_rng(6), 3000)
    assert _ks(mu, scipy.stats.uniform()) > 1e-3
    assert _ks(kappa, scipy.stats.loguniform(0.1, 1e5)) > 1e-3


def test_only_a_bounded_log_flat_power_prior_can_be_sampled():
    """power = 1 with 0 < lower < upper < ∞ is proper; every other power prior says it is improper."""
    cases = [
        (1.5, 0.1, 10.0),  # bounded but not flat in log κ
        (1.0, 0.0, 10.0),  # lower bound at 0
        (1.0, 2.0, 2.0),  # empty interval
        (1.0, 0.1, np.inf),  # unbounded above
        (1.5, 0.0, np.inf),  # BDA3's
    ]
    for power, lower, upper in cases:
        prior = _power(name="pw", power=power, lower=lower, upper=upper)
        with pytest.raises(ValueError, match=r"^prior 'pw' is improper and cannot be sampled$"):
            prior.sample(np.random.default_rng(0), 10)


# --- lookup and plain-data forms --------------------------------------------------------------------------------------


def test_unknown_prior_error_names_every_choice():
    from attackprev.model.priors import get_prior

    expected = "unknown prior 'nope'; choose one of halfnormal1, halfnormal05, pareto, bda3, loguniform"
    with pytest.raises(ValueError) as err:
        get_prior("nope")
    assert str(err.value) == expected
    assert get_prior("pareto").name == "pareto"


def test_catalogue_priors_as_text():
    from attackprev.model.priors import CataloguePriors

    pri = CataloguePriors(
        mu_logit_mean=(-1.5, 0.5), mu_logit_sd=0.75, log_kappa_mean=(2.5, 1.25), log_kappa_sd=0.3, source_offset_sd=2.0
    )
    assert pri.to_dict() == {
        "mu_logit_mean": "Normal(-1.5, 0.5)",
        "mu_logit_sd": "HalfNormal(0.75)",
        "log_kappa_mean": "Normal(2.5, 1.25)",
        "log_kappa_sd": "HalfNormal(0.3)",
        "source_offset": "Normal(0, 2) per non-reference source",
    }
    assert CataloguePriors().to_dict() == {
        "mu_logit_mean": "Normal(-2, 1.5)",
        "mu_logit_sd": "HalfNormal(1.5)",
        "log_kappa_mean": "Normal(3, 1.5)",
        "log_kappa_sd": "HalfNormal(1)",
        "source_offset": "Normal(0, 1.5) per non-reference source",
    }


def test_synthesis_priors_as_text():
    """Every field of the multi-source priors, each number in its place (both entries of the tuples differ)."""
    from attackprev.model.priors import SynthesisPriors

    pri = SynthesisPriors(
        level_mean=(-3.25, 1.75),
        level_sd=2.5,
        family_offset_sd=1.25,
        departure=(3.0, 4.0),
        year_sd=0.75,
        log_kappa=(4.5, 2.0),
    )
    assert pri.to_dict() == {
        "level_mean": "Normal(-3.25, 1.75)",
        "level_sd": "HalfNormal(2.5)",
        "family_offset": "Normal(0, 1.25) per partial family; complete families: their mean Normal(0, 1.25) plus "
        "ZeroSumNormal(1.25) deviations",
        "departure_sd": "Gamma(3, 4) per family",
        "year_sd": "HalfNormal(0.75)",
        "log_kappa": "Normal(4.5, 2) per family with several sources",
    }


def test_single_technique_priors_as_plain_data():
    """Each prior's to_dict, the form saved with every posterior and shown in reports, written out in full."""
    from attackprev.model.priors import PRIORS

    common = ("name", "label", "reference", "rationale")
    expected_kappa = {
        "halfnormal1": "tau = 1/sqrt(mu(1-mu)(kappa+1)) ~ HalfNormal(1)",
        "halfnormal05": "tau = 1/sqrt(mu(1-mu)(kappa+1)) ~ HalfNormal(0.5)",
        "pareto": "Pareto(1, 1.5)",
        "bda3": "p(kappa) ∝ kappa^(-1.5)",
        "loguniform": "p(kappa) ∝ kappa^(-1) on [0.1, 100000]",
    }
    for name, kappa in expected_kappa.items():
        prior = PRIORS[name]
        assert prior.to_dict() == {k: getattr(prior, k) for k in common} | {
            "mu": "Beta(1, 1)",
            "proper": name != "bda3",
            "kappa": kappa,
        }, name
    assert PRIORS["bda3"].to_dict()["name"] == "bda3" and PRIORS["bda3"].to_dict()["proper"] is False
    bounded = _power(mu_alpha=2.0, mu_beta=3.5, power=2.0, lower=0.5, upper=20.0)
    assert bounded.to_dict()["mu"] == "Beta(2, 3.5)"
    assert bounded.to_dict()["kappa"] == "p(kappa) ∝ kappa^(-2) on [0.5, 20]"


def test_halfnormal_spread_draws_redraw_every_rejected_tau_independently():
    """With HalfNormal(3), about half the first draws of τ exceed 1/√(μ(1−μ)) (κ < 0) and are drawn again.

    Given μ, τ is then a HalfNormal(3) truncated at 1/√(μ(1−μ)): its conditional CDF values are uniform. A redraw
    with the wrong location or scale, or one value for every rejected τ, fails.
    """
    from attackprev.model.priors import HalfNormalLogitSpread, logit_spread

    prior = HalfNormalLogitSpread(name="t", label="", reference="", rationale="", scale=3.0)
    mu, kappa = prior.sample(np.random.default_rng(11), 4000)
    assert np.all(kappa > 0)
    assert np.unique(kappa).size == kappa.size
    tau = logit_spread(mu, kappa)
    hn = scipy.stats.halfnorm(scale=3.0)
    u = hn.cdf(tau) / hn.cdf(1.0 / np.sqrt(mu * (1.0 - mu)))
    assert scipy.stats.kstest(u, "uniform").pvalue > 1e-3


def test_halfnormal_spread_redraws_come_from_the_same_halfnormal():
    """Every normal draw, first or redraw, is Normal(0, scale), one per τ still out of range.

    A redraw centred at 1 instead of 0 shifts the truncated τ too little for a test on draws to see
    (the densities differ by a factor cosh(τ/9) ≤ 1.03 below τ = 2), so the generator's calls are recorded.
    """
    from attackprev.model.priors import HalfNormalLogitSpread

    class Recording:
        def __init__(self, rng):
            self.rng, self.normal_calls = rng, []

        def beta(self, *args):
            return self.rng.beta(*args)

        def normal(self, loc, scale, size):
            self.normal_calls.append((loc, scale, size))
            return self.rng.normal(loc, scale, size)

    prior = HalfNormalLogitSpread(name="t", label="", reference="", rationale="", scale=3.0)
    rng = Recording(np.random.default_rng(3))
    prior.sample(rng, 1000)
    calls = rng.normal_calls
    assert len(calls) > 2 and calls[0] == (0.0, 3.0, 1000)
    assert all(loc == 0.0 and scale == 3.0 and isinstance(size, int | np.integer) for loc, scale, size in calls)
    assert all(
        0 < size <= previous for (*_, previous), (*_, size) in itertools.pairwise(calls)
    )  # fewer left each round


def test_mu_log_density_is_scipys_beta():
    prior = _power(mu_alpha=2.5, mu_beta=4.0)
    mu = np.array([1e-4, 0.05, 0.3, 0.9, 1 - 1e-6])
    np.testing.assert_allclose(prior.logp_mu(mu), scipy.stats.beta(2.5, 4.0).logpdf(mu), rtol=1e-12)


@pytest.mark.parametrize("name", ["halfnormal1", "pareto", "bda3", "loguniform"])
def test_joint_log_density_in_pytensor_is_the_numpy_one(name):
    """The PyMC model evaluates the priors on tensors: every part must use the maths it is given."""
    import pytensor.tensor as pt

    from attackprev.model.betabinomial import PYTENSOR_MATH
    from attackprev.model.priors import PRIORS

    prior = PRIORS[name]
    mu, kappa = np.array([0.04, 0.3, 0.7]), np.array([2.0, 40.0, 900.0])
    tensor = prior.logp(pt.as_tensor(mu), pt.as_tensor(kappa), PYTENSOR_MATH).eval()
    np.testing.assert_allclose(tensor, prior.logp(mu, kappa), rtol=1e-12)


def test_kappa_bounds_are_each_priors_own_within_the_support():
    from attackprev.model.priors import KAPPA_SUPPORT, PRIORS, kappa_bounds

    assert KAPPA_SUPPORT == (1e-3, 1e7)
    assert kappa_bounds(PRIORS["loguniform"]) == (0.1, 1e5)
    assert kappa_bounds(PRIORS["pareto"]) == (1.0, 1e7)
    assert kappa_bounds(PRIORS["halfnormal1"]) == (1e-3, 1e7)
    assert kappa_bounds(PRIORS["bda3"]) == (1e-3, 1e7)


@pytest.mark.parametrize(
    ("power", "lower", "upper", "want"),
    [
        (0.5, 0.0, 100.0, -np.log(2 * 100**0.5)),  # ∫_0^100 κ^(-1/2) dκ = 2·10
        (1.5, 4.0, np.inf, -np.log(2 / 4**0.5)),  # ∫_4^∞ κ^(-3/2) dκ = 2/2
        (1.0, 0.0, 10.0, np.nan),  # log κ unbounded below
        (1.0, 1.0, np.inf, np.nan),  # log κ unbounded above
        (0.5, 1.0, np.inf, np.nan),
        (1.5, 0.0, 10.0, np.nan),
    ],
)
def test_power_normaliser_on_half_open_ranges(power, lower, upper, want):
    prior = _power(power=power, lower=lower, upper=upper)
    np.testing.assert_allclose(prior.log_kappa_normaliser, want, rtol=1e-12)
