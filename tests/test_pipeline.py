"""One run pipeline: every option reaches the model that reports the headline, or is refused; fits are cached."""

from __future__ import annotations

import json

import pytest

from attackprev.analysis.technique import MULTI, SINGLE, SYNTHESIS
from attackprev.errors import InputError
from attackprev.evidence.tables import load_evidence
from attackprev.pipeline import RunOptions, plan_run, run_fit
from tests.conftest import write_csv

#: Six techniques, three reported by both sources: enough for the multi-technique model, small enough to fit fast.
SMALL = """
    technique_id,source_id,successes,trials
    T1102,a,9,227
    T1102,b,47,951
    T1059,a,120,227
    T1059,b,380,951
    T1027,a,30,227
    T1027,b,500,951
    T1003,a,40,227
    T1083,b,600,951
    T1124,b,300,951
    """


@pytest.fixture
def small(tmp_path):
    return load_evidence(write_csv(tmp_path / "small.csv", SMALL), None)


@pytest.fixture
def bundled():
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV

    return load_evidence(OBSERVATIONS_CSV, SOURCES_CSV)


@pytest.fixture(scope="module")
def v2():
    from attackprev.evidence.counts import load_counts

    return load_counts()


def test_default_headline_is_the_multi_source_model_with_its_own_settings(bundled, v2):
    plan = plan_run(RunOptions(), bundled, ["T1102"], False, v2)
    assert plan.headline == SYNTHESIS and plan.note is None and plan.fit_synthesis and not plan.fit_multi
    assert plan.target == "mtrends"
    assert (plan.synthesis.draws, plan.synthesis.tune, plan.single.draws, plan.single.tune) == (1500, 1000, 4000, 1000)


def test_a_data_file_gets_the_multi_technique_model_and_says_so(bundled):
    plan = plan_run(RunOptions(), bundled, ["T1102"], False)  # no evidence base v2: a --data run
    assert plan.headline == MULTI and "--data" in plan.note and plan.fit_multi and not plan.fit_synthesis
    assert (plan.multi.draws, plan.multi.tune) == (1500, 1500)


def test_all_writes_the_catalogue_of_the_default_model(bundled, v2):
    assert plan_run(RunOptions(), bundled, [], True, v2).fit_synthesis
    assert plan_run(RunOptions(model="single"), bundled, ["T1102"], True, v2).fit_synthesis
    multi = plan_run(RunOptions(model="multi"), bundled, [], True, v2)
    assert multi.fit_multi and not multi.fit_synthesis


def test_sampler_options_reach_every_fitted_model(bundled, v2):
    plan = plan_run(RunOptions(seed=1, draws=600, tune=700, chains=2), bundled, ["T1102"], False, v2)
    for settings in (plan.synthesis, plan.single):
        assert (settings.seed, settings.draws, settings.tune, settings.chains) == (1, 600, 700, 2)
    plan = plan_run(RunOptions(seed=1, draws=600, tune=700, chains=2), bundled, ["T1102"], False)
    assert (plan.multi.seed, plan.multi.draws, plan.multi.tune, plan.multi.chains) == (1, 600, 700, 2)


