"""Fitting the multi-source model: recovery of known offsets, seeds, and the target-scale draws."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats
import xarray as xr

from attackprev.inference.diagnostics import Diagnostics
from attackprev.inference.synthesis import (
    SynthesisResult,
    SynthesisSettings,
    cell_logits,
    fit_synthesis,
    predictive_draws,
    target_draws,
)
from attackprev.model.priors import SynthesisPriors
from attackprev.model.synthesis import SynthesisData
from tests.synthesis_fixtures import make_table, posterior_result, simulate_table, small_table

TRUTH = {"mtrends": 0.0, "groups": 1.0, "reports": -0.8, "malware": 0.5}
DEPARTURES = {"mtrends": 0.6, "groups": 0.5, "reports": 0.7, "malware": 1.0}
TRIALS = {"mtrends": 400, "groups": 170, "reports": 2600, "malware": 950}
COVERAGE = {"mtrends": "partial", "groups": "complete", "reports": "complete", "malware": "partial"}
QUICK = SynthesisSettings(draws=300, tune=400, chains=2, seed=5)


def _live(n: int) -> list[str]:
    from attackprev.evidence.ids import live_techniques

    return [t for t in live_techniques() if "." not in t][:n]


@pytest.fixture(scope="module")
def simulated():
    table = simulate_table(_live(120), TRUTH, DEPARTURES, TRIALS, COVERAGE, seed=11)
    return table, fit_synthesis(table, settings=QUICK)


@pytest.mark.slow
def test_recovers_the_family_offsets_and_departures(simulated):
    _, result = simulated
    b = result.stacked("b")
    sigma = result.stacked("sigma")
    for f, family in enumerate(result.data.families):
        lo, hi = np.quantile(b[:, f], [0.005, 0.995])
        assert lo <= TRUTH[family] <= hi, (family, lo, hi)
        lo, hi = np.quantile(sigma[:, f], [0.005, 0.995])
        assert lo <= DEPARTURES[family] <= hi, (family, lo, hi)
    # a systematic offset is not mistaken for technique-by-technique scatter, nor the reverse
    assert abs(b[:, result.data.families.index("groups")].mean() - 1.0) < 0.25
    assert result.diagnostics.divergences == 0


@pytest.mark.slow
def test_target_scale_uses_the_family_cell_or_its_departure_scale(simulated):
    _, result = simulated
    phi = result.stacked("phi")
    logits = cell_logits(result, "mtrends")
    for j, (t, fam) in enumerate(result.data.cells):
        if fam == "mtrends":
            assert np.array_equal(logits[:, result.data.techniques.index(t)], phi[:, j])
    missing = [i for i, t in enumerate(result.data.techniques) if (t, "mtrends") not in result.data.cells]
    assert missing, "the simulated partial family lists only some techniques"
    # where the target has no row: a_t + b_T + N(0, σ_T), so the spread exceeds that of a_t alone
    a = result.stacked("a")[:, missing]
    assert (logits[:, missing].std(axis=0) > a.std(axis=0)).all()
    p = target_draws(result, "mtrends")
    assert p.shape == (QUICK.chains * QUICK.draws, len(result.data.techniques)) and ((p > 0) & (p < 1)).all()
    # a new report of a multi-year family is more spread than the family's typical-year rate; a
    # one-source family's new report is its rate
    assert np.array_equal(predictive_draws(result, "groups"), target_draws(result, "groups"))
    assert np.array_equal(cell_logits(result, "mtrends"), logits)  # seeded: same draws twice


@pytest.mark.slow
def test_seed_changes_draws_and_same_seed_repeats(simulated):
    table, result = simulated
    again = fit_synthesis(table, settings=QUICK)
    assert np.array_equal(again.stacked("a"), result.stacked("a"))
    other = fit_synthesis(table, settings=SynthesisSettings(draws=300, tune=400, chains=2, seed=6))
    assert not np.array_equal(other.stacked("a"), result.stacked("a"))
    assert other.record()["settings"]["seed"] == 6 and result.record()["settings"]["seed"] == 5


def test_a_different_seed_gives_different_draws():
    """A tiny fit (seconds): the seed in the settings reaches the sampler, not only the record."""
    rows = [("T1102", "m1", 3, 200), ("T1102", "g", 30, 170), ("T1059", "m1", 40, 200), ("T1059", "g", 90, 170)]
    table = make_table(rows, {"m1": ("mtrends", "partial"), "g": ("attack_groups", "complete")})
    one, two = (fit_synthesis(table, settings=SynthesisSettings(draws=20, tune=20, chains=1, seed=s)) for s in (1, 2))
    assert one.record()["settings"]["seed"] == 1 and two.record()["settings"]["seed"] == 2
    assert not np.array_equal(one.stacked("a"), two.stacked("a"))


def _known_posterior(draws: int = 4000) -> SynthesisResult:
    """A result whose draws are constants chosen here: a_t, b_f, σ_f and the cell logits φ (no sampling)."""
    sources = {"mt": ("mtrends", "partial"), "grp": ("groups", "complete"), "rep": ("reports", "partial")}
    rows = [
        ("T1059", "mt", 60, 227),
        ("T1102", "mt", 9, 227),
        ("T1003", "grp", 20, 170),
        ("T1059", "grp", 80, 170),
        ("T1102", "grp", 33, 170),
        ("T1003", "rep", 300, 2600),
    ]
    data = SynthesisData.from_counts(make_table(rows, sources))
    assert data.techniques == ["T1003", "T1059", "T1102"] and data.families == ["mtrends", "groups", "reports"]

    def constant(values, dim):
        return (("chain", "draw", dim), np.broadcast_to(np.asarray(values, float), (1, draws, len(values))).copy())

    post = xr.Dataset(
        {
            "a": constant([-3.0, -1.0, -2.0], "technique"),
            "b": constant([0.0, 1.2, -0.9], "family"),
            "sigma": constant([0.3, 0.6, 1.5], "family"),
            "phi": constant(np.linspace(-4.0, -0.5, len(data.cells)), "cell"),
        }
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, draws), bool))})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    settings = SynthesisSettings(draws=draws, chains=1, seed=3)
    return SynthesisResult(data, tree, Diagnostics(0, 1.0, 500.0, 500.0, 1, draws), SynthesisPriors(), settings)


@pytest.mark.parametrize(
    ("family", "missing"),
    [("reports", {"T1059": -1.0 - 0.9, "T1102": -2.0 - 0.9}), ("mtrends", {"T1003": -3.0}), ("groups", {})],
)
def test_target_scale_logits_are_the_cell_or_a_plus_b_plus_a_departure(family, missing):
    """Where family F reports technique t its logit is the cell's φ; where it does not, a_t + b_F + d with
    d ~ Normal(0, σ_F): scipy's Normal with F's own offset and departure scale, written out (σ: 0.3, 0.6, 1.5)."""
    result = _known_posterior()
    logits = cell_logits(result, family)
    phi = result.stacked("phi")
    sigma = {"mtrends": 0.3, "groups": 0.6, "reports": 1.5}[family]
    for j, t in enumerate(result.data.techniques):
        if t in missing:
            ref = scipy.stats.norm(missing[t], sigma)
            assert scipy.stats.kstest(logits[:, j], ref.cdf).pvalue > 1e-3, t
        else:
            assert np.array_equal(logits[:, j], phi[:, result.data.cells.index((t, family))]), t
    assert np.allclose(target_draws(result, family), scipy.special.expit(logits))


def test_diagnostics_cover_the_sampled_quantities_and_skip_constants():
    """The sampled variables (and the technique levels) are diagnosed; derived ones and constants are not."""
    from attackprev.inference.synthesis import _diagnosed

    rng = np.random.default_rng(0)
    names = [
        "level_mean", "level_sd", "sigma", "tau", "log_kappa", "a", "c",
        "b_partial", "c_loose_z", "u_weak", "phi_strong", "year_shift_mtrends_z",
        "phi", "d", "e", "b", "theta",
    ]  # fmt: skip
    post = xr.Dataset({n: (("chain", "draw"), rng.normal(size=(2, 50))) for n in names})
    post["log_kappa_single"] = (("chain", "draw"), np.zeros((2, 50)))  # σ = 0: a constant
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 50), bool))})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    got = set(_diagnosed(tree)["posterior"].to_dataset().data_vars)
    assert got == {
        "level_mean", "level_sd", "sigma", "tau", "log_kappa", "a", "c",
        "b_partial", "c_loose_z", "u_weak", "phi_strong", "year_shift_mtrends_z",
    }  # fmt: skip


def test_fit_synthesis_passes_its_settings_and_held_out_sources_to_the_sampler(monkeypatch):
    """nutpie is replaced by a recorder: what reaches it is what the settings say, quietly unless asked."""
    import nutpie

    import attackprev.inference.nutpie_cache as cache

    rows = [("T1102", "m1", 3, 200), ("T1102", "g", 30, 170), ("T1059", "m1", 40, 200), ("T1059", "m2", 9, 100)]
    table = make_table(rows, {"m1": ("mtrends", "partial"), "m2": ("mtrends", "partial"), "g": ("groups", "complete")})
    seen = {}

    def sample(compiled, **kw):
        seen.update(kw)
        post = xr.Dataset({"level_mean": (("chain", "draw"), np.random.default_rng(0).normal(size=(2, 30)))})
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 30), bool))})
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})

    monkeypatch.setattr(cache, "compile_pymc_model", lambda model: model)
    monkeypatch.setattr(nutpie, "sample", sample)
    settings = SynthesisSettings(draws=30, tune=40, chains=2, seed=9, target_accept=0.95)
    result = fit_synthesis(table, settings=settings, exclude_sources=("m2",))
    assert seen == {"draws": 30, "tune": 40, "chains": 2, "seed": 9, "target_accept": 0.95, "progress_bar": False}
    assert result.data.sources == ["g", "m1"] and "held out: m2" in result.data.digest
    assert result.settings == settings and set(result.seconds) == {"compile", "sample"}
    fit_synthesis(table, settings=settings, progress=True)
    assert seen["progress_bar"] is True


def test_an_unknown_family_is_refused_naming_the_families():
    with pytest.raises(ValueError) as err:
        cell_logits(_known_posterior(draws=10), "cisa")
    assert str(err.value) == "unknown family 'cisa'; families: mtrends, groups, reports"


def test_departures_and_new_reports_are_drawn_from_their_own_seeded_streams():
    """The streams written out with numpy: a missing cell's departure d_tF = σ_F z with z from
    default_rng([seed, F, offset, 7]), offset 0 for the target scale and 1 for a new report; a new report of a
    family with several sources then takes its year shift τ z' and its Beta rate from default_rng([seed, F, 2, 7])."""
    result = posterior_result(small_table(), chains=2, draws=300, seed=7)
    a, b, sigma, phi = (result.stacked(v) for v in ("a", "b", "sigma", "phi"))
    families, cells = result.data.families, result.data.cells

    def expected_logits(family, offset):
        f = families.index(family)
        z = np.random.default_rng([7, f, offset, 7]).standard_normal(a.shape)
        out = a + b[:, [f]] + sigma[:, [f]] * z
        for j, t in enumerate(result.data.techniques):
            if (t, family) in cells:
                out[:, j] = phi[:, cells.index((t, family))]
        return out

    for family in families:
        np.testing.assert_allclose(cell_logits(result, family), expected_logits(family, 0), rtol=1e-13)
        np.testing.assert_allclose(cell_logits(result, family, seed_offset=1), expected_logits(family, 1), rtol=1e-13)
    # malware (one source) lacks T1059 and T1102: a new report's rate is logit⁻¹ of the offset-1 draws
    assert {"T1059", "T1102"}.isdisjoint(t for t, f in cells if f == "malware")
    want = scipy.special.expit(expected_logits("malware", 1))
    np.testing.assert_allclose(predictive_draws(result, "malware"), want, rtol=1e-13)
    assert not np.allclose(predictive_draws(result, "malware"), target_draws(result, "malware"))
    # mtrends (two years, τ = 0.3, log κ = 3): θ = logit⁻¹(logit + τ z'), then Beta(θκ, (1 − θ)κ), one stream
    rng = np.random.default_rng([7, 0, 2, 7])
    logit = expected_logits("mtrends", 1)
    theta = scipy.special.expit(logit + 0.3 * rng.standard_normal(logit.shape))
    kappa = np.exp(3.0)
    want = rng.beta(theta * kappa, (1 - theta) * kappa)
    np.testing.assert_allclose(predictive_draws(result, "mtrends"), want, rtol=1e-12)


def test_fit_synthesis_holds_out_rows_diagnoses_times_and_records(monkeypatch):
    """nutpie replaced by a tree with 3 divergent draws, the clock by a fake one reading 100, 102.5 and 110 s:
    held-out rows leave the data, the diagnostics are those of the tree, the seconds the clock's differences."""
    from types import SimpleNamespace

    import nutpie

    import attackprev.inference.nutpie_cache as cache
    import attackprev.inference.synthesis as fitting

    rows = [("T1102", "m1", 3, 200), ("T1102", "g", 30, 170), ("T1059", "m1", 40, 200), ("T1059", "m2", 9, 100)]
    table = make_table(rows, {"m1": ("mtrends", "partial"), "m2": ("mtrends", "partial"), "g": ("groups", "complete")})

    def sample(compiled, **kw):
        post = xr.Dataset({"level_mean": (("chain", "draw"), np.random.default_rng(0).normal(size=(2, 30)))})
        diverging = np.zeros((2, 30), bool)
        diverging[0, :3] = True
        stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
        return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})

    monkeypatch.setattr(cache, "compile_pymc_model", lambda model: model)
    monkeypatch.setattr(nutpie, "sample", sample)
    monkeypatch.setattr(fitting, "time", SimpleNamespace(perf_counter=iter([100.0, 102.5, 110.0]).__next__))
    settings = SynthesisSettings(draws=30, tune=40, chains=2, seed=9)
    result = fit_synthesis(table, settings=settings, exclude_rows=frozenset({("T1059", "m2")}))
    assert list(result.data.successes) == [3, 30, 40] and "m2" not in result.data.sources
    assert "|held-out rows: 1 " in result.data.digest
    assert result.seconds == {"compile": 2.5, "sample": 7.5}
    d = result.diagnostics
    assert (d.divergences, d.chains, d.draws) == (3, 2, 30)
    assert d.problems[0] == "3 divergent transitions" and not result.passed
    record = result.record()
    assert list(record) == ["priors", "data_sha256", "reference", "settings", "versions"]
    assert record["reference"] == "mtrends" and record["data_sha256"] == result.data.digest