@pytest.mark.parametrize(
    ("options", "note"),
    [
        (RunOptions(engine="exact"), "--engine exact computes the single-technique model"),
        (RunOptions(weights={"mtrends2020": 0.5}), "--weight tempers a source in the single-technique model only"),
        (RunOptions(model="single"), "--model single"),
        (RunOptions(model="single", prior="pareto"), "--model single"),
    ],
)
def test_a_change_of_estimand_is_named(bundled, v2, options, note):
    plan = plan_run(options, bundled, ["T1102"], False, v2)
    assert plan.headline == SINGLE and note in plan.note and not plan.fit_multi and not plan.fit_synthesis


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(prior="pareto"), "--prior pareto sets the single-technique model's hyperprior"),
        (RunOptions(model="multi", engine="exact"), "--model multi: --engine exact"),
        (RunOptions(model="multi", weights={"mtrends2020": 0.5}), "--model multi: --weight"),
        (RunOptions(engine="exact", seed=3), "--seed: nothing is sampled"),
        (RunOptions(model="fancy"), "--model 'fancy'"),
        (RunOptions(weights={"nosuch": 0.5}), "unknown source 'nosuch'"),
        (RunOptions(model="synthesis", engine="exact"), "--model synthesis: --engine exact"),
        (RunOptions(target="gartner"), "--target 'gartner': not a family"),
        (RunOptions(target="attack_groups", model="single"), "--target attack_groups: it sets the multi-source"),
    ],
)
def test_options_that_would_not_reach_a_number_are_refused(bundled, v2, options, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        plan_run(options, bundled, ["T1102"], False, v2)


def test_the_multi_source_model_needs_the_evidence_base(bundled):
    with pytest.raises(InputError, match="--model synthesis reads the evidence base v2"):
        plan_run(RunOptions(model="synthesis"), bundled, ["T1102"], False)


def test_too_little_evidence_for_the_multi_technique_model(tmp_path):
    csv = write_csv(tmp_path / "one.csv", "technique_id,source_id,successes,trials\nT1102,a,9,227\n")
    one = load_evidence(csv, None)
    plan = plan_run(RunOptions(), one, ["T1102"], False)
    assert plan.headline == SINGLE and "too few techniques" in plan.note
    with pytest.raises(InputError, match="--model multi needs"):
        plan_run(RunOptions(model="multi"), one, ["T1102"], False)


@pytest.mark.slow
def test_seed_reaches_the_headline_and_the_fit_cache_is_checked(small, tmp_path, monkeypatch):
    """--seed changes the headline draws; the same seed repeats them; a corrupt cache entry is refitted."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("ATTACKPREV_CACHE_DIR", str(cache))
    lines: list[str] = []

    def run(seed: int, out: str) -> dict:
        options = RunOptions(seed=seed, draws=200, tune=200, chains=2, figures=False)
        run_fit(["T1102"], small, options, out=tmp_path / out, echo=lines.append)
        return json.loads((tmp_path / out / "t1102" / "summary.json").read_text())

    one, two = run(1, "one"), run(2, "two")
    assert one["model"] == two["model"] == MULTI
    assert one["settings"]["seed"] == 1 and two["settings"]["seed"] == 2
    assert one["models"]["single_technique"]["settings"]["seed"] == 1
    assert one["prevalence"] != two["prevalence"]  # the headline moved with the seed
    fits = lambda: [x for x in lines if x.startswith("multi-technique model:")]  # noqa: E731  one per run
    assert "fitted" in fits()[0] and "fitted" in fits()[1]
    assert any(x.startswith("note: the headline is the multi-technique model") for x in lines)  # --data: said so
    again = run(1, "again")  # a fresh folder: the saved fit of seed 1 comes from the cache
    assert "reused" in fits()[2] and str(cache) in fits()[2]
    assert again["prevalence"] == one["prevalence"] and again["mal"] == one["mal"]
    (saved,) = [p for p in (cache / "catalogue").iterdir() if p.suffix == ".nc" and json.dumps(1) in _seed_of(p)]
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])  # truncated: must not be trusted
    third = run(1, "third")
    assert "fitted" in fits()[3]
    assert third["prevalence"] == one["prevalence"]  # refitted, with the same draws


def _seed_of(path) -> str:
    import xarray as xr

    with xr.open_datatree(path) as tree:
        return str(tree.attrs["seed"])


def test_an_edited_cache_entry_is_rejected(small, tmp_path, monkeypatch):
    """Draws that no longer hash to the value saved beside them are not trusted (no sampling needed)."""
    import numpy as np
    import xarray as xr

    from attackprev.inference.catalogue import (
        CatalogueData,
        CataloguePriors,
        CatalogueResult,
        CatalogueSettings,
        Diagnostics,
        cache_key,
        load_result,
        save_result,
    )

    data = CatalogueData.from_observations(list(small.observations))
    t = len(data.techniques)
    post = xr.Dataset(
        {
            "mu": (("chain", "draw", "technique"), np.full((1, 4, t), 0.1, "float32")),
            "kappa": (("chain", "draw", "technique"), np.full((1, 4, t), 20.0, "float32")),
        },
        coords={"technique": list(data.techniques)},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 4), bool))})
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    priors, settings = CataloguePriors(), CatalogueSettings()
    key = cache_key(small, priors, settings)
    tree.attrs.update({"variant": "pooled", "cache_key": key, "data_sha256": small.digest, "seed": 1})
    diag = {"pooled": Diagnostics(0, 1.0, 500.0, 500.0, 1, 4)}
    result = CatalogueResult(data, "pooled", tree, diag, [], key, priors, settings, {"pooled": 1.0})
    path = tmp_path / "fit.nc"
    save_result(result, path)
    loaded = load_result(path, small, priors, settings)
    assert loaded is not None and float(loaded.tree["posterior"]["mu"].mean()) == pytest.approx(0.1)
    assert load_result(path, small, priors, CatalogueSettings(seed=2)) is None  # another key: stale
    with xr.open_datatree(path) as handle:
        edited = handle.load()
    edited["posterior"]["mu"] = edited["posterior"]["mu"] * 2
    edited.to_netcdf(path, engine="h5netcdf")
    assert load_result(path, small, priors, settings) is None


def test_every_input_of_a_fit_changes_its_cache_key(bundled):
    """Data (including a --trials override), priors and settings each give another key: no stale fit is reused."""
    from attackprev.config import OBSERVATIONS_CSV, SOURCES_CSV
    from attackprev.inference.catalogue import CataloguePriors, CatalogueSettings, cache_key

    base = cache_key(bundled, CataloguePriors(), CatalogueSettings())
    overridden = load_evidence(OBSERVATIONS_CSV, SOURCES_CSV, {"mtrends2020": 454})  # a multiple of 227 fits too
    keys = {
        base,
        cache_key(overridden, CataloguePriors(), CatalogueSettings()),
        cache_key(bundled, CataloguePriors(log_kappa_sd=2.0), CatalogueSettings()),
        cache_key(bundled, CataloguePriors(), CatalogueSettings(draws=1000)),
        cache_key(bundled, CataloguePriors(), CatalogueSettings(seed=1)),
    }
    assert len(keys) == 5
    assert cache_key(bundled, CataloguePriors(), CatalogueSettings()) == base  # and the same inputs, the same key


# -- the plan's every line and field, word for word ----------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(model="fancy"), "--model 'fancy': choose one of auto, synthesis, multi, single"),
        (RunOptions(engine="grid"), "--engine 'grid': choose one of mcmc, exact"),
        (
            RunOptions(prior="nosuch"),
            "--prior: unknown prior 'nosuch'; choose one of halfnormal1, halfnormal05, pareto, bda3, loguniform",
        ),
        (
            RunOptions(weights={"nosuch": 0.5}),
            "unknown source 'nosuch'; sources in the evidence: mtrends2020, recordedfuture_2019, redcanary_2020_tdr, "
            "sok2019_windows_malware",
        ),
        (
            RunOptions(engine="exact", seed=3, draws=5),
            "--draws, --seed: nothing is sampled in this run (--engine exact computes the posterior on a grid)",
        ),
        (
            RunOptions(target="gartner"),
            "--target 'gartner': not a family of the evidence; families: attack_campaigns, attack_groups, "
            "attack_software, cisa, ctid_tie, mtrends, recordedfuture, redcanary, sok",
        ),
        (
            RunOptions(model="multi", engine="exact"),
            "--model multi: --engine exact computes the single-technique model (this technique's sources alone) on "
            "a grid; the default multi-source model is sampled by MCMC; drop one of the two options",
        ),
        (
            RunOptions(prior="pareto"),
            "--prior pareto sets the single-technique model's hyperprior, but the headline here is the multi-source "
            "model (its priors are fixed in attackprev.model.priors); add --model single to report the "
            "single-technique model under this prior",
        ),
    ],
)
def test_each_refusal_says_exactly_what_and_why(bundled, v2, options, message):
    with pytest.raises(InputError) as err:
        plan_run(options, bundled, ["T1102"], False, v2)
    assert str(err.value) == message


def test_refusals_without_the_evidence_base(tmp_path, bundled):
    with pytest.raises(InputError) as err:
        plan_run(RunOptions(model="synthesis"), bundled, ["T1102"], False)
    assert str(err.value) == (
        "--model synthesis reads the evidence base v2 (data/evidence/); it cannot be used with --data"
    )
    one = load_evidence(
        write_csv(tmp_path / "one.csv", "technique_id,source_id,successes,trials\nT1102,a,9,227\n"), None
    )
    with pytest.raises(InputError) as err:
        plan_run(RunOptions(model="multi"), one, ["T1102"], False)
    assert str(err.value) == "--model multi needs at least 5 techniques, 3 of them reported by several sources"
    assert plan_run(RunOptions(), one, ["T1102"], False).note == (
        "--data: the multi-source synthesis reads the evidence base v2's families, which a --data file lacks, and "
        "the file has too few techniques reported by several sources for the multi-technique model (it needs at "
        "least 5 techniques, 3 of them with several sources)"
    )


@pytest.mark.parametrize(
    ("options", "table", "headline", "note"),
    [
        (RunOptions(), True, SYNTHESIS, None),
        (RunOptions(model="synthesis"), True, SYNTHESIS, None),
        (RunOptions(model="multi-source"), True, SYNTHESIS, None),
        (
            RunOptions(model="multi"),
            True,
            MULTI,
            "--model multi: the four sources of enterpriseLang's notes, treated as measuring the same thing, "
            "not the default multi-source model",
        ),
        (RunOptions(model="catalogue"), True, MULTI, None),
        (
            RunOptions(model="single"),
            True,
            SINGLE,
            "--model single: this technique's sources alone, not the default multi-source model",
        ),
        (
            RunOptions(engine="exact"),
            True,
            SINGLE,
            "--engine exact computes the single-technique model (this technique's sources alone) on a grid; "
            "the default multi-source model is sampled by MCMC",
        ),
        (
            RunOptions(),
            False,
            MULTI,
            "--data: the multi-source synthesis reads the evidence base v2's families, which a --data file lacks",
        ),
    ],
)
def test_each_headline_and_its_note(bundled, v2, options, table, headline, note):
    plan = plan_run(options, bundled, ["T1102"], False, v2 if table else None)
    assert plan.headline == headline
    if options.model != "catalogue":
        assert plan.note == note


def test_the_plan_carries_engine_prior_weights_and_target(bundled, v2):
    plan = plan_run(
        RunOptions(engine="exact", prior="pareto", weights={"mtrends2020": 0.5}), bundled, ["T1102"], False, v2
    )
    assert (plan.engine, plan.prior.name, plan.weights, plan.target) == (
        "exact",
        "pareto",
        {"mtrends2020": 0.5},
        "mtrends",
    )
    default = plan_run(RunOptions(), bundled, ["T1102"], False, v2)
    assert (default.engine, default.prior.name, default.weights) == ("mcmc", "halfnormal1", {})
    assert plan_run(RunOptions(target="attack_groups"), bundled, ["T1102"], False, v2).target == "attack_groups"
    # sampler options with only the single-technique model sampled, or with the catalogue fitted, are taken
    assert plan_run(RunOptions(model="single", seed=4), bundled, ["T1102"], False, v2).single.seed == 4
    assert plan_run(RunOptions(model="multi", seed=4), bundled, [], True, v2).multi.seed == 4
    with pytest.raises(InputError, match=r"^--seed: nothing is sampled"):
        plan_run(RunOptions(model="single", engine="exact", seed=4), bundled, ["T1102"], False, v2)


LIBRARIES = ("pymc", "pytensor", "arviz", "numba")


@pytest.fixture
def library_logging():
    """The libraries' loggers set to NOTSET and the root logger to WARNING for the test, restored after it."""
    import logging

    loggers = [logging.getLogger(name) for name in LIBRARIES] + [logging.getLogger()]
    levels = [lg.level for lg in loggers]
    for lg in loggers[:-1]:
        lg.setLevel(logging.NOTSET)
    loggers[-1].setLevel(logging.WARNING)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def test_quiet_libraries_silences_the_libraries_and_only_them(library_logging):
    import logging
    import warnings

    from attackprev.pipeline import quiet_libraries

    with warnings.catch_warnings():  # restores the filters on leaving
        warnings.resetwarnings()
        quiet_libraries()
        ignored = [(f[0], f[2]) for f in warnings.filters]
    assert sorted(ignored, key=str) == sorted(
        [("ignore", FutureWarning), ("ignore", UserWarning), ("ignore", RuntimeWarning)], key=str
    )
    assert [logging.getLogger(name).level for name in LIBRARIES] == [logging.ERROR] * 4
    assert logging.getLogger().level == logging.WARNING  # the root logger (everything else) is left as it was
